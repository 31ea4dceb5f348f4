//! GRPO on a real model: response log-probs agree with generation, the mini-batch loss and its
//! gradients do not depend on how the mini-batch is split into micro-batches, and chunked
//! gradients (logits a few rows at a time) equal the plain backward pass.

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use seethink_models::generate::{generate, Prompt, SamplingConfig};
use seethink_models::QwenVl;
use seethink_rl::grpo::{vanilla, GrpoLossConfig, MiniBatch, TokenBatchLoss};
use seethink_rl::logprobs::{chunked_gradients, response_logprobs, Scoring, Sequence};

/// Scoring with pad id 0, `chunk_tokens` rows of logits at a time, at temperature 1.
fn scoring(chunk_tokens: usize) -> Scoring {
    Scoring { pad_id: 0, chunk_tokens, temperature: 1.0, checkpoint_layers: false }
}

type B = Autodiff<NdArray<f32>>;

fn model() -> QwenVl<B> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint");
    QwenVl::load(dir, &Default::default()).unwrap()
}

/// Text-only sequences: each prompt with its response.
fn text(prompts: &[Vec<u32>], responses: &[Vec<u32>]) -> Vec<Sequence<B>> {
    prompts
        .iter()
        .zip(responses)
        .map(|(p, r)| Sequence { prompt: p.clone(), response: r.clone(), images: None })
        .collect()
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![5, 17, 42, 99], vec![7, 8], vec![1, 2, 3, 4, 5, 6], vec![250, 3, 9]]
}

#[test]
fn logprobs_match_the_sampler_at_its_temperature() {
    let model = model();
    let prompts = prompts();
    let batch: Vec<Prompt<B>> = prompts.iter().map(|ids| Prompt { ids: ids.clone(), images: None }).collect();
    let mut at_one = Vec::new();
    for temperature in [1.0f32, 0.7] {
        let sampling = SamplingConfig { max_new_tokens: 5, temperature, seed: 3, ..Default::default() };
        let out = generate(&model, &batch, 1, &sampling, &[], 0).unwrap();
        let responses: Vec<Vec<u32>> = out.iter().map(|c| c.ids.clone()).collect();
        let scoring = Scoring { temperature, ..scoring(3) };
        let scored = response_logprobs(&model, &text(&prompts, &responses), scoring).unwrap();
        let logp: Vec<f32> = scored.logp.into_data().to_vec().unwrap();
        for (row, c) in out.iter().enumerate() {
            for (t, lp) in c.logprobs.iter().enumerate() {
                assert!((logp[row * 5 + t] - lp).abs() < 1e-4, "T {temperature} row {row} token {t}");
            }
        }
        if temperature == 1.0 {
            at_one = responses;
        } else {
            // the same tokens score differently at T = 1: the temperature is really applied
            let plain = response_logprobs(&model, &text(&prompts, &at_one), scoring).unwrap().logp;
            let one = response_logprobs(&model, &text(&prompts, &at_one), self::scoring(3)).unwrap().logp;
            let differ = (plain - one).abs().max().into_scalar();
            assert!(differ > 1e-3, "{differ}");
        }
    }
}

#[test]
fn a_short_row_beside_a_much_longer_response_scores_as_alone() {
    // prompt + response of the second row (2 + 1 tokens) is shorter than the first response
    let model = model();
    let prompts = vec![vec![5, 17, 42, 99], vec![7, 8]];
    let responses = vec![vec![11, 12, 13, 14, 15, 16, 17, 18], vec![9]];
    let together = response_logprobs(&model, &text(&prompts, &responses), scoring(4)).unwrap();
    let logp: Vec<f32> = together.logp.into_data().to_vec().unwrap();
    for row in 0..2 {
        let alone =
            response_logprobs(&model, &text(&prompts[row..=row], &responses[row..=row]), scoring(4)).unwrap();
        let alone: Vec<f32> = alone.logp.into_data().to_vec().unwrap();
        // responses are right-aligned in the batch's width of 8
        let batched = &logp[row * 8 + 8 - alone.len()..(row + 1) * 8];
        for (a, b) in alone.iter().zip(batched) {
            assert!((a - b).abs() < 1e-5, "row {row}: {a} vs {b}");
        }
    }
}

