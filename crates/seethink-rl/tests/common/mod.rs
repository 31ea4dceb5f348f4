//! Helpers shared by the training tests: the tiny checkpoint, text-only tasks, weight dumps.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};
use seethink_data::{Capability, Task};
use seethink_models::generate::Prompt;
use seethink_models::processing::TextTokenizer;
use seethink_rl::grpo::RolloutPrompt;

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
        difficulty: None,
        source: "test".into(),
        meta: serde_json::Value::Null,
    }
}

/// Rollout prompts of `(id, prompt text, answer)` triples, the text tokenized as is.
pub fn text_prompts(tokenizer: &TextTokenizer, items: &[(&str, &str, &str)]) -> Vec<RolloutPrompt<I>> {
    items
        .iter()
        .map(|&(id, text, answer)| RolloutPrompt {
            task: task(id, text, answer),
            prompt: Prompt { ids: tokenizer.encode(text).unwrap(), images: None },
        })
        .collect()
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
