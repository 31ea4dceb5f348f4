//! Time of one GRPO update on ndarray: old and reference forwards, policy forward + backward,
//! global-norm clip and AdamW, for 8 sequences of 32 prompt + 31 response tokens.
//!
//! `cargo bench -p seethink-rl --bench grpo_step`; `benches/grpo_step_torch.py` runs the same
//! step in PyTorch on the same checkpoint. `SEETHINK_BENCH_MODEL` names another checkpoint
//! directory, `SEETHINK_BENCH_RESPONSE` another response length, `SEETHINK_BENCH_RUNS` how many
//! timed updates follow the warm-up (the best is reported with its phases: old and reference
//! passes, policy forward and backward, clip and AdamW; default 10), `SEETHINK_BENCH_CHECKPOINT_LAYERS=1`
//! recomputes each decoder layer and vision block in backward (`actor.activation_checkpointing`),
//! and `SEETHINK_BENCH_IMAGE=<file>` makes the 8 sequences one group answering a prompt with that
//! image (through the checkpoint's processor), so that the vision tower runs and trains.

/// The `seethink` binary's allocator, so the figures are the ones a run gets.
#[global_allocator]
static ALLOCATOR: seethink_models::allocator::Allocator = seethink_models::allocator::Allocator;

use std::path::PathBuf;
use std::time::Instant;

use seethink_models::AnyVlm;
use seethink_rl::config::ActorConfig;
use seethink_rl::learner::new_learner;
use seethink_rl::logprobs::Scoring;
use seethink_rl::policy::Sequence;

mod common;

use common::{grpo_update, Phase, B, I};

fn main() {
    let dir = std::env::var("SEETHINK_BENCH_MODEL").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint")
    });
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: not a count: {v}")))
    };
    let (response_len, runs) = (setting("SEETHINK_BENCH_RESPONSE", 31), setting("SEETHINK_BENCH_RUNS", 10));
    let model = AnyVlm::<B>::load(&dir, &Default::default()).unwrap();
    let reference = model.clone();
    let mut learner = new_learner(model, &ActorConfig { lr: 1e-6, ..Default::default() }, 0);
    learner.lr_step();
    let reference: AnyVlm<I> = burn::module::AutodiffModule::valid(&reference);
    let image_prompt = std::env::var("SEETHINK_BENCH_IMAGE").ok().map(|path| {
        let processor = seethink_models::processing::Processor::from_dir(&dir).unwrap();
        let image = seethink_models::processing::image::load_image(&path).unwrap();
        processor.user_prompt::<I>("Describe the picture.", &[image], &Default::default()).unwrap()
    });
    let sequences: Vec<Sequence<I>> = (0..8u32)
        .map(|s| Sequence {
            prompt: match &image_prompt {
                Some(p) => p.ids.clone(),
                None => (0..32).map(|i| 1 + (i * 7 + s) % 250).collect(),
            },
            response: (0..response_len as u32).map(|i| 1 + (i * 11 + 3 * s) % 250).collect(),
            images: image_prompt.as_ref().and_then(|p| p.images.clone()),
        })
        .collect();
    let checkpoint_layers = setting("SEETHINK_BENCH_CHECKPOINT_LAYERS", 0) == 1;
    let scoring = Scoring { pad_id: 0, chunk_tokens: 1024, temperature: 1.0, checkpoint_layers };
    let advantages = [1.0f32, -1.0, 0.5, -0.5, 1.0, -1.0, 0.5, -0.5];
    // the seconds of each phase, in order
    let mut step = || {
        let mut phases = Vec::with_capacity(3);
        let mut started = Instant::now();
        grpo_update(&mut learner, &reference, &sequences, &advantages, scoring, |phase| {
            phases.push((phase, started.elapsed().as_secs_f64()));
            started = Instant::now();
        });
        phases
    };
    step();
    let total = |phases: &[(Phase, f64)]| phases.iter().map(|(_, s)| s).sum::<f64>();
    let best = (0..runs).map(|_| step()).min_by(|a, b| total(a).total_cmp(&total(b))).unwrap_or_default();
    let tokens = sequences[0].prompt.len() + response_len;
    let split: Vec<String> = best.iter().map(|(phase, s)| format!("{phase:?} {s:.2} s")).collect();
    println!(
        "{}: GRPO update, 8 x {tokens} tokens: {:.1} ms (best of {runs}: {})",
        dir.display(),
        total(&best) * 1e3,
        split.join(", ")
    );
}
