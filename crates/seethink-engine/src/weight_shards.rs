//! Sharded weights (`trainer.sharding: Weights`; DeepSpeed's ZeRO stage 3, PyTorch FSDP's
//! `FULL_SHARD`): between uses, each worker holds the weights of its own trained parameters only
//! (owners as [`owners`] deals them, the same as for the optimizer state and the gradients); the
//! others' are empty tensors of their rank, their id and gradient flag kept
//! ([`Worker::release_weights`]). A use gathers what it runs and drops it after:
//! `w_p = Σ_workers (w_p on p's owner, 0 elsewhere)`, one all-reduce per parameter, exact (a sum
//! with zeros), so every pass computes what an unsharded worker computes, bitwise
//! ([`Worker::gather_weights`]):
//! - the rollout and the old log-probs run the whole policy, gathered once per step (in the
//!   compute type: with mixed precision each share is cast first) and dropped before the update
//!   ([`PolicyLearner::compute_policy`](crate::learner::PolicyLearner::compute_policy));
//! - an update gathers the parts outside the decoder layers (the embeddings, the vision tower,
//!   the final norm and the output projection) for its mini-batch
//!   ([`PolicyLearner::update_model`](crate::learner::PolicyLearner::update_model)), and each
//!   decoder layer for its pass: once in the forward pass, once more for its recomputed
//!   backward pass (`layer_checkpoints`), the next layer's gather on a second thread while one
//!   runs (`layer_prefetch`);
//! - a checkpoint records the whole policy (gathered), so it reads as any other run's.
//!
//! After an optimizer step each worker has stepped its own parameters (as with the optimizer
//! state sharded) and releases the rest: nothing travels, where the other levels send every
//! updated parameter to every worker.
//!
//! Why it needs `actor.activation_checkpointing`: burn's autodiff keeps every tensor a graph
//! saved until its backward pass, so without layer checkpoints every gathered layer would stay
//! alive from the forward pass to the backward pass, the whole policy at once. With them, a
//! layer's graph lives only through its own recomputation.
//!
//! The KL reference, which carries the policy's parameter ids, is held the same way
//! ([`Worker::release_frozen`]) and gathered for the reference passes only, after the rollout's
//! policy is dropped ([`Worker::gather_frozen`]). Not sharded: frozen parameters (a frozen
//! vision tower, the base under LoRA). Traffic: burn-collective 0.21 has no all-gather (and its `broadcast` between
//! machines is `unimplemented!`), so a gather is an all-reduce, twice an all-gather's bytes.

use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::data_parallel::{sum_on, Worker};
use crate::error::{EngineError, Result};
use crate::sharding::{owners, trained_sizes, Placement};

impl Worker {
    /// Whether this worker holds its own parameters' weights only, between uses (joined to
    /// others, with [`Sharding::Weights`](crate::sharding::Sharding::Weights)).
    pub fn shards_weights(&self) -> bool {
        self.joined() && self.sharding().weights()
    }

