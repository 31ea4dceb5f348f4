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
//!   groups and says when the run ends; the others receive its answers ([`SharedSampler`]);
//! - **the rollout**: worker r generates the prompts [`Worker::share`] gives it (whole groups),
//!   each sequence from its own random stream as on one worker, and every worker receives every
//!   completion ([`Worker::gather_completions`]), so rewards, advantages and the filter's and
//!   sampler's decisions are computed on the whole batch, as one process computes them;
//! - **gradients**: each mini-batch's micro-batches (as one worker splits it) are dealt out in
//!   contiguous runs; each worker's gradients carry the whole mini-batch's normaliser, so their
//!   sum ([`Worker::sum_gradients`]) is the one-process gradient, up to the order of the sum;
//! - **metrics**: the update's metric sums.
//!
//! Not sharded: every worker keeps the whole policy, its gradients and AdamW's moments
//! (ZeRO stage 0, as burn-train's `MultiDevice` with `OptimMainDevice`; see docs/distributed.md).

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use seethink_curriculum::{TaskResult, TaskSampler};
use seethink_models::generate::Completion;
use seethink_models::readback::host_f32;
use serde_json::Value;

use crate::config::TrainerConfig;
use crate::error::{Result, TrainError};

/// The largest integer an f32 holds exactly: task indices and token ids travel as f32.
const EXACT_IN_F32: usize = 1 << 24;

/// A vector of f32 summed over every worker (one all-reduce on the worker's backend and device).
type HostSum = dyn Fn(Vec<f32>) -> Result<Vec<f32>> + Send + Sync;

/// One worker of a data-parallel run: its rank among all workers (`node · devices + device`),
/// their number, and its all-reduce.
#[derive(Clone)]
pub struct Worker {
    rank: usize,
    count: usize,
    host_sum: Arc<HostSum>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Worker {} of {}", self.rank, self.count)
    }
}

impl Worker {
    /// Worker `rank` of `count`, summing on backend `B`'s `device` (it must have joined the
    /// collective, [`join`]).
    pub fn new<B: Backend>(rank: usize, count: usize, device: B::Device) -> Self {
        let peer = PeerId::from(rank);
        let host_sum = move |values: Vec<f32>| -> Result<Vec<f32>> {
            let len = values.len();
            let tensor = Tensor::<B, 1>::from_data(TensorData::new(values, [len]), &device);
            host_f32(sum_on::<B, 1>(peer, tensor)?, "an all-reduced vector").map_err(TrainError::from)
        };
        Self { rank, count, host_sum: Arc::new(host_sum) }
    }

