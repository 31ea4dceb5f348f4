//! Hostile inputs through the `seethink` binary, as a user would meet them: every one fails
//! with a message naming the culprit (file, key, tensor, shape or limit), exits with status 1
//! and never panics. The inputs are built at test time from the committed fixtures.
//!
//! Covered elsewhere: a checkpoint that cannot be written (a full disk) in
//! `crates/seethink-rl/tests/run_directory.rs`, Ctrl-C in `tests/cli.rs`, an unwritable eval
//! output directory in `tests/cli.rs`, InternVL's configs in `crates/seethink-models/tests/internvl.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn seethink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seethink")).args(args).output().expect("run seethink")
}

/// Asserts that `run` failed cleanly with every one of `culprits` in its message; returns it.
fn refused(run: &Output, culprits: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "exit status; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    for culprit in culprits {
        assert!(stderr.contains(culprit), "`{culprit}` not named in: {stderr}");
    }
    stderr
}

/// A copy of fixture checkpoint `family` in a temporary directory.
fn checkpoint_copy(family: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join(family).join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    tmp
}

/// `seethink forward` on `model` with a short prompt (and `image`).
fn forward(model: &Path, image: Option<&Path>) -> Output {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("out.safetensors");
    let mut args = vec![
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "Hi",
        "--out",
        file.to_str().unwrap(),
    ];
    if let Some(image) = image {
        args.extend(["--image", image.to_str().unwrap()]);
    }
    seethink(&args)
}

