//! Data-parallel training on burn's collective (`burn-collective`): N workers, threads of one
//! process (one per device, `trainer.devices`) and optionally processes on several machines
//! (`trainer.nodes`), each hold the policy and its optimizer, work on their share of a step and
//! sum what they found with burn's all-reduce, so that every worker takes the same optimizer
//! step and the weights stay equal.
//!
//! What is shared, and how (every exchange is a `Sum` all-reduce; a value only some workers
//! have is summed with the others' zeros, which is exact, so a gathered value is bitwise the
//! value its worker had):
//! - **the task sampler**: it lives on worker 0, which draws each step's tasks, gates the
//!   groups and says when the run ends; the others receive its answers (the leader's holding of
//!   [`run_data_parallel`]; seethink-rl's `SharedSampler` shares its answers);
//! - **the rollout**: worker r generates the prompts [`Worker::share`] gives it (whole groups),
//!   each sequence from its own random stream as on one worker, and every worker receives every
//!   completion ([`Worker::gather_completions`]), so rewards, advantages and the filter's and
//!   sampler's decisions are computed on the whole batch, as one process computes them;
//! - **gradients**: each mini-batch's micro-batches (as one worker splits it) are dealt out in
//!   contiguous runs; each worker's gradients carry the whole mini-batch's normaliser, so their
//!   sum ([`Worker::sum_gradients`]) is the one-process gradient, up to the order of the sum;
//! - **metrics**: the update's metric sums.
//!
//! A run always has a [`Worker`]: alone, it is the trivial collective (every exchange returns
//! its own values, no thread or all-reduce), so GRPO and SFT are written once for any number of
//! workers. [`run_data_parallel`] starts this machine's workers (threads joined in burn's
//! collective) from the module's own configuration, [`Topology`]; sharded training state plugs
//! into the same seam ([`Worker`]'s exchanges).
//!
//! What each worker holds is `trainer.sharding` ([`Sharding`]): by default the whole policy,
//! its gradients and AdamW's moments (ZeRO stage 0, as burn-train's `MultiDevice` with
//! `OptimMainDevice`); with [`Sharding::OptimizerState`] AdamW's moments of its own share of
//! the parameters only ([`Worker::own_gradients`], [`Worker::parameters_from_owners`]; see
//! docs/distributed.md); with [`Sharding::Gradients`] also its own parameters' gradients only
//! ([`GradientSink`](crate::gradient_sink::GradientSink)); with [`Sharding::Weights`] also its
//! own parameters' weights only, between uses ([`crate::weight_shards`]).

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use seethink_models::generate::Completion;
use seethink_models::readback::host_f32;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result, WorkerOutcome};
use crate::sharding::{Sharding, WeightLayout};

/// The largest integer an f32 holds exactly: task indices and token ids travel as f32.
const EXACT_IN_F32: usize = 1 << 24;

/// A vector of f32 summed over every worker (one all-reduce on the worker's backend and device).
type HostSum = dyn Fn(Vec<f32>) -> Result<Vec<f32>> + Send + Sync;

/// One worker of a run and its collective: its rank among all workers (`node · devices +
/// device`), their number, and how it exchanges with the others. A run always has one: alone
/// ([`Worker::alone`], the trivial collective, where every exchange returns this worker's own
/// values) or one of several joined in burn's collective ([`Worker::new`]), so the algorithms
/// never ask which.
#[derive(Clone)]
pub struct Worker {
    rank: usize,
    count: usize,
    /// `None`: alone.
    peers: Option<Peers>,
    /// What of the training state this worker holds (whole when alone).
    sharding: Sharding,
    /// With the weights sharded: where each trained parameter's weights live.
    layout: WeightLayout,
    /// Nanoseconds spent in the weights' gathers since last taken ([`Worker::take_gather_seconds`]).
    gather_nanos: Arc<AtomicU64>,
}