    /// This worker's rank, 0 … count − 1.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of workers.
    pub fn count(&self) -> usize {
        self.count
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
        (self.host_sum)(values)
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

    /// The leader's flag on every worker (one all-reduce: the others send 0).
    pub fn leader_says(&self, flag: bool) -> Result<bool> {
        let own = if self.leads() { f32::from(u8::from(flag)) } else { 0.0 };
        Ok(self.sum(vec![own])?[0] != 0.0)
    }

    /// Every worker's completions, in sample order, on every worker: this worker's `own` are
    /// samples `first …` of `total`.
    ///
    /// Three all-reduces: each sample's length, then its prompt index and whether it stopped,
    /// then its token ids and log-probs padded to the longest.
    pub fn gather_completions(
        &self,
        own: Vec<Completion>,
        first: usize,
        total: usize,
    ) -> Result<Vec<Completion>> {
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
                    return Err(TrainError::Distributed(format!(
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
    /// all-reduce says which parameters have gradients where, then one per parameter.
    pub fn sum_gradients<B, M>(&self, module: &M, grads: GradientsParams) -> Result<GradientsParams>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        let mut present =
            Present::<B::InnerBackend> { grads: &grads, flags: Vec::new(), backend: PhantomData };
        module.visit(&mut present);
        let reached = self.sum(present.flags)?.into_iter().map(|workers| workers > 0.0).collect::<Vec<_>>();
        let mut summing = SumGradients::<B::InnerBackend> {
            peer: PeerId::from(self.rank),
            grads,
            reached: reached.into_iter(),
            failed: None,
            backend: PhantomData,
        };
        module.visit(&mut summing);
        match summing.failed {
            Some(error) => Err(error),
            None => Ok(summing.grads),
        }
    }
}

/// `Σ_workers tensor` for the worker of peer `peer`.
fn sum_on<B: Backend, const D: usize>(peer: PeerId, tensor: Tensor<B, D>) -> Result<Tensor<B, D>> {
    let summed = collective::all_reduce::<B>(peer, tensor.into_primitive().tensor(), ReduceOperation::Sum)
        .map_err(|e| collective_failure(&e))?;
    Ok(Tensor::from_primitive(TensorPrimitive::Float(summed)))
}

/// What a failed collective operation means for the run: another worker closed the collective
/// ([`abort`]), or the all-reduce itself failed.
fn collective_failure(error: &collective::CollectiveError) -> TrainError {
    use collective::CollectiveError::{LocalServerMissing, RegisterNotFirstOperation};
    match error {
        LocalServerMissing | RegisterNotFirstOperation => TrainError::WorkerStopped,
        other => TrainError::Distributed(format!("all-reduce failed: {other:?}")),
    }
}

/// A [`ModuleVisitor`] listing, for each trained parameter, 1 if this worker has its gradient.
struct Present<'a, I: Backend> {
    grads: &'a GradientsParams,
    flags: Vec<f32>,
    backend: PhantomData<I>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Present<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() {
            let present = self.grads.get::<B::InnerBackend, D>(param.id).is_some();
            self.flags.push(f32::from(u8::from(present)));
        }
    }
}

/// A [`ModuleVisitor`] summing each trained parameter's gradient over the workers, for the
/// parameters `reached` says some worker has a gradient of (in the order of [`Present`]).
struct SumGradients<I: Backend> {
    peer: PeerId,
    grads: GradientsParams,
    reached: std::vec::IntoIter<bool>,
    failed: Option<TrainError>,
    backend: PhantomData<I>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SumGradients<B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.is_require_grad() || !self.reached.next().unwrap_or(false) || self.failed.is_some() {
            return;
        }
        let grad = self.grads.remove::<B::InnerBackend, D>(param.id).unwrap_or_else(|| {
            let value = param.val().inner();
            Tensor::<B::InnerBackend, D>::zeros(value.shape(), &value.device())
        });
        match sum_on(self.peer, grad) {
            Ok(sum) => self.grads.register::<B::InnerBackend, D>(param.id, sum),
            Err(error) => self.failed = Some(error),
        }
    }
}

/// The run's workers: `trainer.devices` on this machine times the machines of
/// `trainer.nodes`, and this machine's index among them.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// Workers on this machine.
    pub local: usize,
    /// Machines.
    pub nodes: usize,
    /// This machine's index.
    pub node: usize,
}

impl Topology {
    /// The topology `trainer` asks for.
    pub fn of(trainer: &TrainerConfig) -> Self {
        let (nodes, node) = trainer.nodes.as_ref().map_or((1, 0), |n| (n.count, n.rank));
        Self { local: trainer.devices.max(1), nodes, node }
    }

    /// Workers in all.
    pub fn workers(&self) -> usize {
        self.local * self.nodes
    }

    /// The rank of this machine's worker `local`.
    pub fn rank(&self, local: usize) -> usize {
        self.node * self.local + local
    }
}

