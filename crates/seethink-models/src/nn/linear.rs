//! Linear layers: HF `nn.Linear` weights loaded for burn, applied through [`matmul`]; the ones
//! LoRA can adapt, by module path ([`LoraSite`]).

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::frozen::weight_product;
use super::lora::{LoraAdapter, LoraPart};
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::kernels::Kernels;

/// `y = x·W + b` with `W [d_in, d_out]` (computed in `x`'s type when `W` is a frozen weight
/// stored narrower, [`weight_product`]), plus `scaling · (dropout(x)·A)·B` with a LoRA adapter
/// ([`LoraAdapter`]): burn's `Linear` record (the same field names, so saved states load
/// either way) and the adapter, applied through [`matmul`].
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    pub lora: Option<LoraAdapter<B>>,
}

impl<B: Backend> Linear<B> {
    /// `[d_in, d_out]`.
    pub fn dims(&self) -> [usize; 2] {
        self.weight.val().dims()
    }

    /// Merges the adapter into the weight (`W ← W + scaling·A·B`, as peft's `merge`, in the
    /// adapter's type: a frozen weight stored narrower is widened) and removes it; nothing
    /// without one.
    pub fn merge_lora(&mut self) {
        if let Some(lora) = self.lora.take() {
            let delta = lora.delta_weight();
            self.weight = self.weight.clone().map(|w| w.cast(delta.dtype()) + delta);
        }
    }
}

impl<B: Kernels> Linear<B> {
    /// `x [.., d_in] → [.., d_out]`: `x·W + b`, then `+ scaling · (dropout(x)·A)·B` with an
    /// adapter (peft's `result + lora_B(lora_A(dropout(x))) * scaling`).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let (x, shape) = self.rows(x);
        let weight = self.weight.val();
        let (y, delta) = match &self.lora {
            Some(lora) => (weight_product(x.clone(), weight), Some(lora.forward(x))),
            None => (weight_product(x, weight), None),
        };
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze(),
            None => y,
        };
        let y = match delta {
            Some(delta) => y + delta,
            None => y,
        };
        y.reshape(shape)
    }

    /// [`Linear::forward`] without its bias, and the bias, for a kernel that adds it with what
    /// comes next ([`Kernels::rotary`]); with an adapter, the whole forward (the bias added
    /// before the adapter's delta, as always) and none.
    pub fn forward_deferring_bias<const D: usize>(
        &self,
        x: Tensor<B, D>,
    ) -> (Tensor<B, D>, Option<Tensor<B, 1>>) {
        match (&self.lora, &self.bias) {
            (None, Some(bias)) => {
                let (x, shape) = self.rows(x);
                (weight_product(x, self.weight.val()).reshape(shape), Some(bias.val()))
            }
            _ => (self.forward(x), None),
        }
    }

    /// `x [.., d_in]` as rows `[n, d_in]`, and the shape of the output `[.., d_out]`.
    fn rows<const D: usize>(&self, x: Tensor<B, D>) -> (Tensor<B, 2>, [usize; D]) {
        let mut shape = x.dims();
        let d_in = shape[D - 1];
        let rows = shape[..D - 1].iter().product::<usize>();
        shape[D - 1] = self.weight.val().dims()[1];
        (x.reshape([rows, d_in]), shape)
    }
}

/// A linear layer LoRA can adapt, named by its module path in the model class peft wraps (the
/// path of peft's keys and `target_modules`): `{stem}.{index}.{leaf}` for the layer of block
/// `index` of a repeated block, `{stem}.{leaf}` for one outside (e.g. `model.visual.blocks`, 3,
/// `attn.qkv`; `model.multi_modal_projector`, none, `linear_1`).
pub struct LoraSite<'a, B: Backend> {
    pub part: LoraPart,
    pub stem: String,
    pub index: Option<usize>,
    pub leaf: &'static str,
    pub linear: &'a mut Linear<B>,
}

impl<B: Backend> LoraSite<'_, B> {
    /// The module path: `{stem}.{index}.{leaf}` or `{stem}.{leaf}`.
    pub fn path(&self) -> String {
        match self.index {
            Some(i) => format!("{}.{i}.{}", self.stem, self.leaf),
            None => format!("{}.{}", self.stem, self.leaf),
        }
    }

    /// The layer's own name, the last part of its path (`q_proj`, `qkv`, `linear_fc1`): what
    /// `target_modules` and `vision_modules` name.
    pub fn name(&self) -> &'static str {
        self.leaf.rsplit('.').next().unwrap_or(self.leaf)
    }

    /// A regex (Python's `re` syntax) whose full match is this layer in every block: the path
    /// with its dots escaped and the block index as `\d+`.
    pub fn pattern(&self) -> String {
        let escape = |s: &str| s.replace('.', r"\.");
        match self.index {
            Some(_) => format!(r"{}\.\d+\.{}", escape(&self.stem), escape(self.leaf)),
            None => format!(r"{}\.{}", escape(&self.stem), escape(self.leaf)),
        }
    }
}

/// `A·B` for matrices by the backend's kernel ([`Kernels::matmul`]): on burn's ndarray backend
/// (with or without autodiff) the host product (multi-core, no copies of transposed operands),
/// elsewhere by default burn's.
pub fn matmul<B: Kernels>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    <B as Kernels>::matmul(a, b)
}

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
    Ok(Linear { weight: Param::from_tensor(weight), bias, lora: None })
}
