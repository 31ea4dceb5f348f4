//! Token log-probs and entropies in burn tensor operations, the default of
//! [`Kernels::token_logprobs`](super::Kernels::token_logprobs).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// [`token_logprobs`](super::Kernels::token_logprobs) from burn's `log_softmax`, `gather` and a
/// detached entropy.
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
