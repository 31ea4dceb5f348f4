//! The optimizer's passes over every parameter on the host, for burn's ndarray backend: the
//! AdamW step and the gradients' squared norm and scaling (global-norm clipping).
//!
//! burn's AdamW is about a dozen passes over each parameter on one core, most of them into a
//! new buffer: for a 0.5B model, gigabytes of fresh pages per step. Here each is one pass over
//! the cores, writing the parameter and its moments in place.

use burn::backend::ndarray::NdArrayTensor;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};
use ndarray::{ArcArray, IxDyn};

use super::host::{cast, host_kind, map_cores, with_f32};

/// Elements per task: large enough to amortise a thread, small enough to spread.
const CHUNK: usize = 1 << 16;

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

/// The AdamW step for one parameter θ with gradient g and moments (m, v) (zero before the
/// first step), on `NdArray<f32>`:
///
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ(1 − lr·λ) − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`
///
/// in the order and precision of burn's `AdamW` (each product and quotient rounded to f32 as
/// there, so the results are bitwise burn's), in one pass over the cores. θ, m and v are
/// written in place when nothing else holds their storage. Returns `(θ, (m, v))`, or the
/// inputs back on any other backend.
#[allow(clippy::type_complexity)]
pub fn adamw_on_host<B: Backend, const D: usize>(
    step: &AdamWStep,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moments: Option<Moments<B, D>>,
) -> Result<(Tensor<B, D>, Moments<B, D>), (Tensor<B, D>, Tensor<B, D>, Option<Moments<B, D>>)> {
    if host_kind::<B>() != Some(false) || param.dims() != grad.dims() {
        return Err((param, grad, moments));
    }
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
    with_f32(&cast(grad.into_primitive().tensor()), |g| {
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
    Ok((tensor(theta), (tensor(m), tensor(v))))
}

/// `Σ g²` over a gradient on `NdArray<f32>` stored row-major, summed as burn's
/// `powi_scalar(2).sum()` sums it (ndarray's eight-lane fold over the squares, so the result is
/// bitwise burn's and a clipped run keeps its trajectory) but in one pass without the squares'
/// buffer; `None` on any other backend or layout.
pub fn squared_norm_on_host<B: Backend, const D: usize>(grad: &Tensor<B, D>) -> Option<f32> {
    if host_kind::<B>() != Some(false) {
        return None;
    }
    let NdArrayTensor::F32(storage) = cast::<_, NdArrayTensor>(grad.clone().into_primitive().tensor()) else {
        return None;
    };
    storage.view().as_slice().map(eight_lane_sum_of_squares)
}

/// `Σ x²` in the order of ndarray's `unrolled_fold`: lane l sums `x_i²` for `i ≡ l (mod 8)`
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

/// `g · factor` on `NdArray<f32>`, in place when nothing else holds `g`'s storage, over the
/// cores (each product rounded to f32, as burn's `mul_scalar`); `g` back on any other backend.
pub fn scale_on_host<B: Backend, const D: usize>(
    grad: Tensor<B, D>,
    factor: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if host_kind::<B>() != Some(false) {
        return Err(grad);
    }
    let mut g = writable(grad);
    let factor = factor as f32;
    let len = g.len();
    let blocks: Vec<&mut [f32]> = slice(&mut g).chunks_mut(CHUNK).collect();
    map_cores(blocks, len, |block| block.iter_mut().for_each(|x| *x *= factor));
    Ok(tensor(g))
}

/// The elements of a tensor on `NdArray<f32>` (checked by the caller) as a row-major array
/// held by nothing else, to write in place: the tensor's own storage when that is already so,
/// else a copy.
fn writable<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> ArcArray<f32, IxDyn> {
    let host: NdArrayTensor = cast(tensor.into_primitive().tensor());
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

/// An array from [`writable`] as a tensor on `NdArray<f32>`, which `B` is.
fn tensor<B: Backend, const D: usize>(array: ArcArray<f32, IxDyn>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(cast(NdArrayTensor::from(array))))
}

/// The elements of an array from [`writable`].
fn slice(array: &mut ArcArray<f32, IxDyn>) -> &mut [f32] {
    array.as_slice_mut().expect("writable arrays are row-major")
}

#[cfg(test)]
mod tests {
    use burn::optim::{AdamWConfig, SimpleOptimizer};
    use burn::tensor::{Distribution, TensorData};

    use super::super::host::Cpu;
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
                (ours_theta, ours_moments) =
                    adamw_on_host(&step, ours_theta, grad.clone(), ours_moments.take())
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
        let ours = squared_norm_on_host(&g).expect("the kernel serves ndarray");
        assert_eq!(ours.to_bits(), expected.to_bits(), "{ours} vs {expected}");
        assert_eq!(squared_norm_on_host(&g.clone().transpose()), None, "not row-major");
        // a held gradient is copied, not scaled under its other holder
        let (held, before) = (g.clone(), bits(&g));
        let scaled = scale_on_host(g, 0.37).unwrap_or_else(|_| panic!("the kernel serves ndarray"));
        assert_eq!(bits(&scaled), bits(&(held.clone() * 0.37)));
        assert_eq!(bits(&held), before);
    }
}