/// `seethink forward` (the logits file's bytes) and greedy `generate --json` (its stdout) on
/// `model` with fixture image `wide.png`.
fn forward_and_generate(model: &Path) -> (Vec<u8>, String) {
    let (model, image) = (model.to_str().unwrap(), fixtures().join("images/wide.png"));
    let image = image.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("out.safetensors");
    let message = ["--model", model, "--prompt", "Describe.", "--image", image];
    let run = seethink(&[&["forward", "--out", file.to_str().unwrap()], &message[..]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let run = seethink(&[&["generate", "--json", "--max-new-tokens", "6"], &message[..]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    (std::fs::read(&file).unwrap(), String::from_utf8(run.stdout).unwrap())
}

#[test]
fn internvl_checkpoints_saved_by_transformers_5_load() {
    for family in ["internvl3", "internvl3_5"] {
        // transformers 5's save_pretrained: one processor_config.json with the image processor
        // nested, no preprocessor_config.json (tests/fixtures/internvl_processor_v5.py)
        let v5 = checkpoint_copy(family);
        std::fs::remove_file(v5.path().join("preprocessor_config.json")).unwrap();
        let saved = fixtures().join(family).join("transformers5/processor_config.json");
        std::fs::copy(saved, v5.path().join("processor_config.json")).unwrap();
        let committed = forward_and_generate(&fixtures().join(family).join("checkpoint"));
        assert!(committed == forward_and_generate(v5.path()), "{family}: the transformers 5 layout differs");

        std::fs::remove_file(v5.path().join("processor_config.json")).unwrap();
        let image = fixtures().join("images/wide.png");
        refused(&forward(v5.path(), Some(&image)), &["preprocessor_config.json", "processor_config.json"]);
    }
}

/// Edits `dir/config.json` with `edit`.
fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn bad_checkpoints_name_the_file_key_or_tensor() {
    let dir = checkpoint_copy("qwen2_5_vl");
    edit_config(dir.path(), |c| c["text_config"]["num_attention_heads"] = 0.into());
    refused(&forward(dir.path(), None), &["config.json", "text_config.num_attention_heads", "at least 1"]);

    let dir = checkpoint_copy("qwen2_5_vl");
    edit_config(dir.path(), |c| c["model_type"] = "llava".into());
    refused(&forward(dir.path(), None), &["config.json", "unknown model_type `llava`"]);

    let dir = checkpoint_copy("qwen2_5_vl");
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": ").unwrap();
    refused(&forward(dir.path(), None), &["malformed JSON", "config.json"]);

    // NaN weights, a missing tensor, a wrong shape, a truncated file
    let weights = |dir: &Path| dir.join("model.safetensors");
    let rewrite = |dir: &Path, edit: &dyn Fn(&str, &mut Vec<usize>, &mut Vec<u8>) -> bool| {
        let bytes = std::fs::read(weights(dir)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, view) in st.tensors() {
            let (mut shape, mut data) = (view.shape().to_vec(), view.data().to_vec());
            if edit(&name, &mut shape, &mut data) {
                tensors.push((name, view.dtype(), shape, data));
            }
        }
        let views: Vec<_> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &weights(dir)).unwrap();
    };
    let target = "model.norm.weight";
    let dir = checkpoint_copy("qwen2_5_vl");
    rewrite(dir.path(), &|name, _, data| {
        if name == target {
            data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        }
        true
    });
    refused(&forward(dir.path(), None), &[target, "NaN"]);
    let dir = checkpoint_copy("qwen2_5_vl");
    rewrite(dir.path(), &|name, _, _| name != target);
    refused(&forward(dir.path(), None), &["missing tensor", "model.language_model.norm.weight"]);
    let dir = checkpoint_copy("qwen2_5_vl");
    rewrite(dir.path(), &|name, shape, data| {
        if name == target {
            shape[0] -= 1;
            data.truncate(data.len() - 4);
        }
        true
    });
    refused(&forward(dir.path(), None), &[target, "[64]", "[63]"]);
    let dir = checkpoint_copy("qwen2_5_vl");
    let bytes = std::fs::read(weights(dir.path())).unwrap();
    std::fs::write(weights(dir.path()), &bytes[..bytes.len() / 2]).unwrap();
    refused(&forward(dir.path(), None), &["model.safetensors"]);

    refused(&forward(Path::new("/no/such/checkpoint"), None), &["/no/such/checkpoint"]);

    // a config with fewer layers than the weights: transformers only warns
    let dir = checkpoint_copy("qwen2_5_vl");
    edit_config(dir.path(), |c| {
        let layers = c["text_config"]["num_hidden_layers"].as_u64().unwrap();
        c["text_config"]["num_hidden_layers"] = (layers - 1).into();
        if let Some(types) = c["text_config"]["layer_types"].as_array_mut() {
            types.pop();
        }
    });
    refused(&forward(dir.path(), None), &["not used", "layers.1.", "SEETHINK_ALLOW_UNUSED_TENSORS"]);

    let dir = checkpoint_copy("qwen2_5_vl");
    let preprocessor = dir.path().join("preprocessor_config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&preprocessor).unwrap()).unwrap();
    json["min_pixels"] = 1_000_000.into();
    json["max_pixels"] = 10_000.into();
    std::fs::write(&preprocessor, json.to_string()).unwrap();
    refused(&forward(dir.path(), None), &["preprocessor_config.json", "min_pixels", "max_pixels"]);
}

/// `chunk` with its length and CRC, as PNG stores it.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let crc = kind.iter().chain(data).fold(!0u32, |mut crc, &byte| {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
        crc
    });
    [&(data.len() as u32).to_be_bytes()[..], kind, data, &(!crc).to_be_bytes()].concat()
}

#[test]
fn bad_images_name_the_file_and_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixtures().join("qwen3_vl/checkpoint");
    // a few bytes that declare 30000 x 30000 RGB pixels (2.7 GB decoded)
    let mut header = 30_000u32.to_be_bytes().to_vec();
    header.extend(30_000u32.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    let empty_zlib = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];
    let png = [
        &b"\x89PNG\r\n\x1a\n"[..],
        &png_chunk(b"IHDR", &header),
        &png_chunk(b"IDAT", &empty_zlib),
        &png_chunk(b"IEND", &[]),
    ]
    .concat();
    let huge = tmp.path().join("huge.png");
    std::fs::write(&huge, png).unwrap();
    refused(&forward(&model, Some(&huge)), &["huge.png", "30000"]);

    let corrupt = tmp.path().join("corrupt.png");
    let mut bytes = std::fs::read(fixtures().join("images/square.png")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, bytes).unwrap();
    refused(&forward(&model, Some(&corrupt)), &["corrupt.png"]);

    let not_an_image = tmp.path().join("notes.png");
    std::fs::write(&not_an_image, "just text").unwrap();
    refused(&forward(&model, Some(&not_an_image)), &["notes.png"]);
}