/// How a worker joined in burn's collective reaches the others: its peer id and its all-reduce.
#[derive(Clone)]
struct Peers {
    peer: PeerId,
    host_sum: Arc<HostSum>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Worker {} of {}", self.rank, self.count)
    }
}

impl Worker {
    /// The only worker of a run: rank 0 of 1, every exchange the identity.
    pub fn alone() -> Self {
        Self {
            rank: 0,
            count: 1,
            peers: None,
            sharding: Sharding::None,
            layout: WeightLayout::default(),
            gather_nanos: Arc::default(),
        }
    }

    /// Worker `rank` of `count`, summing on backend `B`'s `device` (it must have joined the
    /// collective, [`join`]), holding the training state as `sharding` says.
    pub fn new<B: Backend>(rank: usize, count: usize, device: B::Device, sharding: Sharding) -> Self {
        let peer = PeerId::from(rank);
        let host_sum = move |values: Vec<f32>| -> Result<Vec<f32>> {
            let len = values.len();
            let tensor = Tensor::<B, 1>::from_data(TensorData::new(values, [len]), &device);
            host_f32(sum_on::<B, 1>(peer, tensor)?, "an all-reduced vector").map_err(EngineError::from)
        };
        let peers = Some(Peers { peer, host_sum: Arc::new(host_sum) });
        Self { rank, count, peers, sharding, layout: WeightLayout::default(), gather_nanos: Arc::default() }
    }

    /// This worker's rank, 0 … count − 1.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of workers.
    pub fn count(&self) -> usize {
        self.count
    }

    /// What of the training state this worker holds.
    pub fn sharding(&self) -> Sharding {
        self.sharding
    }

    /// Whether this worker is joined to others in burn's collective (not alone).
    pub(crate) fn joined(&self) -> bool {
        self.peers.is_some()
    }

    /// This worker's peer id in burn's collective; `None` alone.
    pub(crate) fn peer(&self) -> Option<PeerId> {
        self.peers.as_ref().map(|p| p.peer)
    }

    /// Where each trained parameter's weights live, with the weights sharded
    /// ([`crate::weight_shards`]).
    pub(crate) fn layout(&self) -> &WeightLayout {
        &self.layout
    }

