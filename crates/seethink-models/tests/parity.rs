//! Logits parity with transformers on tiny random-weight checkpoints (tests/fixtures).
//!
//! Requirement: max |Δlogits| ≤ 1e-4 · max(1, max |reference|) over non-padding positions.

mod common;

use common::{fixture_dir, Reference, B};
use seethink_models::{QwenVl, Vlm};

/// Runs case `case` of `family` and returns (max |Δ|, tolerance).
fn compare(family: &str, case: &str) -> (f32, f32) {
    let device = Default::default();
    let model = QwenVl::<B>::load(fixture_dir(family).join("checkpoint"), &device).unwrap();
    let reference = Reference::open(family);
    let (tokens, images) = reference.case_inputs(case);
    let logits = model.forward(&tokens, images.as_ref()).unwrap();
    let (expected, eshape) = reference.f32(&format!("{case}.logits"));
    assert_eq!(logits.dims().to_vec(), eshape);
    let actual = logits.into_data().to_vec::<f32>().unwrap();
    let vocab = eshape[2];
    let mut max_diff = 0f32;
    let mut max_ref = 0f32;
    for (pos, valid) in tokens.mask.iter().enumerate() {
        if !valid {
            continue;
        }
        for v in 0..vocab {
            let i = pos * vocab + v;
            max_diff = max_diff.max((actual[i] - expected[i]).abs());
            max_ref = max_ref.max(expected[i].abs());
        }
    }
    let tolerance = 1e-4 * max_ref.max(1.0);
    println!("{family}/{case}: max|Δ| = {max_diff:.3e}, max|ref| = {max_ref:.3}, tolerance {tolerance:.3e}");
    (max_diff, tolerance)
}

fn assert_parity(family: &str, case: &str) {
    let (diff, tolerance) = compare(family, case);
    assert!(diff <= tolerance, "{family}/{case}: max|Δlogits| {diff:e} > {tolerance:e}");
}

#[test]
fn qwen2_5_vl_text() {
    assert_parity("qwen2_5_vl", "text");
}

#[test]
fn qwen2_5_vl_two_images() {
    assert_parity("qwen2_5_vl", "image");
}

#[test]
fn qwen2_5_vl_left_padded_batch() {
    assert_parity("qwen2_5_vl", "batch");
}

#[test]
fn qwen3_vl_text() {
    assert_parity("qwen3_vl", "text");
}

#[test]
fn qwen3_vl_two_images() {
    assert_parity("qwen3_vl", "image");
}

#[test]
fn qwen3_vl_left_padded_batch() {
    assert_parity("qwen3_vl", "batch");
}

/// Our M-RoPE positions and rope deltas equal transformers' `get_rope_index`.
fn assert_positions(family: &str, case: &str) {
    let reference = Reference::open(family);
    let (tokens, _) = reference.case_inputs(case);
    let grids = reference.grids(case);
    let config =
        seethink_models::qwen_vl::QwenVlConfig::from_file(fixture_dir(family).join("checkpoint/config.json"))
            .unwrap();
    let time_step = if family == "qwen3_vl" { 1 } else { 0 };
    let p = seethink_models::qwen_vl::mrope_positions(&tokens, &grids, 2, time_step, &config.tokens).unwrap();
    assert_eq!(p.positions, reference.i64(&format!("{case}.position_ids")).0, "{family}/{case}");
    assert_eq!(p.deltas, reference.i64(&format!("{case}.rope_deltas")).0, "{family}/{case}");
}

#[test]
fn mrope_positions_match_get_rope_index() {
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        for case in ["image", "batch"] {
            assert_positions(family, case);
        }
    }
}
