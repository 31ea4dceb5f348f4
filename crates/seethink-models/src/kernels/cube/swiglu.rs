//! SwiGLU in one launch.

use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

/// `y = silu(gate) ⊙ up = gate·σ(gate)·up`, one unit per element, computed in f32 and rounded
/// once to the elements' type.
#[cube(launch)]
fn swiglu_kernel<F: Float>(
    gate: &Tensor<F>,
    up: &Tensor<F>,
    output: &mut Tensor<F>,
    #[define(F)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= output.len() {
        terminate!();
    }
    let g = f32::cast_from(gate[ABSOLUTE_POS]);
    output[ABSOLUTE_POS] = F::cast_from(g / (1.0f32 + (-g).exp()) * f32::cast_from(up[ABSOLUTE_POS]));
}

/// [`swiglu_kernel`] for two tensors of one shape.
pub fn swiglu<R: CubeRuntime>(gate: CubeTensor<R>, up: CubeTensor<R>) -> CubeTensor<R> {
    let (gate, up) = (into_contiguous(gate), into_contiguous(up));
    let shape = gate.meta.shape().clone();
    let output = empty_device_dtype(gate.client.clone(), gate.device.clone(), shape.clone(), gate.dtype);
    let units = shape.num_elements();
    let cube_dim = CubeDim::new(&gate.client, units);
    let dtype = gate.dtype;
    let client = gate.client.clone();
    swiglu_kernel::launch::<R>(
        &client,
        calculate_cube_count_elemwise(&gate.client, units, cube_dim),
        cube_dim,
        gate.into_tensor_arg(),
        up.into_tensor_arg(),
        output.clone().into_tensor_arg(),
        dtype.into(),
    );
    output
}
