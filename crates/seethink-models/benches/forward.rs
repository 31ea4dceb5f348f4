//! Forward-pass throughput of the tiny fixture checkpoints on the ndarray backend.
//!
//! `cargo bench -p seethink-models --bench forward`

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use seethink_models::{ImageInput, QwenVl, TokenBatch, Vlm};

type B = NdArray<f32>;

fn checkpoint(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(family).join("checkpoint")
}

/// One prompt: 16 text tokens, an image of grid 1×16×16 (64 image tokens), 16 text tokens.
fn image_prompt(model: &QwenVl<B>) -> (TokenBatch, ImageInput<B>) {
    let c = &model.config;
    let grid = [1, 16, 16];
    let image_tokens = grid[1] * grid[2] / 4;
    let mut ids: Vec<u32> = (1..17).collect();
    ids.push(c.tokens.vision_start_token_id as u32);
    ids.extend(std::iter::repeat_n(c.tokens.image_token_id as u32, image_tokens));
    ids.extend(20..36);
    let pixels = Tensor::<B, 2>::random(
        [grid[1] * grid[2], c.vision.patch_dim()],
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    (TokenBatch::single(ids), ImageInput::patches(pixels, vec![grid]))
}

fn bench_forward(c: &mut Criterion) {
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        let model = QwenVl::<B>::load(checkpoint(family), &Default::default()).unwrap();
        let text = TokenBatch::left_padded(&vec![(1..129).collect::<Vec<u32>>(); 8], 0);
        c.bench_function(&format!("{family}/text 8x128"), |b| {
            b.iter(|| model.forward(&text, None).unwrap().into_data())
        });
        let (tokens, images) = image_prompt(&model);
        c.bench_function(&format!("{family}/image 1x97 (64 image tokens)"), |b| {
            b.iter(|| model.forward(&tokens, Some(&images)).unwrap().into_data())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_forward
}
criterion_main!(benches);
