//! What the trained pass holds of the vision tower, with and without activation checkpointing
//! (`vision_checkpoints`), counted by a global allocator on ndarray, against the plan's
//! "vision activations" row: a model whose tower dominates (the tiny Qwen3-VL's decoder under a
//! 12-block tower of width 128) scoring two responses to one prompt with a 1,024-patch image.
//! Its own test binary: its allocator counts the whole process.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use burn::tensor::{Tensor, TensorData};
use common::{checkpoint, tiny_config, B};
use image::{DynamicImage, Rgb, RgbImage};
use seethink_models::generate::Prompt;
use seethink_models::processing::Processor;
use seethink_models::{AnyVlm, ModelSize};
use seethink_rl::config::Trainer;
use seethink_rl::logprobs::{chunked_gradients, Scoring, Sequence};
use seethink_rl::plan::{KernelPath, MemoryPlan, Target};

#[path = "counting_allocator/mod.rs"]
mod counting_allocator;

use counting_allocator::{IN_USE, PEAK};

/// Image side in pixels: 32 × 32 patches of 4 pixels, 256 image tokens after the 2 × 2 merge.
const SIDE: u32 = 128;

/// The committed Qwen3-VL checkpoint's files in `dir`, its vision tower widened and deepened and
/// its image processor taking images of `SIDE` × `SIDE`.
fn write_checkpoint(dir: &Path) {
    for entry in std::fs::read_dir(checkpoint()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_file() && !name.starts_with("model.safetensors") {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
    let edit = |name: &str, change: &dyn Fn(&mut serde_json::Value)| {
        let path = dir.join(name);
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        change(&mut value);
        std::fs::write(path, value.to_string()).unwrap();
    };
    edit("config.json", &|c| {
        let v = &mut c["vision_config"];
        v["depth"] = 12.into();
        v["hidden_size"] = 128.into();
        v["intermediate_size"] = 512.into();
        v["num_heads"] = 4.into();
        v["deepstack_visual_indexes"] = serde_json::json!([3, 7]);
    });
    edit("preprocessor_config.json", &|p| {
        let pixels = (SIDE * SIDE) as u64;
        p["max_pixels"] = pixels.into();
        p["size"]["longest_edge"] = pixels.into();
    });
}

/// Bytes in use at the peak of the gradients of two responses' log-probs, above what was in use
/// before, with or without checkpoints.
fn peak(model: &AnyVlm<B>, sequences: &[Sequence<B>], checkpoint_layers: bool) -> usize {
    let scoring = Scoring { pad_id: 0, chunk_tokens: 64, temperature: 1.0, checkpoint_layers };
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let grads = chunked_gradients(model, sequences, scoring, |c| {
        let [rows, width] = c.mask.dims();
        let w = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.5f32; rows * width], [rows, width]),
            &Default::default(),
        );
        Ok((c.logp * c.mask * w).sum())
    })
    .unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    drop(grads);
    peak
}

#[test]
fn recomputing_the_vision_blocks_keeps_what_the_plan_says() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path());
    let device = Default::default();
    let model = AnyVlm::<B>::random(dir.path(), 3, &device).unwrap();
    let processor = Processor::from_dir(dir.path()).unwrap();
    let image =
        RgbImage::from_fn(SIDE, SIDE, |x, y| Rgb([(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8]));
    let prompt: Prompt<B> =
        processor.user_prompt("What is in the picture?", &[DynamicImage::ImageRgb8(image)], &device).unwrap();
    let sequences: Vec<Sequence<B>> = [vec![17u32, 42, 99, 5], vec![201, 13, 77, 64]]
        .into_iter()
        .map(|response| Sequence { prompt: prompt.ids.clone(), response, images: prompt.images.clone() })
        .collect();
    // warm up each path once (the allocator's first buffers, the kernels' scratch)
    peak(&model, &sequences, false);
    peak(&model, &sequences, true);
    let (kept, recomputed) = (peak(&model, &sequences, false), peak(&model, &sequences, true));

    let size = ModelSize::from_dir(dir.path()).unwrap();
    let plan = |checkpointing: bool| {
        let mut config = tiny_config(&dir.path().join("run"), Trainer::Grpo, 1, 1);
        config.model = dir.path().to_path_buf();
        config.data.max_prompt_length = Some(prompt.ids.len());
        config.data.max_pixels = Some((SIDE * SIDE) as usize);
        config.rollout.n = 2;
        config.actor.micro_batch_size = 2;
        config.actor.activation_checkpointing = checkpointing;
        let target = Target {
            kernels: KernelPath::Host,
            element_bytes: 4,
            compute_bytes: 4,
            frozen_bytes: 4,
            threads: 1,
        };
        let plan = MemoryPlan::new(&size, &config, target);
        let row = plan.components.iter().find(|c| c.name == "vision activations").expect("a vision row");
        row.bytes as usize
    };
    let (planned_kept, planned_recomputed) = (plan(false), plan(true));
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "measured peak: kept {:.1} MiB, recomputed {:.1} MiB; planned vision activations: kept {:.1} MiB, recomputed {:.1} MiB",
        mib(kept),
        mib(recomputed),
        mib(planned_kept),
        mib(planned_recomputed)
    );
    // what recomputing saves, measured, against what the plan says it saves
    let (saved, planned_saved) = (kept - recomputed, planned_kept - planned_recomputed);
    let gap = (saved as f64 - planned_saved as f64).abs() / planned_saved as f64;
    assert!(recomputed * 3 < kept, "recomputing the blocks kept {recomputed} bytes of {kept}");
    assert!(gap < 0.15, "saved {saved} bytes, the plan says {planned_saved}");
}