/// Loss and gradient of the embedding table for a mini-batch split into `chunks`.
fn split_loss(model: &QwenVl<B>, chunks: &[(usize, usize)]) -> (f32, Vec<f32>) {
    let prompts = prompts();
    let responses: Vec<Vec<u32>> = vec![vec![11, 12, 13], vec![21], vec![31, 32], vec![41, 42, 43]];
    let advantages = [1.0f32, -0.5, 0.7, -1.2];
    let old_shift = [0.1f32, -0.2, 0.05, 0.3];
    let total_tokens: usize = responses.iter().map(Vec::len).sum();
    let config = GrpoLossConfig::default();
    let mut total: Option<Tensor<B, 1>> = None;
    for &(start, end) in chunks {
        let range = start..end;
        let scored = response_logprobs(
            model,
            &text(&prompts[range.clone()], &responses[range.clone()]),
            scoring(1024),
        )
        .unwrap();
        let [n, _] = scored.logp.dims();
        let device = Default::default();
        let shift =
            Tensor::<B, 2>::from_data(TensorData::new(old_shift[range.clone()].to_vec(), [n, 1]), &device);
        let old = scored.logp.clone().detach() + shift.clone();
        let reference = scored.logp.clone().detach() - shift;
        let adv = Tensor::from_data(TensorData::new(advantages[range.clone()].to_vec(), [n, 1]), &device);
        let terms = TokenBatchLoss {
            logp: scored.logp,
            old_logp: old,
            ref_logp: Some(reference),
            advantages: adv,
            mask: scored.mask.clone(),
            weights: scored.mask,
            mini_batch: MiniBatch {
                tokens: total_tokens,
                responses: responses.len(),
                max_response_tokens: 3,
            },
            sequence: None,
        }
        .terms(&config, vanilla);
        total = Some(match total {
            Some(t) => t + terms.loss,
            None => terms.loss,
        });
    }
    let total = total.unwrap();
    let value = total.clone().into_scalar();
    let grads = total.backward();
    let weight: &Param<Tensor<B, 2>> = &model.language_model.embed_tokens.weight;
    let grad: Vec<f32> = weight.grad(&grads).unwrap().into_data().to_vec().unwrap();
    (value, grad)
}

#[test]
fn loss_and_gradients_do_not_depend_on_the_micro_batch_split() {
    let model = model();
    let (whole, g_whole) = split_loss(&model, &[(0, 4)]);
    let (halves, g_halves) = split_loss(&model, &[(0, 2), (2, 4)]);
    let (uneven, g_uneven) = split_loss(&model, &[(0, 1), (1, 4)]);
    assert!(whole.abs() > 1e-3, "a non-trivial loss: {whole}");
    for (other, g_other) in [(halves, &g_halves), (uneven, &g_uneven)] {
        assert!((whole - other).abs() < 1e-5, "{whole} vs {other}");
        let max = g_whole.iter().zip(g_other).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let scale = g_whole.iter().fold(0f32, |m, g| m.max(g.abs()));
        assert!(scale > 0.0 && max <= 1e-5 * scale.max(1.0), "gradient differs by {max} (scale {scale})");
    }
}

/// The embedding table's gradient (tied to the output projection: it gets gradient both from
/// the logits and from the decoder's input) and the first layer's q-projection gradient.
fn parameter_gradients(model: &QwenVl<B>, grads: &GradientsParams) -> Vec<f32> {
    let embed = grads.get::<NdArray<f32>, 2>(model.language_model.embed_tokens.weight.id).unwrap();
    let q = grads.get::<NdArray<f32>, 2>(model.language_model.layers[0].self_attn.q_proj.weight.id).unwrap();
    [embed.into_data().to_vec::<f32>().unwrap(), q.into_data().to_vec::<f32>().unwrap()].concat()
}

#[test]
fn chunked_gradients_equal_the_plain_backward_pass() {
    let model = model();
    let prompts = prompts();
    let responses: Vec<Vec<u32>> = vec![vec![11, 12, 13], vec![21], vec![31, 32], vec![41, 42, 43]];
    // a GRPO-shaped loss: −Σ A·logp·mask / tokens plus the k3 KL to a shifted reference
    let device = Default::default();
    let adv = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, -0.5, 0.7, -1.2], [4, 1]), &device);
    let chunk_loss = |logp: Tensor<B, 2>, mask: Tensor<B, 2>| {
        let kl = seethink_rl::grpo::kl_k3(logp.clone(), logp.clone().detach() - 0.1);
        ((logp.neg() * adv.clone().expand(mask.dims()) + kl) * mask).sum() / 9.0
    };
    let scored = response_logprobs(&model, &text(&prompts, &responses), scoring(1024)).unwrap();
    let plain = chunk_loss(scored.logp, scored.mask);
    let expected = parameter_gradients(&model, &GradientsParams::from_grads(plain.backward(), &model));
    let scale = expected.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0);
    for chunk_tokens in [1, 4, 1024] {
        let grads = chunked_gradients(&model, &text(&prompts, &responses), scoring(chunk_tokens), |c| {
            Ok(chunk_loss(c.logp, c.mask))
        })
        .unwrap();
        let actual = parameter_gradients(&model, &grads);
        let max = actual.iter().zip(&expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
        assert!(
            max <= 1e-5 * scale.max(1.0),
            "chunk {chunk_tokens}: gradient differs by {max} (scale {scale})"
        );
    }
}
