//! Logits parity with transformers on tiny random-weight checkpoints (tests/fixtures).
//!
//! Requirement: max |Δlogits| ≤ 1e-4 · max(1, max |reference|) over non-padding positions.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{fixture_dir, Reference, B};
use seethink_models::{ImageInput, QwenVl, TokenBatch, Vlm};

/// Runs case `case` of `family` and returns (max |Δ|, tolerance).
fn compare(family: &str, case: &str) -> (f32, f32) {
    let device = Default::default();
    let model = QwenVl::<B>::load(fixture_dir(family).join("checkpoint"), &device).unwrap();
    let reference = Reference::open(family);
    let (ids, shape) = reference.i64(&format!("{case}.input_ids"));
    let (batch, seq) = (shape[0], shape[1]);
    let mask: Vec<bool> = if reference.has(&format!("{case}.attention_mask")) {
        reference.i64(&format!("{case}.attention_mask")).0.iter().map(|&m| m == 1).collect()
    } else {
        vec![true; batch * seq]
    };
    let tokens = TokenBatch::new(ids.iter().map(|&i| i as u32).collect(), mask.clone(), batch, seq).unwrap();
    let images = reference.has(&format!("{case}.pixel_values")).then(|| {
        let (pixels, pshape) = reference.f32(&format!("{case}.pixel_values"));
        let (grid, _) = reference.i64(&format!("{case}.image_grid_thw"));
        ImageInput {
            pixel_values: Tensor::<B, 2>::from_data(TensorData::new(pixels, [pshape[0], pshape[1]]), &device),
            grid_thw: grid.chunks(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect(),
        }
    });
    let logits = model.forward(&tokens, images.as_ref()).unwrap();
    let (expected, eshape) = reference.f32(&format!("{case}.logits"));
    assert_eq!(logits.dims().to_vec(), eshape);
    let actual = logits.into_data().to_vec::<f32>().unwrap();
    let vocab = eshape[2];
    let mut max_diff = 0f32;
    let mut max_ref = 0f32;
    for (pos, valid) in mask.iter().enumerate() {
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
    let (ids, shape) = reference.i64(&format!("{case}.input_ids"));
    let (batch, seq) = (shape[0], shape[1]);
    let mask: Vec<bool> = if reference.has(&format!("{case}.attention_mask")) {
        reference.i64(&format!("{case}.attention_mask")).0.iter().map(|&m| m == 1).collect()
    } else {
        vec![true; batch * seq]
    };
    let tokens = TokenBatch::new(ids.iter().map(|&i| i as u32).collect(), mask, batch, seq).unwrap();
    let (grid, _) = reference.i64(&format!("{case}.image_grid_thw"));
    let grids: Vec<[usize; 3]> =
        grid.chunks(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect();
    let config =
        seethink_models::VlmConfig::from_file(fixture_dir(family).join("checkpoint/config.json")).unwrap();
    let time_step = if family == "qwen3_vl" { 1 } else { 0 };
    let p = seethink_models::mrope_positions(&tokens, &grids, 2, time_step, &config.tokens).unwrap();
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
