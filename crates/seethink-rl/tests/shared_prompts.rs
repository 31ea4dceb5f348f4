//! Scoring responses that share a prompt (a GRPO group) runs each distinct prompt once, and
//! responses to distinct prompts run in one pass each: either way the log-probs and the
//! gradients must equal those of one plain forward pass over every `prompt ++ response`, for
//! every family, with images and without, when prompts differ in length and responses differ
//! in length.

mod common;

use std::path::{Path, PathBuf};

use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use common::{flat_gradients, B};
use seethink_models::generate::Prompt;
use seethink_models::processing::image::load_image;
use seethink_models::processing::Processor;
use seethink_models::{AnyVlm, TokenBatch, Vlm};
use seethink_rl::logprobs::{chunked_gradients, response_logprobs, Scoring, Sequence};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Two image prompts and a text prompt with three responses each (of 4, 1 and 6 tokens; the
/// text prompt's in another order), one group after the other as a GRPO rollout lays them out,
/// then the first image prompt again, apart from its group.
fn rollout(dir: &Path) -> Vec<Sequence<B>> {
    let processor = Processor::from_dir(dir).unwrap();
    let device = Default::default();
    let image = |name: &str| load_image(fixtures().join("images").join(name)).unwrap();
    let prompts: Vec<Prompt<B>> = vec![
        processor.user_prompt("How many red circles are there?", &[image("square.png")], &device).unwrap(),
        processor.user_prompt("Which shape is left?", &[image("wide.png")], &device).unwrap(),
        processor.user_prompt("Solve: 12 plus 30 equals what? Think first.", &[], &device).unwrap(),
    ];
    let responses = [vec![17, 42, 99, 5], vec![8], vec![201, 13, 77, 64, 3, 9]];
    let mut sequences: Vec<Sequence<B>> = prompts
        .iter()
        .enumerate()
        .flat_map(|(p, prompt)| {
            let responses = &responses;
            (0..3).map(move |r| Sequence {
                prompt: prompt.ids.clone(),
                response: responses[(r + p) % 3].clone(),
                images: prompt.images.clone(),
            })
        })
        .collect();
    sequences.push(sequences[1].clone());
    sequences
}

/// `log softmax(logits)[y_t]` of each response token from one forward pass over
/// `prompt ++ response` alone, right-aligned in `width` columns (0 elsewhere).
fn plain_logprobs(model: &AnyVlm<B>, s: &Sequence<B>, width: usize) -> Tensor<B, 1> {
    let tokens = TokenBatch::single([s.prompt.as_slice(), &s.response].concat());
    let logits = model.forward(&tokens, s.images.as_ref()).unwrap();
    let [_, seq, vocab] = logits.dims();
    let k = s.response.len();
    let logp = log_softmax(logits.narrow(1, seq - k - 1, k).reshape([k, vocab]), 1);
    let ids: Vec<i64> = s.response.iter().map(|&t| i64::from(t)).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [k, 1]), &Default::default());
    let picked = logp.gather(1, ids).reshape([k]);
    Tensor::cat(vec![Tensor::zeros([width - k], &Default::default()), picked], 0)
}

/// A fixed weight per response position, so the gradient check sees every token.
fn weights(rows: usize, width: usize) -> Tensor<B, 2> {
    let w: Vec<f32> = (0..rows * width).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
    Tensor::from_data(TensorData::new(w, [rows, width]), &Default::default())
}

/// Log-probs and gradients of `sequences` (responses of at most `width` tokens) scored
/// together equal those of plain forward passes over each.
fn check(case: &str, model: &AnyVlm<B>, sequences: &[Sequence<B>], width: usize) {
    let scoring = Scoring { pad_id: 0, chunk_tokens: 7, temperature: 1.0, checkpoint_layers: false };
    let scored = response_logprobs(model, sequences, scoring).unwrap();
    let plain: Vec<Tensor<B, 1>> = sequences.iter().map(|s| plain_logprobs(model, s, width)).collect();
    let plain = Tensor::stack::<2>(plain, 0);
    let scored_values: Vec<f32> = scored.logp.clone().into_data().to_vec().unwrap();
    let plain_values: Vec<f32> = plain.clone().into_data().to_vec().unwrap();
    let max = scored_values.iter().zip(&plain_values).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("{case}: log-probs differ from plain forward passes by {max:.1e}");
    assert!(max < 1e-5, "{case}: log-probs differ by {max}");
    let mask: Vec<f32> = scored.mask.into_data().to_vec().unwrap();
    let expected: Vec<f32> = sequences
        .iter()
        .flat_map(|s| (0..width).map(move |t| if t + s.response.len() >= width { 1.0 } else { 0.0 }))
        .collect();
    assert_eq!(mask, expected, "{case}: right-aligned mask");

    let w = weights(sequences.len(), width);
    let expected =
        flat_gradients(model, &GradientsParams::from_grads((plain * w.clone()).sum().backward(), model)).0;
    let grads = chunked_gradients(model, sequences, scoring, |c| {
        Ok((c.logp * c.mask * w.clone().narrow(1, c.range.start, c.range.len())).sum())
    })
    .unwrap();
    let actual = flat_gradients(model, &grads).0;
    assert_eq!(actual.len(), expected.len(), "{case}: every parameter has a gradient");
    let scale = expected.iter().fold(0f32, |m, g| m.max(g.abs()));
    let max = actual.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
    println!("{case}: gradients differ by {max:.1e} (largest {scale:.1e})");
    assert!(scale > 0.0 && max <= 1e-5 * scale.max(1.0), "{case}: gradients differ by {max}");
}

#[test]
fn shared_and_distinct_prompts_score_and_train_as_plain_forward_passes() {
    for family in ["qwen2_5_vl", "qwen3_vl", "internvl3", "internvl3_5"] {
        let dir = fixtures().join(family).join("checkpoint");
        let model = AnyVlm::<B>::load(&dir, &Default::default()).unwrap();
        let sequences = rollout(&dir);
        check(&format!("{family}, groups"), &model, &sequences, 6);
        // one response per prompt: every sequence in one pass
        let distinct: Vec<Sequence<B>> = sequences.iter().step_by(3).take(3).cloned().collect();
        check(&format!("{family}, distinct prompts"), &model, &distinct, 6);
    }
}

#[test]
fn a_prompt_ending_in_an_image_placeholder_is_refused() {
    let dir = fixtures().join("qwen3_vl/checkpoint");
    let model = AnyVlm::<B>::load(&dir, &Default::default()).unwrap();
    let placeholder = model.input_only_tokens()[0];
    let sequences = vec![Sequence::<B> { prompt: vec![5, placeholder], response: vec![7], images: None }];
    let scoring = Scoring { pad_id: 0, chunk_tokens: 8, temperature: 1.0, checkpoint_layers: false };
    let err = response_logprobs(&model, &sequences, scoring).err().expect("an error");
    assert!(err.to_string().contains("image placeholder"), "{err}");
}
