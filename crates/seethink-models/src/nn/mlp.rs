//! Feed-forward blocks.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use super::Activation;
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::kernels::Kernels;
use crate::nn::{load_linear, Linear};

/// Gated MLP (SwiGLU for silu): `down(act(gate(x)) ⊙ up(x))`.
#[derive(Module, Debug)]
pub struct GatedMlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
    #[module(skip)]
    pub act: Activation,
}

impl<B: Kernels> GatedMlp<B> {
    /// Loads `{prefix}.{gate,up,down}_proj`.
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        dim: usize,
        hidden: usize,
        bias: bool,
        act: Activation,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            gate_proj: load_linear(ckpt, &format!("{prefix}.gate_proj"), dim, hidden, bias, device)?,
            up_proj: load_linear(ckpt, &format!("{prefix}.up_proj"), dim, hidden, bias, device)?,
            down_proj: load_linear(ckpt, &format!("{prefix}.down_proj"), hidden, dim, bias, device)?,
            act,
        })
    }

    /// `down(act(gate(x)) ⊙ up(x))`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let (gate, up) = (self.gate_proj.forward(x.clone()), self.up_proj.forward(x));
        self.down_proj.forward(gated(self.act, gate, up))
    }
}

/// `act(gate) ⊙ up`; SwiGLU through the backend's kernel ([`Kernels::swiglu`]).
fn gated<B: Kernels, const D: usize>(act: Activation, gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    match act {
        Activation::Silu => <B as Kernels>::swiglu(gate, up),
        _ => act.apply(gate) * up,
    }
}

/// Two-layer MLP: `fc2(act(fc1(x)))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
    #[module(skip)]
    pub act: Activation,
}

impl<B: Kernels> Mlp<B> {
    /// Loads `{prefix}.{fc1}` and `{prefix}.{fc2}` (names vary per family, so both are given).
    pub fn load(
        ckpt: &Checkpoint,
        fc1: &str,
        fc2: &str,
        dims: [usize; 3],
        act: Activation,
        device: &B::Device,
    ) -> Result<Self> {
        let [d_in, hidden, d_out] = dims;
        Ok(Self {
            fc1: load_linear(ckpt, fc1, d_in, hidden, true, device)?,
            fc2: load_linear(ckpt, fc2, hidden, d_out, true, device)?,
            act,
        })
    }

    /// `fc2(act(fc1(x)))`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.fc2.forward(self.act.apply(self.fc1.forward(x)))
    }
}
