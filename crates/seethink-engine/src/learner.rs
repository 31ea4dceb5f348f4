//! The training state: the policy (a [`PolicyModel`] module), AdamW and the LR schedule, the one
//! update rule GRPO and SFT share, and the state's checkpoint records.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use seethink_models::checkpoint::Dtype;
use seethink_models::nn::frozen::float_dtype;
use seethink_models::nn::precision::compute_dtype;
use seethink_models::nn::{for_compute, store_frozen};
use seethink_models::{AnyVlm, Vlm};

use crate::data_parallel::Worker;
use crate::error::Result;
use crate::optim::{clip_global_norm, AdamWSettings, KernelAdamW, LrSchedule};
use crate::policy::PolicyModel;
use crate::sharding::trained_ids;
use crate::train_backend::TrainBackend;

/// AdamW over the policy's parameters (burn's optimizer adaptor over [`KernelAdamW`]).
pub type PolicyOptimizer<B> = OptimizerAdaptor<KernelAdamW, PolicyModel<B>, B>;

/// The policy's weights as a burn record.
pub type ModelRecord<B> = <PolicyModel<B> as Module<B>>::Record;

/// AdamW's state as a burn record.
pub type OptimizerRecord<B> = <PolicyOptimizer<B> as Optimizer<PolicyModel<B>, B>>::Record;

/// The learner's state as records: the policy's weights, AdamW's state, the schedule's steps.
pub type Records<B> = (ModelRecord<B>, OptimizerRecord<B>, usize);

/// A run's training state: the policy, its optimizer and LR schedule, and the LR of the current
/// step.
pub struct PolicyLearner<B: TrainBackend> {
    model: PolicyModel<B>,
    optimizer: PolicyOptimizer<B>,
    schedule: Schedule,
    lr: f64,
    /// The type frozen matrices are stored in ([`PolicyLearner::with_frozen_storage`]).
    frozen: DType,
    /// The type every pass computes in ([`PolicyLearner::with_compute_dtype`]).
    compute: DType,
    /// The worker whose share of the weights `model` holds, when they are sharded
    /// ([`PolicyLearner::shard_weights`]).
    weights: Option<Worker>,
}

impl<B: TrainBackend> PolicyLearner<B> {
    /// The policy as this learner holds it (a clone: modules share their parameters' storage):
    /// with the weights sharded, the other workers' trained parameters are empty
    /// ([`PolicyLearner::gathered`] gives them).
    pub fn model(&self) -> PolicyModel<B> {
        self.model.clone()
    }

    /// From now on, holds `worker`'s own trained parameters' weights only, when `worker` shards
    /// the weights (`trainer.sharding: Weights`; [`crate::weight_shards`]); nothing otherwise.
    pub fn shard_weights(&mut self, worker: &Worker) {
        if worker.shards_weights() {
            self.model = worker.release_weights(self.model.clone());
            self.weights = Some(worker.clone());
        }
    }

    /// The whole policy: with the weights sharded, gathered from their owners (every worker
    /// calls it at once); otherwise [`PolicyLearner::model`].
    pub fn gathered(&self) -> Result<PolicyModel<B>> {
        match &self.weights {
            Some(worker) => worker.gather_weights(self.model.clone()),
            None => Ok(self.model.clone()),
        }
    }

    /// The whole policy in the compute type ([`PolicyLearner::with_compute_dtype`]), for the
    /// rollout and the frozen passes: with the weights sharded, each share cast and then
    /// gathered (the gathers move compute-type bytes). Every worker calls it at once.
    pub fn compute_policy(&self) -> Result<PolicyModel<B>> {
        let model = for_compute(self.model.clone(), self.compute);
        match &self.weights {
            Some(worker) => worker.gather_weights(model),
            None => Ok(model),
        }
    }

