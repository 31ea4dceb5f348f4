//! `seethink plan` at a real size (Qwen2.5-VL-7B's config.json, no weights) and the memory check
//! of `seethink train`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seethink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seethink")).args(args).output().expect("run seethink")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The paper's Qwen2.5-VL-7B recipe with `model` pointing at the real config.json fixture, on
/// one device, unsharded, with 64 prompts per generation call (the config's 8-GPU settings
/// undone: each test sets what it plans).
fn paper_config(dir: &Path) -> PathBuf {
    let recipe = std::fs::read_to_string(root().join("configs/paper/qwen2_5_vl_7b.ron")).unwrap();
    let model = root().join("tests/fixtures/real_configs/qwen2_5_vl_7b");
    let recipe = recipe
        .replace("\"./checkpoints/Qwen2.5-VL-7B-Instruct\"", &format!("{:?}", model.display().to_string()))
        .replace("devices: 8, sharding: Weights, ", "")
        .replace("batch_size: 0,", "batch_size: 320,");
    assert!(!recipe.contains("Weights") && recipe.contains("batch_size: 320,"), "{recipe}");
    let path = dir.join("qwen2_5_vl_7b.ron");
    std::fs::write(&path, recipe).unwrap();
    path
}

#[test]
fn the_paper_recipe_at_7b_in_f32_does_not_fit_80_gib_and_the_plan_says_what_would_help() {
    let dir = tempfile::tempdir().unwrap();
    let config = paper_config(dir.path());
    let out = seethink(&["plan", "--config", config.to_str().unwrap(), "--memory", "80GiB"]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    // 8,292,166,656 parameters × 4 B, twice (policy and KL reference), and AdamW's two moments
    assert!(stdout.contains("| weights | always | 30.89 |"), "{stdout}");
    assert!(stdout.contains("| KL reference | always | 30.89 |"), "{stdout}");
    assert!(stdout.contains("| AdamW moments | always | 61.78 |"), "{stdout}");
    assert!(stdout.contains("does NOT fit in the device's 80.00 GiB"), "{stdout}");
    // each phase of the curriculum is planned with its own settings
    assert!(stdout.contains("peak of phase `text_reasoning`:"), "{stdout}");
    assert!(stdout.contains("actor.micro_batch_size = 1: peak"), "{stdout}");
    assert!(text(&out.stderr).contains("does not fit in the device's memory"), "{}", text(&out.stderr));

    // the same plan fits a device large enough, and without --memory there is no verdict
    let out = seethink(&["plan", "--config", config.to_str().unwrap(), "--memory", "4TiB"]);
    assert!(out.status.success() && text(&out.stdout).contains("fits in the device's 4096.00 GiB"));
    let out = seethink(&["plan", "--config", config.to_str().unwrap()]);
    assert!(out.status.success() && text(&out.stdout).contains("no verdict"));
}

/// The paper's configs as shipped (8 workers, weights sharded, bf16 passes, `rollout.batch_size:
/// 0`) planned for 80 GiB GPUs: each prompt's KV cache is kept once for its 5 samples and theirs
/// grow in blocks up to a bound (`rollout.kv_cache_positions`; rows beyond it are preempted and
/// resumed, as vLLM does), so a worker's share of 64 prompts × 5 takes one or two generation
/// calls (16 at 20 rows per call before the prompts were shared; 2 and 4 with every response
/// counted at its 2,048-token limit), each fitted within 80 GiB / 1.2 (the pools' reserve over
/// the plan).
#[test]
fn the_paper_configs_decode_a_worker_s_share_in_one_or_two_calls_on_80_gib() {
    for (model, rows, calls, bound) in [("qwen2_5_vl_7b", 320, 1, 248_640), ("qwen3_vl_8b", 160, 2, 131_584)]
    {
        let config = root().join(format!("configs/paper/{model}.ron"));
        let out = Command::new(env!("CARGO_BIN_EXE_seethink"))
            .args(["plan", "--config", config.to_str().unwrap(), "--for", "cuda", "--memory", "80GiB"])
            .current_dir(root())
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{model}: {stdout}{}", text(&out.stderr));
        let line = format!(
            "rollout.batch_size 0 (as many as fit): {rows} rows per generation call, {calls} call(s) for a worker's 64 prompts, \
             the samples' own KV cache bounded at {bound} positions"
        );
        assert!(stdout.contains(&line), "{model}: {stdout}");
        assert!(
            stdout.contains("| rollout KV cache | rollout |")
                && stdout.contains("| rollout KV gathered | rollout |")
        );
    }
}

/// `dir/tiny.ron`: one GRPO step of the tiny Qwen3-VL fixture on `data` into `dir/run`, with
/// `extra` top-level keys (`, key: value`); returns the config's and the run's paths.
fn tiny_run_config(dir: &Path, data: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let (config, run) = (dir.join("tiny.ron"), dir.join("run"));
    let model = root().join("tests/fixtures/qwen3_vl/checkpoint");
    let text = format!(
        "(model: {:?}, data: (train: {:?}), rollout: (n: 2, max_new_tokens: 8), \
         trainer: (steps: 1, prompts_per_step: 2, out: {:?}){extra})",
        model.display().to_string(),
        data.display().to_string(),
        run.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    (config, run)
}

#[test]
fn train_refuses_a_run_that_does_not_fit_before_loading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    let out = seethink(&["data", "synth", "--out", data.to_str().unwrap(), "--n", "4", "--seed", "0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (config, run) = tiny_run_config(dir.path(), &data, "");
    let out = seethink(&["train", "--config", config.to_str().unwrap(), "--memory", "1MiB"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot fit on this device; refusing to start"), "{stderr}");
    assert!(stderr.contains("| activations | update |"), "{stderr}");
    assert!(!run.exists(), "a refused run wrote {}", run.display());
    let out = seethink(&["train", "--config", config.to_str().unwrap(), "--memory", "8GiB"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// An example's binary, built beside this test's by `cargo test` (`target/<profile>/examples/`).
fn example(name: &str) -> Command {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} not built (cargo test builds the examples)", path.display());
    Command::new(path)
}

#[test]
fn the_experiments_refuse_a_config_that_does_not_fit_as_train_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    std::fs::write(&data, r#"{"problem": "2+2?", "answer": "4", "capability": "text_reasoning"}"#).unwrap();
    let (config, run) = tiny_run_config(dir.path(), &data, ", curriculum: Some((policy: Paper))");
    for name in ["staged_qwen3", "ablations"] {
        let config = config.to_str().unwrap();
        let out = example(name)
            .args(["--backend", "ndarray", "--config", config, "--memory", "1MiB", "--out"])
            .arg(&run)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name} ran");
        assert!(stderr.contains("cannot fit on this device; refusing to start"), "{name}: {stderr}");
        assert!(stderr.contains("| activations | update |"), "{name}: {stderr}");
        assert!(!run.exists(), "{name}, refused, wrote {}", run.display());
    }
}

#[test]
fn a_bad_memory_size_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = paper_config(dir.path());
    let out = seethink(&["plan", "--config", config.to_str().unwrap(), "--memory", "80 parsecs"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`80 parsecs`: unknown unit `parsecs`"), "{stderr}");
}

/// The GiB of `component` in a plan's table.
fn gib(stdout: &str, component: &str) -> f64 {
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {component} |")))
        .unwrap_or_else(|| panic!("{stdout}"));
    row.split('|').nth(3).unwrap().trim().parse().unwrap()
}

/// With data parallelism the plan is one worker's: the rollout for its share of the prompts,
/// the weights and AdamW whole.
#[test]
fn a_data_parallel_plan_is_one_worker_s() {
    let dir = tempfile::tempdir().unwrap();
    let config = paper_config(dir.path());
    let plan = |devices: &str| {
        let out = seethink(&[
            "plan",
            "--config",
            config.to_str().unwrap(),
            "--set",
            &format!("trainer.devices={devices}"),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let (one, eight) = (plan("1"), plan("8"));
    assert!(gib(&eight, "rollout KV cache") < gib(&one, "rollout KV cache"), "{one}\n{eight}");
    for whole in ["weights", "AdamW moments"] {
        assert_eq!(gib(&eight, whole), gib(&one, whole));
    }
    // with AdamW's state sharded each of the 8 holds 1/8 of the moments: 61.78 / 8
    let out = seethink(&[
        "plan",
        "--config",
        config.to_str().unwrap(),
        "--devices",
        "8",
        "--set",
        "trainer.sharding=OptimizerState",
    ]);
    let sharded = text(&out.stdout);
    assert!(
        sharded.contains("one worker of 8 (8 per machine × 1 machine(s)), trainer.sharding OptimizerState")
    );
    assert_eq!(gib(&sharded, "AdamW moments"), 7.72, "{sharded}");
    assert_eq!(gib(&sharded, "weights"), gib(&one, "weights"));
}

/// `configs/paper/qwen3_vl_8b.ron` as shipped but for 20 rows per generation call, on a machine
/// without its checkpoint: planned from the `config.json` seethink ships (8,767,123,696
/// parameters), for one of its 8 GPUs. Full fine-tuning fits 80 GiB with everything sharded
/// (ZeRO-3: the weights and the KL reference between uses, the gradients and AdamW's state),
/// each layer recomputed in backward and every pass in bf16 over f32 master weights (38.58 GiB;
/// 51.80 in f32; with every row holding its prompt, before the shared KV layout, 42.62 and
/// 55.52); the largest part is then the whole policy gathered for the rollout and the old
/// log-probs. In f32: ZeRO-2 (the weights whole on every worker) misses by 0.46 GiB; with the optimizer
/// state alone sharded it does not fit, and the plan names the gradients and offers the
/// shardings that do.
#[test]
fn the_paper_s_qwen3_vl_recipe_fits_8_gpus_of_80_gib_planned_without_its_checkpoint() {
    let plan = |extra: &[&str]| {
        let args =
            ["plan", "--config", "configs/paper/qwen3_vl_8b.ron", "--for", "cuda", "--memory", "80GiB"];
        let args = [&args[..], &["--set", "rollout.batch_size=20"]].concat();
        Command::new(env!("CARGO_BIN_EXE_seethink"))
            .current_dir(root())
            .args(args.iter().chain(extra))
            .output()
            .unwrap()
    };
    let out = plan(&[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success() && stdout.contains("fits in the device's 80.00 GiB"), "{stdout}");
    assert!(stdout.contains("planning from the one seethink ships for Qwen3-VL-8B-Instruct"), "{stdout}");
    assert!(stdout.contains("one worker of 8 (8 per machine × 1 machine(s)), trainer.sharding Weights"));
    assert!(stdout.contains("passes in BF16 (actor.mixed_precision)"), "{stdout}");
    // bf16 mixed precision: every pass on a bf16 copy of the policy, the master share in f32
    assert!(stdout.contains("| **peak** | | **38.58** |"), "{stdout}");
    assert_eq!(gib(&stdout, "weights, own share"), 4.08, "{stdout}");
    // the whole policy in bf16 (the own share cast, the others' gathered)
    assert_eq!(gib(&stdout, "gathered weights"), 16.33, "{stdout}");
    assert_eq!(gib(&stdout, "gathered for the update"), 4.11, "{stdout}");
    assert_eq!(gib(&stdout, "activations"), 5.36, "{stdout}");
    assert_eq!(gib(&stdout, "AdamW moments"), 8.17, "{stdout}");
    assert_eq!(gib(&stdout, "gradients, own share"), 4.08, "{stdout}");
    assert!(stdout.contains("largest component: gathered weights (16.33 GiB"), "{stdout}");

    // computing in f32, as before mixed precision
    let plan = |extra: &[&str]| plan(&[&["--set", "actor.mixed_precision=None"], extra].concat());
    let stdout = text(&plan(&[]).stdout);
    assert!(stdout.contains("passes in f32"), "{stdout}");
    assert!(stdout.contains("| **peak** | | **51.80** |"), "{stdout}");
    assert_eq!(gib(&stdout, "weights, own share"), 4.08, "{stdout}");
    // the other workers' 7/8 of the f32 weights, gathered for the rollout and the old/ref passes
    assert_eq!(gib(&stdout, "gathered weights"), 28.58, "{stdout}");
    // an update gathers all but the decoder layers (1,821,052,144) and two layers (192,946,432
    // each: the one running, the next prefetched)
    assert_eq!(gib(&stdout, "gathered for the update"), 7.19, "{stdout}");
    // the bf16 reference: 1/8 held, the others' 7/8 gathered for the reference passes only
    assert_eq!(gib(&stdout, "KL reference, own share"), 2.04, "{stdout}");
    assert_eq!(gib(&stdout, "gathered reference"), 14.29, "{stdout}");
    assert!(stdout.contains("| gathered reference | ref log-probs |"), "{stdout}");
    assert_eq!(gib(&stdout, "AdamW moments"), 8.17, "{stdout}");
    assert_eq!(gib(&stdout, "gradients, own share"), 4.08, "{stdout}");
    // the largest group: the embeddings and the vision tower (1,198,722,288 parameters)
    assert_eq!(gib(&stdout, "gradients in flight"), 4.47, "{stdout}");
    assert_eq!(gib(&stdout, "activations"), 10.72, "{stdout}");
    assert!(stdout.contains("largest component: gathered weights (28.58 GiB"), "{stdout}");

    // ZeRO-2: the weights whole on every worker; with an image of 2,048 tokens (8,192 patches)
    // in the micro-batch, its recomputed vision blocks' 2.30 GiB take it past 80 GiB
    let zero_2 = text(&plan(&["--set", "trainer.sharding=Gradients"]).stdout);
    assert!(zero_2.contains("| **peak** | | **80.46** |"), "{zero_2}");
    assert_eq!(gib(&zero_2, "vision activations"), 2.30, "{zero_2}");
    assert_eq!(gib(&zero_2, "weights"), 32.66, "{zero_2}");
    assert!(zero_2.contains("largest component: weights (32.66 GiB, always: "), "{zero_2}");
    // without recomputing the layers (and so with the weights whole), the activations are what
    // stands in the way
    let kept = text(
        &plan(&["--set", "trainer.sharding=Gradients", "--set", "actor.activation_checkpointing=false"])
            .stdout,
    );
    assert_eq!(gib(&kept, "activations"), 139.31, "{kept}");
    assert_eq!(gib(&kept, "vision activations"), 28.69, "{kept}");
    assert!(kept.contains("largest component: activations (139.31 GiB, update: "), "{kept}");
    let knob = "actor.activation_checkpointing = true (each decoder layer and vision block recomputed in \
                backward): peak 80.46 GiB, does not fit";
    assert!(kept.contains(knob), "{kept}");
    // sharded weights need the layers recomputed: the config says so
    let refused = plan(&["--set", "actor.activation_checkpointing=false"]);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("actor.activation_checkpointing: true"), "{stderr}");
    // with the optimizer state alone sharded, the whole gradients
    let zero_1 = plan(&["--set", "trainer.sharding=OptimizerState"]);
    let stdout = text(&zero_1.stdout);
    assert!(
        !zero_1.status.success() && stdout.contains("does NOT fit in the device's 80.00 GiB"),
        "{stdout}"
    );
    assert_eq!(gib(&stdout, "gradients"), 32.66, "{stdout}");
    assert!(stdout.contains("largest component: gradients (32.66 GiB"), "{stdout}");
    assert!(stdout.contains("trainer.sharding = Gradients (ZeRO-2: AdamW's moments and the gradients 1/N per worker): peak 80.46 GiB, does not fit"), "{stdout}");
    assert!(stdout.contains("(ZeRO-3: the weights too 1/N per worker between uses, each decoder layer gathered as it runs): peak 51.80 GiB, fits"), "{stdout}");
    // on 2 machines × 8, each of 16 holds 1/16
    let two_nodes = text(&plan(&["--nodes", "2"]).stdout);
    assert!(two_nodes.contains("one worker of 16 (8 per machine × 2 machine(s))"), "{two_nodes}");
    assert_eq!(gib(&two_nodes, "gradients, own share"), 2.04, "{two_nodes}");
    assert_eq!(gib(&two_nodes, "weights, own share"), 2.04, "{two_nodes}");
    assert_eq!(gib(&two_nodes, "AdamW moments"), 4.08, "{two_nodes}");
}

#[test]
fn on_cuda_frozen_weights_count_in_the_checkpoint_s_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let config = paper_config(dir.path());
    let plan = |device: &str, sets: &[&str]| {
        let mut args = vec!["plan", "--config", config.to_str().unwrap(), "--for", device];
        for set in sets {
            args.extend(["--set", set]);
        }
        let out = seethink(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // Qwen2.5-VL-7B's config.json says bfloat16: on CUDA the KL reference takes 2 bytes a
    // parameter, the trained policy 4; ndarray and wgpu count 4
    let cuda = plan("cuda", &[]);
    assert!(cuda.contains("memory plan of one step on cuda"), "{cuda}");
    assert_eq!(gib(&cuda, "KL reference"), 15.45, "{cuda}");
    assert_eq!(gib(&cuda, "weights"), 30.89, "{cuda}");
    assert_eq!(gib(&plan("wgpu", &[]), "KL reference"), 30.89);
    // under LoRA the base is frozen: 2 bytes a parameter, and no reference copy
    let lora = ["actor.lora=Some((rank:16,alpha:32.0))", "rollout.batch_size=5", "actor.micro_batch_size=1"];
    let (cuda, f32) = (plan("cuda", &lora), plan("wgpu", &lora));
    assert!(gib(&cuda, "weights") < 15.7 && gib(&f32, "weights") > 30.89, "{cuda}\n{f32}");
    assert!(!cuda.contains("| KL reference |"), "{cuda}");
    // computing in bf16 (the paper's configs), a product with the bf16 base widens nothing; in
    // f32 the largest frozen matrix is widened for its product
    assert!(!cuda.contains("| widened frozen matrix |"), "{cuda}");
    let f32_compute = plan("cuda", &[&lora[..], &["actor.mixed_precision=None"]].concat());
    assert_eq!(gib(&f32_compute, "widened frozen matrix"), 2.03, "{f32_compute}");
    let err = seethink(&["plan", "--config", config.to_str().unwrap(), "--for", "tpu"]);
    assert!(!err.status.success() && text(&err.stderr).contains("unknown device `tpu`"));
}
