//! RMSNorm in one launch, optionally after the residual add: a cube per row.

use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::{row_cubes, row_of_cube, sum_in_cube, UNITS};

/// `y = w ⊙ cast(h / sqrt(mean(h²) + eps))` for every row of `h [rows, dim]`, where `h = x`, or
/// with `add` `h = x + delta` (rounded to the elements' type, and written to `sum`): each of the
/// cube's units squares and sums a strided share of the row in f32, the cube adds the shares
/// ([`sum_in_cube`]), and every unit scales its share; the normalised value is rounded to the
/// elements' type before the product with `w`, as [`crate::kernels::Kernels::rms_norm`] casts.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn rms_norm_kernel<F: Float>(
    x: &Tensor<F>,
    delta: &Tensor<F>,
    weight: &Tensor<F>,
    sum: &mut Tensor<F>,
    output: &mut Tensor<F>,
    rows: u32,
    eps: f32,
    #[comptime] add: bool,
    #[define(F)] _dtype: StorageType,
) {
    let row = row_of_cube();
    if row >= rows {
        terminate!();
    }
    let dim = weight.len();
    let start = row as usize * dim;
    let mut share = 0.0f32;
    let mut i = UNIT_POS_X as usize;
    while i < dim {
        let mut h = x[start + i];
        if add {
            h += delta[start + i];
            sum[start + i] = h;
        }
        let v = f32::cast_from(h);
        share += v * v;
        i += CUBE_DIM_X as usize;
    }
    let total = sum_in_cube(share);
    let inverse = 1.0f32 / (total / dim as f32 + eps).sqrt();
    let mut i = UNIT_POS_X as usize;
    while i < dim {
        let mut h = x[start + i];
        if add {
            h = sum[start + i];
        }
        output[start + i] = F::cast_from(f32::cast_from(h) * inverse) * weight[i];
        i += CUBE_DIM_X as usize;
    }
}

/// [`rms_norm_kernel`] over the last dimension of `x` (after adding `delta`, of `x`'s shape,
/// when given), with `weight [dim]`: the sum if one was asked for, and the normalised rows.
pub fn rms_norm<R: CubeRuntime>(
    x: CubeTensor<R>,
    delta: Option<CubeTensor<R>>,
    weight: CubeTensor<R>,
    eps: f64,
) -> (Option<CubeTensor<R>>, CubeTensor<R>) {
    let x = into_contiguous(x);
    let weight = into_contiguous(weight);
    let shape = x.meta.shape().clone();
    let rows = shape.num_elements() / weight.meta.num_elements();
    let empty = |shape| empty_device_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
    let output = empty(shape.clone());
    let add = delta.is_some();
    // without a delta the kernel reads none and writes no sum: `x` and one element stand in
    let (delta, sum) = match delta {
        Some(delta) => (into_contiguous(delta), empty(shape.clone())),
        None => (x.clone(), empty([1].into())),
    };
    let dtype = x.dtype;
    rms_norm_kernel::launch::<R>(
        &x.client,
        row_cubes(&x.client, rows),
        CubeDim::new_1d(UNITS),
        x.clone().into_tensor_arg(),
        delta.into_tensor_arg(),
        weight.into_tensor_arg(),
        sum.clone().into_tensor_arg(),
        output.clone().into_tensor_arg(),
        rows as u32,
        eps as f32,
        add,
        dtype.into(),
    );
    (add.then_some(sum), output)
}
