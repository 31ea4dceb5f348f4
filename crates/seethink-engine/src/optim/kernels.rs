//! The optimizer's kernels a backend may replace, in burn's backend-extension pattern (as the
//! models' [`Kernels`](seethink_models::kernels::Kernels)): default methods in burn's ops,
//! `NdArray<f32>` overriding them with one pass over the cores each ([`super::host`]).

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

/// One AdamW step's settings (decoupled weight decay, as torch's and burn's `AdamW`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
    /// The step's number t, from 1.
    pub time: i32,
}

/// A parameter's AdamW moments `(m, v)`.
pub type Moments<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>);

/// The passes of the optimizer over every parameter (on the inner backend of training).
pub trait OptimizerKernels: Backend {
    /// The AdamW step for one parameter θ with gradient g and moments (m, v) (zero before the
    /// first step):
    ///
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ(1 − lr·λ) − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`
    ///
    /// Returns `(θ, (m, v))`, or the inputs back for burn's own `AdamW` to take the step (the
    /// default).
    #[allow(clippy::type_complexity)]
    fn adamw<const D: usize>(
        step: &AdamWStep,
        param: Tensor<Self, D>,
        grad: Tensor<Self, D>,
        moments: Option<Moments<Self, D>>,
    ) -> Result<
        (Tensor<Self, D>, Moments<Self, D>),
        (Tensor<Self, D>, Tensor<Self, D>, Option<Moments<Self, D>>),
    > {
        let _ = step;
        Err((param, grad, moments))
    }

    /// `Σ g²` over a gradient, a one-element tensor left on the device.
    fn squared_norm<const D: usize>(grad: &Tensor<Self, D>) -> Tensor<Self, 1> {
        grad.clone().powi_scalar(2).sum()
    }

    /// `Σ_i parts_i` on the host (0 for none): the global squared norm from every parameter's
    /// [`squared_norm`](Self::squared_norm), summed on the device and read back once.
    fn total(parts: Vec<Tensor<Self, 1>>) -> f64 {
        match parts.is_empty() {
            true => 0.0,
            false => Tensor::cat(parts, 0).sum().into_scalar().elem(),
        }
    }

    /// `g · factor`.
    fn scale<const D: usize>(grad: Tensor<Self, D>, factor: f64) -> Tensor<Self, D> {
        grad * factor
    }
}

/// burn's ops in f64 (the generic path's test backend).
#[cfg(feature = "ndarray")]
impl OptimizerKernels for burn::backend::NdArray<f64> {}

#[cfg(feature = "wgpu")]
impl OptimizerKernels for burn::backend::Wgpu {}

#[cfg(feature = "cuda")]
impl OptimizerKernels for burn::backend::Cuda {}