/// burn-collective's configuration for `trainer`: `trainer.devices` local peers, and with
/// `trainer.nodes` the orchestrator, this node's address and data-service port; binary-tree
/// all-reduce on both levels (burn-collective 0.21's ring, which it recommends between
/// machines, refuses tensors with fewer elements than machines, and the run exchanges
/// one-element flags).
pub fn collective_config(trainer: &TrainerConfig) -> std::result::Result<CollectiveConfig, String> {
    let topology = Topology::of(trainer);
    let config = CollectiveConfig::default()
        .with_num_devices(topology.local)
        .with_local_all_reduce_strategy(collective::AllReduceStrategy::Tree(2));
    let Some(nodes) = &trainer.nodes else { return Ok(config) };
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

/// The port of a `ws://host:port` address.
fn port_of(address: &str) -> Option<u16> {
    let rest = address.strip_prefix("ws://")?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    (!host.is_empty()).then_some(())?;
    port.parse().ok()
}

/// Registers worker `rank` (on `device`) with burn's collective; returns once every worker of
/// the run has registered.
pub fn join<B: Backend>(rank: usize, device: B::Device, config: CollectiveConfig) -> Result<()> {
    collective::register::<B>(PeerId::from(rank), device, config)
        .map_err(|e| TrainError::Distributed(format!("joining the collective as worker {rank}: {e:?}")))
}

/// Unregisters worker `rank` after its run ended well.
pub fn leave<B: Backend>(rank: usize) -> Result<()> {
    collective::finish_collective::<B>(PeerId::from(rank))
        .map_err(|e| TrainError::Distributed(format!("leaving the collective as worker {rank}: {e:?}")))
}

/// Closes this process's collective after a worker failed: the others' pending and next
/// all-reduces return an error instead of waiting for it.
pub fn abort<B: Backend>() {
    collective::reset_collective::<B>();
}

/// The run's task sampler as a worker sees it: its own on a single worker; with data
/// parallelism worker 0's, whose draws, gates and end it shares with the others (each
/// answer one all-reduce), so the sampler's state lives in one place and every worker trains
/// on the same tasks.
pub struct SharedSampler {
    /// The sampler: `None` on every worker but the leader.
    sampler: Option<Box<dyn TaskSampler>>,
    worker: Option<Worker>,
}

impl SharedSampler {
    /// `sampler` on a single worker.
    pub fn own(sampler: Box<dyn TaskSampler>) -> Self {
        Self { sampler: Some(sampler), worker: None }
    }

    /// `sampler` (the leader's; `None` on the others) for `worker`.
    pub fn for_worker(sampler: Option<Box<dyn TaskSampler>>, worker: Worker) -> Self {
        Self { sampler, worker: Some(worker) }
    }

    /// Whether this is a worker that receives the leader's answers.
    fn follows(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| !w.leads())
    }

    /// The leader's sampler: an error on a worker without one.
    fn leader(&mut self) -> Result<&mut Box<dyn TaskSampler>> {
        self.sampler
            .as_mut()
            .ok_or_else(|| TrainError::Distributed("the leading worker has no task sampler".into()))
    }

    /// Indices of the next step's `count` tasks ([`TaskSampler::next_batch`]).
    pub fn next_batch(&mut self, count: usize) -> Result<Vec<usize>> {
        let drawn = match self.follows() {
            true => Vec::new(),
            false => self.leader()?.next_batch(count),
        };
        let Some(worker) = &self.worker else { return Ok(drawn) };
        if drawn.iter().any(|&i| i >= EXACT_IN_F32) {
            return Err(TrainError::Distributed(format!(
                "task index ≥ {EXACT_IN_F32} does not travel exactly between workers"
            )));
        }
        let shared = worker.from_leader(&drawn.iter().map(|&i| i as f32).collect::<Vec<_>>())?;
        Ok(shared.into_iter().map(|i| i as usize).collect())
    }

    /// Whether `group` enters the update ([`TaskSampler::admit`]).
    pub fn admit(&mut self, group: &TaskResult) -> Result<bool> {
        let admitted = match self.follows() {
            true => false,
            false => self.leader()?.admit(group),
        };
        match &self.worker {
            Some(worker) => worker.leader_says(admitted),
            None => Ok(admitted),
        }
    }

    /// Tells the sampler the results of the tasks drawn since the last call (the leader's).
    pub fn observe(&mut self, results: &[TaskResult]) {
        if let Some(sampler) = self.sampler.as_mut() {
            sampler.observe(results);
        }
    }

    /// Whether the phase ends now ([`TaskSampler::finished`]), the leader's answer.
    pub fn finished(&mut self) -> Result<bool> {
        let finished = self.sampler.as_ref().is_some_and(|s| s.finished());
        match &self.worker {
            Some(worker) => worker.leader_says(finished),
            None => Ok(finished),
        }
    }

    /// The sampler's state to checkpoint (null on a worker without the sampler).
    pub fn state(&self) -> Value {
        self.sampler.as_ref().map_or(Value::Null, |s| s.state())
    }

    /// Restores a saved state into the sampler (where there is one).
    pub fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        match self.sampler.as_mut() {
            Some(sampler) => sampler.restore(state),
            None => Ok(()),
        }
    }
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
