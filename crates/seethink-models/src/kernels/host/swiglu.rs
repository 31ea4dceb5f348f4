//! The SwiGLU gate `silu(g) ⊙ u` on the host, for the ndarray backend with and without
//! autodiff.
//!
//! burn computes it as a sigmoid, two products and, under autodiff, about as many passes again
//! backward, each over the whole `[tokens, intermediate]` activation on one core with a new
//! buffer. Here forward and backward are one pass each, spread over the cores.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::Autodiff;
use burn::tensor::{activation, Tensor, TensorData, TensorPrimitive};

use super::{map_cores, sigmoid, with_f32, Cpu, Tracked};

/// Elements per task: large enough to amortise a thread, small enough to spread.
const CHUNK: usize = 1 << 16;

/// `silu(g) ⊙ u = g·σ(g)·u` in one pass over the cores; burn's ops when the shapes differ
/// (a broadcast).
pub(super) fn plain<const D: usize>(gate: Tensor<Cpu, D>, up: Tensor<Cpu, D>) -> Tensor<Cpu, D> {
    if gate.dims() != up.dims() {
        return activation::silu(gate) * up;
    }
    let shape = gate.dims();
    let (g, u) = (gate.into_primitive().tensor(), up.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(output(&g, &u, shape)))
}

/// [`plain`] under autodiff, with the backward pass of [`SwigluBackward`].
pub(super) fn tracked<C: CheckpointStrategy, const D: usize>(
    gate: Tensor<Autodiff<Cpu, C>, D>,
    up: Tensor<Autodiff<Cpu, C>, D>,
) -> Tensor<Autodiff<Cpu, C>, D> {
    if gate.dims() != up.dims() {
        return activation::silu(gate) * up;
    }
    let shape = gate.dims();
    let (g, u): (Tracked, Tracked) = (gate.into_primitive().tensor(), up.into_primitive().tensor());
    let values = output(&g.primitive, &u.primitive, shape);
    let output = match SwigluBackward.prepare::<C>([g.node, u.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((g.primitive, u.primitive), values),
        OpsKind::UnTracked(prep) => prep.finish(values),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// [`forward`] of two ndarray tensors of `shape`, as one.
fn output<const D: usize>(g: &NdArrayTensor, u: &NdArrayTensor, shape: [usize; D]) -> NdArrayTensor {
    let values = with_f32(g, |g| with_f32(u, |u| forward(g, u)));
    NdArrayTensor::from_data(TensorData::new(values, shape))
}

/// `y_i = g_i·σ(g_i)·u_i`.
fn forward(g: &[f32], u: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; g.len()];
    let tasks: Vec<_> = out.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(u.chunks(CHUNK)).collect();
    map_cores(tasks, g.len(), |((out, g), u)| {
        for ((y, &g), &u) in out.iter_mut().zip(g).zip(u) {
            *y = g * sigmoid(g) * u;
        }
    });
    out
}

#[derive(Debug)]
struct SwigluBackward;

impl Backward<Cpu, 2> for SwigluBackward {
    /// The inputs `g` and `u`.
    type State = (NdArrayTensor, NdArrayTensor);

    /// `∂L/∂g = ∂L/∂y · u · σ(g)·(1 + g·(1 − σ(g)))`, `∂L/∂u = ∂L/∂y · g·σ(g)`.
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<Cpu>(&ops.node);
        let (g, u) = ops.state;
        let shape = burn::tensor::TensorMetadata::shape(&g);
        let len = shape.num_elements();
        let (mut d_g, mut d_u) = (vec![0.0f32; len], vec![0.0f32; len]);
        with_f32(&d_out, |dy| {
            with_f32(&g, |g| {
                with_f32(&u, |u| {
                    let tasks: Vec<_> = d_g
                        .chunks_mut(CHUNK)
                        .zip(d_u.chunks_mut(CHUNK))
                        .zip(dy.chunks(CHUNK).zip(g.chunks(CHUNK)).zip(u.chunks(CHUNK)))
                        .collect();
                    map_cores(tasks, len, |((d_g, d_u), ((dy, g), u))| {
                        for i in 0..d_g.len() {
                            let s = sigmoid(g[i]);
                            d_g[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
                            d_u[i] = dy[i] * g[i] * s;
                        }
                    });
                })
            })
        });
        let [g_parent, u_parent] = ops.parents;
        for (parent, grad) in [(g_parent, d_g), (u_parent, d_u)] {
            if let Some(parent) = parent {
                grads.register::<Cpu>(
                    parent.id,
                    NdArrayTensor::from_data(TensorData::new(grad, shape.clone())),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Distribution, ElementConversion};

    use super::*;
    use crate::kernels::Kernels;

    fn max_difference<B: Backend>(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
        (a - b).abs().max().into_scalar().elem()
    }

    #[test]
    fn values_and_gradients_equal_burns() {
        type Ad = Autodiff<Cpu>;
        // small (one thread) and large enough for several tasks and threads; values far into
        // both tails of the sigmoid
        for shape in [[2, 3, 5], [3, 70, 1100]] {
            let random =
                || Tensor::<Ad, 3>::random(shape, Distribution::Normal(0.0, 30.0), &Default::default());
            let (g, u, weights) = (random(), random(), random());
            let run = |fused: bool| {
                let (g, u) = (g.clone().require_grad(), u.clone().require_grad());
                let y = match fused {
                    true => Ad::swiglu(g.clone(), u.clone()),
                    false => activation::silu(g.clone()) * u.clone(),
                };
                let grads = (y.clone() * weights.clone()).sum().backward();
                (y, g.grad(&grads).expect("∂g"), u.grad(&grads).expect("∂u"))
            };
            let ((y, d_g, d_u), (y_ref, d_g_ref, d_u_ref)) = (run(true), run(false));
            let scale = |t: &Tensor<Cpu, 3>| t.clone().abs().max().into_scalar().elem::<f32>().max(1.0);
            assert!(max_difference(y.clone().inner(), y_ref.clone().inner()) <= 1e-6 * scale(&y_ref.inner()));
            assert!(max_difference(d_g, d_g_ref.clone()) <= 1e-5 * scale(&d_g_ref));
            assert!(max_difference(d_u, d_u_ref.clone()) <= 1e-6 * scale(&d_u_ref));
        }
    }
}
