//! Where the gradients of one optimizer update's trained passes go (its mini-batch's
//! micro-batches), and when they are summed over the data-parallel workers.
//!
//! Unsharded (and with `trainer.sharding: OptimizerState`), each worker sums its micro-batches'
//! gradients whole, `G_w = Σ_m g_{w,m}`, and the workers' sums are added at the mini-batch's end:
//! `G = Σ_w G_w` ([`Worker::sum_gradients`]). A decoder layer's gradients, complete when they
//! arrive (with checkpointing), join the worker's sum at once; the others (the output
//! projection's, summed over logits chunks, and the pass below the layers) join it at the
//! micro-batch's end. Each sum is the same `G_w + g_{w,m}` either way, and the layers' part of
//! a micro-batch is never held beside the sum: at Qwen2.5-VL-3B in f32 that second copy was
//! about 10 GiB of the 14 GiB of gradients. What is still held beside it, the plan counts
//! (`plan::gradients_beside_sum`).
//!
//! With `trainer.sharding: Gradients` (DeepSpeed's ZeRO stage 2) each group of gradients is
//! summed over the workers as soon as a micro-batch has completed it, and only the parameter's
//! owner ([`owners`]) keeps the sum: `G_p = Σ_m Σ_w g_{w,m,p}` on the owner of p, nothing
//! elsewhere. The groups, in the order every worker exchanges them in each micro-batch:
//! 1. the output projection, after the last logits chunk (unless it is tied to the embeddings);
//! 2. with `actor.activation_checkpointing`, each decoder layer, from the last down (its
//!    recomputed backward pass completes it, `layer_checkpoints`);
//! 3. the rest at the micro-batch's end: the embeddings, the final norm and the vision tower
//!    with checkpointing; every other parameter without (burn's autodiff returns a backward
//!    pass's gradients at once).
//!
//! So with checkpointing a worker holds whole gradients of one group at a time, the largest of
//! the output projection, one layer and the rest, besides its own share of the sums; without
//! it, one micro-batch's whole gradients.
//!
//! Every worker makes the same exchanges in the same order: a worker with fewer micro-batches
//! in the mini-batch than another makes the missing ones' exchanges with no gradients
//! ([`GradientSink::idle_micro_batch`]), and one that has no gradient of a parameter sends
//! zeros, which is exact. With one micro-batch per worker the sums are the unsharded run's,
//! bitwise (a + b); with more, they are added in another order (within rounding).
//!
//! Under mixed precision (`actor.mixed_precision`) a pass computes its gradients in the compute
//! type; the sink casts them to the master weights' type as they arrive, before any sum or
//! exchange (FSDP's `mp_reduce_dtype: fp32`; [`in_master_type`]).
//!
//! Each exchange is one all-reduce per parameter, whose result the non-owners drop:
//! burn-collective 0.21 has no reduce-scatter, and its `reduce` to one peer is `unimplemented!`
//! between machines, so this sends twice what a reduce to the owner would.

use std::collections::{HashMap, HashSet};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use seethink_models::nn::frozen::float_dtype;
use seethink_models::Vlm;

use crate::data_parallel::Worker;
use crate::error::Result;
use crate::sharding::trained_ids;
use crate::train_backend::TrainBackend;

/// The gradients of one optimizer update, as its trained passes produce them (see the module
/// doc): [`GradientSink::add`] and [`GradientSink::add_layer`] during a micro-batch,
/// [`GradientSink::end_micro_batch`] after it, [`GradientSink::finish`] for the update.
pub struct GradientSink<'w, M> {
    worker: &'w Worker,
    /// Whether the decoder layers' gradients come one layer at a time
    /// (`actor.activation_checkpointing`).
    per_layer: bool,
    /// The micro-batch under way's gradients not yet exchanged (sharded) or not yet in the
    /// worker's sum (unsharded): those of [`GradientSink::add`].
    micro: GradientsAccumulator<M>,
    /// Unsharded: the sum of this worker's finished micro-batches. Sharded: the sums over
    /// every worker of this worker's own parameters' gradients.
    kept: GradientsAccumulator<M>,
    /// With the gradients sharded: the owner of each trained parameter and the parameters the
    /// micro-batch under way has exchanged.
    shards: Option<Shards>,
}

