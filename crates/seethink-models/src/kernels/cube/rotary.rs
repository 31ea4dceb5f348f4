//! Rotary position embedding in one launch, reading the heads in whatever layout they are.

use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

/// `y = x·cos + rotate_half(x)·sin` with `rotate_half(x) = [−x₂, x₁]` (the two halves of the
/// head dimension), one unit per element of `x [B, H, S, D]` read through its strides (with
/// `with_bias`, `x + bias` with `bias [H·D]`, rounded to the elements' type first), `cos` and
/// `sin` `[B or 1, S, D]` contiguous; as [`crate::kernels::Kernels::rotary`] computes.
#[cube(launch)]
fn rotary_kernel<F: Float>(
    x: &Tensor<F>,
    bias: &Tensor<F>,
    cos: &Tensor<F>,
    sin: &Tensor<F>,
    output: &mut Tensor<F>,
    #[comptime] with_bias: bool,
    #[define(F)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= output.len() {
        terminate!();
    }
    let (heads, seq, dim) = (output.shape(1), output.shape(2), output.shape(3));
    let d = ABSOLUTE_POS % dim;
    let s = ABSOLUTE_POS / dim % seq;
    let h = ABSOLUTE_POS / (dim * seq) % heads;
    let b = ABSOLUTE_POS / (dim * seq * heads);
    let base = b * x.stride(0) + h * x.stride(1) + s * x.stride(2);
    let half = dim / 2;
    let partner = if d < half { d + half } else { d - half };
    let mut own = x[base + d * x.stride(3)];
    let mut other = x[base + partner * x.stride(3)];
    if with_bias {
        own += bias[h * dim + d];
        other += bias[h * dim + partner];
    }
    let rotated = if d < half { -other } else { other };
    let table = (b % cos.shape(0)) * seq * dim + s * dim + d;
    output[ABSOLUTE_POS] = own * cos[table] + rotated * sin[table];
}

/// [`rotary_kernel`] for `x [B, H, S, D]`, the projection's `bias [H·D]` if any, and the tables
/// `[B or 1, S, D]`.
pub fn rotary<R: CubeRuntime>(
    x: CubeTensor<R>,
    bias: Option<CubeTensor<R>>,
    cos: CubeTensor<R>,
    sin: CubeTensor<R>,
) -> CubeTensor<R> {
    let (cos, sin) = (into_contiguous(cos), into_contiguous(sin));
    let shape = x.meta.shape().clone();
    let output = empty_device_dtype(x.client.clone(), x.device.clone(), shape.clone(), x.dtype);
    let units = shape.num_elements();
    let cube_dim = CubeDim::new(&x.client, units);
    let dtype = x.dtype;
    let client = x.client.clone();
    let with_bias = bias.is_some();
    // without a bias the kernel reads none: the table stands in
    let bias = bias.map_or_else(|| cos.clone(), into_contiguous);
    rotary_kernel::launch::<R>(
        &client,
        calculate_cube_count_elemwise(&client, units, cube_dim),
        cube_dim,
        x.into_tensor_arg(),
        bias.into_tensor_arg(),
        cos.into_tensor_arg(),
        sin.into_tensor_arg(),
        output.clone().into_tensor_arg(),
        with_bias,
        dtype.into(),
    );
    output
}
