//! The SwiGLU gate `silu(g) ⊙ u` on the host, for the ndarray backend with and without
//! autodiff.
//!
//! burn computes it as a sigmoid, two products and, under autodiff, about as many passes again
//! backward, each over the whole `[tokens, intermediate]` activation on one core with a new
//! buffer. Here forward and backward are one pass each, spread over the cores.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};

use super::host::{cast, host_kind, map_cores, sigmoid, with_f32, Cpu, Tracked};

/// Elements per task: large enough to amortise a thread, small enough to spread.
const CHUNK: usize = 1 << 16;

/// `silu(g) ⊙ u = g·σ(g)·u` when `B` is `NdArray<f32>` or `Autodiff<NdArray<f32>>` and both
/// have the same shape; otherwise the inputs back, for the generic path.
#[allow(clippy::type_complexity)]
pub(super) fn dispatch<B: Backend, const D: usize>(
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    let Some(tracked) = host_kind::<B>() else {
        return Err((gate, up));
    };
    if gate.dims() != up.dims() {
        return Err((gate, up));
    }
    let shape = gate.dims();
    let out = |g: &NdArrayTensor, u: &NdArrayTensor| {
        let values = with_f32(g, |g| with_f32(u, |u| forward(g, u)));
        NdArrayTensor::from_data(TensorData::new(values, shape))
    };
    let output: Tensor<B, D> = match tracked {
        false => {
            let (g, u): (NdArrayTensor, NdArrayTensor) =
                (cast(gate.into_primitive().tensor()), cast(up.into_primitive().tensor()));
            Tensor::from_primitive(TensorPrimitive::Float(cast(out(&g, &u))))
        }
        true => {
            let (g, u): (Tracked, Tracked) =
                (cast(gate.into_primitive().tensor()), cast(up.into_primitive().tensor()));
            let values = out(&g.primitive, &u.primitive);
            let output: Tracked = match SwigluBackward
                .prepare::<NoCheckpointing>([g.node, u.node])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((g.primitive, u.primitive), values),
                OpsKind::UnTracked(prep) => prep.finish(values),
            };
            Tensor::from_primitive(TensorPrimitive::Float(cast(output)))
        }
    };
    Ok(output)
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
    use burn::backend::Autodiff;
    use burn::tensor::{activation, Distribution, ElementConversion};

    use super::*;

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
                    true => dispatch(g.clone(), u.clone()).expect("the kernel serves ndarray"),
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
