//! The exact GELU under autodiff with its exact derivative. burn 0.21's `gelu` computes
//! `x·Φ(x)` but its default `gelu_backward` (`burn-backend`'s `ActivationOps`) differentiates the
//! tanh approximation instead, so every gradient through an exact GELU (Qwen's patch mergers,
//! InternViT's MLP and InternVL's projector) was off by up to about 1e-3 relative.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{activation, Tensor, TensorPrimitive};

/// `gelu(x) = x·Φ(x)` with `Φ(x) = (1 + erf(x/√2))/2`, under autodiff, differentiated by
/// [`GeluBackward`] (which keeps `x` only).
pub fn tracked_gelu<B: Backend, C: CheckpointStrategy, const D: usize>(
    x: Tensor<Autodiff<B, C>, D>,
) -> Tensor<Autodiff<B, C>, D> {
    let x = x.into_primitive().tensor();
    let (node, x) = (x.node, Tensor::<B, D>::from_primitive(TensorPrimitive::Float(x.primitive)));
    let y = activation::gelu(x.clone()).into_primitive().tensor();
    let output = match GeluBackward::<D>.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(x, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The backward pass of [`tracked_gelu`]; its state is `x`.
#[derive(Debug)]
struct GeluBackward<const D: usize>;

impl<B: Backend, const D: usize> Backward<B, 1> for GeluBackward<D> {
    type State = Tensor<B, D>;

    /// `∂x = ∂y · (Φ(x) + x·φ(x))` with `Φ(x) = (1 + erf(x/√2))/2` and
    /// `φ(x) = exp(−x²/2)/√(2π)`.
    fn backward(self, ops: Ops<Tensor<B, D>, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = Tensor::<B, D>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let x = ops.state;
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            let cdf = (x.clone() * FRAC_1_SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5);
            let pdf = (x.clone().powi_scalar(2) * -0.5).exp().mul_scalar(1.0 / (2.0 * PI).sqrt());
            let dx = dy * (cdf + x * pdf);
            grads.register::<B>(parent.id, dx.into_primitive().tensor());
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Tensor, TensorData};

    use super::tracked_gelu;

    type A = Autodiff<NdArray<f32>>;

    /// `erf(x)` by its Maclaurin series, `2/√π · Σₙ (−1)ⁿ x^(2n+1) / (n!·(2n+1))` (|x| ≤ 3.5).
    fn erf(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..120 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// The derivative of `x·Φ(x)` by central differences in f64, on points where the tanh
    /// approximation's derivative is off by more than the tolerance.
    #[test]
    fn the_gradient_is_the_exact_gelu_s() {
        let points = [-3.0f32, -1.7, -0.6, 0.0, 0.4, 1.1, 2.3];
        let exact = |x: f64| x * 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
        let h = 1e-6;
        let expected: Vec<f64> =
            points.iter().map(|&x| (exact(f64::from(x) + h) - exact(f64::from(x) - h)) / (2.0 * h)).collect();
        let x =
            Tensor::<A, 1>::from_data(TensorData::new(points.to_vec(), [points.len()]), &Default::default())
                .require_grad();
        let y = tracked_gelu(x.clone());
        let values = y.clone().into_data().to_vec::<f32>().unwrap();
        let grads = y.sum().backward();
        let ours = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        for (i, &x) in points.iter().enumerate() {
            assert!((f64::from(values[i]) - exact(f64::from(x))).abs() < 1e-6, "gelu({x})");
            assert!(
                (f64::from(ours[i]) - expected[i]).abs() < 1e-5,
                "gelu'({x}): {} vs {}",
                ours[i],
                expected[i]
            );
        }
        // burn's own backward (the tanh approximation's derivative) misses at least one point
        let x =
            Tensor::<A, 1>::from_data(TensorData::new(points.to_vec(), [points.len()]), &Default::default())
                .require_grad();
        let grads = burn::tensor::activation::gelu(x.clone()).sum().backward();
        let burns = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        assert!(burns.iter().zip(&expected).any(|(b, e)| (f64::from(*b) - e).abs() > 1e-4), "{burns:?}");
    }
}
