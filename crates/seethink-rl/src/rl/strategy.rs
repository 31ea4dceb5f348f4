//! GRPO's on-policy loop as a custom burn-train `RLStrategy`. Each step, burn-train's
//! environment runner plays `prompts_per_step` episodes (the policy answers a task with a
//! group of responses, the environment rewards it), which feeds burn-train's event processor
//! (episode and agent metrics, renderer, metric loggers); the learner then trains once on the
//! rollout; the step's GRPO metrics go to `metrics.jsonl`; burn-train's checkpointer saves
//! every N steps and its interrupter can stop the run between steps.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::Progress;
use burn::rl::{Batchable, PolicyLearner, TransitionBatch};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use burn::train::{AgentEnvBaseLoop, AgentEnvLoop, RLComponents, RLEventProcessorType, RLStrategy};

use super::policy::{Batch, GrpoPolicy};
use super::{GrpoAgent, GrpoComponents, TaskSource};
use crate::error::TrainError;
use crate::metrics::{grpo_step_metrics, MetricsLog};

/// The GRPO strategy; an error that stops the run is kept in `failure` for the caller.
pub struct GrpoStrategy {
    pub prompts_per_step: usize,
    pub metrics: MetricsLog,
    pub failure: Arc<Mutex<Option<TrainError>>>,
}

impl GrpoStrategy {
    fn fail(&self, error: TrainError) {
        tracing::error!(%error, "GRPO stopped");
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the rollout panicked".into())
}

impl<B: AutodiffBackend> RLStrategy<GrpoComponents<B>> for GrpoStrategy {
    fn train_loop(
        &self,
        components: RLComponents<GrpoComponents<B>>,
        agent: &mut GrpoAgent<B>,
        starting_step: usize,
        source: TaskSource,
    ) -> (GrpoPolicy<B>, RLEventProcessorType<GrpoComponents<B>>) {
        let RLComponents {
            num_steps, mut checkpointer, interrupter, mut event_processor, event_store, ..
        } = components;
        let per_step = self.prompts_per_step.max(1);
        for step in starting_step..=num_steps {
            if interrupter.should_stop() {
                tracing::info!(
                    reason = interrupter.get_message().unwrap_or_default(),
                    "training interrupted"
                );
                break;
            }
            let started = Instant::now();
            // A fresh runner per step: the policy samples with this rollout's seed, and the
            // environment starts at this step's first task.
            let step_source = TaskSource { start: (step - 1) * per_step, ..source.clone() };
            let mut runner = AgentEnvBaseLoop::<B::InnerBackend, GrpoComponents<B>>::new(
                step_source,
                agent.policy(),
                false,
                false,
            );
            let mut progress =
                Progress { items_processed: (step - 1) * per_step, items_total: num_steps * per_step };
            let rollout = catch_unwind(AssertUnwindSafe(|| {
                runner.run_steps(per_step, &mut event_processor, &interrupter, &mut progress)
            }));
            let timesteps = match rollout {
                Ok(timesteps) if timesteps.len() == per_step => timesteps,
                Ok(_) => break, // interrupted mid-rollout: the step is not trained
                Err(payload) => {
                    self.fail(TrainError::Rollout(panic_message(payload.as_ref())));
                    break;
                }
            };
            let device = Default::default();
            let returns: Vec<f32> = timesteps.iter().map(|t| t.cum_reward as f32).collect();
            let (states, actions): (Vec<Batch<_>>, Vec<Batch<_>>) =
                timesteps.into_iter().map(|t| (t.transition.state, t.transition.action)).unzip();
            let states = Batch::batch(states);
            let batch = TransitionBatch {
                next_states: states.clone(),
                states,
                actions: Batch::batch(actions),
                rewards: Tensor::<B, 2>::from_data(TensorData::new(returns, [per_step, 1]), &device),
                dones: Tensor::<B, 2>::ones([per_step, 1], &device),
            };
            let mut output = agent.train(batch);
            if let Some(error) = agent.take_failure() {
                self.fail(error);
                break;
            }
            output.item.seconds = started.elapsed().as_secs_f64();
            if let Err(error) = self.metrics.record(step, num_steps, &grpo_step_metrics(&output.item)) {
                self.fail(error);
                break;
            }
            if let Some(checkpointer) = &mut checkpointer {
                checkpointer.checkpoint(&output.policy, agent, step, &event_store);
            }
        }
        (agent.policy(), event_processor)
    }
}
