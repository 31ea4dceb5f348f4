//! The KV cache a GPU decodes with (`KvLayout::shared_block`: each prompt once for its samples,
//! each sample's own positions in blocks) against every sample holding its prompt and room for
//! its longest response, counted by a global allocator on the generic path (`NdArray<f64>`):
//! after prefilling 2 prompts and decoding 4 samples of each, the state holds what the plan's
//! "rollout KV cache" row counts for each layout (`plan.rs`, `KernelPath::Generic` and
//! `KernelPath::Host`), within 1%. Its own test binary: its allocator counts the whole process.

use std::sync::atomic::Ordering;

use burn::backend::NdArray;
use seethink_models::generate::KV_BLOCK;
use seethink_models::{QwenVl, TokenBatch, Vlm};

#[path = "counting_allocator/mod.rs"]
mod counting_allocator;

use counting_allocator::IN_USE;

type D = NdArray<f64>;

/// Bytes the decoding state holds after prefilling `prompts` prompts of `prompt` tokens and
/// decoding `steps` tokens for `samples` samples of each, with `shared_block` (`None`: every
/// row holds its prompt and room for `steps`).
fn held_by_state(
    prompts: usize,
    prompt: usize,
    samples: usize,
    steps: usize,
    shared_block: Option<usize>,
) -> usize {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/qwen2_5_vl/checkpoint");
    let model = QwenVl::<D>::load(&dir, &Default::default()).unwrap();
    let ids: Vec<Vec<u32>> =
        (0..prompts).map(|p| (0..prompt as u32).map(|t| 10 + (t + p as u32) % 50).collect()).collect();
    let tokens = TokenBatch::left_padded(&ids, 0);
    // a pass whose state is dropped first: what the first pass sets up for good (a thread
    // pool, buffers kept for reuse) is not the state's
    drop(model.forward_cached(&tokens, None, &mut model.new_state()).unwrap());
    let before = IN_USE.load(Ordering::SeqCst);
    let mut state = model.new_state();
    drop(model.forward_cached(&tokens, None, &mut state).unwrap());
    state = state.for_samples(samples, shared_block, steps);
    let rows = prompts * samples;
    for step in 0..steps {
        let next = TokenBatch::new(
            (0..rows as u32).map(|r| 20 + (r + step as u32) % 40).collect(),
            vec![true; rows],
            rows,
            1,
        )
        .unwrap();
        drop(model.forward_cached(&next, None, &mut state).unwrap());
    }
    let held = IN_USE.load(Ordering::SeqCst) - before;
    drop(state);
    held
}

#[test]
fn a_shared_prompt_cache_holds_each_prompt_once_and_each_sample_s_own_blocks() {
    // the tiny Qwen2.5-VL: 2 layers, 2 key/value heads of 16
    let (layers, kv_width, bytes) = (2, 2 * 16, 8);
    let (prompts, prompt, samples, steps) = (2, 200, 4, 70);
    let per_position = layers * 2 * kv_width * bytes;
    let shared = held_by_state(prompts, prompt, samples, steps, Some(KV_BLOCK));
    let own = steps.div_ceil(KV_BLOCK) * KV_BLOCK;
    let planned_shared = per_position * (prompts * prompt + prompts * samples * own);
    let whole = held_by_state(prompts, prompt, samples, steps, None);
    let planned_whole = per_position * prompts * samples * (prompt + steps);
    for (what, held, planned) in [("shared", shared, planned_shared), ("whole", whole, planned_whole)] {
        let off = held as f64 / planned as f64 - 1.0;
        println!("{what}: held {held} B, planned {planned} B ({:+.2}%)", 100.0 * off);
        assert!(off.abs() < 0.01, "{what}: held {held} B against {planned} B planned");
    }
    assert!(shared < whole, "sharing the prompts holds less: {shared} against {whole} B");
}
