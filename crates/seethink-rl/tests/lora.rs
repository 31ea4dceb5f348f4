//! LoRA training on the tiny checkpoint: the KL reference is the policy's own base (the same
//! parameters, no adapters, no copy), GRPO changes only the adapters, AdamW holds state for
//! them only, and the final export is the merged model.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{backend::Backend, Distribution, Tensor};
use common::{base_model, checkpoint, task, tiny_config, weights, Letters, B, I};
use seethink_models::nn::{LoraAdapter, LoraConfig};
use seethink_models::{AnyVlm, TokenBatch, Vlm};
use seethink_rl::config::{ActorConfig, AlgorithmConfig, RolloutConfig, Trainer};
use seethink_rl::data_parallel::Worker;
use seethink_rl::grpo::Grpo;
use seethink_rl::learner::{apply_update, new_learner};
use seethink_rl::run::train_on;

fn lora() -> LoraConfig {
    LoraConfig { rank: 4, alpha: 8.0, seed: 5, ..Default::default() }
}

/// The ids of every float parameter of a module.
fn param_ids<Bk: Backend, M: Module<Bk>>(model: &M) -> BTreeSet<ParamId> {
    struct Ids(BTreeSet<ParamId>);
    impl<Bk: Backend> ModuleVisitor<Bk> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            self.0.insert(param.id);
        }
    }
    let mut ids = Ids(BTreeSet::new());
    model.visit(&mut ids);
    ids.0
}

fn logits<Bk: seethink_models::kernels::Kernels>(model: &AnyVlm<Bk>) -> Vec<f32> {
    let tokens = TokenBatch::single(vec![304, 17, 42, 99, 5, 250, 3]);
    model.forward(&tokens, None).unwrap().into_data().to_vec::<f32>().unwrap()
}

/// The model's adapters with B drawn from N(0, 0.1²) (fresh ones have B = 0, where the
/// adapted and base models agree).
fn nonzero_b(model: AnyVlm<B>) -> AnyVlm<B> {
    let adapters = model
        .adapters()
        .into_iter()
        .map(|(path, a)| {
            let b = Tensor::random(a.lora_b.dims(), Distribution::Normal(0.0, 0.1), &Default::default());
            (path, LoraAdapter::from_factors(a.lora_a.val(), b, &lora()))
        })
        .collect();
    model.with_adapters(adapters)
}

#[test]
fn the_reference_is_the_policys_base_without_adapters() {
    let model = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap();
    let policy = nonzero_b(model.with_lora(&lora()).unwrap());
    let layers = match &policy {
        AnyVlm::QwenVl(m) => m.language_model.layers.len(),
        AnyVlm::InternVl(m) => m.language_model.layers.len(),
    };
    assert_eq!(policy.adapters().len(), 7 * layers);
    let learner = new_learner(policy, &ActorConfig::default(), 0);
    // the learner names parameters by their paths (`learner::with_path_ids`)
    let base_ids = param_ids(&learner.model().model.without_lora());
    let algorithm = AlgorithmConfig { kl_coef: 0.1, ..Default::default() };
    let grpo = Grpo::new(&learner, algorithm, ActorConfig::default(), RolloutConfig::default());
    let reference = grpo.reference().unwrap();

    // the reference holds no adapter, and exactly the base's parameters: the policy's own
    // (same ids, a clone sharing storage), not a second copy
    assert!(reference.adapters().is_empty());
    assert_eq!(param_ids(reference), base_ids);
    assert!(param_ids(&learner.model()).is_superset(&base_ids));
    assert_eq!(reference.num_params(), base_model().num_params());
    assert_eq!(logits(reference), logits(&base_model()), "the reference computes the base model");
    let policy = learner.model().model;
    let (policy, base) = (logits(&policy), logits(&base_model()));
    assert!(policy.iter().zip(&base).any(|(p, b)| (p - b).abs() > 1e-3), "the adapters change the policy");
}

#[test]
fn grpo_with_lora_changes_only_the_adapters_and_exports_the_merged_model() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2"), task("three", "three", "3")];
    let mut config = tiny_config(dir.path(), Trainer::Grpo, 3, 2);
    config.actor.lora = Some(lora());
    config.algorithm.kl_coef = 0.1;
    let trained: AnyVlm<I> = train_on::<B>(&config, tasks, Arc::new(Letters), &Default::default()).unwrap();

    let base = base_model();
    assert_eq!(weights(&trained.without_lora()), weights(&base), "base weights bitwise unchanged");
    let fresh = AnyVlm::<I>::load(checkpoint(), &Default::default()).unwrap().with_lora(&lora()).unwrap();
    let (before, after) = (fresh.adapters(), trained.adapters());
    assert_eq!(before.len(), after.len());
    let moved = |f: fn(&LoraAdapter<I>) -> Tensor<I, 2>| {
        before.iter().zip(&after).filter(|((_, x), (_, y))| !f(x).equal(f(y)).all().into_scalar()).count()
    };
    assert_eq!(moved(|a| a.lora_b.val()), after.len(), "every B trained");
    assert!(moved(|a| a.lora_a.val()) > 0, "A trained once B is nonzero");

    // the merged model computes the adapted one, and the final export is it (in the
    // checkpoint's dtype, bf16)
    let merged = trained.clone().merge_lora();
    assert!(merged.adapters().is_empty());
    let (adapted, merged_logits) = (logits(&trained), logits(&merged));
    let err = merged_logits.iter().zip(&adapted).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(err < 1e-5, "merged vs adapters: {err}");
    let exported = AnyVlm::<I>::load(dir.path().join("final"), &Default::default()).unwrap();
    let bf16 = |x: f32| f32::from_bits(((x.to_bits() + 0x7fff + ((x.to_bits() >> 16) & 1)) >> 16) << 16);
    let rounded: Vec<f32> = weights(&merged).into_iter().map(bf16).collect();
    assert_eq!(weights(&exported), rounded);
    assert_ne!(logits(&base), adapted);

    // and the run writes its adapters as a PEFT adapter directory: A and B of every adapter
    let adapter = dir.path().join(seethink_rl::run::ADAPTER_DIR);
    assert!(adapter.join("adapter_config.json").exists());
    let bytes = std::fs::read(adapter.join("adapter_model.safetensors")).unwrap();
    assert_eq!(safetensors::SafeTensors::deserialize(&bytes).unwrap().len(), 2 * after.len());
}

#[test]
fn adamw_holds_state_for_the_adapters_only() {
    let model = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap().with_lora(&lora()).unwrap();
    let mut learner = new_learner(model, &ActorConfig { lr: 1e-3, ..Default::default() }, 0);
    let policy = learner.model();
    let base_ids = param_ids(&policy.model.without_lora());
    let adapter_ids: BTreeSet<ParamId> =
        policy.model.adapters().iter().flat_map(|(_, a)| [a.lora_a.id, a.lora_b.id]).collect();
    let loss =
        policy.model.forward(&TokenBatch::single(vec![304, 17, 42, 99]), None).unwrap().powi_scalar(2).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &policy);
    assert_eq!(grads.len(), adapter_ids.len(), "gradients for the adapters only");
    apply_update(&mut learner, grads, 1.0, &Worker::alone()).unwrap();
    let (_, optimizer, _) = learner.records().unwrap();
    assert_eq!(optimizer.keys().copied().collect::<BTreeSet<_>>(), adapter_ids);
    assert_eq!(weights(&learner.model().model.without_lora()), weights(&base_model()));
    assert!(param_ids(&learner.model()).is_superset(&base_ids));
}
