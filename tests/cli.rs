//! The `seethink` binary's contract: `forward`, `generate --json`, `data synth`, and errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn seethink(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seethink")).args(args).output().expect("run seethink")
}

fn reference_i64(family: &str, name: &str) -> Vec<i64> {
    let bytes = std::fs::read(fixtures().join(family).join("pipeline_reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn reference_f32(family: &str, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join(family).join("pipeline_reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn forward_writes_input_ids_and_logits() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("out.safetensors");
    let model = fixtures().join("qwen2_5_vl/checkpoint");
    let image = fixtures().join("images/square.png");
    let run = seethink(&[
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "How many red circles are there?",
        "--image",
        image.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids = st.tensor("input_ids").unwrap();
    assert_eq!(ids.dtype(), safetensors::Dtype::I64);
    let ids: Vec<i64> =
        ids.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(ids, reference_i64("qwen2_5_vl", "square.input_ids"));
    let logits = st.tensor("logits").unwrap();
    assert_eq!(logits.shape(), &[ids.len(), 320]);
    let logits: Vec<f32> =
        logits.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let expected = reference_f32("qwen2_5_vl", "square.logits");
    let max = logits.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
    assert!(max < 1e-4, "max|Δ| {max}");
}

/// `seethink generate --temperature 0 --json` of `prompt` (and `image`) with 12 new tokens:
/// the printed JSON, and its `input_ids` and `output_ids`.
fn greedy_json(model: &Path, prompt: &str, image: Option<&Path>) -> (serde_json::Value, Vec<i64>, Vec<i64>) {
    let mut args = vec!["generate", "--model", model.to_str().unwrap(), "--prompt", prompt];
    if let Some(image) = image {
        args.extend(["--image", image.to_str().unwrap()]);
    }
    args.extend(["--max-new-tokens", "12", "--temperature", "0", "--json"]);
    let run = seethink(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let ids = |key: &str| -> Vec<i64> {
        json[key].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect()
    };
    let (input, output) = (ids("input_ids"), ids("output_ids"));
    (json, input, output)
}

#[test]
fn generate_json_prints_ids_and_text() {
    let model = fixtures().join("qwen3_vl/checkpoint");
    let image = fixtures().join("images/wide.png");
    let (json, input, output) = greedy_json(&model, "Describe the picture in detail.", Some(&image));
    assert_eq!(input, reference_i64("qwen3_vl", "wide.input_ids"));
    assert_eq!(output, reference_i64("qwen3_vl", "wide.generated"));
    assert!(json["text"].is_string());
}

/// Issue 49: on this text-only prompt transformers' plain greedy takes `<IMG_CONTEXT>` at the
/// 4th new token; `generate --temperature 0` never takes a placeholder and prints transformers'
/// greedy tokens with it suppressed.
#[test]
fn greedy_generate_never_takes_a_placeholder() {
    let model = fixtures().join("internvl3_5/checkpoint");
    let (_, input, output) = greedy_json(&model, "Show the dots.", None);
    assert_eq!(input, reference_i64("internvl3_5", "placeholder.input_ids"));
    assert_eq!(output, reference_i64("internvl3_5", "placeholder.generated"));
    let plain = reference_i64("internvl3_5", "placeholder.generated_unsuppressed");
    assert_eq!((plain[..3].to_vec(), plain[3]), (output[..3].to_vec(), 309));
}

#[test]
fn bad_inputs_fail_with_a_message_naming_them() {
    let model = fixtures().join("qwen3_vl/checkpoint");
    let run = seethink(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "hi",
        "--image",
        "/no/such.png",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("/no/such.png"));
    let run = seethink(&["inspect", "--model", "/no/such/dir"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("/no/such/dir/config.json"));
    let run = seethink(&["inspect", "--model", model.to_str().unwrap(), "--backend", "tpu"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("backend `tpu` is not compiled in"));
}

#[test]
fn data_synth_writes_jsonl_and_images() {
    let out = tempfile::tempdir().unwrap();
    let run = seethink(&["data", "synth", "--out", out.path().to_str().unwrap(), "--n", "3", "--seed", "5"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let tasks = seethink::data::load_jsonl(&out.path().join("tasks.jsonl"), &Default::default()).unwrap();
    assert_eq!(tasks.len(), 9);
    assert!(String::from_utf8_lossy(&run.stdout).contains("| visual_reasoning | 3 | 1 |"));
}

#[test]
fn eval_writes_reports_with_attribution() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = seethink(&["data", "synth", "--out", data.path().to_str().unwrap(), "--n", "2", "--seed", "3"]);
    assert!(run.status.success());
    let model = fixtures().join("qwen3_vl/checkpoint");
    let eval = |out: &Path, options: &[&str]| {
        let paths = ["--model", model.to_str().unwrap(), "--data", data.path().to_str().unwrap()];
        seethink(&[&["eval"], &paths[..], options, &["--out", out.to_str().unwrap()]].concat())
    };
    let run = eval(out.path(), &["--max-new-tokens", "4", "--k", "2", "--temperature", "1"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // not a terminal: plain progress lines, the last at the end
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("answering task 6/6 |"), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("| visual_reasoning |") && stdout.contains("Perception-error attribution"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["tasks"].as_array().unwrap().len(), 6);
    assert!(std::fs::metadata(out.path().join("accuracy.svg")).unwrap().len() > 0);
    assert!(!out.path().join(".seethink-write-test").exists());

    // an output directory that cannot be made fails before any evaluation, naming it
    let blocker = out.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let bad_out = blocker.join("eval");
    let run = eval(&bad_out, &[]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("output directory") && stderr.contains(bad_out.to_str().unwrap()), "{stderr}");
    assert!(!String::from_utf8_lossy(&run.stdout).contains("graded with"), "no evaluation started");
}

#[test]
fn train_runs_resumes_and_exports() {
    let data = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    assert!(seethink(&["data", "synth", "--out", data.path().to_str().unwrap(), "--n", "2", "--seed", "1"])
        .status
        .success());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny-grpo.ron");
    let train = |steps: &str| {
        seethink(&[
            "train",
            "--set",
            "trainer.tensorboard=true",
            "--config",
            config.to_str().unwrap(),
            "--out",
            run_dir.path().to_str().unwrap(),
            "--set",
            &format!("data.train=\"{}\"", data.path().display()),
            "--set",
            &format!("trainer.steps={steps}"),
            "--set",
            "trainer.prompts_per_step=2",
            "--set",
            "trainer.save_every=1",
            "--set",
            "rollout.max_new_tokens=4",
            "--set",
            "rollout.n=2",
            "--set",
            "algorithm.reward=Direct",
        ])
    };
    let first = train("2");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = train("3");
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let metrics = std::fs::read_to_string(run_dir.path().join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2, 3], "the second run resumed after step 2");
    assert!(String::from_utf8_lossy(&second.stderr).contains("step 3/3 |"));
    // TensorBoard: one event file per start, every step's metrics
    let events = seethink::rl::tensorboard::read_scalars(&run_dir.path().join("tensorboard")).unwrap();
    let reward_steps: Vec<i64> =
        events.iter().filter(|(tag, _, _)| tag == "train/reward").map(|e| e.1).collect();
    assert_eq!(reward_steps, [1, 2, 3]);
    let final_model = run_dir.path().join("final");
    let run = seethink(&["inspect", "--model", final_model.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // evaluation grades with the reward the run was trained with
    let eval_out = run_dir.path().join("eval");
    let (model, out) = (final_model.to_str().unwrap(), eval_out.to_str().unwrap());
    let tasks = data.path().to_str().unwrap();
    let eval = seethink(&[
        "eval",
        "--model",
        model,
        "--data",
        tasks,
        "--max-new-tokens",
        "2",
        "--limit",
        "2",
        "--out",
        out,
    ]);
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    assert!(String::from_utf8_lossy(&eval.stdout).contains("graded with the Direct reward"));
    let bad = seethink(&["train", "--config", config.to_str().unwrap(), "--set", "rollout.samples=3"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key `samples`"));
}

/// A 32×24 PNG, base64-encoded.
fn png_base64() -> String {
    use base64::Engine;
    let mut png = Vec::new();
    let image = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 90]));
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// An EasyR1-style record: `problem`, `answer`, one embedded `{bytes, path}` image, no
/// `capability` (as in EasyR1's public data sets).
fn easyr1_record(id: &str, problem: &str, answer: &str) -> String {
    serde_json::json!({
        "id": id, "problem": format!("<image>{problem}"), "answer": answer,
        "images": [{ "bytes": png_base64(), "path": format!("{id}.png") }],
    })
    .to_string()
}

#[test]
fn train_and_eval_easyr1_records_without_capability() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("easyr1.jsonl");
    let records = [easyr1_record("a", "How many shapes?", "2"), easyr1_record("b", "Which colour?", "red")];
    std::fs::write(&jsonl, records.join("\n") + "\n").unwrap();
    let parquet = fixtures().join("data/no_capability.parquet");
    let config = dir.path().join("run.ron");
    std::fs::write(
        &config,
        format!(
            r#"(
    model: {model:?},
    data: (train: {jsonl:?}, capability: Some(perception),
           sources: [(path: {parquet:?}, capability: Some(visual_reasoning))], shuffle: false,
           format_prompt: Plain),
    algorithm: (trainer: Grpo, reward: Direct),
    actor: (micro_batch_size: 4, mini_batches: 1),
    rollout: (n: 2, max_new_tokens: 2, batch_size: 8),
    trainer: (steps: 2, prompts_per_step: 2, save_every: 2, keep_last: 1, out: {out:?}),
)"#,
            model = fixtures().join("qwen3_vl/checkpoint").display().to_string(),
            jsonl = jsonl.display().to_string(),
            parquet = parquet.display().to_string(),
            out = dir.path().join("run").display().to_string(),
        ),
    )
    .unwrap();
    let train = seethink(&["train", "--config", config.to_str().unwrap()]);
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let final_model = dir.path().join("run/final");
    let eval = |data: &Path, extra: &[&str]| {
        let out = dir.path().join("eval");
        let mut args =
            vec!["eval", "--model", final_model.to_str().unwrap(), "--data", data.to_str().unwrap()];
        args.extend_from_slice(&["--max-new-tokens", "2", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        seethink(&args)
    };
    let ok = eval(&jsonl, &["--capability", "perception"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("| perception |"));
    let ok = eval(&parquet, &["--capability", "visual_reasoning"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("| visual_reasoning |"));
    // without --capability they are one group, `unlabelled`, reported like the capabilities
    let run = eval(&jsonl, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("| unlabelled | 2 |") && stdout.contains("| unlabelled | none | 2 |"),
        "{stdout}"
    );
    let report = read_json(&dir.path().join("eval/report.json"));
    assert_eq!(report["by_capability"].as_array().unwrap().len(), 1);
    let group = &report["by_capability"][0];
    assert_eq!(
        (group["capability"].as_str(), group["stats"]["tasks"].as_u64()),
        (Some("unlabelled"), Some(2))
    );
    assert!(group["stats"]["accuracy"].is_number());
    assert_eq!(report["tasks"][0]["capability"], "unlabelled");
    // a file of both: the labelled records keep their capability, the others come last
    let mixed = dir.path().join("mixed.jsonl");
    let mut labelled: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    labelled["capability"] = "text_reasoning".into();
    std::fs::write(&mixed, format!("{labelled}\n{}\n", records[1])).unwrap();
    let run = eval(&mixed, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let (text, unlabelled) = (stdout.find("| text_reasoning | 1 |"), stdout.find("| unlabelled | 1 |"));
    assert!(text.is_some() && unlabelled.is_some() && text < unlabelled, "{stdout}");
    // training still needs every record's capability: the file's, or the data section's
    let unlabelled_config =
        std::fs::read_to_string(&config).unwrap().replace("capability: Some(perception),", "");
    std::fs::write(&config, unlabelled_config).unwrap();
    let train = seethink(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        dir.path().join("run2").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&train.stderr);
    assert!(
        !train.status.success() && stderr.contains("easyr1.jsonl") && stderr.contains("capability"),
        "{stderr}"
    );
}

#[test]
fn passrate_writes_pass_rates_and_resumes_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rated = dir.path().join("rated");
    assert!(seethink(&["data", "synth", "--out", data.to_str().unwrap(), "--n", "2"]).status.success());
    let model = fixtures().join("qwen3_vl/checkpoint");
    let passrate = |k: &str| {
        seethink(&[
            "passrate",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--k",
            k,
            "--temperature",
            "1",
            "--max-new-tokens",
            "2",
            "--reward",
            "direct",
            "--format-prompt",
            "none",
            "--no-image-bounds",
            "--batch-size",
            "4",
            "--out",
            rated.to_str().unwrap(),
        ])
    };
    let first = passrate("3");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("| 0/3 |"));
    let tasks = seethink::data::load_tasks(&rated, None).unwrap();
    assert_eq!(tasks.len(), 6);
    assert!(tasks.iter().all(|t| t.pass_rate.is_some_and(|p| [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0].contains(&p))));
    let written = std::fs::read_to_string(rated.join("tasks.jsonl")).unwrap();

    // killed after two tasks: the rerun answers only the other four, with the same result
    let cache = rated.join("passrate-cache.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&cache).unwrap().lines().map(String::from).collect();
    assert_eq!(lines.len(), 1 + 6, "a settings line and one line per task");
    std::fs::write(&cache, format!("{}\n{}\n{}\n{{\"id\":", lines[0], lines[1], lines[2])).unwrap();
    let resumed = passrate("3");
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr.contains("6 tasks, 2 cached") && stderr.contains("passrate task 6/6 | mean pass rate"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(rated.join("tasks.jsonl")).unwrap(), written);

    let other = passrate("2");
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("was written with other settings"));
}

#[test]
fn ctrl_c_stops_after_the_step_checkpoints_it_and_the_run_resumes() {
    use std::io::{BufRead, BufReader};
    let run_dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny-sft.ron");
    let train = |steps: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_seethink"));
        command.args([
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            run_dir.path().to_str().unwrap(),
            "--set",
            &format!("trainer.steps={steps}"),
            "--set",
            "trainer.save_every=1000",
            // a line per step, so the test sees step 2 end
            "--verbose",
        ]);
        command
    };
    let mut child = train("500").stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let second_step = line.contains(" step 2/");
        seen.push(line);
        if second_step {
            let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
            assert!(kill.success());
            break;
        }
    }
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    let stderr = seen.join("\n");
    assert!(!status.success(), "{stderr}");
    let stopped_after: usize = stderr
        .split("stopped after step ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no interruption message: {stderr}"));
    assert!(stderr.contains("run the same command again to resume"), "{stderr}");
    assert!((2..500).contains(&stopped_after), "{stderr}");
    let state = run_dir.path().join(format!("checkpoint/state-{stopped_after}.json"));
    assert!(state.exists(), "the step it stopped after is checkpointed (save_every is 1000)");
    assert!(!run_dir.path().join("final").exists(), "an interrupted run exports nothing");
    assert!(!run_dir.path().join(".seethink.lock").exists(), "the lock is released");

    let resumed = train(&(stopped_after + 1).to_string()).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let metrics = std::fs::read_to_string(run_dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), stopped_after + 1, "each step logged once");
    assert!(run_dir.path().join("final/config.json").exists());
}

#[test]
fn internvl_checkpoints_work_with_every_command() {
    let image = |name: &str| fixtures().join("images").join(name).display().to_string();
    // forward on transformers' layout: the processor's ids and the model's logits
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("out.safetensors");
    let hf = fixtures().join("internvl3/checkpoint");
    let run = seethink(&[
        "forward",
        "--model",
        hf.to_str().unwrap(),
        "--prompt",
        "How many red circles are there?",
        "--image",
        &image("square.png"),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids: Vec<i64> = st
        .tensor("input_ids")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let pipeline = |name: &str| {
        let bytes = std::fs::read(fixtures().join("internvl3/pipeline_reference.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect::<Vec<i64>>()
    };
    assert_eq!(ids, pipeline("square.input_ids"));
    // generate on the original release's layout: transformers' greedy tokens
    let original = fixtures().join("internvl3/original");
    let run = seethink(&[
        "generate",
        "--model",
        original.to_str().unwrap(),
        "--prompt",
        "Describe the picture in detail.",
        "--image",
        &image("wide.png"),
        "--max-new-tokens",
        "12",
        "--temperature",
        "0",
        "--json",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let output: Vec<i64> =
        json["output_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(output, pipeline("wide.generated"));
    // train, export, inspect and evaluate InternVL3.5 in the original layout
    let data = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    assert!(seethink(&["data", "synth", "--out", data.path().to_str().unwrap(), "--n", "1", "--seed", "1"])
        .status
        .success());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny-grpo.ron");
    let model = fixtures().join("internvl3_5/original");
    let sets = [
        format!("model=\"{}\"", model.display()),
        format!("data.train=\"{}\"", data.path().display()),
        "trainer.steps=1".into(),
        "trainer.prompts_per_step=2".into(),
        "rollout.max_new_tokens=3".into(),
        "rollout.n=2".into(),
        "algorithm.reward=Direct".into(),
    ];
    let mut args =
        vec!["train", "--config", config.to_str().unwrap(), "--out", run_dir.path().to_str().unwrap()];
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    let run = seethink(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let final_model = run_dir.path().join("final");
    assert!(final_model.join("model.safetensors").exists());
    let written = std::fs::read(final_model.join("model.safetensors")).unwrap();
    let names =
        SafeTensors::deserialize(&written).unwrap().names().into_iter().map(String::from).collect::<Vec<_>>();
    assert!(
        names.iter().any(|n| n.starts_with("vision_model.")) && names.iter().any(|n| n.starts_with("mlp1."))
    );
    let run = seethink(&["inspect", "--model", final_model.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("InternVL"));
    let eval_out = run_dir.path().join("eval");
    let run = seethink(&[
        "eval",
        "--model",
        final_model.to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
        "--max-new-tokens",
        "2",
        "--limit",
        "2",
        "--out",
        eval_out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// A POPE benchmark of three rows in VLMEvalKit's layout (a tiny image shared by reference).
fn pope_tsv(dir: &Path) -> PathBuf {
    let text = format!(
        "index\timage\tquestion\tanswer\tcategory\n\
         1\t{}\tIs there a dog in the image?\tYes\tadversarial\n\
         2\t1\tIs there a cat in the image?\tNo\tadversarial\n\
         3\t1\tIs there a car in the image?\tYes\tpopular\n",
        png_base64()
    );
    let path = dir.join("POPE.tsv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn score_and_eval_a_vlmevalkit_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let data = pope_tsv(dir.path());
    let predictions = dir.path().join("pred.jsonl");
    let lines = [
        r#"{"index": 1, "prediction": "Yes."}"#,
        r#"{"index": "2", "prediction": "yes"}"#,
        r#"{"index": 3, "prediction": "No"}"#,
    ];
    std::fs::write(&predictions, lines.join("\n")).unwrap();
    let out = dir.path().join("score");
    let score = |benchmark: &str, predictions: &Path| {
        seethink(&[
            "score",
            "--benchmark",
            benchmark,
            "--data",
            data.to_str().unwrap(),
            "--predictions",
            predictions.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let run = score("pope", &predictions);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // TP 1 (row 1), FP 1 (row 2), FN 1 (row 3): P = R = F1 = 1/2
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("### POPE (perception)") && stdout.contains("F1: **50.00**"), "{stdout}");
    assert!(stdout.contains("| **perception average** |"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["benchmarks"][0]["score"], 50.0);
    assert!(out.join("report.md").exists());
    // the opt-in MATH grader changes MathVista's and MathVision's free-form rows only
    let run = seethink(&[
        "score",
        "--math-grader",
        "--benchmark",
        "pope",
        "--data",
        data.to_str().unwrap(),
        "--predictions",
        predictions.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("F1: **50.00**"));

    let run = score("mmbench", &predictions);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown benchmark `mmbench`"));
    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, lines[0]).unwrap();
    let run = score("POPE", &short);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && stderr.contains("2 of the 3 rows") && stderr.contains("`2`, `3`"),
        "{stderr}"
    );
    let run = seethink(&[
        "score",
        "--benchmark",
        "pope",
        "--benchmark",
        "mmstar",
        "--data",
        "x",
        "--predictions",
        "y",
    ]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("one --data and one --predictions per --benchmark"));

    let model = fixtures().join("qwen3_vl/checkpoint");
    let eval_out = dir.path().join("eval");
    let run = seethink(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--benchmark",
        "pope",
        "--max-new-tokens",
        "3",
        "--out",
        eval_out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let predictions = std::fs::read_to_string(eval_out.join("predictions.jsonl")).unwrap();
    assert_eq!(predictions.lines().count(), 3);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval_out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["benchmarks"][0]["items"].as_array().unwrap().len(), 3);
    // the written predictions score to the same report offline
    let rescored = dir.path().join("rescored");
    let run = seethink(&[
        "score",
        "--benchmark",
        "pope",
        "--data",
        data.to_str().unwrap(),
        "--predictions",
        eval_out.join("predictions.jsonl").to_str().unwrap(),
        "--out",
        rescored.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rescored.join("report.json")).unwrap()).unwrap();
    assert_eq!(again["benchmarks"][0]["items"], report["benchmarks"][0]["items"]);
}

/// A MathVista benchmark of two rows in VLMEvalKit's layout: one free-form, one multiple choice.
fn mathvista_tsv(dir: &Path) -> PathBuf {
    let text = format!(
        "index\timage\tquestion\tanswer\tquestion_type\tanswer_type\tchoices\tanswer_option\ttask\tskills\n\
         1\t{}\tHow many shapes are there?\t2\tfree_form\tinteger\tnan\tnan\tfigure QA\t['counting']\n\
         2\t1\tWhich colour is the shape?\tred\tmulti_choice\ttext\t['red', 'blue']\tA\tfigure QA\t['color']\n",
        png_base64()
    );
    let path = dir.join("MathVista_MINI.tsv");
    std::fs::write(&path, text).unwrap();
    path
}

/// A run config on the procedural data in `data` with the tiny checkpoint, out to `out`, an
/// eval section on `data` with `benchmarks` (RON list), and `curriculum` (RON) if any.
fn benchmark_run_config(dir: &Path, data: &Path, benchmarks: &str, curriculum: &str) -> PathBuf {
    let config = dir.join("run.ron");
    std::fs::write(
        &config,
        format!(
            r#"(
    model: {model:?},
    data: (train: {data:?}, format_prompt: Plain, shuffle: false),
    algorithm: (trainer: Grpo, reward: Direct),
    actor: (micro_batch_size: 4, mini_batches: 1),
    rollout: (n: 2, max_new_tokens: 2, batch_size: 8),
    trainer: (steps: 1, prompts_per_step: 2, save_every: 1, keep_last: 1, out: {out:?}),
    eval: Some((data: {data:?}, max_new_tokens: Some(3), temperature: 0.6, top_p: Some(0.95),
                batch_size: 8, attribute_errors: false, benchmarks: {benchmarks})),
    {curriculum}
)"#,
            model = fixtures().join("qwen3_vl/checkpoint").display().to_string(),
            data = data.display().to_string(),
            out = dir.join("run").display().to_string(),
        ),
    )
    .unwrap();
    config
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn train_evaluates_the_configs_benchmarks_at_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(seethink(&["data", "synth", "--out", data.to_str().unwrap(), "--n", "2"]).status.success());
    let (pope, mathvista) = (pope_tsv(dir.path()), mathvista_tsv(dir.path()));
    let benchmarks =
        format!(r#"[(name: "POPE", file: {pope:?}), (name: "MathVista_MINI", file: {mathvista:?})]"#);
    let curriculum = r#"curriculum: Some((policy: Staged([perception, visual_reasoning]),
        phases: {"perception": (steps: Some(1)), "visual_reasoning": (steps: Some(1))})),"#;
    let config = benchmark_run_config(dir.path(), &data, &benchmarks, curriculum);
    let train =
        || seethink(&["train", "--config", config.to_str().unwrap(), "--set", "trainer.tensorboard=true"]);
    let run = train();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = dir.path().join("run");
    let points = [
        ("start", "eval-start"),
        ("perception", "01-perception/eval"),
        ("visual_reasoning", "02-visual_reasoning/eval"),
    ];
    for (_, point) in points {
        let benchmarks = out.join(point).join("benchmarks");
        assert!(out.join(point).join("report.json").exists(), "the held-out report of {point}");
        let report = read_json(&benchmarks.join("report.json"));
        let names: Vec<&str> = report["benchmarks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["benchmark"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Pope", "MathVista"], "{point}");
        let items: Vec<usize> = report["benchmarks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["items"].as_array().unwrap().len())
            .collect();
        assert_eq!(items, [3, 2], "{point}");
        // POPE alone is the perception average, MathVista the visual-math one, overall their mean
        let (pope_score, mathvista_score) = (
            report["benchmarks"][0]["score"].as_f64().unwrap(),
            report["benchmarks"][1]["score"].as_f64().unwrap(),
        );
        assert_eq!(report["averages"]["perception"]["mean"].as_f64(), Some(pope_score));
        assert_eq!(report["averages"]["overall"].as_f64(), Some((pope_score + mathvista_score) / 2.0));
        let markdown = std::fs::read_to_string(benchmarks.join("report.md")).unwrap();
        assert!(
            markdown.contains("### POPE (perception)") && markdown.contains("| **overall** |"),
            "{markdown}"
        );
        for (file, rows) in [("POPE.predictions.jsonl", 3), ("MathVista.predictions.jsonl", 2)] {
            let predictions = std::fs::read_to_string(benchmarks.join(file)).unwrap();
            assert_eq!(predictions.lines().count(), rows, "{point}/{file}");
        }
    }
    let summary = std::fs::read_to_string(out.join("benchmarks.md")).unwrap();
    assert!(
        summary.starts_with("| after | POPE | MathVista | visual math | perception | overall |"),
        "{summary}"
    );
    for (name, _) in points {
        assert!(summary.contains(&format!("\n| {name} |")), "{summary}");
    }
    // TensorBoard: each benchmark and the averages at the start and each phase's end
    let events = seethink::rl::tensorboard::read_scalars(&out.join("tensorboard")).unwrap();
    for tag in ["benchmarks/POPE", "benchmarks/MathVista", "benchmarks/overall"] {
        let steps: Vec<i64> = events.iter().filter(|(t, _, _)| t == tag).map(|e| e.1).collect();
        assert_eq!(steps, [0, 1, 2], "{tag}");
    }

    // a re-run keeps every finished phase and scores the kept predictions again: answers written
    // into the start's POPE predictions (every one right) are what its report scores
    let start = out.join("eval-start/benchmarks");
    let right = ["Yes", "No", "Yes"]
        .iter()
        .enumerate()
        .map(|(i, answer)| {
            serde_json::json!({ "index": (i + 1).to_string(), "prediction": answer }).to_string() + "\n"
        })
        .collect::<String>();
    std::fs::write(start.join("POPE.predictions.jsonl"), right).unwrap();
    let run = train();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(read_json(&start.join("report.json"))["benchmarks"][0]["score"].as_f64(), Some(100.0));
    let summary = std::fs::read_to_string(out.join("benchmarks.md")).unwrap();
    assert!(summary.contains("\n| start | 100.00 |"), "{summary}");
}

#[test]
fn bad_benchmarks_in_a_config_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(seethink(&["data", "synth", "--out", data.to_str().unwrap(), "--n", "2"]).status.success());
    let pope = pope_tsv(dir.path());
    let config = benchmark_run_config(dir.path(), &data, "[]", "");
    let train = |benchmarks: String| {
        let set = format!("eval.benchmarks={benchmarks}");
        seethink(&["train", "--config", config.to_str().unwrap(), "--set", &set])
    };
    let refused = |benchmarks: String, expected: &[&str]| {
        let run = train(benchmarks);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && expected.iter().all(|e| stderr.contains(e)), "{stderr}");
        assert!(!dir.path().join("run/final").exists(), "refused before training");
    };
    refused(
        format!(r#"[(name: "MathVistaa", file: {pope:?})]"#),
        &["eval.benchmarks: unknown benchmark `MathVistaa`", "MMStar"],
    );
    refused(
        format!(r#"[(name: "pope", file: {pope:?}), (name: "POPE", file: {pope:?})]"#),
        &["eval.benchmarks: POPE is listed twice"],
    );
    let missing = dir.path().join("bench/MMStar.tsv");
    refused(
        format!(r#"[(name: "MMStar", file: {missing:?})]"#),
        &["eval.benchmarks (MMStar)", missing.to_str().unwrap(), "no such file"],
    );
    // a file that is not the benchmark it is named as (POPE's rows have no options) fails
    // before a single run trains, naming the file and the row
    let pope_line_2 = format!("{}:2: no options", pope.display());
    refused(format!(r#"[(name: "MMStar", file: {pope:?})]"#), &[&pope_line_2]);
}