    /// Adds `started`'s elapsed time to the gathers' ([`Worker::take_gather_seconds`]).
    pub(crate) fn count_gather(&self, started: std::time::Instant) {
        self.gather_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Seconds this worker spent gathering sharded weights (`trainer.sharding: Weights`) since
    /// the last call, summed over its threads (the next layer's gather overlaps a layer's pass,
    /// so this can exceed the time it delayed the step); 0 otherwise.
    pub fn take_gather_seconds(&self) -> f64 {
        self.gather_nanos.swap(0, Ordering::Relaxed) as f64 * 1e-9
    }

    /// Whether this worker holds AdamW's state of its own parameters only.
    pub fn shards_optimizer_state(&self) -> bool {
        self.peers.is_some() && self.sharding.optimizer_state()
    }

    /// Whether this worker keeps only its own parameters' gradients (joined to others, with
    /// [`Sharding::Gradients`]; see [`GradientSink`](crate::gradient_sink::GradientSink)).
    pub fn shards_gradients(&self) -> bool {
        self.peers.is_some() && self.sharding.gradients()
    }

    /// Whether this worker leads: it holds the task sampler.
    pub fn leads(&self) -> bool {
        self.rank == 0
    }

    /// This worker's contiguous share of `len` items: `[⌊r·len/N⌋, ⌊(r+1)·len/N⌋)`.
    pub fn share(&self, len: usize) -> Range<usize> {
        (self.rank * len / self.count)..((self.rank + 1) * len / self.count)
    }

    /// `Σ_workers values` (element-wise), on every worker.
    pub fn sum(&self, values: Vec<f32>) -> Result<Vec<f32>> {
        match &self.peers {
            Some(peers) => (peers.host_sum)(values),
            None => Ok(values),
        }
    }

    /// `Σ_workers tensor`, on every worker, in `tensor`'s type (alone: `tensor` itself).
    pub fn sum_tensor<B: Backend, const D: usize>(&self, tensor: Tensor<B, D>) -> Result<Tensor<B, D>> {
        match self.peer() {
            Some(peer) => sum_on(peer, tensor),
            None => Ok(tensor),
        }
    }

    /// `Σ_workers value`, on every worker (alone: `value` itself; between workers it travels
    /// as an f32).
    pub fn sum_scalar(&self, value: f64) -> Result<f64> {
        match &self.peers {
            Some(_) => Ok(f64::from(self.sum(vec![value as f32])?[0])),
            None => Ok(value),
        }
    }

    /// A vector of `len` with this worker's `values` at `positions` and every other worker's
    /// at theirs (each position written by one worker), on every worker.
    pub fn gather(&self, len: usize, positions: &[usize], values: &[f32]) -> Result<Vec<f32>> {
        let mut all = vec![0.0; len];
        for (&p, &v) in positions.iter().zip(values) {
            all[p] = v;
        }
        self.sum(all)
    }

    /// The leader's `values` on every worker (the others pass anything; it is ignored).
    pub fn from_leader(&self, values: &[f32]) -> Result<Vec<f32>> {
        let own = |v: Vec<f32>| if self.leads() { v } else { vec![0.0; v.len()] };
        let len = self.sum(own(vec![values.len() as f32]))?[0] as usize;
        let mut padded = values.to_vec();
        padded.resize(len, 0.0);
        self.sum(own(padded))
    }

    /// The leader's task indices on every worker (alone: `indices`); an error for an index an
    /// f32 does not hold exactly.
    pub fn indices_from_leader(&self, indices: &[usize]) -> Result<Vec<usize>> {
        if self.peers.is_none() {
            return Ok(indices.to_vec());
        }
        if indices.iter().any(|&i| i >= EXACT_IN_F32) {
            return Err(EngineError::Distributed(format!(
                "task index ≥ {EXACT_IN_F32} does not travel exactly between workers"
            )));
        }
        let shared = self.from_leader(&indices.iter().map(|&i| i as f32).collect::<Vec<_>>())?;
        Ok(shared.into_iter().map(|i| i as usize).collect())
    }

    /// The leader's flag on every worker (one all-reduce: the others send 0).
    pub fn leader_says(&self, flag: bool) -> Result<bool> {
        let own = if self.leads() { f32::from(u8::from(flag)) } else { 0.0 };
        Ok(self.sum(vec![own])?[0] != 0.0)
    }

    /// Every worker's completions, in sample order, on every worker: this worker's `own` are
    /// samples `first …` of `total`.
    ///
    /// Alone: `own` itself. Otherwise three all-reduces: each sample's length, then its prompt index and whether it stopped,
    /// then its token ids and log-probs padded to the longest.
    pub fn gather_completions(
        &self,
        own: Vec<Completion>,
        first: usize,
        total: usize,
    ) -> Result<Vec<Completion>> {
        if self.peers.is_none() {
            return Ok(own);
        }
        let positions: Vec<usize> = (first..first + own.len()).collect();
        let lengths: Vec<f32> = own.iter().map(|c| c.ids.len() as f32).collect();
        let lengths = self.gather(total, &positions, &lengths)?;
        let width = lengths.iter().fold(0.0f32, |a, &b| a.max(b)) as usize;
        let mut heads = vec![0.0; 2 * total];
        let mut tokens = vec![0.0; 2 * total * width];
        for (c, completion) in own.iter().enumerate() {
            let s = first + c;
            heads[2 * s] = completion.prompt as f32;
            heads[2 * s + 1] = f32::from(u8::from(completion.stopped));
            for (t, (&id, &logp)) in completion.ids.iter().zip(&completion.logprobs).enumerate() {
                if id as usize >= EXACT_IN_F32 {
                    return Err(EngineError::Distributed(format!(
                        "token id {id} does not travel exactly between workers (ids travel as f32, \
                         exact below {EXACT_IN_F32})"
                    )));
                }
                tokens[2 * (s * width + t)] = id as f32;
                tokens[2 * (s * width + t) + 1] = logp;
            }
        }
        let (heads, tokens) = (self.sum(heads)?, self.sum(tokens)?);
        Ok((0..total)
            .map(|s| {
                let row = &tokens[2 * s * width..2 * (s * width + lengths[s] as usize)];
                Completion {
                    prompt: heads[2 * s] as usize,
                    ids: row.iter().step_by(2).map(|&id| id as u32).collect(),
                    logprobs: row.iter().skip(1).step_by(2).copied().collect(),
                    stopped: heads[2 * s + 1] != 0.0,
                }
            })
            .collect())
    }

    /// `grads` summed over every worker, parameter by parameter in the module's order (not by
    /// parameter id: each process loads its own copy of the model, whose ids differ). A trained
    /// parameter with a gradient on some workers only (not reached by this worker's
    /// micro-batches, or no micro-batch at all here) gets zeros from the others; one with a
    /// gradient on none stays without, as on one worker (so AdamW leaves it alone). One
    /// all-reduce says which parameters have gradients where, then one per parameter. Alone:
    /// `grads` as they are.
    pub fn sum_gradients<B, M>(&self, module: &M, grads: GradientsParams) -> Result<GradientsParams>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        let mut grads = grads;
        self.sum_selected_gradients(module, &mut grads, &|_| true, &|_| true)
    }

