//! Loading HF `nn.Linear` weights into burn's `Linear`.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;

use crate::checkpoint::Checkpoint;
use crate::error::Result;

/// Loads `{prefix}.weight` (`[d_out, d_in]`, transposed for burn) and, if `bias`, `{prefix}.bias`.
pub fn load_linear<B: Backend>(
    ckpt: &Checkpoint,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &B::Device,
) -> Result<Linear<B>> {
    let weight = ckpt.matrix_transposed(&format!("{prefix}.weight"), &[d_out, d_in], device)?;
    let bias = if bias {
        let b = ckpt.tensor(&format!("{prefix}.bias"), [d_out], device)?;
        Some(Param::from_tensor(b))
    } else {
        None
    };
    Ok(Linear { weight: Param::from_tensor(weight), bias })
}