struct Shards {
    owner: HashMap<ParamId, usize>,
    exchanged: HashSet<ParamId>,
}

impl<'w, M> GradientSink<'w, M> {
    /// A sink for an update of `model`'s parameters by `worker`, sharded as its
    /// `trainer.sharding` says; `per_layer` when the trained passes recompute each decoder
    /// layer (their gradients then arrive layer by layer).
    pub fn new<B: AutodiffBackend>(model: &M, worker: &'w Worker, per_layer: bool) -> Self
    where
        M: AutodiffModule<B>,
    {
        let shards = worker.shards_gradients().then(|| {
            let ids = trained_ids::<B, _>(model);
            let owner = ids.into_iter().zip(worker.owners_of(model)).collect();
            Shards { owner, exchanged: HashSet::new() }
        });
        Self {
            worker,
            per_layer,
            micro: GradientsAccumulator::new(),
            kept: GradientsAccumulator::new(),
            shards,
        }
    }

    /// The worker whose gradients these are.
    pub fn worker(&self) -> &'w Worker {
        self.worker
    }

    /// Adds gradients of the micro-batch under way (a logits chunk's, the pass below the
    /// decoder layers, or all of a pass without checkpointing).
    pub fn add<B: AutodiffBackend>(&mut self, model: &M, grads: GradientsParams)
    where
        M: AutodiffModule<B>,
    {
        self.micro.accumulate(model, in_master_type(model, grads));
    }

    /// Adds `layer`'s gradients for the micro-batch under way, complete: they join the
    /// worker's sum now (unsharded) or are summed to their owners now (sharded).
    pub fn add_layer<B: AutodiffBackend, L: Module<B>>(
        &mut self,
        model: &M,
        layer: &L,
        grads: GradientsParams,
    ) -> Result<()>
    where
        M: AutodiffModule<B>,
    {
        let mut grads = in_master_type(layer, grads);
        match &mut self.shards {
            None => self.kept.accumulate(model, grads),
            Some(shards) => {
                let owned = shards.exchange(self.worker, layer, &mut grads, &|_| true)?;
                self.kept.accumulate(model, owned);
            }
        }
        Ok(())
    }

    /// After the micro-batch's last logits chunk: sharded, the output projection's gradients
    /// (complete unless it is tied to the embeddings, which the pass below the layers also
    /// reaches) are summed to their owners now.
    pub fn output_projection_done<B: TrainBackend>(&mut self, model: &M) -> Result<()>
    where
        M: Vlm<B> + AutodiffModule<B>,
    {
        let (Some(shards), Some(head)) = (&mut self.shards, &model.decoder().0.lm_head) else {
            return Ok(());
        };
        let mut grads = self.micro.grads();
        let owned = shards.exchange(self.worker, head, &mut grads, &|_| true)?;
        self.micro.accumulate(model, grads);
        self.kept.accumulate(model, owned);
        Ok(())
    }

    /// Ends the micro-batch under way: unsharded, its gradients join the worker's sum; sharded,
    /// those not yet exchanged are summed to their owners.
    pub fn end_micro_batch<B: AutodiffBackend>(&mut self, model: &M) -> Result<()>
    where
        M: AutodiffModule<B>,
    {
        let mut grads = self.micro.grads();
        match &mut self.shards {
            None => self.kept.accumulate(model, grads),
            Some(shards) => {
                let exchanged = std::mem::take(&mut shards.exchanged);
                let owned =
                    shards.exchange(self.worker, model, &mut grads, &|id| !exchanged.contains(&id))?;
                shards.exchanged.clear();
                self.kept.accumulate(model, owned);
            }
        }
        Ok(())
    }