    /// The sums over the workers of the gradients of `part`'s trained parameters (a module, or
    /// a piece of one such as a decoder layer) that `selected` names, taken out of `grads`, each
    /// sum kept only where `kept` says (its owner's, when the gradients are sharded): as
    /// [`Worker::sum_gradients`], for those parameters. Every worker must select the same.
    pub(crate) fn sum_selected_gradients<B, M>(
        &self,
        part: &M,
        grads: &mut GradientsParams,
        selected: &dyn Fn(ParamId) -> bool,
        kept: &dyn Fn(ParamId) -> bool,
    ) -> Result<GradientsParams>
    where
        B: AutodiffBackend,
        M: Module<B>,
    {
        // alone, every gradient is its own sum
        let Some(peers) = &self.peers else { return Ok(std::mem::take(grads)) };
        let mut present =
            Present::<B::InnerBackend> { grads, selected, flags: Vec::new(), backend: PhantomData };
        part.visit(&mut present);
        if present.flags.is_empty() {
            // nothing selected is trained (e.g. a frozen output projection under LoRA): every
            // worker skips the same exchange
            return Ok(GradientsParams::new());
        }
        let reached = self.sum(present.flags)?.into_iter().map(|workers| workers > 0.0).collect::<Vec<_>>();
        let mut summing = SumGradients::<B::InnerBackend> {
            peer: peers.peer,
            grads,
            sums: GradientsParams::new(),
            selected,
            kept,
            reached: reached.into_iter(),
            failed: None,
            backend: PhantomData,
        };
        part.visit(&mut summing);
        match summing.failed {
            Some(error) => Err(error),
            None => Ok(summing.sums),
        }
    }
}

