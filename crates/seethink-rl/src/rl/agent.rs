//! The GRPO learner as a burn-rl `PolicyLearner`: it trains on a rollout given as a batch of
//! transitions (one per response, group-major) and owns the optimizer, the frozen reference
//! model and the rollout counter.

use std::sync::Arc;

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, Optimizer};
use burn::record::Record;
use burn::rl::{LearnerTransitionBatch, PolicyLearner, RLTrainOutput};
use burn::tensor::backend::AutodiffBackend;
use burn::train::ItemLazy;
use seethink_models::generate::Completion;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};

use super::policy::{GrpoPolicy, PolicyWeights};
use crate::error::TrainError;
use crate::grpo::{Grpo, GrpoStats, RolloutPrompt};

type AdamWRecord<B> = <OptimizerAdaptor<AdamW, AnyVlm<B>, B> as Optimizer<AnyVlm<B>, B>>::Record;

/// What a learner checkpoint holds besides the policy weights: the optimizer state, the
/// number of updates (the LR schedule position) and of rollouts (the sampling seed offset).
#[derive(Record)]
pub struct GrpoAgentRecord<B: AutodiffBackend> {
    pub optimizer: AdamWRecord<B>,
    pub updates: usize,
    pub rollouts: usize,
}

/// A learner update's statistics, already on the host.
impl ItemLazy for GrpoStats {
    type ItemSync = Self;

    fn sync(self) -> Self {
        self
    }
}

/// GRPO as a burn-rl policy learner.
pub struct GrpoAgent<B: AutodiffBackend> {
    pub grpo: Grpo<B>,
    pub processor: Arc<Processor>,
    /// The verifier the environment rewards with: a transition's reward is its group's mean,
    /// and the learner needs each response's score (a deterministic function of the text).
    pub reward: Arc<dyn Reward>,
    /// The error of the last [`PolicyLearner::train`] call (burn-rl's learner has no error
    /// channel; the GRPO strategy takes it and stops the run).
    failure: Option<TrainError>,
}

impl<B: AutodiffBackend> GrpoAgent<B> {
    pub fn new(grpo: Grpo<B>, processor: Arc<Processor>, reward: Arc<dyn Reward>) -> Self {
        Self { grpo, processor, reward, failure: None }
    }

    /// The error of the last update, if it failed.
    pub fn take_failure(&mut self) -> Option<TrainError> {
        self.failure.take()
    }
}

impl<B: AutodiffBackend> PolicyLearner<B> for GrpoAgent<B> {
    type TrainContext = GrpoStats;
    type InnerPolicy = GrpoPolicy<B>;
    type Record = GrpoAgentRecord<B>;

    /// One GRPO learning phase on a rollout: `states` are the tasks and `actions` their
    /// responses, `group_size` consecutive ones per task.
    fn train(
        &mut self,
        input: LearnerTransitionBatch<B, GrpoPolicy<B>>,
    ) -> RLTrainOutput<GrpoStats, PolicyWeights<B>> {
        let tasks = input.states.0;
        let responses = input.actions.0;
        let n = self.grpo.config.group_size.max(1);
        let stats = if responses.len() != tasks.len() * n {
            self.failure = Some(TrainError::Rollout(format!(
                "{} responses for {} tasks × group size {n}",
                responses.len(),
                tasks.len()
            )));
            GrpoStats::default()
        } else {
            let batch: Vec<RolloutPrompt<B::InnerBackend>> = tasks
                .iter()
                .zip(responses.iter().step_by(n))
                .map(|(task, response)| RolloutPrompt { task: task.clone(), prompt: response.prompt.clone() })
                .collect();
            let rewards: Vec<RewardBreakdown> = responses
                .iter()
                .enumerate()
                .map(|(i, r)| self.reward.score(&tasks[i / n], &r.text))
                .collect();
            let completions: Vec<Completion> = responses
                .into_iter()
                .enumerate()
                .map(|(i, response)| Completion { prompt: i / n, ..response.completion })
                .collect();
            let pad_id = self.processor.tokenizer.pad_id;
            self.grpo.learn(&batch, &completions, &rewards, pad_id).unwrap_or_else(|error| {
                self.failure = Some(error.into());
                GrpoStats::default()
            })
        };
        RLTrainOutput { policy: PolicyWeights(self.grpo.learner.model.clone()), item: stats }
    }

    fn policy(&self) -> GrpoPolicy<B> {
        GrpoPolicy {
            model: self.grpo.learner.model.clone(),
            processor: self.processor.clone(),
            sampling: self.grpo.next_sampling(),
            group_size: self.grpo.config.group_size,
        }
    }

    fn update_policy(&mut self, update: GrpoPolicy<B>) {
        self.grpo.learner.model = update.model;
    }

    fn record(&self) -> GrpoAgentRecord<B> {
        GrpoAgentRecord {
            optimizer: self.grpo.learner.optimizer_record(),
            updates: self.grpo.learner.updates,
            rollouts: self.grpo.rollouts,
        }
    }

    fn load_record(mut self, record: GrpoAgentRecord<B>) -> Self {
        self.grpo.learner = self.grpo.learner.with_optimizer_record(record.optimizer);
        self.grpo.learner.updates = record.updates;
        self.grpo.rollouts = record.rollouts;
        self
    }
}
