//! The KV cache every backend decodes with (`KvLayout::shared_block`: each prompt once for its
//! samples, each sample's own positions in blocks) against every sample holding its prompt and
//! room for its longest response (`shared_block: None`), counted by a global allocator on the
//! generic path (`NdArray<f64>`): after prefilling 2 prompts and decoding 4 samples of each, the
//! state holds what the plan's "rollout KV cache" row counts for the first (`plan.rs`) and what
//! the second's layout implies, within 1%. And with the samples' own positions bounded
//! (`rollout.kv_cache_positions`, rows preempted and resumed), a generation call's peak falls by
//! what the plan's "rollout KV cache" and "rollout KV gathered" rows say it saves, within 15%.
//! Rows that stop leave the batch without a copy of the others' own positions.
//! Its own test binary, one test: its allocator counts the whole process.

use std::sync::atomic::Ordering;

use burn::backend::NdArray;
use seethink_models::generate::{generate_with, KvLayout, Prompt, SamplingConfig, KV_BLOCK};
use seethink_models::{QwenVl, TokenBatch, Vlm};

#[path = "counting_allocator/mod.rs"]
mod counting_allocator;

use counting_allocator::{IN_USE, PEAK};

type D = NdArray<f64>;

/// Bytes the decoding state holds after prefilling `prompts` prompts of `prompt` tokens and
/// decoding `steps` tokens for `samples` samples of each, with `shared_block` (`None`: every
/// row holds its prompt and room for `steps`).
/// The tiny Qwen2.5-VL fixture on the generic path.
fn tiny_model() -> QwenVl<D> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/qwen2_5_vl/checkpoint");
    QwenVl::<D>::load(&dir, &Default::default()).unwrap()
}

/// `prompts` prompts of `prompt` plain-text tokens.
fn prompt_ids(prompts: usize, prompt: usize) -> Vec<Vec<u32>> {
    (0..prompts).map(|p| (0..prompt as u32).map(|t| 10 + (t + p as u32) % 50).collect()).collect()
}

