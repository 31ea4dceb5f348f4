//! Time of one GRPO update on ndarray: old and reference forwards, policy forward + backward,
//! global-norm clip and AdamW, for 8 sequences of 32 prompt + 31 response tokens.
//!
//! `cargo bench -p seethink-rl --bench grpo_step`; `benches/grpo_step_torch.py` runs the same
//! step in PyTorch on the same checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use seethink_models::AnyVlm;
use seethink_rl::config::ActorConfig;
use seethink_rl::grpo::{GrpoLossConfig, TokenBatchLoss};
use seethink_rl::learner::{apply_update, inference_model, new_learner};
use seethink_rl::logprobs::{response_logprobs, Scoring};
use seethink_rl::policy::{sequence_gradients, Sequence};
use seethink_rl::sft::to_autodiff;

type B = Autodiff<NdArray<f32>>;
type I = NdArray<f32>;

fn main() {
    let dir = std::env::var("SEETHINK_BENCH_MODEL").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint")
    });
    let model = AnyVlm::<B>::load(&dir, &Default::default()).unwrap();
    let reference = model.clone();
    let mut learner = new_learner(model, &ActorConfig { lr: 1e-6, ..Default::default() }, 0);
    learner.lr_step();
    let reference: AnyVlm<I> = burn::module::AutodiffModule::valid(&reference);
    let sequences: Vec<Sequence<I>> = (0..8u32)
        .map(|s| Sequence {
            prompt: (0..32).map(|i| 1 + (i * 7 + s) % 250).collect(),
            response: (0..31).map(|i| 1 + (i * 11 + 3 * s) % 250).collect(),
            images: None,
        })
        .collect();
    let prompts: Vec<Vec<u32>> = sequences.iter().map(|s| s.prompt.clone()).collect();
    let responses: Vec<Vec<u32>> = sequences.iter().map(|s| s.response.clone()).collect();
    let tokens = (8 * 31) as f32;
    let config = GrpoLossConfig::default();
    let scoring = Scoring { pad_id: 0, chunk_tokens: 1024, temperature: 1.0 };
    let mut step = || {
        let started = Instant::now();
        let policy = inference_model(&learner);
        let old = response_logprobs(&policy, &prompts, &responses, None, scoring).unwrap().logp;
        let reference = response_logprobs(&reference, &prompts, &responses, None, scoring).unwrap().logp;
        let model = learner.model();
        let trained: Vec<Sequence<B>> = sequences.iter().cloned().map(to_autodiff).collect();
        let advantages = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1.0f32, -1.0, 0.5, -0.5, 1.0, -1.0, 0.5, -0.5], [8, 1]),
            &Default::default(),
        );
        let grads = sequence_gradients(&model.model, &trained, scoring, |c| {
            let columns =
                |t: &Tensor<I, 2>| Tensor::from_inner(t.clone().narrow(1, c.range.start, c.range.len()));
            Ok(TokenBatchLoss {
                logp: c.logp,
                old_logp: columns(&old),
                ref_logp: Some(columns(&reference)),
                advantages: advantages.clone(),
                weights: c.mask,
            }
            .terms(&config, tokens)
            .loss)
        })
        .unwrap();
        apply_update(&mut learner, grads, 1.0);
        started.elapsed().as_secs_f64()
    };
    step();
    let best = (0..10).map(|_| step()).fold(f64::INFINITY, f64::min);
    println!("{}: GRPO update, 8 x 63 tokens: {:.1} ms (best of 10)", dir.display(), best * 1e3);
}
