//! The policy side of GRPO in burn-rl's terms: tasks are observations, sampled responses are
//! actions, and the policy state is the model's weights.

use std::sync::Arc;

use burn::module::{AutodiffModule, Module};
use burn::rl::{Batchable, Policy, PolicyState, SliceAccess};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use burn::train::ItemLazy;
use seethink_data::Task;
use seethink_models::generate::{Completion, Prompt, SamplingConfig};
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;

use crate::error::Result;
use crate::grpo::sample_groups;

/// Host-side items moved through burn-rl as one batch (a plain vector, row `i` = item `i`).
#[derive(Clone, Debug)]
pub struct Batch<T>(pub Vec<T>);

impl<T> Batchable for Batch<T> {
    fn batch(value: Vec<Self>) -> Self {
        Batch(value.into_iter().flat_map(|b| b.0).collect())
    }

    fn unbatch(self) -> Vec<Self> {
        self.0.into_iter().map(|item| Batch(vec![item])).collect()
    }
}

/// Replay-buffer storage of host-side rows (burn-rl's buffer is only used by off-policy
/// strategies; GRPO is on-policy and trains on each rollout once).
impl<B: Backend, T: Clone> SliceAccess<B> for Batch<T> {
    /// `capacity` rows, each a copy of the sample's first row until written.
    fn zeros_like(sample: &Self, capacity: usize, _device: &B::Device) -> Self {
        Batch(sample.0.iter().take(1).cycle().take(capacity).cloned().collect())
    }

    /// The rows at `indices` (rows are the only dimension).
    fn select(self, _dim: usize, indices: Tensor<B, 1, Int>) -> Self {
        let rows = indices.into_data().convert::<i64>().into_vec::<i64>().unwrap_or_default();
        Batch(rows.into_iter().map(|row| self.0[row as usize].clone()).collect())
    }

    fn slice_assign_inplace(&mut self, index: usize, value: Self) {
        for (offset, item) in value.0.into_iter().enumerate() {
            self.0[index + offset] = item;
        }
    }
}

/// A sampled response: the encoded prompt it answers, the sample and its decoded text.
#[derive(Clone, Debug)]
pub struct Response<B: Backend> {
    pub prompt: Prompt<B>,
    pub completion: Completion,
    pub text: String,
}

/// What the policy reports per task (burn-rl's action context): its group of responses'
/// mean length and the share that ended on a stop token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResponseContext {
    pub mean_tokens: f64,
    pub stopped: f64,
}

impl ResponseContext {
    /// The context of one group of responses.
    pub fn of(group: &[Response<impl Backend>]) -> Self {
        let count = group.len().max(1) as f64;
        Self {
            mean_tokens: group.iter().map(|r| r.completion.ids.len()).sum::<usize>() as f64 / count,
            stopped: group.iter().filter(|r| r.completion.stopped).count() as f64 / count,
        }
    }
}

impl ItemLazy for ResponseContext {
    type ItemSync = Self;

    fn sync(self) -> Self {
        self
    }
}

/// The policy's state: the trainable model (its record is what checkpoints save).
#[derive(Clone, Debug)]
pub struct PolicyWeights<B: AutodiffBackend>(pub AnyVlm<B>);

impl<B: AutodiffBackend> PolicyState<B> for PolicyWeights<B> {
    type Record = <AnyVlm<B> as Module<B>>::Record;

    fn into_record(self) -> Self::Record {
        self.0.into_record()
    }

    fn load_record(&self, record: Self::Record) -> Self {
        PolicyWeights(self.0.clone().load_record(record))
    }
}

/// The sampling policy of one rollout: the current weights, the processor that turns a task
/// into model input, and the rollout's sampling settings (seeded per rollout).
#[derive(Clone)]
pub struct GrpoPolicy<B: AutodiffBackend> {
    pub model: AnyVlm<B>,
    pub processor: Arc<Processor>,
    pub sampling: SamplingConfig,
    /// Responses per task (n).
    pub group_size: usize,
}

impl<B: AutodiffBackend> GrpoPolicy<B> {
    /// `n` responses per task (group-major; greedy and one per task if `deterministic`).
    pub fn respond(&self, tasks: &[Task], deterministic: bool) -> Result<Vec<Response<B::InnerBackend>>> {
        let model = self.model.valid();
        let device = model.devices().into_iter().next().unwrap_or_default();
        let prompts = tasks
            .iter()
            .map(|task| self.processor.encode_task(task, &device))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (n, sampling) = match deterministic {
            true => (1, SamplingConfig { temperature: 0.0, ..self.sampling.clone() }),
            false => (self.group_size, self.sampling.clone()),
        };
        let tokenizer = &self.processor.tokenizer;
        sample_groups(&model, &prompts, n, &sampling, tokenizer)?
            .into_iter()
            .map(|completion| {
                Ok(Response {
                    prompt: prompts[completion.prompt].clone(),
                    text: tokenizer.decode(&completion.ids, true)?,
                    completion,
                })
            })
            .collect()
    }
}

impl<B: AutodiffBackend> Policy<B> for GrpoPolicy<B> {
    type Observation = Batch<Task>;
    /// A sampled stand-in for the token distribution: the responses with their log-probs.
    type ActionDistribution = Batch<Response<B::InnerBackend>>;
    type Action = Batch<Response<B::InnerBackend>>;
    type ActionContext = ResponseContext;
    type PolicyState = PolicyWeights<B>;

    fn forward(&mut self, obs: Batch<Task>) -> Self::ActionDistribution {
        self.action(obs, false).0
    }

    /// The responses to every task (group-major) and one context per task.
    ///
    /// # Panics
    /// If a task cannot be encoded or sampled: burn-rl's policy has no error channel (the GRPO
    /// strategy turns such a panic back into an error).
    fn action(&mut self, obs: Batch<Task>, deterministic: bool) -> (Self::Action, Vec<ResponseContext>) {
        let responses = self.respond(&obs.0, deterministic).unwrap_or_else(|error| panic!("{error}"));
        let n = responses.len() / obs.0.len().max(1);
        let contexts = responses.chunks(n.max(1)).map(ResponseContext::of).collect();
        (Batch(responses), contexts)
    }

    fn update(&mut self, update: PolicyWeights<B>) {
        self.model = update.0;
    }

    fn state(&self) -> PolicyWeights<B> {
        PolicyWeights(self.model.clone())
    }

    fn load_record(self, record: <PolicyWeights<B> as PolicyState<B>>::Record) -> Self {
        Self { model: self.model.load_record(record), ..self }
    }
}