    /// Whether a micro-batch may be computed apart, into a sink of its own, and handed over
    /// whole ([`GradientSink::add_micro_batch`]): nothing is exchanged while it runs (the
    /// gradients are not sharded) and its layers' gradients do not arrive one at a time (no
    /// activation checkpointing).
    pub fn takes_whole_micro_batches(&self) -> bool {
        self.shards.is_none() && !self.per_layer
    }

    /// Adds the gradients `g_{w,m}` of a micro-batch computed apart (what its own sink's
    /// [`finish`](Self::finish) gave, alone): they join the worker's sum, `G_w + g_{w,m}`, as
    /// its [`end_micro_batch`](Self::end_micro_batch) here would have added them, so micro-batches
    /// added in their order give the sum of micro-batches computed here, to the bit. An error
    /// for a sink that does not [take whole micro-batches](Self::takes_whole_micro_batches).
    pub fn add_micro_batch<B: AutodiffBackend>(&mut self, model: &M, grads: GradientsParams) -> Result<()>
    where
        M: AutodiffModule<B>,
    {
        if !self.takes_whole_micro_batches() {
            return Err(crate::error::EngineError::Distributed(
                "a micro-batch computed apart was handed to a sink that exchanges gradients or \
                 takes them a layer at a time"
                    .into(),
            ));
        }
        self.kept.accumulate(model, grads);
        Ok(())
    }

    /// Whether this sink exchanges gradients (sharded), and does so a decoder layer at a time
    /// (`per_layer`), as a worker with no work must too ([`crate::layer_prefetch::idle_layers`],
    /// [`crate::layer_checkpoints::idle_micro_batch`]).
    pub(crate) fn exchanges(&self) -> (bool, bool) {
        (self.shards.is_some(), self.per_layer)
    }

    /// The update's gradients after its last micro-batch: unsharded, every parameter's sum over
    /// the workers; sharded, this worker's own parameters' sums.
    pub fn finish<B: AutodiffBackend>(mut self, model: &M) -> Result<GradientsParams>
    where
        M: AutodiffModule<B>,
    {
        let grads = self.kept.grads();
        match self.shards {
            None => self.worker.sum_gradients(model, grads),
            Some(_) => Ok(grads),
        }
    }
}

impl Shards {
    /// Sums the gradients of `part`'s trained parameters that `selected` names over the
    /// workers, taking them out of `grads`: returns the sums of this worker's own ones.
    fn exchange<B: AutodiffBackend, L: Module<B>>(
        &mut self,
        worker: &Worker,
        part: &L,
        grads: &mut GradientsParams,
        selected: &dyn Fn(ParamId) -> bool,
    ) -> Result<GradientsParams> {
        let rank = worker.rank();
        let owner = &self.owner;
        let owned =
            worker.sum_selected_gradients(part, grads, selected, &|id| owner.get(&id) == Some(&rank))?;
        self.exchanged.extend(trained_ids::<B, _>(part).into_iter().filter(|&id| selected(id)));
        Ok(owned)
    }
}

/// `grads` (of a pass over `part`, perhaps computed in a narrower type than the weights) with
/// each of `part`'s parameters' gradient in the backend's float type, the master weights':
/// `g ← cast(g, float)`, nothing done to one already in it.
fn in_master_type<B: AutodiffBackend, M: Module<B>>(part: &M, mut grads: GradientsParams) -> GradientsParams {
    struct Widen<'a>(&'a mut GradientsParams);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Widen<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(grad) = self.0.remove::<B::InnerBackend, D>(param.id) {
                self.0.register(param.id, grad.cast(float_dtype::<B::InnerBackend>()));
            }
        }
    }
    part.visit(&mut Widen(&mut grads));
    grads
}