    /// The policy for an update's trained passes, in the compute type (its trained parameters
    /// leaves whose gradients [`GradientSink`](crate::gradient_sink::GradientSink) casts to the
    /// master type): with the weights sharded, everything but the decoder layers gathered (the
    /// layer checkpoints gather each layer as it runs). Every worker calls it at once.
    pub fn update_model(&self) -> Result<PolicyModel<B>> {
        let model = for_compute(self.model.clone(), self.compute);
        let Some(worker) = &self.weights else { return Ok(model) };
        if !self.model.checkpoint_layers {
            return Err(crate::error::EngineError::Distributed(
                "trainer.sharding: Weights gathers one decoder layer at a time, which needs \
                 actor.activation_checkpointing: true"
                    .into(),
            ));
        }
        let layers = self.model.model.decoder().0.layers.iter().flat_map(trained_ids::<B, _>).collect();
        worker.gather_weights_but(model, &layers)
    }

    /// The learner with the policy's frozen matrices (a frozen vision tower, the base under
    /// LoRA) stored in `dtype` from now on, restored checkpoints included, and the KL reference
    /// made from it too ([`store_frozen`]; `dtype` from
    /// [`frozen_dtype`](seethink_models::nn::frozen::frozen_dtype)).
    pub fn with_frozen_storage(mut self, dtype: DType) -> Self {
        self.frozen = dtype;
        self.model = store_frozen(self.model, dtype);
        self
    }

    /// The type frozen matrices are stored in (by default the backend's float type).
    pub fn frozen_dtype(&self) -> DType {
        self.frozen
    }

    /// The learner with every pass computed in `dtype` from now on (`actor.mixed_precision`,
    /// resolved by [`compute_dtype`](seethink_models::nn::precision::compute_dtype); `None`:
    /// the backend's float type): the rollout, the frozen passes and the updates run a copy
    /// of the policy cast to it ([`for_compute`]), while the trained weights and AdamW's
    /// moments stay in the backend's float type.
    pub fn with_compute_dtype(mut self, dtype: Option<DType>) -> Self {
        self.compute = dtype.unwrap_or_else(float_dtype::<B>);
        self
    }

    /// The type every pass computes in (by default the backend's float type).
    pub fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// The LR of the current step ([`PolicyLearner::lr_step`]).
    pub fn lr_current(&self) -> f64 {
        self.lr
    }

    /// Moves to the next training step's LR.
    pub fn lr_step(&mut self) {
        self.lr = self.schedule.step();
    }

    /// One optimizer step on `grads` (every worker's, summed) at the current LR. When the
    /// optimizer state is sharded, `worker` steps its own parameters and the others' come from
    /// their owners ([`Worker::own_gradients`], [`Worker::parameters_from_owners`]).
    pub fn optimizer_step(&mut self, grads: GradientsParams, worker: &Worker) -> Result<()> {
        let grads = worker.own_gradients(&self.model, grads);
        let stepped = self.optimizer.step(self.lr, self.model.clone(), grads);
        self.model = worker.parameters_from_owners(stepped)?;
        Ok(())
    }

    /// The state as records: the policy's weights (whole: gathered when sharded, so every
    /// worker calls it at once), AdamW's state, the schedule's steps taken. With LoRA the
    /// weights are the trained ones only (the adapters): every frozen parameter is recorded
    /// empty ([`without_frozen`]), as the run rebuilds them from the checkpoint it starts from.
    pub fn records(&self) -> Result<Records<B>> {
        let model = self.gathered()?;
        let model = if self.lora() { without_frozen(model) } else { model };
        Ok((model.into_record(), self.optimizer.to_record(), self.schedule.to_record::<B>()))
    }

    /// The state `records` (from [`PolicyLearner::records`]) describe; with LoRA the frozen
    /// parameters stay this learner's ([`with_frozen_of`]).
    pub fn load_records(&mut self, (model, optimizer, schedule): Records<B>) {
        let loaded = self.model.clone().load_record(model);
        let model = if self.lora() { with_frozen_of(&self.model, loaded) } else { loaded };
        // a record holds every tensor in the backend's float type
        let model = store_frozen(model, self.frozen);
        self.model = match &self.weights {
            Some(worker) => worker.release_weights(model),
            None => model,
        };
        self.optimizer = self.optimizer.clone().load_record(optimizer);
        self.schedule = self.schedule.clone().load_record::<B>(schedule);
    }
}

