//! The optimizer's passes over every parameter on the host, for burn's ndarray backend: the
//! AdamW step and the gradients' squared norm and scaling (global-norm clipping).
//!
//! burn's AdamW is about a dozen passes over each parameter on one core, most of them into a
//! new buffer: for a 0.5B model, gigabytes of fresh pages per step. Here each is one pass over
//! the cores, writing the parameter and its moments in place.

use burn::backend::ndarray::NdArrayTensor;
use burn::backend::NdArray;
use burn::tensor::{DType, ElementConversion, Tensor, TensorData, TensorPrimitive};
use ndarray::{ArcArray, IxDyn};
use seethink_models::kernels::host::{f32s, map_cores, with_f32};

use super::kernels::{AdamWStep, Moments, OptimizerKernels};

type Cpu = NdArray<f32>;

/// Elements per task: large enough to amortise a thread, small enough to spread.
const CHUNK: usize = 1 << 16;

/// Each pass in one go over the cores, bitwise as burn's ops, on f32 tensors (others, see
/// [`f32s`], take burn's ops).
impl OptimizerKernels for Cpu {
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
        let moment_types = moments.iter().flat_map(|(m, v)| [m.dtype(), v.dtype()]);
        let types: Vec<DType> = [param.dtype(), grad.dtype()].into_iter().chain(moment_types).collect();
        if param.dims() != grad.dims() || !f32s(&types) {
            return Err((param, grad, moments));
        }
        Ok(adamw(step, param, grad, moments))
    }

    fn squared_norm<const D: usize>(grad: &Tensor<Self, D>) -> Tensor<Self, 1> {
        let sum = match grad.clone().into_primitive().tensor() {
            NdArrayTensor::F32(storage) if storage.view().is_standard_layout() => {
                eight_lane_sum_of_squares(storage.view().as_slice().expect("row-major"))
            }
            _ => return grad.clone().powi_scalar(2).sum(),
        };
        Tensor::from_data(TensorData::new(vec![sum], [1]), &grad.device())
    }

    /// Read one by one (the host has no round trip to save) and summed in f64.
    fn total(parts: Vec<Tensor<Self, 1>>) -> f64 {
        parts.into_iter().map(|part| f64::from(part.into_scalar().elem::<f32>())).sum()
    }

    fn scale<const D: usize>(grad: Tensor<Self, D>, factor: f64) -> Tensor<Self, D> {
        match f32s(&[grad.dtype()]) {
            true => scale(grad, factor),
            false => grad * factor,
        }
    }
}

/// [`OptimizerKernels::adamw`]'s formula in the order and precision of burn's `AdamW` (each
/// product and quotient rounded to f32 as there, so the results are bitwise burn's), in one
/// pass over the cores. θ, m and v are written in place when nothing else holds their storage.
fn adamw<const D: usize>(
    step: &AdamWStep,
    param: Tensor<Cpu, D>,
    grad: Tensor<Cpu, D>,
    moments: Option<Moments<Cpu, D>>,
) -> (Tensor<Cpu, D>, Moments<Cpu, D>) {
    let shape = param.dims();
    let len = shape.iter().product::<usize>();
    let first = moments.is_none();
    let (mut m, mut v) = match moments {
        Some((m, v)) => (writable(m), writable(v)),
        None => {
            let zeros = || ArcArray::zeros(IxDyn(&shape));
            (zeros(), zeros())
        }
    };
    let mut theta = writable(param);
    let (c_1, c_2) = (1f32 - step.beta_1.powi(step.time), 1f32 - step.beta_2.powi(step.time));
    let (f_1, f_2) = (1.0 - step.beta_1, 1.0 - step.beta_2);
    let decay_rate = step.lr * step.weight_decay as f64;
    let (keep, lr) = ((1.0 - decay_rate) as f32, step.lr as f32);
    with_f32(&grad.into_primitive().tensor(), |g| {
        let tasks: Vec<_> = slice(&mut theta)
            .chunks_mut(CHUNK)
            .zip(slice(&mut m).chunks_mut(CHUNK))
            .zip(slice(&mut v).chunks_mut(CHUNK))
            .zip(g.chunks(CHUNK))
            .collect();
        map_cores(tasks, len, |(((theta, m), v), g)| {
            for i in 0..g.len() {
                // burn starts the moments at the first gradient's terms, not at β·0 + term
                (m[i], v[i]) = match first {
                    true => (g[i] * f_1, g[i] * g[i] * f_2),
                    false => (m[i] * step.beta_1 + g[i] * f_1, v[i] * step.beta_2 + g[i] * g[i] * f_2),
                };
                let delta = (m[i] / c_1) / ((v[i] / c_2).sqrt() + step.epsilon);
                let decayed = if decay_rate == 0.0 { theta[i] } else { theta[i] * keep };
                theta[i] = decayed - delta * lr;
            }
        });
    });
    (tensor(theta), (tensor(m), tensor(v)))
}

