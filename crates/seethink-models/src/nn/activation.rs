//! Activation functions, named as in HF configs.

use burn::tensor::{activation, Tensor};

use crate::kernels::Kernels;

/// An activation from a config's `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// silu(x) = x·σ(x)
    Silu,
    /// gelu(x) = x·Φ(x) (exact, erf)
    Gelu,
    /// gelu_tanh(x) = 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
    GeluTanh,
    /// quick_gelu(x) = x·σ(1.702x)
    QuickGelu,
}

impl Activation {
    /// Parses the HF name (`silu`, `gelu`, `gelu_pytorch_tanh`, `quick_gelu`).
    pub fn from_hf_name(name: &str) -> Option<Self> {
        match name {
            "silu" | "swish" => Some(Self::Silu),
            "gelu" => Some(Self::Gelu),
            "gelu_pytorch_tanh" | "gelu_new" => Some(Self::GeluTanh),
            "quick_gelu" => Some(Self::QuickGelu),
            _ => None,
        }
    }

    /// Applies the activation element-wise (the exact GELU through [`Kernels::gelu`]).
    pub fn apply<B: Kernels, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Silu => activation::silu(x),
            Self::Gelu => <B as Kernels>::gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::QuickGelu => x.clone() * activation::sigmoid(x * 1.702),
        }
    }
}
