//! Curricula for RL post-training of vision-language models: which tasks each phase of a run
//! trains on, and in which order.
//!
//! Two axes compose:
//! - **capability** ([`Staged`]: one phase per capability in any order, the paper's
//!   perception → textual reasoning → visual reasoning by default; [`Merged`]: all in one phase);
//! - **difficulty** inside a phase ([`AsIs`], [`EasyToHard`] by pass rate with seeded ties,
//!   [`DropSolved`], [`PassRateBand`]; tuples chain them): `Staged::paper().within(EasyToHard)`.
//!
//! A phase is one training run with its own optimizer and reference model (its starting
//! weights); the trainer (`seethink-rl`) runs the phases back to back. Adaptive policies draw
//! from live results through their [`TaskSampler`], whose state is checkpointed:
//! [`Plateau`] (a stage ends when its reward, accuracy or one capability's accuracy stops
//! improving; its [`PlateauSampler`] wraps any sampler) and [`LearningProgress`] (a bandit over
//! capability × level cells) ship as examples, [`Mixture`] draws capabilities by shares
//! ([`MixtureSampler`], for any phase), and three published methods as wrappers of
//! any curriculum: [`E2h`] (a Gaussian schedule over levels moving easy → hard by step),
//! [`Learnability`] (LILO's `p(1 − p)` weights from live accuracies) and [`Replay`] (a share
//! of each step from the earlier phases). A sampler may also gate what enters the update
//! ([`TaskSampler::admit`]): [`AccuracyBand`] is DAPO's dynamic sampling; and end a phase early:
//! [`ThresholdGate`] ends it once the policy answers its tasks well enough.
//!
//! A complete custom policy: text reasoning first, then a phase that re-draws the tasks the
//! policy got wrong before moving on. Phases and samplers speak of tasks by their index in the
//! run's task list (the pool); `seethink_rl::phases::train_curriculum` runs any such policy.
//!
//! ```
//! use seethink_curriculum::{Curriculum, Epochs, Phase, Order, Result, Staged, GroupResult, TaskSampler};
//! use seethink_data::{Capability, Task};
//! use serde_json::{json, Value};
//!
//! struct TextThenRetry;
//! impl Curriculum for TextThenRetry {
//!     fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
//!         let mut phases = Staged::new([Capability::TextReasoning]).phases(pool, seed)?;
//!         let all = (0..pool.len()).collect();
//!         phases.push(Phase { name: "retry".into(), tasks: all, order: Order::Shuffled, settings: Default::default() });
//!         Ok(phases)
//!     }
//!
//!     fn sampler(&self, phase: &Phase, _pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
//!         Ok(Box::new(Retry { epochs: Epochs::shuffled(phase.tasks.clone(), seed), failed: Vec::new() }))
//!     }
//! }
//!
//! /// Epochs, but tasks answered wrong come back first.
//! struct Retry { epochs: Epochs, failed: Vec<usize> }
//! impl TaskSampler for Retry {
//!     fn next_batch(&mut self, count: usize) -> Vec<usize> {
//!         let retried = self.failed.len().min(count);
//!         let mut batch: Vec<usize> = self.failed.drain(..retried).collect();
//!         batch.extend(self.epochs.next_batch(count - retried));
//!         batch
//!     }
//!     fn observe(&mut self, results: &[GroupResult]) {
//!         self.failed.extend(results.iter().filter(|r| r.accuracy < 1.0).map(|r| r.task));
//!     }
//!     fn state(&self) -> Value {
//!         json!({ "epochs": self.epochs.state(), "failed": self.failed })
//!     }
//!     fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
//!         self.failed = serde_json::from_value(state["failed"].clone()).map_err(|e| e.to_string())?;
//!         self.epochs.restore(&state["epochs"])
//!     }
//! }
//!
//! let task = |id: &str, capability| Task::text(id, "?", "1", capability);
//! let pool = vec![task("a", Capability::Perception), task("b", Capability::TextReasoning)];
//! let phases = TextThenRetry.phases(&pool, 0)?;
//! assert_eq!((phases[0].tasks.clone(), phases[1].tasks.len()), (vec![1], 2));
//! let mut sampler = TextThenRetry.sampler(&phases[1], &pool, 0)?;
//! let first = sampler.next_batch(1)[0];
//! let wrong = GroupResult { task: first, capability: pool[first].capability, level: None, rewards: vec![0.0; 4], reward: 0.0, accuracy: 0.0, response_length: 3.0, mean_abs_advantage: 0.0 };
//! sampler.observe(&[wrong]);
//! assert_eq!(sampler.next_batch(1), [first]);
//! # Ok::<(), seethink_curriculum::CurriculumError>(())
//! ```

pub mod config;
pub mod curriculum;
pub mod difficulty;
pub mod e2h;
pub mod error;
pub mod gate;
pub mod learnability;
pub mod mixture;
pub mod phase;
pub mod plateau;
pub mod progress;
pub mod replay;
pub mod sampler;
pub mod threshold;

pub use config::{CurriculumConfig, DifficultyKind, PlateauConfig, Policy};
pub use curriculum::{default_sampler, Curriculum, Merged, Staged};
pub use difficulty::{Arranged, AsIs, Difficulty, DropSolved, EasyToHard, PassRateBand};
pub use e2h::E2h;
pub use error::{CurriculumError, Result};
pub use gate::AccuracyBand;
pub use learnability::Learnability;
pub use mixture::{Mixture, MixtureSampler};
pub use phase::{phase_named, unknown_phase, Order, Phase, PhaseSettings};
pub use plateau::{Plateau, PlateauSampler, Watched};
pub use progress::LearningProgress;
pub use replay::Replay;
pub use sampler::{Epochs, GroupResult, TaskSampler};
pub use threshold::{ThresholdGate, ThresholdSampler};
