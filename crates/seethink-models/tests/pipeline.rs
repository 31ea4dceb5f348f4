//! End-to-end parity with transformers' processor and generate: chat template, token ids,
//! pixel patches, logits and greedy tokens on the committed tiny checkpoints.

mod common;

use common::{cases, fixture_dir, Reference, B};
use seethink_models::generate::{generate, SamplingConfig};
use seethink_models::processing::image::load_image;
use seethink_models::processing::{Message, Processor};
use seethink_models::{ImageGrid, QwenVl, TokenBatch, Vlm};

fn check_family(family: &str) {
    let dir = fixture_dir(family).join("checkpoint");
    let device = Default::default();
    let model = QwenVl::<B>::load(&dir, &device).unwrap();
    let processor = Processor::from_dir(&dir).unwrap();
    let reference = Reference::open_file(&fixture_dir(family).join("pipeline_reference.safetensors"));
    for case in cases(family) {
        let label = format!("{family}/{}", case.name);
        let rendered = processor.render(&[Message::user(case.images.len(), &case.prompt)], true).unwrap();
        assert_eq!(rendered, case.rendered, "{label}: chat template");
        let images: Vec<_> =
            case.images.iter().map(|f| load_image(fixture_dir("images").join(f)).unwrap()).collect();
        let prompt = processor.user_prompt::<B>(&case.prompt, &images, &device).unwrap();
        let ids: Vec<u32> =
            reference.i64(&format!("{}.input_ids", case.name)).0.iter().map(|&i| i as u32).collect();
        assert_eq!(prompt.ids, ids, "{label}: input_ids");
        if let Some(images) = &prompt.images {
            let (expected, _) = reference.f32(&format!("{}.pixel_values", case.name));
            let actual: Vec<f32> = images.pixel_values.to_data().to_vec().unwrap();
            let max = actual.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
            assert_eq!(actual.len(), expected.len(), "{label}: patches");
            assert!(max <= 1e-4, "{label}: pixel values max|Δ| {max}");
            let grid: Vec<ImageGrid> = reference
                .i64(&format!("{}.image_grid_thw", case.name))
                .0
                .chunks(3)
                .map(|g| ImageGrid::Patches([g[0] as usize, g[1] as usize, g[2] as usize]))
                .collect();
            assert_eq!(images.grids, grid, "{label}: grid_thw");
        }
        let logits: Vec<f32> = model
            .forward(&TokenBatch::single(prompt.ids.clone()), prompt.images.as_ref())
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let (expected, _) = reference.f32(&format!("{}.logits", case.name));
        let max_ref = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        let max_diff = logits.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
        println!("{label}: logits max|Δ| = {max_diff:e}");
        assert!(max_diff <= 1e-4 * max_ref.max(1.0), "{label}: logits max|Δ| {max_diff}");
        let greedy = SamplingConfig { max_new_tokens: 12, temperature: 0.0, ..Default::default() };
        let out = generate(
            &model,
            &[prompt],
            1,
            &greedy,
            &processor.tokenizer.stop_ids,
            processor.tokenizer.pad_id,
        )
        .unwrap();
        let generated: Vec<u32> =
            reference.i64(&format!("{}.generated", case.name)).0.iter().map(|&i| i as u32).collect();
        assert_eq!(out[0].ids, generated, "{label}: greedy tokens");
    }
}

#[test]
fn qwen2_5_vl_processor_and_generation_match_transformers() {
    check_family("qwen2_5_vl");
}

#[test]
fn qwen3_vl_processor_and_generation_match_transformers() {
    check_family("qwen3_vl");
}