impl Worker {
    /// The gradients of this worker's own parameters out of `grads` (every worker's, summed),
    /// so that AdamW steps and keeps moments for those alone, when the optimizer state is
    /// sharded ([`Sharding::OptimizerState`]; owners from [`crate::sharding::owners`]); otherwise
    /// `grads`.
    pub fn own_gradients<B, M>(&self, module: &M, mut grads: GradientsParams) -> GradientsParams
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        if !self.shards_optimizer_state() {
            return grads;
        }
        struct Others<'a, I: Backend> {
            grads: &'a mut GradientsParams,
            owners: std::vec::IntoIter<usize>,
            rank: usize,
            backend: PhantomData<I>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Others<'_, B::InnerBackend> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if param.is_require_grad() && self.owners.next() != Some(self.rank) {
                    self.grads.remove::<B::InnerBackend, D>(param.id);
                }
            }
        }
        let owners = self.owners_of(module).into_iter();
        module.visit(&mut Others::<B::InnerBackend> {
            grads: &mut grads,
            owners,
            rank: self.rank,
            backend: PhantomData,
        });
        grads
    }

    /// `module` with every trained parameter at its owner's value, after an update where each
    /// worker stepped its own ([`Worker::own_gradients`]): one all-reduce per parameter, the
    /// owner's value summed with the others' zeros (exact); ids and the gradient flag are kept.
    /// With the weights sharded, `module` released instead ([`Worker::release_weights`]: each
    /// worker keeps its own, nothing travels); `module` itself unless the optimizer state is
    /// sharded.
    pub fn parameters_from_owners<B, M>(&self, module: M) -> Result<M>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        if self.shards_weights() {
            return Ok(self.release_weights(module));
        }
        let Some(peers) = self.peers.as_ref().filter(|_| self.shards_optimizer_state()) else {
            return Ok(module);
        };
        struct FromOwners {
            peer: PeerId,
            owners: std::vec::IntoIter<usize>,
            rank: usize,
            failed: Option<EngineError>,
        }
        impl<B: AutodiffBackend> ModuleMapper<B> for FromOwners {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                if !param.is_require_grad() || self.failed.is_some() {
                    return param;
                }
                let owned = self.owners.next() == Some(self.rank);
                let (id, tensor, mapper) = param.consume();
                let value = tensor.inner();
                let own = if owned { value.clone() } else { value.zeros_like() };
                match sum_on(self.peer, own) {
                    Ok(shared) => {
                        Param::from_mapped_value(id, Tensor::from_inner(shared).require_grad(), mapper)
                    }
                    Err(error) => {
                        self.failed = Some(error);
                        Param::from_mapped_value(id, Tensor::from_inner(value).require_grad(), mapper)
                    }
                }
            }
        }
        let owners = self.owners_of(&module).into_iter();
        let mut mapper = FromOwners { peer: peers.peer, owners, rank: self.rank, failed: None };
        let module = module.map(&mut mapper);
        match mapper.failed {
            Some(error) => Err(error),
            None => Ok(module),
        }
    }
}

/// `Σ_workers tensor` for the worker of peer `peer`.
pub(crate) fn sum_on<B: Backend, const D: usize>(peer: PeerId, tensor: Tensor<B, D>) -> Result<Tensor<B, D>> {
    let summed = collective::all_reduce::<B>(peer, tensor.into_primitive().tensor(), ReduceOperation::Sum)
        .map_err(|e| collective_failure(&e))?;
    Ok(Tensor::from_primitive(TensorPrimitive::Float(summed)))
}

/// What a failed collective operation means for the run: another worker closed the collective
/// ([`abort`]), or the all-reduce itself failed.
fn collective_failure(error: &collective::CollectiveError) -> EngineError {
    use collective::CollectiveError::{LocalServerMissing, RegisterNotFirstOperation};
    match error {
        LocalServerMissing | RegisterNotFirstOperation => EngineError::WorkerStopped,
        other => EngineError::Distributed(format!("all-reduce failed: {other:?}")),
    }
}

/// A [`ModuleVisitor`] listing, for each selected trained parameter, 1 if this worker has its
/// gradient.
struct Present<'a, I: Backend> {
    grads: &'a GradientsParams,
    selected: &'a dyn Fn(ParamId) -> bool,
    flags: Vec<f32>,
    backend: PhantomData<I>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Present<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() && (self.selected)(param.id) {
            let present = self.grads.get::<B::InnerBackend, D>(param.id).is_some();
            self.flags.push(f32::from(u8::from(present)));
        }
    }
}