#[test]
fn a_prompt_longer_than_the_model_is_refused_before_any_work() {
    // the tiny Qwen3-VL has 1,024 positions
    let prompt = "many words ".repeat(600);
    let model = fixtures().join("qwen3_vl/checkpoint");
    let run = seethink(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        &prompt,
        "--max-new-tokens",
        "8",
    ]);
    refused(&run, &["max_position_embeddings", "1024"]);
}

/// `seethink train` of `configs/tiny-grpo.ron` into `out` with `sets` (and data that exists).
fn train(out: &Path, sets: &[&str]) -> Output {
    let data = out.join("data");
    if !data.exists() {
        let run = seethink(&["data", "synth", "--out", data.to_str().unwrap(), "--n", "1", "--seed", "1"]);
        assert!(run.status.success());
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny-grpo.ron");
    let run_dir = out.join("run");
    let data_set = format!("data.train=\"{}\"", data.display());
    let mut args = vec!["train", "--config", config.to_str().unwrap(), "--out", run_dir.to_str().unwrap()];
    for set in [data_set.as_str()].iter().chain(sets) {
        args.extend(["--set", set]);
    }
    seethink(&args)
}

#[test]
fn bad_training_configs_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 14] = [
        ("rollout.n=0", &["rollout.n", "at least 1"]),
        ("actor.lr=-1", &["actor.lr", "positive"]),
        ("rollout.temperature=0", &["rollout.temperature", "positive temperature"]),
        ("actor.mini_batches=0", &["actor.mini_batches"]),
        ("actor.micro_batch_size=0", &["actor.micro_batch_size"]),
        ("trainer.prompts_per_step=0", &["trainer.prompts_per_step"]),
        ("trainer.save_every=0", &["trainer.save_every"]),
        ("trainer.keep_last=0", &["trainer.keep_last"]),
        ("rollout.samples=3", &["unknown key `samples`"]),
        ("actor.lr=fast", &["actor.lr"]),
        ("model=\"no/such/model\"", &["no/such/model", "current directory", "config's directory"]),
        (
            "model=\"Qwen/Qwen3-VL-8B-Instruct\"",
            &[
                "hub id",
                "huggingface-cli download Qwen/Qwen3-VL-8B-Instruct",
                "checkpoints/Qwen3-VL-8B-Instruct",
            ],
        ),
        ("data.min_pixels=Some(5000000)", &["data.min_pixels", "data.max_pixels"]),
        ("data.format_prompt=Plane", &["data.format_prompt", "Plane", "Plain"]),
    ];
    for (set, culprits) in cases {
        refused(&train(tmp.path(), &[set]), culprits);
    }
    assert!(!tmp.path().join("run/metrics.jsonl").exists(), "nothing trained");
    let bad_ron = tmp.path().join("bad.ron");
    std::fs::write(&bad_ron, "(model: \"x\", data: (train: ").unwrap();
    refused(&seethink(&["train", "--config", bad_ron.to_str().unwrap()]), &["bad.ron"]);
    let empty = tmp.path().join("empty");
    refused(
        &seethink(&["data", "synth", "--out", empty.to_str().unwrap(), "--n", "0"]),
        &["--n", "at least 1"],
    );
    assert!(!empty.exists(), "nothing written");
}

#[test]
fn a_second_run_into_the_same_directory_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    // this test process stands for a run that holds the directory
    std::fs::write(run_dir.join(".seethink.lock"), std::process::id().to_string()).unwrap();
    refused(
        &train(tmp.path(), &["trainer.steps=1"]),
        &["in use by process", &std::process::id().to_string()],
    );
}

#[test]
fn an_io_error_names_its_cause_once() {
    let stderr = refused(&forward(Path::new("/no/such/checkpoint"), None), &["/no/such/checkpoint"]);
    let cause = "No such file or directory";
    assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
}
