//! The log-probability of each row's target token and the row's entropy, from vocabulary logits.

use burn::tensor::{Int, Tensor};

use crate::kernels::Kernels;

/// Per row of `logits [N, V]` with `p = softmax(logits)`: `log p(target)` (with gradient) and
/// the entropy `H = −Σ_v p_v log p_v` (without), by the backend's kernel
/// ([`Kernels::token_logprobs`]). On burn's ndarray backend (with or without autodiff) a fused
/// host kernel computes both in one pass per row over the cores, keeping only the logits and
/// each row's log-sum-exp for the backward pass; elsewhere by default
/// [`decomposed_token_logprobs`](crate::kernels::decomposed_token_logprobs).
pub fn token_logprobs<B: Kernels>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    <B as Kernels>::token_logprobs(logits, targets)
}