    /// The owner of each of `module`'s trained parameters, in module order: from the recorded
    /// layout once the weights have been released (a released parameter has no elements to
    /// count), else dealt by [`owners`] from their sizes.
    pub(crate) fn owners_of<B: AutodiffBackend, M: AutodiffModule<B>>(&self, module: &M) -> Vec<usize> {
        let layout = self.layout().lock().unwrap_or_else(PoisonError::into_inner);
        if layout.is_empty() {
            return owners(&trained_sizes(module), self.count());
        }
        struct Owners<'a>(&'a HashMap<ParamId, Placement>, Vec<usize>);
        impl<B: AutodiffBackend> ModuleVisitor<B> for Owners<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if param.is_require_grad() {
                    // a parameter the layout lacks is not released: any worker could hold it
                    self.1.push(self.0.get(&param.id).map_or(0, |p| p.owner));
                }
            }
        }
        let mut visitor = Owners(&layout, Vec::new());
        module.visit(&mut visitor);
        visitor.1
    }

    /// `module` (the whole policy, or a policy whose other workers' weights are already released)
    /// with each trained parameter another worker owns replaced by an empty tensor of its rank,
    /// its id and gradient flag kept; records every trained parameter's owner and shape for
    /// [`Worker::gather_weights`]. `module` itself unless the weights are sharded.
    pub fn release_weights<B: AutodiffBackend, M: AutodiffModule<B>>(&self, module: M) -> M {
        if !self.shards_weights() {
            return module;
        }
        struct Release<'a> {
            layout: &'a mut HashMap<ParamId, Placement>,
            owners: std::vec::IntoIter<usize>,
            rank: usize,
        }
        impl<B: AutodiffBackend> ModuleMapper<B> for Release<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                if !param.is_require_grad() {
                    return param;
                }
                let owner = self.owners.next().unwrap_or(self.rank);
                let (id, tensor, mapper) = param.consume();
                let shape = tensor.shape().dims::<D>().to_vec();
                if !shape.contains(&0) {
                    self.layout.insert(id, Placement { owner, shape });
                }
                let kept = match owner == self.rank {
                    true => tensor,
                    false => Tensor::empty([0; D], &tensor.device()).require_grad(),
                };
                Param::from_mapped_value(id, kept, mapper)
            }
        }
        let owners = self.owners_of(&module).into_iter();
        let layout = self.layout();
        let mut layout = layout.lock().unwrap_or_else(PoisonError::into_inner);
        module.map(&mut Release { layout: &mut layout, owners, rank: self.rank() })
    }

    /// `part` (the policy or a piece of it, such as a decoder layer) with every released trained
    /// parameter gathered from its owner (see the module doc). Every worker must gather the
    /// same parts in the same order. `part` itself unless the weights are sharded.
    pub fn gather_weights<B: AutodiffBackend, M: Module<B>>(&self, part: M) -> Result<M> {
        self.gather_weights_but(part, &HashSet::new())
    }

    /// [`Worker::gather_weights`] for every trained parameter of `part` but those of `left`.
    pub fn gather_weights_but<B: AutodiffBackend, M: Module<B>>(
        &self,
        part: M,
        left: &HashSet<ParamId>,
    ) -> Result<M> {
        let Some(peer) = self.peer().filter(|_| self.shards_weights()) else { return Ok(part) };
        struct Gather<'a> {
            layout: &'a HashMap<ParamId, Placement>,
            left: &'a HashSet<ParamId>,
            peer: burn::collective::PeerId,
            rank: usize,
            failed: Option<EngineError>,
        }
        impl<B: AutodiffBackend> ModuleMapper<B> for Gather<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                let placement = match self.layout.get(&param.id) {
                    Some(p) if param.is_require_grad() && !self.left.contains(&param.id) => p,
                    _ => return param,
                };
                if self.failed.is_some() {
                    return param;
                }
                let (id, tensor, mapper) = param.consume();
                let gathered = gathered(self.peer, tensor.inner(), placement, self.rank, &mut self.failed);
                Param::from_mapped_value(id, Tensor::from_inner(gathered).require_grad(), mapper)
            }
        }
        let started = Instant::now();
        let layout = self.layout();
        let layout = layout.lock().unwrap_or_else(PoisonError::into_inner);
        let mut gather = Gather { layout: &layout, left, peer, rank: self.rank(), failed: None };
        let part = part.map(&mut gather);
        self.count_gather(started);
        match gather.failed {
            Some(error) => Err(error),
            None => Ok(part),
        }
    }

    /// `frozen` (a module without gradients with the policy's parameter ids: the KL reference)
    /// with each parameter the layout places on another worker replaced by an empty tensor of
    /// its rank and type, as the policy's are ([`Worker::release_weights`]); parameters the
    /// layout does not hold (frozen in the policy too) stay. `frozen` itself unless the weights
    /// are sharded and the policy was released.
    pub fn release_frozen<I: Backend, M: Module<I>>(&self, frozen: M) -> M {
        if !self.shards_weights() {
            return frozen;
        }
        struct Release<'a>(&'a HashMap<ParamId, Placement>, usize);
        impl<I: Backend> ModuleMapper<I> for Release<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<I, D>>) -> Param<Tensor<I, D>> {
                match self.0.get(&param.id) {
                    Some(placement) if placement.owner != self.1 => {
                        let (id, tensor, mapper) = param.consume();
                        let empty = Tensor::<I, D>::empty([0; D], &tensor.device()).cast(tensor.dtype());
                        Param::from_mapped_value(id, empty, mapper)
                    }
                    _ => param,
                }
            }
        }
        let layout = self.layout().lock().unwrap_or_else(PoisonError::into_inner);
        frozen.map(&mut Release(&layout, self.rank()))
    }

    /// `frozen` released by [`Worker::release_frozen`] with every parameter the layout holds
    /// gathered from its owner, in its own type. Every worker must gather it at once. `frozen`
    /// itself unless the weights are sharded.
    pub fn gather_frozen<I: Backend, M: Module<I>>(&self, frozen: M) -> Result<M> {
        let Some(peer) = self.peer().filter(|_| self.shards_weights()) else { return Ok(frozen) };
        struct Gather<'a> {
            layout: &'a HashMap<ParamId, Placement>,
            peer: burn::collective::PeerId,
            rank: usize,
            failed: Option<EngineError>,
        }
        impl<I: Backend> ModuleMapper<I> for Gather<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<I, D>>) -> Param<Tensor<I, D>> {
                let Some(placement) = self.layout.get(&param.id).filter(|_| self.failed.is_none()) else {
                    return param;
                };
                let (id, tensor, mapper) = param.consume();
                let gathered = gathered(self.peer, tensor, placement, self.rank, &mut self.failed);
                Param::from_mapped_value(id, gathered, mapper)
            }
        }
        let started = Instant::now();
        let layout = self.layout().lock().unwrap_or_else(PoisonError::into_inner);
        let mut gather = Gather { layout: &layout, peer, rank: self.rank(), failed: None };
        let frozen = frozen.map(&mut gather);
        self.count_gather(started);
        match gather.failed {
            Some(error) => Err(error),
            None => Ok(frozen),
        }
    }
}

/// `value` (this worker's copy of a parameter placed by `placement`: its weights on the owner,
/// an empty tensor elsewhere) summed over the workers, the owner sending its weights and the
/// others zeros of the parameter's shape in `value`'s type: the owner's weights on every worker
/// (the owner keeps its own). On a failed exchange, `value` and the error in `failed`.
fn gathered<I: Backend, const D: usize>(
    peer: burn::collective::PeerId,
    value: Tensor<I, D>,
    placement: &Placement,
    rank: usize,
    failed: &mut Option<EngineError>,
) -> Tensor<I, D> {
    let owned = placement.owner == rank;
    let sent = match owned {
        true => value.clone(),
        false => Tensor::<I, D>::zeros(placement.shape.clone(), &value.device()).cast(value.dtype()),
    };
    match sum_on(peer, sent) {
        Ok(_) if owned => value,
        Ok(sum) => sum,
        Err(error) => {
            *failed = Some(error);
            value
        }
    }
}
