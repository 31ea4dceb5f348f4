//! Logits parity with transformers on tiny random-weight checkpoints (tests/fixtures).
//!
//! Requirement: max |Δlogits| ≤ 1e-4 · max(1, max |reference|) over non-padding positions.
//! On `NdArray<f32>`, the host kernels; `tests/generic_path.rs` runs the same cases through the
//! default kernels.

mod common;

use common::{fixture_dir, logits_parity, Reference, B};

fn assert_parity(family: &str, case: &str) {
    let (diff, tolerance) = logits_parity::<B>(family, case);
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
    let (tokens, _) = reference.case_inputs::<B>(case);
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
