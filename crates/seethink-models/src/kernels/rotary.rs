//! The rotary position embedding in burn's ops, the path of every backend without a kernel of
//! its own ([`Kernels::rotary`](super::Kernels::rotary)).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `y = x·cos + rotate_half(x)·sin` for `x [B, H, S, D]` (plus a projection's `bias [H·D]`, if
/// given) and the tables `cos, sin [B or 1, S, D]`, with `rotate_half(x) = [−x₂, x₁]` for the
/// halves of `D`: two halves, a negation, a concatenation, two products and a sum.
pub fn decomposed_rotary<B: Backend>(
    x: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
) -> Tensor<B, 4> {
    let [_, heads, _, dim] = x.dims();
    let x = match bias {
        Some(bias) => x + bias.reshape([1, heads, 1, dim]),
        None => x,
    };
    let half = dim / 2;
    let first = x.clone().narrow(3, 0, half);
    let second = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos.unsqueeze_dim::<4>(1) + rotated * sin.unsqueeze_dim::<4>(1)
}
