//! GRPO options: a frozen vision tower does not move; the online filter drops groups whose
//! accuracy is all-or-nothing; with KL off no reference model is kept.

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};
use seethink_data::{Capability, Task};
use seethink_models::generate::{Prompt, SamplingConfig};
use seethink_models::processing::TextTokenizer;
use seethink_models::QwenVl;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::grpo::{Grpo, GrpoConfig, GrpoLossConfig, RolloutPrompt};
use seethink_rl::trainer::{Learner, OptimConfig};

type B = Autodiff<NdArray<f32>>;
type I = NdArray<f32>;

fn checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint")
}

/// Accuracy 1 for prompts whose id starts with "yes", 0 otherwise; overall = share of letters.
struct Scripted;

impl Reward for Scripted {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let accuracy = if task.id.starts_with("yes") { 1.0 } else { 0.0 };
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        RewardBreakdown { overall: letters / response.chars().count().max(1) as f32, format: 0.0, accuracy }
    }
}

fn batch(tokenizer: &TextTokenizer) -> Vec<RolloutPrompt<I>> {
    ["yes-1", "no-1", "yes-2"]
        .iter()
        .map(|id| RolloutPrompt {
            task: Task {
                id: id.to_string(),
                prompt: id.to_string(),
                images: vec![],
                answer: String::new(),
                capability: Capability::TextReasoning,
                level: None,
                difficulty: None,
                source: "test".into(),
                meta: serde_json::Value::Null,
            },
            prompt: Prompt { ids: tokenizer.encode(id).unwrap(), images: None },
        })
        .collect()
}

fn weights<Bk: Backend, M: Module<Bk>>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<Bk: Backend> ModuleVisitor<Bk> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            self.0.extend(param.val().into_data().convert::<f32>().to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

fn config(online_filter: Option<(f32, f32)>, kl_coef: f32) -> GrpoConfig {
    GrpoConfig {
        group_size: 4,
        mini_batches: 1,
        micro_batch_size: 12,
        sampling: SamplingConfig { max_new_tokens: 3, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 5 },
        loss: GrpoLossConfig { kl_coef, ..Default::default() },
        online_filter,
        ..Default::default()
    }
}

#[test]
fn frozen_vision_tower_does_not_move() {
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let mut model = QwenVl::<B>::load(checkpoint(), &Default::default()).unwrap();
    model.visual = model.visual.no_grad();
    let vision_before = weights(&model.visual);
    let text_before = weights(&model.language_model);
    let mut grpo = Grpo::new(Learner::new(model, OptimConfig { lr: 1e-2, ..Default::default() }), config(None, 0.01));
    let stats = grpo.step(&batch(&tokenizer), &Scripted, &tokenizer).unwrap();
    assert_eq!(stats.updates, 1);
    assert!(grpo.reference().is_some());
    assert_eq!(weights(&grpo.learner.model.visual), vision_before);
    assert_ne!(weights(&grpo.learner.model.language_model), text_before);
}

#[test]
fn online_filter_drops_all_or_nothing_groups_and_kl_off_needs_no_reference() {
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let model = QwenVl::<B>::load(checkpoint(), &Default::default()).unwrap();
    let before = weights(&model);
    let learner = Learner::new(model, OptimConfig { lr: 1e-2, ..Default::default() });
    // every group has accuracy exactly 0 or 1: all are filtered, no update happens
    let mut grpo = Grpo::new(learner, config(Some((0.0, 1.0)), 0.0));
    assert!(grpo.reference().is_none());
    let stats = grpo.step(&batch(&tokenizer), &Scripted, &tokenizer).unwrap();
    assert_eq!((stats.groups, stats.groups_kept, stats.updates), (3, 0, 0));
    assert_eq!(weights(&grpo.learner.model), before);
    // without the filter the same step updates the policy
    grpo.config.online_filter = None;
    let stats = grpo.step(&batch(&tokenizer), &Scripted, &tokenizer).unwrap();
    assert_eq!((stats.groups_kept, stats.updates), (3, 1));
    assert_ne!(weights(&grpo.learner.model), before);
}
