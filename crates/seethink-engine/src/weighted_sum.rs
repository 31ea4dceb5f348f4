//! The scalar whose backward pass hands a recomputed piece's output gradient on: what layer and
//! vision-block checkpoints back-propagate through each recomputed layer or block.

use burn::tensor::Tensor;

use crate::train_backend::TrainBackend;

type Inner<B> = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// `Σ_c Σ y_c · stopgrad(g_c)` over the terms whose gradient `g_c` is known; `None` if none is.
pub(crate) fn weighted_sum<'a, B: TrainBackend, const D: usize>(
    terms: impl Iterator<Item = (Tensor<B, D>, &'a Option<Tensor<Inner<B>, D>>)>,
) -> Option<Tensor<B, 1>> {
    terms
        .filter_map(|(y, g)| g.as_ref().map(|g| (y * Tensor::from_inner(g.clone())).sum()))
        .reduce(|a, b| a + b)
}
