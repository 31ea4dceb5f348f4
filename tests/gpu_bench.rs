//! `benches/gpu.sh`, the one command for a lent GPU, at the tiny Qwen2.5-VL's shape on ndarray,
//! so that it cannot rot between the sessions that have a GPU: every `backend_check` passes and
//! every `gpu_bench` measurement gives a row with its time, tokens/s, peak and the plan's peak,
//! a GRPO row its phases too (and with `--release-memory` as well).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_gpu_script_runs_every_measurement_at_the_tiny_shape() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // `cargo test` builds the examples beside the test binaries' `deps/`
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples");
    assert!(
        examples.join("gpu_bench").exists() && examples.join("backend_check").exists(),
        "{}: build the examples first (`cargo test` does)",
        examples.display()
    );
    let out = tempfile::tempdir().unwrap();
    let table = out.path().join("gpu.md");
    let run = Command::new(root.join("benches/gpu.sh"))
        .current_dir(&root)
        .env("BIN", &examples)
        .env("BACKEND", "ndarray")
        .env("TINY", "1")
        .env("OUT", &table)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&table).unwrap_or_default();
    assert!(run.status.success(), "{text}\n{}", String::from_utf8_lossy(&run.stderr));
    for family in ["qwen3_vl", "qwen2_5_vl", "internvl3", "internvl3_5"] {
        assert!(text.contains(&format!("| {family} | passes: logits")), "{family}:\n{text}");
    }
    for measure in ["generate-one", "generate-batch", "decode-split", "grpo-lora", "grpo-full"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {measure} |")))
            .unwrap_or_else(|| panic!("{text}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | name | what | time | tokens/s | peak | plan | largest | last step's phases |
        let time = cells[3].split(" (steps: ").next().unwrap();
        assert!(time.ends_with(" s") || time.ends_with(" ms"), "{row}");
        assert!(cells[4].parse::<f64>().is_ok_and(|t| t > 0.0), "{row}");
        assert!(cells[5].ends_with("GiB (host)"), "{row}");
        if measure == "decode-split" {
            assert!(
                cells[8].starts_with("batch of 1: prefill ") && cells[8].contains("; batch of 8: prefill "),
                "{row}"
            );
            assert!(cells[8].matches("; step: decoder ").count() == 2, "{row}");
            assert!(cells[8].matches("; sampling ").count() == 2, "{row}");
        }
        if measure.starts_with("grpo") {
            assert!(cells[6].ends_with("GiB") && cells[7].contains("GiB"), "{row}");
            assert!(cells[8].starts_with("rollout ") && cells[8].contains("; update "), "{row}");
            // the update's marks, in the order an update reaches them
            let marks = [
                "old log-probs ×1",
                "reference log-probs ×1",
                "mini-batch weights ×",
                "micro-batch gradients ×",
                "optimizer step ×",
            ];
            let at: Vec<usize> =
                marks.iter().map(|m| cells[8].find(&format!("; update/{m}")).unwrap_or(usize::MAX)).collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]) && at[4] < usize::MAX, "{row}");
        }
    }
    assert!(text.contains("LoRA rank 64") && text.contains("all weights"), "{text}");
    // generation at each batch of the side-by-side rows, and the paper-like step in one call
    for batch in [1, 2, 4] {
        assert!(
            text.contains(&format!("| generate-batch | {batch} × 1 sequences, ")),
            "batch {batch}:\n{text}"
        );
    }
    assert!(text.contains("4 prompts × 5, ") && text.contains("20 rows per generation call"), "{text}");
    // two workers with sharded weights train as one does
    let workers = |variant: &str| -> Vec<String> {
        let row =
            text.lines().find(|l| l.starts_with(variant)).unwrap_or_else(|| panic!("{variant}:\n{text}"));
        row.split('|').map(|c| c.trim().to_string()).collect()
    };
    let (one, two) = (workers("| 1 | None |"), workers("| 2 | Weights |"));
    // | workers | sharding | seconds | gather seconds | reward | pg_loss | kl | grad_norm |
    assert!(one[4].split(", ").all(|s| s == "–"), "one worker gathers nothing: {one:?}");
    assert!(two[4].split(", ").all(|s| s.parse::<f64>().is_ok_and(|s| s > 0.0)), "{two:?}");
    for column in 5..=8 {
        let values = |cells: &[String]| -> Vec<f64> {
            cells[column].split(", ").map(|v| v.parse().unwrap()).collect()
        };
        for (a, b) in values(&one).into_iter().zip(values(&two)) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1e-3), "column {column}: {one:?} against {two:?}");
        }
    }
    assert!(text.contains("| finished | "), "the main job at the tiny size:\n{text}");
}
