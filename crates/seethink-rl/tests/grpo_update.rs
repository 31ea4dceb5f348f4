//! A whole GRPO update against PyTorch: the learning phase of a step (`Grpo::learn`: group
//! advantages, old and reference log-probs at the sampling temperature, the clip-higher +
//! dual-clip loss with the k3 KL, token-mean over two micro-batches per mini-batch, gradient
//! clipping, AdamW; two mini-batches = two updates) on a fixed rollout of the tiny Qwen3-VL
//! (an image prompt and a text prompt, transformers' own token ids and pixel values), against
//! the same update in transformers + torch autograd following EasyR1's formulas
//! (`tests/fixtures/grpo_update.py`, which wrote the case and the reference).

//!
//! Here on `Autodiff<NdArray<f32>>` (the host kernels); `grpo_update_generic.rs` runs it through
//! the default kernels.

mod common;
mod pytorch_update;

#[test]
fn a_grpo_update_matches_pytorch() {
    pytorch_update::update_matches_pytorch::<common::B>();
}

/// `learn` is public: a rollout that is not whole groups of `rollout.n` is an error naming both
/// counts, not a panic, and the weights are untouched.
#[test]
fn a_rollout_of_partial_groups_is_refused() {
    use seethink_models::AnyVlm;
    use seethink_rl::config::{ActorConfig, AlgorithmConfig, RolloutConfig};
    use seethink_rl::grpo::{Grpo, GrpoStats, Scored};
    use seethink_rl::learner::{inference_model, new_learner};
    use seethink_rl::logprobs::Sequence;

    let model = AnyVlm::<common::B>::load(common::checkpoint(), &Default::default()).unwrap();
    let actor = ActorConfig::default();
    let mut learner = new_learner(model, &actor, 0);
    let rollout_config = RolloutConfig { n: 2, ..Default::default() };
    let mut grpo = Grpo::new(&learner, AlgorithmConfig::default(), actor, rollout_config);
    let rollout: Vec<Scored<common::I>> = (0..3)
        .map(|i| Scored {
            sequence: Sequence { prompt: vec![5, 6, 7], response: vec![8 + i, 9], images: None },
            score: i as f32,
        })
        .collect();
    let policy = inference_model(&learner).unwrap();
    let before = common::weights(&policy);
    let error = grpo.learn(&mut learner, policy, rollout, 0, &mut GrpoStats::default()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("3 scored sequences") && message.contains("rollout.n = 2"), "{message}");
    assert_eq!(common::weights(&inference_model(&learner).unwrap()), before);
}
