//! Normalisation layers.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, DType, Tensor};

use super::frozen::float_dtype;

use crate::checkpoint::Checkpoint;
use crate::error::Result;

/// RMSNorm as in HF Qwen: `y = w ⊙ x / sqrt(mean(x²) + eps)` over the last dimension.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// Loads `{prefix}.weight` of size `dim`.
    pub fn load(ckpt: &Checkpoint, prefix: &str, dim: usize, eps: f64, device: &B::Device) -> Result<Self> {
        let weight = ckpt.tensor(&format!("{prefix}.weight"), [dim], device)?;
        Ok(Self { weight: Param::from_tensor(weight), eps })
    }

    /// `y = w ⊙ cast(x / sqrt(mean(x², last dim) + eps))`: the normalisation computed in the
    /// backend's float type and cast back to `x`'s type before the scale, as transformers'
    /// Qwen RMSNorm upcasts to f32 (no cast unless a mixed-precision pass computes narrower).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = x.cast(float_dtype::<B>());
        let mean_square = x.clone().powi_scalar(2).mean_dim(D - 1);
        let normalized = (x * (mean_square + self.eps).sqrt().recip()).cast(dtype);
        normalized * self.weight.val().unsqueeze()
    }

    /// The type this norm computes in, and the model around it ([`crate::nn::precision`]).
    pub fn dtype(&self) -> DType {
        self.weight.val().dtype()
    }
}

/// Loads an HF `nn.LayerNorm` (`{prefix}.weight`, `{prefix}.bias`) into burn's `LayerNorm`,
/// which computes `y = γ ⊙ (x − mean) / sqrt(var + eps) + β` with the biased variance.
pub fn load_layer_norm<B: Backend>(
    ckpt: &Checkpoint,
    prefix: &str,
    dim: usize,
    eps: f64,
    device: &B::Device,
) -> Result<LayerNorm<B>> {
    let mut norm = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
    norm.gamma = Param::from_tensor(ckpt.tensor(&format!("{prefix}.weight"), [dim], device)?);
    norm.beta = Some(Param::from_tensor(ckpt.tensor(&format!("{prefix}.bias"), [dim], device)?));
    Ok(norm)
}

/// Which normalisation a config asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    Rms,
    Layer,
}

/// An RMSNorm or a LayerNorm, as the config chooses.
#[derive(Module, Debug)]
pub enum Norm<B: Backend> {
    Rms(RmsNorm<B>),
    Layer(LayerNorm<B>),
}

impl<B: Backend> Norm<B> {
    /// Loads the norm of `kind` stored under `prefix` (`weight`, and `bias` for LayerNorm).
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        kind: NormKind,
        dim: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(match kind {
            NormKind::Rms => Self::Rms(RmsNorm::load(ckpt, prefix, dim, eps, device)?),
            NormKind::Layer => Self::Layer(load_layer_norm(ckpt, prefix, dim, eps, device)?),
        })
    }

    /// The norm over the last dimension.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Rms(n) => n.forward(x),
            Self::Layer(n) => n.forward(x),
        }
    }

    /// The type this norm computes in, and the model around it ([`crate::nn::precision`]).
    pub fn dtype(&self) -> DType {
        match self {
            Self::Rms(n) => n.dtype(),
            Self::Layer(n) => n.gamma.val().dtype(),
        }
    }
}
