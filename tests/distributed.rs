//! Two machines on one: burn-collective's orchestrator (`seethink collective`) and two
//! `seethink train` processes as nodes of one run (`trainer.nodes`), talking over 127.0.0.1.
//! Both nodes end with the weights and metrics of one process with the same global batch.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn seethink() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seethink"))
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for `child` to exit (a failure after `limit`); its exit status and what it wrote to
/// `log` (its stdout and stderr; a file, as a pipe that nobody reads could fill and block it).
fn wait(mut child: Killed, log: &Path, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return (status, std::fs::read_to_string(log).unwrap_or_default());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(started.elapsed() < limit, "a node ran longer than {limit:?}; its log:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tiny GRPO run of `configs/tiny-grpo.ron` on `data` in `out`: 2 steps of 2 prompts × 2
/// samples, 2 mini-batches of 2 micro-batches of one sample; `extra` overrides appended.
fn train(data: &Path, out: &Path, extra: &[String]) -> Command {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny-grpo.ron");
    let mut command = seethink();
    command.args(["train", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let settings = [
        format!("data.train=\"{}\"", data.display()),
        "trainer.steps=2".into(),
        "trainer.prompts_per_step=2".into(),
        "rollout.n=2".into(),
        "rollout.max_new_tokens=4".into(),
        "actor.micro_batch_size=1".into(),
        "algorithm.reward=Direct".into(),
    ];
    for setting in settings.iter().chain(extra) {
        command.args(["--set", setting]);
    }
    command
}

/// `command` started with its stdout and stderr going to `log`.
fn spawn_logged(mut command: Command, log: &Path) -> Killed {
    let file = std::fs::File::create(log).unwrap();
    Killed(command.stdout(file.try_clone().unwrap()).stderr(file).spawn().unwrap())
}

/// Every tensor of a run's exported model, as raw bytes by name.
fn exported(run: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = run.join("final");
    let mut tensors = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let bytes = std::fs::read(&path).unwrap();
            for (name, view) in safetensors::SafeTensors::deserialize(&bytes).unwrap().tensors() {
                tensors.insert(name, view.data().to_vec());
            }
        }
    }
    assert!(!tensors.is_empty(), "no weights in {}", dir.display());
    tensors
}

fn rewards(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reward"].as_f64().unwrap())
        .collect()
}

#[test]
fn two_nodes_over_loopback_train_as_one_process() {
    nodes_train_as_one_process(&[]);
}

/// With the gradients sharded (ZeRO-2) and each decoder layer recomputed in backward: the
/// layers' gradients go to their owners one layer at a time, across the two processes.
#[test]
fn two_nodes_with_sharded_gradients_train_as_one_process() {
    let sharded =
        ["trainer.sharding=Gradients".to_string(), "actor.activation_checkpointing=true".to_string()];
    nodes_train_as_one_process(&sharded);
}

/// With everything sharded (ZeRO-3): each process holds its own parameters' weights between
/// uses and gathers the policy and each decoder layer from the other as they run.
#[test]
fn two_nodes_with_sharded_weights_train_as_one_process() {
    let sharded = ["trainer.sharding=Weights".to_string(), "actor.activation_checkpointing=true".to_string()];
    nodes_train_as_one_process(&sharded);
}

/// burn-collective's orchestrator, listening on a free port: the process and the port.
fn start_orchestrator() -> (Killed, u16) {
    let port = free_port();
    let orchestrator = Killed(
        seethink().args(["collective", "--port", &port.to_string()]).stderr(Stdio::null()).spawn().unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the orchestrator did not start listening");
        std::thread::sleep(Duration::from_millis(100));
    }
    (orchestrator, port)
}

/// Nodes 0 and 1 of a run on `data` with `extra` settings, into `runs[rank]`, logging to
/// `logs[rank]`, joined by the orchestrator at `port`.
fn nodes(data: &Path, runs: &[&Path], logs: &[PathBuf], extra: &[String], port: u16) -> Vec<Killed> {
    (0..2)
        .map(|rank| {
            let nodes = format!(
                "trainer.nodes=Some((count: 2, rank: {rank}, orchestrator: \"ws://127.0.0.1:{port}\", \
                 address: \"ws://127.0.0.1:{}\"))",
                free_port()
            );
            let settings: Vec<String> = extra.iter().cloned().chain([nodes]).collect();
            spawn_logged(train(data, runs[rank], &settings), &logs[rank])
        })
        .collect()
}

/// Waits for both nodes to finish successfully.
fn finish(nodes: Vec<Killed>, logs: &[PathBuf]) {
    for (rank, node) in nodes.into_iter().enumerate() {
        let (status, log) = wait(node, &logs[rank], Duration::from_secs(300));
        assert!(status.success(), "node {rank}: {log}");
    }
}

/// `seethink data synth` tasks in a new directory.
fn synth_data() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let synth = seethink()
        .args(["data", "synth", "--out", data.path().to_str().unwrap(), "--n", "4", "--seed", "1"])
        .output()
        .unwrap();
    assert!(synth.status.success(), "{}", String::from_utf8_lossy(&synth.stderr));
    data
}

/// The run of one process with `extra` settings into `out`.
fn one_process(data: &Path, out: &Path, extra: &[String]) {
    let single = train(data, out, extra).stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    assert!(single.status.success(), "{}", String::from_utf8_lossy(&single.stderr));
}

/// Two nodes over loopback, each with `extra` settings, end with the weights and rewards of one
/// process with the same settings.
fn nodes_train_as_one_process(extra: &[String]) {
    let data = synth_data();
    let runs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let logs: Vec<PathBuf> = (0..2).map(|rank| data.path().join(format!("node-{rank}.log"))).collect();
    let (orchestrator, port) = start_orchestrator();
    finish(nodes(data.path(), &[runs[0].path(), runs[1].path()], &logs, extra, port), &logs);
    drop(orchestrator);
    one_process(data.path(), runs[2].path(), extra);
    // each node writes its own run directory; both hold the one-process run's results
    for node in &runs[..2] {
        assert_eq!(rewards(node.path()), rewards(runs[2].path()));
        assert!(exported(node.path()) == exported(runs[2].path()), "weights differ from one process's");
    }
}

/// A run of two nodes with everything sharded (ZeRO-3) killed with SIGKILL (both nodes and the
/// orchestrator) once both
/// have saved step 2, started again, ends with the weights and rewards of one process that ran
/// through. Each machine keeps its own checkpoints, so a kill between their saves of a step
/// leaves them a step apart (made so here): the run resumes everywhere from the newest step
/// both hold.
#[test]
fn two_sharded_nodes_killed_mid_run_resume_bitwise() {
    let extra: Vec<String> = [
        "trainer.sharding=Weights",
        "actor.activation_checkpointing=true",
        "trainer.steps=5",
        "trainer.save_every=1",
    ]
    .map(String::from)
    .to_vec();
    let data = synth_data();
    let runs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let node_runs = [runs[0].path(), runs[1].path()];
    let logs: Vec<PathBuf> = (0..2).map(|rank| data.path().join(format!("node-{rank}.log"))).collect();
    let (orchestrator, port) = start_orchestrator();
    let running = nodes(data.path(), &node_runs, &logs, &extra, port);
    let saved = |run: &Path| run.join("checkpoint").join("state-2.json").exists();
    let started = Instant::now();
    while !node_runs.iter().all(|run| saved(run)) {
        assert!(started.elapsed() < Duration::from_secs(300), "no checkpoint 2 on both nodes");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: nothing runs on after this (Killed's drop)
    drop(running);
    drop(orchestrator);
    let done = |run: &Path| run.join("checkpoint").join("state-5.json").exists();
    assert!(!node_runs.iter().all(|run| done(run)), "the run ended before it was killed");
    // killed between the two machines' saves: machine 1 lacks machine 0's newest step
    let newest =
        |run: &Path| (1..=5).rev().find(|step| run.join(format!("checkpoint/state-{step}.json")).exists());
    let step = newest(node_runs[0]).unwrap();
    let _ = std::fs::remove_file(node_runs[1].join(format!("checkpoint/state-{step}.json")));
    assert_eq!(newest(node_runs[1]), Some(step - 1), "machine 1 keeps the step before");

    let (orchestrator, port) = start_orchestrator();
    finish(nodes(data.path(), &node_runs, &logs, &extra, port), &logs);
    drop(orchestrator);
    one_process(data.path(), runs[2].path(), &extra);
    for node in node_runs {
        assert_eq!(rewards(node), rewards(runs[2].path()));
        assert!(exported(node) == exported(runs[2].path()), "weights differ from one process's");
    }
}
