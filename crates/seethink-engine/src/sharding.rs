//! Sharded training state (ZeRO): how much of it each data-parallel worker holds
//! (`trainer.sharding`), which worker owns which trained parameter, and the two steps a
//! sharded optimizer update adds ([`Worker::own_gradients`], [`Worker::parameters_from_owners`]).
//!
//! With [`Sharding::OptimizerState`] (DeepSpeed's ZeRO stage 1) every worker still computes
//! and sums every gradient, clips them by the global norm as one process does, then takes
//! AdamW's step for its own parameters only, so it holds the moments of its 1/N of the
//! parameters; each updated parameter then travels from its owner to the others. The weights
//! after the step are those of the unsharded update, bitwise (a sum with the others' zeros is
//! exact). With [`Sharding::Gradients`] (ZeRO stage 2) the gradients go to their owners as
//! they are produced ([`GradientSink`](crate::gradient_sink::GradientSink)), and the clipping
//! norm is summed over the workers' shares. With [`Sharding::Weights`] (ZeRO stage 3) the
//! weights too ([`weight_shards`](crate::weight_shards)).
//!
//! [`Worker::own_gradients`]: crate::data_parallel::Worker::own_gradients
//! [`Worker::parameters_from_owners`]: crate::data_parallel::Worker::parameters_from_owners

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How much of the training state each data-parallel worker holds (`trainer.sharding`). The
/// names of the other systems' levels (docs/easyr1.md): DeepSpeed's ZeRO stages and PyTorch
/// FSDP's `ShardingStrategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sharding {
    /// Every worker holds the whole state: the weights, the gradients and AdamW's moments
    /// (ZeRO stage 0; FSDP's `NO_SHARD`; DDP).
    #[default]
    None,
    /// Each worker holds AdamW's moments of its own share of the trained parameters and
    /// updates only those (ZeRO stage 1; FSDP has no such level). Weights and gradients are
    /// whole on every worker.
    OptimizerState,
    /// As `OptimizerState`, and each worker also keeps only its own parameters' gradients: they
    /// are summed to their owners as the trained passes produce them, one decoder layer at a
    /// time with `actor.activation_checkpointing`, else once per micro-batch
    /// ([`GradientSink`](crate::gradient_sink::GradientSink); ZeRO stage 2, FSDP's
    /// `SHARD_GRAD_OP` without its sharded weights). Weights are whole on every worker.
    Gradients,
    /// As `Gradients`, and each worker also holds only its own parameters' weights between
    /// uses: the whole policy is gathered for the rollout and the old log-probs and released
    /// after them, and an update gathers the parts below and above the decoder layers for its
    /// passes and each decoder layer as its recomputed pass runs it
    /// ([`weight_shards`](crate::weight_shards); ZeRO stage 3, FSDP's `FULL_SHARD`). Needs
    /// `actor.activation_checkpointing`.
    Weights,
}

impl Sharding {
    /// Whether each worker keeps AdamW's moments of its own parameters only.
    pub fn optimizer_state(self) -> bool {
        self != Sharding::None
    }

    /// Whether each worker keeps its own parameters' gradients only.
    pub fn gradients(self) -> bool {
        matches!(self, Sharding::Gradients | Sharding::Weights)
    }

    /// Whether each worker keeps its own parameters' weights only, between uses.
    pub fn weights(self) -> bool {
        self == Sharding::Weights
    }
}

/// The owner of each of `sizes` (the trained parameters' element counts, in module order)
/// among `workers`: from the largest parameter down, each goes to the worker holding the
/// fewest elements so far (the lowest rank on a tie), Graham's longest-processing-time rule,
/// so no worker holds more than `total / workers + max(sizes)` elements.
pub fn owners(sizes: &[usize], workers: usize) -> Vec<usize> {
    let workers = workers.max(1);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    // largest first; equal sizes in module order
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut load = vec![0usize; workers];
    let mut owner = vec![0; sizes.len()];
    for i in order {
        let least = (0..workers).min_by_key(|&w| (load[w], w)).expect("at least one worker");
        owner[i] = least;
        load[least] += sizes[i];
    }
    owner
}

/// The element counts of `module`'s trained (gradient-taking) parameters, in module order,
/// the order every exchange of gradients and parameters visits them in.
pub fn trained_sizes<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M) -> Vec<usize> {
    struct Sizes(Vec<usize>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Sizes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if param.is_require_grad() {
                self.0.push(param.val().shape().num_elements());
            }
        }
    }
    let mut sizes = Sizes(Vec::new());
    module.visit(&mut sizes);
    sizes.0
}

/// The ids of `module`'s trained (gradient-taking) parameters, in module order.
pub(crate) fn trained_ids<B: AutodiffBackend, M: Module<B>>(module: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if param.is_require_grad() {
                self.0.push(param.id);
            }
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// Every trained parameter's owner and shape under `Sharding::Weights`, recorded by the first
/// release of the whole policy (`crate::weight_shards`; parameter ids are derived from module
/// paths, so they are the same on every worker and after a checkpoint is loaded). Shared by a
/// worker's clones.
pub(crate) type WeightLayout = Arc<Mutex<HashMap<ParamId, Placement>>>;

/// Where a trained parameter's weights live between uses.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    pub(crate) owner: usize,
    pub(crate) shape: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::owners;

    #[test]
    fn owners_balance_elements_largest_first() {
        // 10 to worker 0, 8 to 1, 7 to 1 (15), 5 to 0 (15), 1 to 0 (lowest rank on the tie)
        assert_eq!(owners(&[5, 10, 1, 8, 7], 2), vec![0, 0, 0, 1, 1]);
        assert_eq!(owners(&[3, 3, 3], 1), vec![0, 0, 0]);
        // more workers than parameters: one each, the rest hold none
        assert_eq!(owners(&[4, 9], 3), vec![1, 0]);
        assert_eq!(owners(&[], 4), Vec::<usize>::new());
    }

    #[test]
    fn no_worker_holds_more_than_its_share_and_the_largest_parameter() {
        let sizes: Vec<usize> = (0..200).map(|i| (i * 7919) % 1000 + 1).collect();
        let total: usize = sizes.iter().sum();
        for workers in [2, 3, 4, 8] {
            let owner = owners(&sizes, workers);
            for w in 0..workers {
                let held: usize = sizes.iter().zip(&owner).filter(|(_, &o)| o == w).map(|(s, _)| s).sum();
                assert!(held <= total / workers + 1000, "worker {w} of {workers} holds {held} of {total}");
            }
        }
    }
}