/// A [`ModuleVisitor`] summing each selected trained parameter's gradient over the workers, for
/// the parameters `reached` says some worker has a gradient of (in the order of [`Present`]):
/// takes it out of `grads` and keeps the sum in `sums` where `kept` says.
struct SumGradients<'a, I: Backend> {
    peer: PeerId,
    grads: &'a mut GradientsParams,
    sums: GradientsParams,
    selected: &'a dyn Fn(ParamId) -> bool,
    kept: &'a dyn Fn(ParamId) -> bool,
    reached: std::vec::IntoIter<bool>,
    failed: Option<EngineError>,
    backend: PhantomData<I>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SumGradients<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.is_require_grad() || !(self.selected)(param.id) {
            return;
        }
        if !self.reached.next().unwrap_or(false) || self.failed.is_some() {
            return;
        }
        let grad = self.grads.remove::<B::InnerBackend, D>(param.id).unwrap_or_else(|| {
            let value = param.val().inner();
            Tensor::<B::InnerBackend, D>::zeros(value.shape(), &value.device())
        });
        match sum_on(self.peer, grad) {
            Ok(sum) if (self.kept)(param.id) => self.sums.register::<B::InnerBackend, D>(param.id, sum),
            Ok(_) => {}
            Err(error) => self.failed = Some(error),
        }
    }
}

/// This machine's place in a multi-node run: burn-collective's global orchestrator (started once,
/// anywhere: `seethink collective --port P`) and the address the other machines reach this one
/// at. Every machine runs the same config with its own `rank` and `address`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesConfig {
    /// Machines in the run.
    pub count: usize,
    /// This machine's index, 0 … count − 1 (worker 0 of machine 0 draws the tasks).
    pub rank: usize,
    /// The orchestrator's address, `ws://host:port`.
    pub orchestrator: String,
    /// This machine's address as the others reach it, `ws://host:port`; it listens on that port.
    pub address: String,
}

/// The run's workers, this module's configuration: `devices` on this machine times the
/// machines of `nodes` (`trainer.devices`, `trainer.nodes`).
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// Workers on this machine.
    pub devices: usize,
    /// The machines of a multi-node run (`None`: this machine alone).
    pub nodes: Option<NodesConfig>,
    /// What of the training state each worker holds.
    pub sharding: Sharding,
}

impl Topology {
    /// Workers on this machine.
    pub fn local(&self) -> usize {
        self.devices.max(1)
    }

    /// Machines.
    pub fn machines(&self) -> usize {
        self.nodes.as_ref().map_or(1, |n| n.count)
    }

    /// This machine's index.
    pub fn node(&self) -> usize {
        self.nodes.as_ref().map_or(0, |n| n.rank)
    }

    /// Workers in all.
    pub fn workers(&self) -> usize {
        self.local() * self.machines()
    }

    /// The rank of this machine's worker `local`.
    pub fn rank(&self, local: usize) -> usize {
        self.node() * self.local() + local
    }

    /// Checks the topology: at least one device, a rank below the machine count, `ws://host:port`
    /// addresses, and `prompts_per_step` divisible by the workers (each takes whole prompts of
    /// every step). Messages name the `trainer.` keys.
    pub fn validate(&self, prompts_per_step: usize) -> std::result::Result<(), String> {
        if self.devices == 0 {
            return Err("trainer.devices: must be at least 1, got 0".into());
        }
        if let Some(nodes) = &self.nodes {
            if nodes.count == 0 || nodes.rank >= nodes.count {
                return Err(format!(
                    "trainer.nodes: rank must be in 0..count, got rank {} of count {}",
                    nodes.rank, nodes.count
                ));
            }
        }
        self.collective()?;
        let workers = self.workers();
        if !prompts_per_step.is_multiple_of(workers) {
            return Err(format!(
                "trainer.prompts_per_step: {prompts_per_step} is not divisible by the {workers} data-parallel \
                 workers (trainer.devices {} × {} machines); each worker takes whole prompts",
                self.local(),
                self.machines()
            ));
        }
        Ok(())
    }

