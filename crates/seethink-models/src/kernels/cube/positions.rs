//! New keys or values written into a KV cache's buffer at the rows an index picks, in one
//! launch.

use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

/// `buffer[rows[r], h, at + i, d] = values[r, h, i, d]` for every element of `values
/// [R, H, new, D]` (contiguous), one unit per element; `buffer` is read through its strides.
#[cube(launch)]
fn write_rows_kernel<K: Numeric, I: Numeric>(
    buffer: &mut Tensor<K>,
    rows: &Tensor<I>,
    values: &Tensor<K>,
    at: usize,
    #[define(K, I)] _dtypes: [StorageType; 2],
) {
    if ABSOLUTE_POS >= values.len() {
        terminate!();
    }
    let (heads, new, dim) = (values.shape(1), values.shape(2), values.shape(3));
    let d = ABSOLUTE_POS % dim;
    let i = ABSOLUTE_POS / dim % new;
    let h = ABSOLUTE_POS / (dim * new) % heads;
    let r = ABSOLUTE_POS / (dim * new * heads);
    let row = u32::cast_from(rows[r]) as usize;
    let to =
        row * buffer.stride(0) + h * buffer.stride(1) + (at + i) * buffer.stride(2) + d * buffer.stride(3);
    buffer[to] = values[ABSOLUTE_POS];
}

/// [`write_rows_kernel`] into `buffer` in place where it is held once (else into a copy), as
/// burn's `slice_assign` does: [`crate::kernels::Kernels::write_positions`] with rows.
pub fn write_rows<R: CubeRuntime>(
    buffer: CubeTensor<R>,
    rows: CubeTensor<R>,
    values: CubeTensor<R>,
    at: usize,
) -> CubeTensor<R> {
    let buffer = match buffer.can_mut() && buffer.is_nonoverlapping() {
        true => buffer,
        false => buffer.copy(),
    };
    let values = into_contiguous(values);
    let units = values.meta.shape().num_elements();
    let cube_dim = CubeDim::new(&values.client, units);
    let dtypes = [values.dtype.into(), rows.dtype.into()];
    let client = values.client.clone();
    write_rows_kernel::launch::<R>(
        &client,
        calculate_cube_count_elemwise(&client, units, cube_dim),
        cube_dim,
        buffer.clone().into_tensor_arg(),
        rows.into_tensor_arg(),
        values.into_tensor_arg(),
        at,
        dtypes,
    );
    buffer
}