fn held_by_state(
    prompts: usize,
    prompt: usize,
    samples: usize,
    steps: usize,
    shared_block: Option<usize>,
) -> usize {
    let model = tiny_model();
    let tokens = TokenBatch::left_padded(&prompt_ids(prompts, prompt), 0);
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

/// The peak bytes above what was in use before of one generation call of `samples` samples of
/// each of `prompts` prompts of `prompt` tokens, every row decoding `steps` tokens (no stop
/// token), the shared layout with the rows' own positions bounded by `own_positions`.
fn generation_peak(
    prompts: usize,
    prompt: usize,
    samples: usize,
    steps: usize,
    own_positions: Option<usize>,
) -> usize {
    let model = tiny_model();
    let prompts: Vec<Prompt<D>> =
        prompt_ids(prompts, prompt).into_iter().map(|ids| Prompt { ids, images: None }).collect();
    let sampling = SamplingConfig { max_new_tokens: steps, temperature: 1.0, seed: 3, ..Default::default() };
    let kv = KvLayout { storage: None, shared_block: Some(KV_BLOCK), own_positions };
    // a call first, whose state is dropped: what the first pass sets up for good is not the call's
    drop(generate_with(
        &model,
        &prompts,
        samples,
        &SamplingConfig { max_new_tokens: 2, ..sampling },
        &[],
        0,
        kv,
    ));
    let before = IN_USE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = generate_with(&model, &prompts, samples, &sampling, &[], 0, kv).unwrap();
    assert!(out.iter().all(|c| c.ids.len() == steps));
    PEAK.load(Ordering::SeqCst) - before
}

#[test]
fn the_rollout_cache_holds_what_the_plan_counts() {
    each_prompt_once_and_each_sample_s_own_blocks();
    a_bound_on_the_own_positions_saves_what_the_plan_says();
    rows_that_stop_leave_without_a_copy_of_the_others();
}

/// 16 rows 40 positions into their own blocks, then 3 stop: the rows that go on keep their own
/// positions where they are (no copy of them, which at a GPU's 320 rows × 1k positions is
/// gigabytes per stop), and the next step allocates what a step before the stop did, but for
/// the gathered path's pick of one layer's own rows.
fn rows_that_stop_leave_without_a_copy_of_the_others() {
    let (layers, kv_width, bytes) = (2, 2 * 16, 8);
    let (prompts, prompt, samples, steps) = (4, 12, 4, 40);
    let rows = prompts * samples;
    let model = tiny_model();
    let mut state = model.new_state();
    let tokens = TokenBatch::left_padded(&prompt_ids(prompts, prompt), 0);
    drop(model.forward_cached(&tokens, None, &mut state).unwrap());
    state = state.for_samples(samples, Some(KV_BLOCK), steps);
    let step_tokens = |rows: usize| TokenBatch::new(vec![21; rows], vec![true; rows], rows, 1).unwrap();
    // the peak bytes above what was in use before of `f`
    let peak_of = |f: &mut dyn FnMut()| {
        let before = IN_USE.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        f();
        PEAK.load(Ordering::SeqCst) - before
    };
    let mut step_peak = 0;
    for _ in 0..steps {
        step_peak =
            peak_of(&mut || drop(model.forward_cached(&step_tokens(rows), None, &mut state).unwrap()));
    }
    let own = layers * 2 * kv_width * bytes * rows * KV_BLOCK;
    let going: Vec<usize> = (0..rows).filter(|r| r % 5 != 1).collect();
    let left = peak_of(&mut || state = state.select_rows(&going));
    let after =
        peak_of(&mut || drop(model.forward_cached(&step_tokens(going.len()), None, &mut state).unwrap()));
    println!("{} of {rows} rows going on: the rows leaving took {left} B (own positions {own} B), the next step {after} B (one before {step_peak} B)", going.len());
    assert!(left * 50 < own, "rows leaving took {left} B beside {own} B of own positions");
    // burn's ops gather each layer's keys for its attention call (this generic path): the rows'
    // own picked through the index are one layer's copy more, never the whole cache's
    let one_layer = own / layers;
    assert!(
        after <= step_peak + one_layer,
        "the step after rows left took {after} B, one before {step_peak} B (one layer's own: {one_layer} B)"
    );
}

/// 32 rows of 320 own positions each (10,240) bounded at 512: the plan's rollout KV rows fall
/// by (10,240 − 512) own positions × (every layer's keys and values + one layer's gathered).
/// The prompts are short: a resumed row's prefill of its prompt and tokens so far (up to 272
/// here) holds attention scores quadratic in its length, which the plan leaves to
/// `SCORES_PER_BLOCK` (256 MiB at most, nothing beside a real model's KV cache) and which is
/// most of what the measured saving misses.
fn a_bound_on_the_own_positions_saves_what_the_plan_says() {
    let (layers, kv_width, bytes) = (2, 2 * 16, 8);
    let (prompts, prompt, samples, steps, bound) = (4, 16, 8, 300, 512);
    let whole = generation_peak(prompts, prompt, samples, steps, None);
    let bounded = generation_peak(prompts, prompt, samples, steps, Some(bound));
    let own = prompts * samples * steps.div_ceil(KV_BLOCK) * KV_BLOCK;
    let planned = (own - bound) * 2 * kv_width * (layers + 1) * bytes;
    let saved = whole as f64 - bounded as f64;
    let off = saved / planned as f64 - 1.0;
    println!("peak {whole} B, bounded at {bound} own positions {bounded} B: saved {saved} B, planned {planned} B ({:+.1}%)", 100.0 * off);
    assert!(off.abs() < 0.15, "saved {saved} B against {planned} B planned");
}

fn each_prompt_once_and_each_sample_s_own_blocks() {
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
