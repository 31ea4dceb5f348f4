//! Reading tensors back to the host.

use burn::tensor::{backend::Backend, Tensor};

use crate::error::{ModelError, Result};

/// The elements of `tensor` as f32 in row-major order, converted from the backend's float
/// type; a tensor whose data cannot be read (a dtype the conversion does not know) is an error
/// naming `what`, never an empty vector.
pub fn host_f32<B: Backend, const D: usize>(tensor: Tensor<B, D>, what: &str) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::Input(format!("reading {what} back to the host: {e:?}")))
}
