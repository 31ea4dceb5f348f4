//! Helpers shared by the training tests: the tiny checkpoint, text-only tasks, weight dumps.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{backend::Backend, Tensor};
use seethink_data::{Capability, Task};
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::config::{
    ActorConfig, AlgorithmConfig, DataConfig, RolloutConfig, TrainConfig, Trainer, TrainerConfig,
};
use seethink_rl::prompt::FormatPrompt;

pub type B = Autodiff<NdArray<f32>>;
pub type I = NdArray<f32>;

/// The tiny committed Qwen3-VL checkpoint.
pub fn checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint")
}

/// A text-only task.
pub fn task(id: &str, prompt: &str, answer: &str) -> Task {
    Task {
        id: id.into(),
        prompt: prompt.into(),
        images: vec![],
        answer: answer.into(),
        capability: Capability::TextReasoning,
        level: None,
        pass_rate: None,
        source: "test".into(),
        meta: serde_json::Value::Null,
    }
}

/// Two perception tasks of the procedural benchmark (one image each), so that the vision tower
/// runs too, then two text tasks.
pub fn image_and_text_tasks() -> Vec<Task> {
    let images = seethink_data::synth::generate(&seethink_data::synth::SynthConfig::uniform(2), 5)
        .unwrap()
        .into_iter()
        .map(|t| t.task)
        .filter(|t| !t.images.is_empty())
        .take(2);
    images.chain([task("one", "one", "1"), task("two", "two", "2")]).collect()
}

/// A tiny run of the committed checkpoint in `out`: `trainer`, `steps` steps of `prompts`
/// tasks, no format instruction, a checkpoint every step (tests change what they need).
pub fn tiny_config(out: &Path, trainer: Trainer, steps: usize, prompts: usize) -> TrainConfig {
    TrainConfig {
        model: checkpoint(),
        data: DataConfig {
            train: "in-memory".into(),
            capability: None,
            sources: Vec::new(),
            shuffle: true,
            max_prompt_length: None,
            format_prompt: FormatPrompt::Plain,
            min_pixels: None,
            max_pixels: None,
            seed: 3,
        },
        algorithm: AlgorithmConfig { trainer, ..Default::default() },
        // a few rows of logits at a time, so that every run test goes through chunked scoring
        actor: ActorConfig {
            lr: 1e-3,
            mini_batches: 1,
            micro_batch_size: 8,
            logits_chunk_tokens: 5,
            ..Default::default()
        },
        rollout: RolloutConfig { n: 4, max_new_tokens: 3, seed: 11, ..Default::default() },
        trainer: TrainerConfig {
            steps,
            prompts_per_step: prompts,
            save_every: 1,
            keep_last: 2,
            out: out.into(),
            tensorboard: false,
            ..Default::default()
        },
        curriculum: None,
        eval: None,
    }
}

/// The `key` value of every line of a run's `metrics.jsonl`.
pub fn logged(run: &Path, key: &str) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()[key].as_f64().unwrap())
        .collect()
}

/// The vision tower's and the language model's weights of a model.
pub fn vision_and_text<Bk: Backend>(model: &AnyVlm<Bk>) -> (Vec<f32>, Vec<f32>) {
    match model {
        AnyVlm::QwenVl(m) => (weights(&m.visual), weights(&m.language_model)),
        AnyVlm::InternVl(m) => (weights(&m.visual), weights(&m.language_model)),
    }
}

/// Every float parameter of a module, in visiting order.
pub fn weights<Bk: Backend, M: Module<Bk>>(model: &M) -> Vec<f32> {
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

/// The committed checkpoint's weights, without autodiff.
pub fn base_model() -> AnyVlm<I> {
    use burn::module::AutodiffModule;
    AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap().valid()
}

/// The tensors of a safetensors file as f32 (ints converted), with their shapes.
pub fn tensors(path: PathBuf) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = match view.dtype() {
                safetensors::Dtype::F32 => {
                    view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
                }
                safetensors::Dtype::I64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect(),
                other => panic!("{name}: {other:?}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// `|a − b| / max(|b|, floor)`, the largest over the elements.
pub fn max_relative(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(floor)).fold(0.0, f32::max)
}

/// Reward: the share of letters among the reply's characters (a dense, deterministic signal).
pub struct Letters;

impl Reward for Letters {
    fn score(&self, _task: &Task, response: &str) -> RewardBreakdown {
        let total = response.chars().count().max(1) as f32;
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        RewardBreakdown { overall: letters / total, format: 0.0, accuracy: letters / total }
    }
}

/// Every parameter's gradient in `grads`, in module order (parameters without one are left out),
/// and how many parameters have one.
pub fn flat_gradients(model: &AnyVlm<B>, grads: &GradientsParams) -> (Vec<f32>, usize) {
    struct Collect<'a>(&'a GradientsParams, Vec<f32>, usize);
    impl ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.0.get::<I, D>(param.id) {
                self.1.extend(g.into_data().to_vec::<f32>().unwrap());
                self.2 += 1;
            }
        }
    }
    let mut c = Collect(grads, Vec::new(), 0);
    model.visit(&mut c);
    (c.1, c.2)
}