    /// burn-collective's configuration: `devices` local peers, and with `nodes` the
    /// orchestrator, this node's address and data-service port; binary-tree all-reduce on both
    /// levels (burn-collective 0.21's ring, which it recommends between machines, refuses
    /// tensors with fewer elements than machines, and the run exchanges one-element flags).
    pub fn collective(&self) -> std::result::Result<CollectiveConfig, String> {
        let config = CollectiveConfig::default()
            .with_num_devices(self.local())
            .with_local_all_reduce_strategy(collective::AllReduceStrategy::Tree(2));
        let Some(nodes) = &self.nodes else { return Ok(config) };
        let port = port_of(&nodes.address)
            .ok_or_else(|| format!("trainer.nodes.address: `{}` is not ws://host:port", nodes.address))?;
        port_of(&nodes.orchestrator).ok_or_else(|| {
            format!("trainer.nodes.orchestrator: `{}` is not ws://host:port", nodes.orchestrator)
        })?;
        let address = |a: &str| a.parse::<burn_communication::Address>().map_err(|e| e.to_string());
        Ok(config
            .with_num_nodes(nodes.count as u32)
            .with_global_address(address(&nodes.orchestrator)?)
            .with_node_address(address(&nodes.address)?)
            .with_data_service_port(port)
            .with_global_all_reduce_strategy(collective::AllReduceStrategy::Tree(2)))
    }
}

/// The port of a `ws://host:port` address.
fn port_of(address: &str) -> Option<u16> {
    let rest = address.strip_prefix("ws://")?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    (!host.is_empty()).then_some(())?;
    port.parse().ok()
}

/// What a worker does besides training: its place among the run's workers, and whether it
/// writes the run directory (config, metrics, checkpoints, final model: the first worker of
/// each machine).
pub struct Role {
    pub worker: Worker,
    pub writes: bool,
}

/// Runs `run` as every worker of this machine and returns worker 0's result (see
/// [`run_workers`]); with one worker in all, `run` itself on `device`, [alone](Worker::alone).
/// Each call of `run` gets its role, what the leader holds (`leader`, on worker 0 of machine 0:
/// `Some` there, `None` on every other worker; a run's task sampler, whose answers the leader
/// shares) and its device. `run`'s errors are the caller's (`E`, into which the engine's
/// convert).
pub fn run_data_parallel<I: Backend, T: Send, L: Send, E: WorkerOutcome + Send>(
    topology: &Topology,
    leader: L,
    device: &I::Device,
    run: impl Fn(Role, Option<L>, &I::Device) -> Result<T, E> + Sync,
) -> Result<T, E> {
    if topology.workers() == 1 {
        let role = Role { worker: Worker::alone(), writes: true };
        return run(role, Some(leader), device);
    }
    run_workers::<I, T, L, E>(topology, leader, device, run)
}

