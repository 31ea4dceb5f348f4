//! Normalisation layers.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, DType, Tensor};

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::kernels::Kernels;

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

    /// `y = w ⊙ cast(x / sqrt(mean(x², last dim) + eps))` ([`Kernels::rms_norm`]).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D>
    where
        B: Kernels,
    {
        B::rms_norm(x, self.weight.val(), self.eps)
    }

    /// The residual stream `h = x + delta` and this norm of it ([`Kernels::add_rms_norm`]).
    pub fn forward_after_add<const D: usize>(
        &self,
        x: Tensor<B, D>,
        delta: Tensor<B, D>,
    ) -> (Tensor<B, D>, Tensor<B, D>)
    where
        B: Kernels,
    {
        B::add_rms_norm(x, delta, self.weight.val(), self.eps)
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
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D>
    where
        B: Kernels,
    {
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