impl<B: TrainBackend> PolicyLearner<B> {
    /// Whether the policy trains LoRA adapters.
    fn lora(&self) -> bool {
        !self.model.model.adapters().is_empty()
    }
}

/// `model` with every frozen (no-gradient) float parameter replaced by an empty tensor of its
/// rank, its id kept: what a LoRA checkpoint records of the base.
fn without_frozen<B: Backend, M: Module<B>>(model: M) -> M {
    struct Empty;
    impl<B: Backend> ModuleMapper<B> for Empty {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if param.is_require_grad() {
                return param;
            }
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, Tensor::empty([0; D], &tensor.device()), mapper)
        }
    }
    model.map(&mut Empty)
}

/// `loaded` (from a record of [`without_frozen`]) with the frozen float parameters of
/// `current` (the same module), matched by position (a record brings its own parameter ids).
fn with_frozen_of<B: Backend, M: Module<B>>(current: &M, loaded: M) -> M {
    struct Collect<B: Backend>(Vec<TensorPrimitive<B>>);
    impl<B: Backend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !param.is_require_grad() {
                self.0.push(param.val().into_primitive());
            }
        }
    }
    struct Restore<B: Backend>(std::vec::IntoIter<TensorPrimitive<B>>);
    impl<B: Backend> ModuleMapper<B> for Restore<B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if param.is_require_grad() {
                return param;
            }
            let (id, _, mapper) = param.consume();
            let tensor = self.0.next().expect("the same module's frozen parameters");
            Param::from_mapped_value(id, Tensor::from_primitive(tensor), mapper)
        }
    }
    let mut frozen = Collect(Vec::new());
    current.visit(&mut frozen);
    loaded.map(&mut Restore(frozen.0.into_iter()))
}

/// What one optimizer update reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    /// The gradient norm was NaN or infinite and the weights were left unchanged.
    pub skipped: bool,
}

/// [`LrSchedule`] as a burn LR scheduler, stepped once per training step (as EasyR1 steps its
/// scheduler once per rollout step): step t (0-based) uses `schedule.lr_at(base, t)`; the record
/// is the number of steps taken, so a restored schedule continues where it was.
#[derive(Clone, Debug)]
pub struct Schedule {
    base: f64,
    schedule: LrSchedule,
    steps: usize,
}

impl Schedule {
    pub fn new(base: f64, schedule: LrSchedule) -> Self {
        Self { base, schedule, steps: 0 }
    }
}

impl LrScheduler for Schedule {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> f64 {
        let lr = self.schedule.lr_at(self.base, self.steps);
        self.steps += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.steps
    }

    fn load_record<B: Backend>(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }
}

/// What a learner takes of a run's settings (the config's `actor` section gives them:
/// `From<&ActorConfig>`, so [`new_learner`] and [`resolved_compute_dtype`] take either).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LearnerSettings {
    pub lr: f64,
    pub schedule: LrSchedule,
    pub weight_decay: f64,
    /// AdamW's ε.
    pub adam_epsilon: f64,
    /// Rows whose vocabulary logits are computed at a time when scoring responses.
    pub logits_chunk_tokens: usize,
    /// Recompute each decoder layer in backward ([`crate::layer_checkpoints`]).
    pub activation_checkpointing: bool,
    /// The type every pass computes in under mixed precision (`None`: the backend's float type).
    pub mixed_precision: Option<Dtype>,
}

