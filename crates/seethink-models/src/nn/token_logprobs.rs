//! The log-probability of each row's target token and the row's entropy, from vocabulary logits.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::kernels::Kernels;

/// Per row of `logits [N, V]` with `p = softmax(logits)`: `log p(target)` (with gradient) and
/// the entropy `H = −Σ_v p_v log p_v` (without), by the backend's kernel
/// ([`Kernels::token_logprobs`]). On burn's ndarray backend (with or without autodiff) a fused
/// host kernel computes both in one pass per row over the cores, keeping only the logits and
/// each row's log-sum-exp for the backward pass; elsewhere by default
/// [`decomposed_token_logprobs`].
pub fn token_logprobs<B: Kernels>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    <B as Kernels>::token_logprobs(logits, targets)
}

/// [`token_logprobs`] from burn's `log_softmax`, `gather` and a detached entropy.
pub fn decomposed_token_logprobs<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [rows, _] = logits.dims();
    let logp_all = log_softmax(logits, 1);
    let logp = logp_all.clone().gather(1, targets.reshape([rows, 1])).reshape([rows]);
    let logp_all = logp_all.detach();
    let entropy = (logp_all.clone().exp() * logp_all).sum_dim(1).reshape([rows]).neg();
    (logp, entropy)
}
