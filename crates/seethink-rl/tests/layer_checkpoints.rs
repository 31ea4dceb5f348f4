//! Activation checkpointing per decoder layer and per vision block gives the gradients of the
//! plain backward pass, for every family, with images and without, for shared prompts (GRPO
//! groups) and distinct ones, with the vision tower trained and frozen: the same bits.

mod common;

use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use common::{flat_gradients, B};
use seethink_models::generate::Prompt;
use seethink_models::processing::image::load_image;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_rl::logprobs::{chunked_gradients, Scoring, Sequence};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// How many parameter tensors `model` has.
fn parameter_tensors(model: &AnyVlm<B>) -> usize {
    struct Count(usize);
    impl ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<B, D>>) {
            self.0 += 1;
        }
    }
    let mut count = Count(0);
    model.visit(&mut count);
    count.0
}

/// The gradients of a weighted sum of every response token's log-prob, `chunk_tokens` rows of
/// logits at a time, with or without layer checkpoints.
fn gradients(model: &AnyVlm<B>, sequences: &[Sequence<B>], checkpoint_layers: bool) -> (Vec<f32>, usize) {
    let scoring = Scoring { pad_id: 0, chunk_tokens: 7, temperature: 0.9, checkpoint_layers };
    let grads = chunked_gradients(model, sequences, scoring, |c| {
        let [rows, width] = c.mask.dims();
        let w: Vec<f32> =
            (0..rows * width).map(|i| (((i + c.range.start) * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let w = Tensor::<B, 2>::from_data(TensorData::new(w, [rows, width]), &Default::default());
        Ok((c.logp * c.mask * w).sum())
    })
    .unwrap();
    flat_gradients(model, &grads)
}

/// Two image prompts and a text prompt with two responses each (of 3 and 5 tokens).
fn rollout(dir: &std::path::Path) -> Vec<Sequence<B>> {
    let processor = Processor::from_dir(dir).unwrap();
    let device = Default::default();
    let image = |name: &str| load_image(fixtures().join("images").join(name)).unwrap();
    let prompts: Vec<Prompt<B>> = vec![
        processor.user_prompt("How many red circles are there?", &[image("square.png")], &device).unwrap(),
        processor.user_prompt("Solve: 12 plus 30 equals what?", &[], &device).unwrap(),
        processor.user_prompt("Which shape is left?", &[image("wide.png")], &device).unwrap(),
    ];
    let responses = [vec![17, 42, 99], vec![201, 13, 77, 64, 3]];
    prompts
        .iter()
        .flat_map(|prompt| {
            responses.iter().map(|r| Sequence {
                prompt: prompt.ids.clone(),
                response: r.clone(),
                images: prompt.images.clone(),
            })
        })
        .collect()
}

#[test]
fn recomputing_each_layer_and_vision_block_in_backward_gives_the_plain_gradients() {
    for family in ["qwen2_5_vl", "qwen3_vl", "internvl3", "internvl3_5"] {
        let dir = fixtures().join(family).join("checkpoint");
        let model = AnyVlm::<B>::load(&dir, &Default::default()).unwrap();
        let frozen_tower = model.clone().freeze_vision();
        let groups = rollout(&dir);
        let distinct: Vec<Sequence<B>> = groups.iter().step_by(2).cloned().collect();
        // a micro-batch that ends inside a group: groups of 2 and 1
        let uneven: Vec<Sequence<B>> = groups[..3].to_vec();
        for (case, model, sequences) in [
            ("groups", &model, groups.clone()),
            ("distinct prompts", &model, distinct),
            ("uneven groups", &model, uneven),
            ("groups, frozen tower", &frozen_tower, groups),
        ] {
            let (plain, plain_params) = gradients(model, &sequences, false);
            let (checkpointed, params) = gradients(model, &sequences, true);
            assert_eq!(params, plain_params, "{family}, {case}: the same parameters get gradients");
            let every = parameter_tensors(model);
            match case.ends_with("frozen tower") {
                true => assert!(params < every, "{family}, {case}: the tower has no gradients"),
                false => assert_eq!(params, every, "{family}, {case}: every parameter has one"),
            }
            let scale = plain.iter().fold(0f32, |m, g| m.max(g.abs()));
            let bitwise = checkpointed.iter().zip(&plain).all(|(a, e)| a.to_bits() == e.to_bits());
            println!("{family}, {case}: largest gradient {scale:.1e}, bitwise: {bitwise}");
            assert!(scale > 0.0 && bitwise, "{family}, {case}: not the same bits");
        }
    }
}
