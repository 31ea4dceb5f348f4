//! Optimisation pieces shared by GRPO and SFT: learning-rate schedules, global-norm clipping
//! and AdamW, with the backend's optimizer kernels ([`OptimizerKernels`]).

#[cfg(feature = "ndarray")]
mod host;
mod kernels;

pub use kernels::{AdamWStep, Moments, OptimizerKernels};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, GradientsParams, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::data_parallel::Worker;
use crate::error::Result;

/// Learning rate as a function of the training step t (0-based; one value for all the
/// optimizer updates of a step), as EasyR1's schedulers (`get_constant_schedule_with_warmup`,
/// `get_cosine_schedule_with_warmup`) compute it — so with a warm-up the first step has LR 0.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LrSchedule {
    /// `lr(t) = lr`
    Constant,
    /// `lr(t) = lr · min(1, t / warmup)`
    Warmup { warmup: usize },
    /// The same warm-up, then `lr · (min_ratio + (1 − min_ratio) · ½(1 + cos(π · p)))` with
    /// `p = (t − warmup) / (total − warmup)` clamped to [0, 1].
    Cosine { warmup: usize, total: usize, min_ratio: f64 },
}

impl LrSchedule {
    /// The learning rate at training step `step` for base rate `lr`.
    pub fn lr_at(&self, lr: f64, step: usize) -> f64 {
        let warm = |warmup: usize| if warmup == 0 { 1.0 } else { (step as f64 / warmup as f64).min(1.0) };
        match *self {
            Self::Constant => lr,
            Self::Warmup { warmup } => lr * warm(warmup),
            Self::Cosine { warmup, total, min_ratio } => {
                if step < warmup {
                    return lr * warm(warmup);
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).clamp(0.0, 1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                lr * (min_ratio + (1.0 - min_ratio) * cosine)
            }
        }
    }
}

/// Scales all gradients so that their global L2 norm `‖g‖ = sqrt(Σ_params Σ g²)` is at most
/// `max_norm` (multiplying by `max_norm / (‖g‖ + 1e-6)` when it is larger, as
/// `torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping. Each parameter's `Σ g²`
/// and scaling are the backend's [`OptimizerKernels`] (on ndarray one pass each, bitwise as
/// burn's ops). With `shared_by` (`trainer.sharding: Gradients`, each worker holding its own
/// parameters' gradients), every parameter's `Σ g²` is gathered from its holder first, so the
/// norm is summed over the same parts in the same order as one worker holding them all: the
/// same bits.
pub fn clip_global_norm<B: AutodiffBackend<InnerBackend: OptimizerKernels>, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
    shared_by: Option<&Worker>,
) -> Result<f64> {
    let mut squares = SquaredNorm { grads, parts: Vec::new() };
    module.visit(&mut squares);
    let parts = match shared_by {
        None => squares.parts.into_iter().flatten().collect(),
        Some(worker) => gathered_parts(squares.parts, worker)?,
    };
    let norm = B::InnerBackend::total(parts).sqrt();
    if norm > max_norm {
        let mut scale = Scale { grads, factor: max_norm / (norm + 1e-6) };
        module.visit(&mut scale);
    }
    Ok(norm)
}

/// Every worker's parts (`None` where it holds no gradient), in module order: each part's
/// value from the worker holding it (summed on the device in the backend's float type, so an
/// f64 run's norm is not rounded to f32) and which parts any worker holds (summed on the host),
/// with the others' zeros, exact.
fn gathered_parts<B: Backend>(
    parts: Vec<Option<Tensor<B, 1>>>,
    worker: &Worker,
) -> Result<Vec<Tensor<B, 1>>> {
    let device = parts.iter().flatten().next().map(Tensor::device).unwrap_or_default();
    let held = worker.sum(parts.iter().map(|part| f32::from(u8::from(part.is_some()))).collect())?;
    let values: Vec<Tensor<B, 1>> =
        parts.into_iter().map(|part| part.unwrap_or_else(|| Tensor::zeros([1], &device))).collect();
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let summed = worker.sum_tensor(Tensor::cat(values, 0))?;
    Ok(held
        .iter()
        .enumerate()
        .filter(|(_, &held)| held > 0.0)
        .map(|(i, _)| summed.clone().narrow(0, i, 1))
        .collect())
}

/// Every parameter's `Σ g²` (`None` without a gradient), left on the device.
struct SquaredNorm<'a, B: Backend> {
    grads: &'a GradientsParams,
    parts: Vec<Option<Tensor<B, 1>>>,
}

impl<B: AutodiffBackend<InnerBackend: OptimizerKernels>> ModuleVisitor<B>
    for SquaredNorm<'_, B::InnerBackend>
{
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self.grads.get::<B::InnerBackend, D>(param.id);
        self.parts.push(grad.map(|g| B::InnerBackend::squared_norm(&g)));
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend<InnerBackend: OptimizerKernels>> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register::<B::InnerBackend, D>(param.id, B::InnerBackend::scale(g, self.factor));
        }
    }
}