/// `Σ x²` as burn's `powi_scalar(2).sum()` sums it on ndarray (bitwise, so a clipped run keeps
/// its trajectory) but without the squares' buffer: in the order of ndarray's `unrolled_fold`: lane l sums `x_i²` for `i ≡ l (mod 8)`
/// over the whole blocks of 8, then `((((0 + (s₀+s₄)) + (s₁+s₅)) + (s₂+s₆)) + (s₃+s₇))` and the
/// remaining `x_i²` one by one.
fn eight_lane_sum_of_squares(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let blocks = x.chunks_exact(8);
    let tail = blocks.remainder();
    for block in blocks {
        for lane in 0..8 {
            lanes[lane] += block[lane] * block[lane];
        }
    }
    let paired = (0..4).fold(0.0f32, |acc, lane| acc + (lanes[lane] + lanes[lane + 4]));
    tail.iter().fold(paired, |acc, x| acc + x * x)
}

/// `g · factor`, in place when nothing else holds `g`'s storage, over the cores (each product
/// rounded to f32, as burn's `mul_scalar`).
fn scale<const D: usize>(grad: Tensor<Cpu, D>, factor: f64) -> Tensor<Cpu, D> {
    let mut g = writable(grad);
    let factor = factor as f32;
    let len = g.len();
    let blocks: Vec<&mut [f32]> = slice(&mut g).chunks_mut(CHUNK).collect();
    map_cores(blocks, len, |block| block.iter_mut().for_each(|x| *x *= factor));
    tensor(g)
}

/// The elements of a tensor as a row-major array held by nothing else, to write in place: the
/// tensor's own storage when that is already so, else a copy.
fn writable<const D: usize>(tensor: Tensor<Cpu, D>) -> ArcArray<f32, IxDyn> {
    let host = tensor.into_primitive().tensor();
    let NdArrayTensor::F32(storage) = host else {
        unreachable!("the host kernels get f32 tensors, not {:?}", burn::tensor::TensorMetadata::dtype(&host))
    };
    let array = storage.into_owned();
    if array.is_unique() && array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned().into_shared()
    }
}

/// An array from [`writable`] as a tensor.
fn tensor<const D: usize>(array: ArcArray<f32, IxDyn>) -> Tensor<Cpu, D> {
    Tensor::from_primitive(TensorPrimitive::Float(NdArrayTensor::from(array)))
}

/// The elements of an array from [`writable`].
fn slice(array: &mut ArcArray<f32, IxDyn>) -> &mut [f32] {
    array.as_slice_mut().expect("writable arrays are row-major")
}

#[cfg(test)]
mod tests {
    use burn::optim::{AdamWConfig, SimpleOptimizer};
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    fn random(shape: [usize; 2], seed: u64) -> Tensor<Cpu, 2> {
        let mut state = seed;
        let values = (0..shape[0] * shape[1])
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
            })
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn bits(t: &Tensor<Cpu, 2>) -> Vec<u32> {
        t.to_data().to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn adamw_is_bitwise_burns() {
        // one element (one task) and enough for several tasks on several cores
        for (shape, weight_decay) in [([1, 1], 0.01), ([70, 2000], 0.01), ([70, 2000], 0.0)] {
            let config = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay);
            let burns = config.build();
            let (mut ours_theta, mut ours_moments) = (random(shape, 1), None);
            let (mut theirs_theta, mut theirs_state) = (ours_theta.clone(), None);
            for time in 1..=3 {
                let grad = random(shape, 10 + time as u64);
                let lr = 1e-3 * time as f64;
                let step = AdamWStep { lr, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8, weight_decay, time };
                // a shared parameter is copied, not written under its other holder
                let held = ours_theta.clone();
                let before = bits(&held);
                (ours_theta, ours_moments) = Cpu::adamw(&step, ours_theta, grad.clone(), ours_moments.take())
                    .map(|(theta, moments)| (theta, Some(moments)))
                    .unwrap_or_else(|_| panic!("the kernel serves ndarray"));
                assert_eq!(bits(&held), before);
                let (theta, state) =
                    SimpleOptimizer::<Cpu>::step(&burns, lr, theirs_theta, grad, theirs_state);
                (theirs_theta, theirs_state) = (theta, state);
                let state = theirs_state.as_ref().unwrap();
                let (m, v) = ours_moments.as_ref().unwrap();
                assert_eq!(bits(&ours_theta), bits(&theirs_theta), "θ at step {time}, {shape:?}");
                assert_eq!(bits(m), bits(&state.momentum.moment_1), "m at step {time}");
                assert_eq!(bits(v), bits(&state.momentum.moment_2), "v at step {time}");
            }
        }
    }

    #[test]
    fn norm_and_scale_equal_burns() {
        // a length with a tail after the blocks of 8
        let g = Tensor::<Cpu, 2>::random([90, 3003], Distribution::Normal(0.0, 1.0), &Default::default());
        let expected: f32 = g.clone().powi_scalar(2).sum().into_scalar();
        let ours: f32 = Cpu::squared_norm(&g).into_scalar();
        assert_eq!(ours.to_bits(), expected.to_bits(), "{ours} vs {expected}");
        // not row-major: burn's own sum
        let transposed = g.clone().transpose();
        let expected_t: f32 = transposed.clone().powi_scalar(2).sum().into_scalar();
        assert_eq!(Cpu::squared_norm(&transposed).into_scalar().to_bits(), expected_t.to_bits());
        // a held gradient is copied, not scaled under its other holder
        let (held, before) = (g.clone(), bits(&g));
        let scaled = Cpu::scale(g, 0.37);
        assert_eq!(bits(&scaled), bits(&(held.clone() * 0.37)));
        assert_eq!(bits(&held), before);
    }
}