/// A learner for `model` with AdamW (torch's β = (0.9, 0.999), as EasyR1 uses them; the
/// settings' ε, 1e-8 by default as torch's, and weight decay) and their LR schedule.
pub fn new_learner<B: TrainBackend>(
    model: AnyVlm<B>,
    settings: impl Into<LearnerSettings>,
    pad_id: u32,
) -> PolicyLearner<B> {
    let actor = settings.into();
    let optimizer = KernelAdamW::init(AdamWSettings {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: actor.adam_epsilon as f32,
        weight_decay: actor.weight_decay as f32,
    });
    let model = with_path_ids(PolicyModel {
        model,
        pad_id,
        logits_chunk_tokens: actor.logits_chunk_tokens,
        checkpoint_layers: actor.activation_checkpointing,
    });
    let schedule = Schedule::new(actor.lr, actor.schedule);
    let float = float_dtype::<B>();
    PolicyLearner { model, optimizer, schedule, lr: 0.0, frozen: float, compute: float, weights: None }
}

/// The type every pass computes in under the settings' mixed precision on `device`
/// ([`compute_dtype`]: the requested type where the backend stores it and it is narrower than
/// the float type, bf16 falling back to f16), for [`PolicyLearner::with_compute_dtype`]. `None`
/// (the backend's float type) without mixed precision, or where the backend stores no
/// narrower type, which is logged when `warn`.
pub fn resolved_compute_dtype<B: TrainBackend>(
    settings: impl Into<LearnerSettings>,
    device: &B::Device,
    warn: bool,
) -> Option<DType> {
    let requested = settings.into().mixed_precision?;
    let resolved = compute_dtype::<B>(requested, device);
    if resolved.is_none() && warn {
        tracing::warn!(
            ?requested,
            "actor.mixed_precision: this backend stores no narrower type; computing in its float type"
        );
    }
    resolved
}

/// `module` with each float parameter's id derived from its path in the module tree: FNV-1a
/// of e.g. `model.QwenVl.language_model.layers.3.mlp.up_proj.weight` (a path met again gets
/// `#k` appended), not burn's random id. Every worker's copy of the policy, every run and every
/// resume then name a parameter alike: AdamW's state, which burn keys by id, is found by any
/// worker that reads it (a sharded optimizer state's shards are written by several), and two
/// identical runs record identical ids.
pub fn with_path_ids<B: Backend, M: Module<B>>(module: M) -> M {
    struct PathIds {
        path: Vec<String>,
        seen: std::collections::HashMap<String, usize>,
    }
    impl<B: Backend> ModuleMapper<B> for PathIds {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let path = self.path.join(".");
            let met = self.seen.entry(path.clone()).or_default();
            let key = match *met {
                0 => path,
                k => format!("{path}#{k}"),
            };
            *met += 1;
            let (_, tensor, mapper) = param.consume();
            Param::from_mapped_value(ParamId::from(seethink_models::fnv1a(&key)), tensor, mapper)
        }
    }
    module.map(&mut PathIds { path: Vec::new(), seen: Default::default() })
}

/// One optimizer update with gradients summed over a mini-batch's micro-batches: clipped to
/// the global norm `max_grad_norm` ([`clip_global_norm`]), then AdamW at the step's LR (the run
/// loop steps the schedule once per training step). A NaN or infinite norm skips the optimizer
/// step (weights and AdamW moments unchanged), as EasyR1's actor does, and is logged.
pub fn apply_update<B: TrainBackend>(
    learner: &mut PolicyLearner<B>,
    mut grads: GradientsParams,
    max_grad_norm: f64,
    worker: &Worker,
) -> Result<UpdateStats> {
    let shared_by = worker.shards_gradients().then_some(worker);
    let grad_norm = clip_global_norm(&learner.model(), &mut grads, max_grad_norm, shared_by)?;
    let lr = learner.lr_current();
    let skipped = !grad_norm.is_finite();
    if skipped {
        tracing::warn!(grad_norm, "gradient norm is not finite: update skipped");
    } else {
        learner.optimizer_step(grads, worker)?;
    }
    Ok(UpdateStats { grad_norm, lr, skipped })
}

/// The whole policy without autodiff, its trained weights as they are (for export;
/// [`PolicyLearner::gathered`]); the rollout runs [`PolicyLearner::compute_policy`].
pub fn inference_model<B: TrainBackend>(learner: &PolicyLearner<B>) -> Result<AnyVlm<B::InnerBackend>> {
    Ok(learner.gathered()?.valid().model)
}