/// The workers of this machine (`topology.local()`), each a thread with its own copy of the
/// policy on its own device ([`worker_devices`]), joined in burn's collective; worker 0 of
/// machine 0 holds `leader`. When a worker fails, the collective is closed so that the others
/// stop at their next exchange instead of waiting for it, and the failing worker's error is
/// returned. Returns worker 0's result.
fn run_workers<I: Backend, T: Send, L: Send, E: WorkerOutcome + Send>(
    topology: &Topology,
    leader: L,
    device: &I::Device,
    run: impl Fn(Role, Option<L>, &I::Device) -> Result<T, E> + Sync,
) -> Result<T, E> {
    let collective = topology.collective().map_err(EngineError::Distributed)?;
    let mut leader = (topology.node() == 0).then_some(leader);
    let run = &run;
    let outcomes: Vec<Result<T, E>> = std::thread::scope(|scope| {
        let handles: Vec<_> = worker_devices::<I>(device, topology.local())
            .into_iter()
            .enumerate()
            .map(|(local, device)| {
                let rank = topology.rank(local);
                let held = if rank == 0 { leader.take() } else { None };
                let collective = collective.clone();
                let thread = std::thread::Builder::new().name(format!("seethink-worker-{rank}"));
                thread.spawn_scoped(scope, move || {
                    in_collective::<I, _, E>(rank, topology, &device, collective, |worker| {
                        let role = Role { worker: worker.clone(), writes: local == 0 };
                        run(role, held, &device)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|spawned| match spawned {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(EngineError::Distributed("a worker thread died".into()).into())),
                Err(e) => Err(EngineError::Distributed(format!("starting a worker thread: {e}")).into()),
            })
            .collect()
    });
    // the error that stopped the run, rather than the others' `WorkerStopped`
    let cause = outcomes.iter().position(|r| matches!(r, Err(e) if !e.another_worker_stopped()));
    outcomes
        .into_iter()
        .nth(cause.unwrap_or(0))
        .unwrap_or_else(|| Err(EngineError::Distributed("no worker ran".into()).into()))
}

/// `run` as worker `rank` of `workers` on `device`: joins burn's collective, runs, then leaves
/// it; when `run` fails or panics, closes the collective instead, so that the other workers stop
/// at their next exchange rather than wait for this one.
fn in_collective<I: Backend, T, E: WorkerOutcome>(
    rank: usize,
    topology: &Topology,
    device: &I::Device,
    collective: CollectiveConfig,
    run: impl FnOnce(Worker) -> Result<T, E>,
) -> Result<T, E> {
    join::<I>(rank, device.clone(), collective)?;
    let worker = Worker::new::<I>(rank, topology.workers(), device.clone(), topology.sharding);
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(worker))).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(EngineError::Distributed(format!("worker {rank} panicked: {message}")).into())
        });
    match &outcome {
        Ok(_) => leave::<I>(rank)?,
        Err(_) => abort::<I>(),
    }
    outcome
}

/// One worker's device per worker of this machine: devices `i, i+1, …` of the kind of `device`
/// (`i` its index), modulo the backend's device count (on the CPU every worker shares it).
fn worker_devices<B: Backend>(device: &B::Device, count: usize) -> Vec<B::Device> {
    use burn::tensor::backend::{Device, DeviceId};
    let id = device.to_id();
    let available = B::device_count(id.type_id).max(1);
    (0..count)
        .map(|i| {
            let index = (usize::from(id.index_id) + i) % available;
            B::Device::from_id(DeviceId::new(id.type_id, index as u16))
        })
        .collect()
}

/// Registers worker `rank` (on `device`) with burn's collective; returns once every worker of
/// the run has registered.
pub fn join<B: Backend>(rank: usize, device: B::Device, config: CollectiveConfig) -> Result<()> {
    collective::register::<B>(PeerId::from(rank), device, config)
        .map_err(|e| EngineError::Distributed(format!("joining the collective as worker {rank}: {e:?}")))
}

/// Unregisters worker `rank` after its run ended well.
pub fn leave<B: Backend>(rank: usize) -> Result<()> {
    collective::finish_collective::<B>(PeerId::from(rank))
        .map_err(|e| EngineError::Distributed(format!("leaving the collective as worker {rank}: {e:?}")))
}

/// Closes this process's collective after a worker failed: the others' pending and next
/// all-reduces return an error instead of waiting for it.
pub fn abort<B: Backend>() {
    collective::reset_collective::<B>();
}

#[cfg(test)]
mod tests {
    use super::port_of;

    #[test]
    fn addresses_name_host_and_port() {
        assert_eq!(port_of("ws://127.0.0.1:3000"), Some(3000));
        assert_eq!(port_of("ws://node-2:40001/"), Some(40001));
        assert_eq!(port_of("127.0.0.1:3000"), None);
        assert_eq!(port_of("ws://:3000"), None);
        assert_eq!(port_of("ws://host"), None);
        assert_eq!(port_of("ws://host:99999"), None);
    }
}
