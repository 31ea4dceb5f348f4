//! Optimisation pieces shared by GRPO and SFT: learning-rate schedules and global-norm clipping.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{backend::AutodiffBackend, ElementConversion, Tensor};

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
/// `torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let mut squares = SquaredNorm { grads, total: 0.0 };
    module.visit(&mut squares);
    let norm = squares.total.sqrt();
    if norm > max_norm {
        let mut scale = Scale { grads, factor: max_norm / (norm + 1e-6) };
        module.visit(&mut scale);
    }
    norm
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.total += g.powi_scalar(2).sum().into_scalar().elem::<f64>();
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register::<B::InnerBackend, D>(param.id, g * self.factor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