/// AdamW's settings (decoupled weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWSettings {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

/// burn's AdamW (the same state and records, bitwise the same steps) with each parameter's step
/// by the backend's [`OptimizerKernels::adamw`] (on ndarray one pass over the cores that writes
/// the parameter and its moments in place); burn's own passes where the kernel declines.
#[derive(Clone)]
pub struct KernelAdamW {
    settings: AdamWSettings,
    burns: AdamW,
}

impl KernelAdamW {
    /// The optimizer for a module on autodiff backend `B`.
    pub fn init<B: AutodiffBackend<InnerBackend: OptimizerKernels>, M: AutodiffModule<B>>(
        settings: AdamWSettings,
    ) -> OptimizerAdaptor<Self, M, B> {
        let burns = AdamWConfig::new()
            .with_beta_1(settings.beta_1)
            .with_beta_2(settings.beta_2)
            .with_epsilon(settings.epsilon)
            .with_weight_decay(settings.weight_decay)
            .build();
        OptimizerAdaptor::from(Self { settings, burns })
    }
}

impl<B: OptimizerKernels> SimpleOptimizer<B> for KernelAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    /// One AdamW step (the formula at [`OptimizerKernels::adamw`]) at step t = the state's + 1,
    /// or 1.
    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let AdamWSettings { beta_1, beta_2, epsilon, weight_decay } = self.settings;
        let time = state.as_ref().map_or(1, |s| s.momentum.time + 1);
        let step = AdamWStep { lr, beta_1, beta_2, epsilon, weight_decay, time: time as i32 };
        let moments = state.map(|s| (s.momentum.moment_1, s.momentum.moment_2));
        match B::adamw(&step, tensor, grad, moments) {
            Ok((tensor, (m, v))) => (tensor, Some(AdamWState::new(AdaptiveMomentumState::new(time, m, v)))),
            Err((tensor, grad, moments)) => {
                let state = moments.map(|(m, v)| AdamWState::new(AdaptiveMomentumState::new(time - 1, m, v)));
                self.burns.step(lr, tensor, grad, state)
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{DType, TensorData};

    use super::*;

    /// Steps 1–3 of `optimizer` on `NdArray` from fixed values in `dtype`: the parameter's bits.
    fn three_steps(optimizer: &impl SimpleOptimizer<NdArray>, dtype: DType) -> Vec<u32> {
        let tensor = |seed: u32| {
            let values: Vec<f32> =
                (0..5000u32).map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 * 1e-3 - 1.0).collect();
            let data = TensorData::new(values, [50, 100]).convert_dtype(dtype);
            Tensor::<NdArray, 2>::from_data(data, (&Default::default(), dtype))
        };
        let (mut theta, mut state) = (tensor(0), None);
        for t in 1..=3 {
            (theta, state) = optimizer.step(1e-3 * t as f64, theta, tensor(t), state);
        }
        theta.to_data().convert::<f32>().to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn host_adamw_steps_as_burns_on_both_paths() {
        let settings = AdamWSettings { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8, weight_decay: 0.01 };
        let ours = KernelAdamW::init::<Autodiff<NdArray>, burn::nn::Linear<Autodiff<NdArray>>>(settings);
        let ours = ours.optim().clone();
        let burns = ours.burns.clone();
        let expected = three_steps(&burns, DType::F32);
        assert_eq!(three_steps(&ours, DType::F32), expected, "the host kernel");
        // tensors the kernel does not take (f64 ones) get burn's passes
        assert_eq!(three_steps(&ours, DType::F64), three_steps(&burns, DType::F64), "burn's path");
    }

    #[test]
    fn schedules_by_hand() {
        assert_eq!(LrSchedule::Constant.lr_at(1e-3, 50), 1e-3);
        let w = LrSchedule::Warmup { warmup: 4 };
        assert_eq!(w.lr_at(1.0, 0), 0.0, "EasyR1's warm-up starts at 0");
        assert_eq!(w.lr_at(1.0, 3), 0.75);
        assert_eq!(w.lr_at(1.0, 4), 1.0);
        let c = LrSchedule::Cosine { warmup: 2, total: 12, min_ratio: 0.1 };
        assert_eq!(c.lr_at(1.0, 0), 0.0);
        assert_eq!(c.lr_at(1.0, 1), 0.5);
        assert!((c.lr_at(1.0, 2) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(1.0, 7) - (0.1 + 0.9 * 0.5)).abs() < 1e-12);
        assert!((c.lr_at(1.0, 12) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(1.0, 100) - 0.1).abs() < 1e-12);
    }
}
