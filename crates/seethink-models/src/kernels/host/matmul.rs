//! Matrix products on the host, for the ndarray backend with and without autodiff.
//!
//! burn-ndarray's matmul runs on one core through `matrixmultiply` and first copies an operand
//! that is not row-major: `x·Eᵀ` with a tied `[vocab, hidden]` embedding copied the whole table
//! on every call, and under autodiff every linear layer's `dy·Wᵀ` copied its weight. Here one
//! call of the `gemm` crate reads both operands through their own strides and spreads the
//! product over the cores this thread may use; with one row (decoding at batch 1) it runs as
//! a matrix-vector product instead of packing the weight. The backward pass takes the same
//! route: `∂L/∂A = ∂L/∂C · Bᵀ` and `∂L/∂B = Aᵀ · ∂L/∂C` on transposed strides, no copies.
//!
//! The product is the same to the bit on every x86-64 CPU with AVX2 and FMA. `gemm` sums the
//! inner dimension of products of more than 64 rows or columns in blocks whose length it
//! derives from the L1 cache as the machine reports it (`gemm-common`'s `kernel_params`, from
//! Linux's `/sys/devices/system/cpu/cpu0/cache`), never shorter than 512: 512 by that formula
//! on an AMD EPYC (Zen 4) VM reporting a 32 KB 8-way L1 (on 2026-11-27 it summed 834 in two
//! passes), 1024 on the VM that made the results committed before then. So here the inner
//! dimension is cut into [`depth_blocks`] of at most 512 first, and `gemm` sums each in one
//! pass whatever the cache.

use std::ops::Range;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData, TensorMetadata, TensorPrimitive};

use super::{Cpu, Tracked};

/// `C = A·B` for `A [m, k]` and `B [k, n]` by the host product described in the module
/// documentation.
pub(super) fn plain(a: Tensor<Cpu, 2>, b: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
    let (a, b) = (a.into_primitive().tensor(), b.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(product(Operand::of(&a), Operand::of(&b))))
}

/// [`plain`] under autodiff, with the backward pass of the module documentation.
pub(super) fn tracked<C: CheckpointStrategy>(
    a: Tensor<Autodiff<Cpu, C>, 2>,
    b: Tensor<Autodiff<Cpu, C>, 2>,
) -> Tensor<Autodiff<Cpu, C>, 2> {
    let (a, b): (Tracked, Tracked) = (a.into_primitive().tensor(), b.into_primitive().tensor());
    let out = product(Operand::of(&a.primitive), Operand::of(&b.primitive));
    let out = match MatmulBackward.prepare::<C>([a.node, b.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((a.primitive, b.primitive), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// A matrix operand read in place: its first element, shape and strides (in elements).
#[derive(Clone, Copy)]
struct Operand {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl Operand {
    /// The 2-D f32 tensor `t` as stored (a transposed view stays a view).
    fn of(t: &NdArrayTensor) -> Self {
        let NdArrayTensor::F32(storage) = t else {
            unreachable!("matmul on NdArray<f32> gets f32 tensors, not {:?}", t.dtype())
        };
        let view = storage.view();
        let (shape, strides) = (view.shape(), view.strides());
        assert_eq!(shape.len(), 2, "host matmul takes matrices");
        Operand {
            ptr: view.as_ptr(),
            rows: shape[0],
            cols: shape[1],
            row_stride: strides[0],
            col_stride: strides[1],
        }
    }

    /// `Xᵀ`, the same elements read with the strides swapped.
    fn transposed(self) -> Self {
        Operand {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `A·B` as a new row-major `[A.rows, B.cols]` tensor; the operands' storage must outlive the call.
fn product(a: Operand, b: Operand) -> NdArrayTensor {
    assert_eq!(a.cols, b.rows, "host matmul: [{}, {}] · [{}, {}]", a.rows, a.cols, b.rows, b.cols);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut out = vec![0.0f32; m * n];
    if m * n * k > 0 {
        let threads = crate::parallel::cores();
        let parallelism = match threads > 1 && m * n * k >= 1 << 18 {
            true => gemm::Parallelism::Rayon(threads),
            false => gemm::Parallelism::None,
        };
        for (block, depth) in depth_blocks(m, n, k).enumerate() {
            // SAFETY: `a` and `b` describe live tensors whose strides stay inside their
            // storage, and `depth` lies within their shared dimension, so the offsets do too;
            // `out` is a distinct row-major m×n buffer, ignored by the first block
            // (`read_dst: false`) and added to by the others (`alpha = 1`).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    depth.len(),
                    out.as_mut_ptr(),
                    1,
                    n as isize,
                    block > 0,
                    a.ptr.offset(depth.start as isize * a.col_stride),
                    a.col_stride,
                    a.row_stride,
                    b.ptr.offset(depth.start as isize * b.row_stride),
                    b.col_stride,
                    b.row_stride,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    }
    NdArrayTensor::from_data(TensorData::new(out, [m, n]))
}

/// The blocks of the inner dimension `k` summed one after the other,
/// `C = Σ_blocks A[:, blk]·B[blk, :]`, each by one `gemm` call. Where `gemm` would take the
/// block length from the L1 cache (more than 64 rows or columns, neither a single row nor a
/// single column) `k` is cut as `gemm` cuts it with a block of [`DEPTH_BLOCK`]:
/// `⌈k / DEPTH_BLOCK⌉` blocks of `⌈k / ⌈k / DEPTH_BLOCK⌉⌉` (the last shorter), each of which a
/// call sums in one pass where `gemm`'s own block is at least as long (module documentation).
/// Elsewhere `gemm`'s rules do not depend on the CPU (vector products; up to 64 × 64 outputs,
/// blocks of 512), and `k` is one block.
fn depth_blocks(m: usize, n: usize, k: usize) -> impl Iterator<Item = Range<usize>> {
    let length = match (m <= 64 && n <= 64) || m <= 1 || n <= 1 {
        true => k.max(1),
        false => k.div_ceil(k.div_ceil(DEPTH_BLOCK)),
    };
    (0..k).step_by(length).map(move |start| start..(start + length).min(k))
}

/// The longest run of the inner dimension one `gemm` call sums ([`depth_blocks`]): the shortest
/// block `gemm` takes on any cache (`kernel_params`' `.max(512)`), so it sums each in one pass.
const DEPTH_BLOCK: usize = 512;

#[derive(Debug)]
struct MatmulBackward;

impl Backward<Cpu, 2> for MatmulBackward {
    /// The operands `A` and `B`.
    type State = (NdArrayTensor, NdArrayTensor);

    /// `∂L/∂A = ∂L/∂C · Bᵀ`, `∂L/∂B = Aᵀ · ∂L/∂C`.
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<Cpu>(&ops.node);
        let (a, b) = ops.state;
        let [a_parent, b_parent] = ops.parents;
        if let Some(parent) = a_parent {
            grads.register::<Cpu>(parent.id, product(Operand::of(&d_out), Operand::of(&b).transposed()));
        }
        if let Some(parent) = b_parent {
            grads.register::<Cpu>(parent.id, product(Operand::of(&a).transposed(), Operand::of(&d_out)));
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Distribution, ElementConversion};

    use super::*;
    use crate::kernels::Kernels;

    fn random<B: Backend>(shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn max_difference<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
        (a - b).abs().max().into_scalar().elem()
    }

    /// Row-major, transposed and sliced operands, a single row, and sizes that take threads.
    fn cases<B: Backend>() -> Vec<(Tensor<B, 2>, Tensor<B, 2>)> {
        vec![
            (random([5, 7]), random([7, 3])),
            (random([5, 7]), random([3, 7]).transpose()),
            (random([7, 5]).transpose(), random([7, 3])),
            (random([1, 64]), random([300, 64]).transpose()),
            (random([9, 70]).narrow(1, 3, 64), random([64, 130]).narrow(1, 1, 128)),
            (random([130, 96]), random([96, 150])),
        ]
    }

    #[test]
    fn equals_burns_matmul_on_any_strides() {
        for (a, b) in cases::<Cpu>() {
            let expected = a.clone().matmul(b.clone());
            let got = Cpu::matmul(a, b);
            assert_eq!(got.dims(), expected.dims());
            assert!(max_difference(got, expected) < 1e-4);
        }
    }

    /// `C_ij` summed in blocks of the inner dimension, each one fused multiply-add chain from
    /// zero, added in order: a formula of the operands alone, the same on every CPU. The blocks
    /// are those `gemm` then sums: up to 64 × 64 outputs its own blocks of 512 (the remainder
    /// last), otherwise [`depth_blocks`].
    fn blocked_fma_reference(a: &[f32], b: &[f32], [m, k, n]: [usize; 3]) -> Vec<f32> {
        let blocks: Vec<Range<usize>> = match m <= 64 && n <= 64 {
            true => (0..k).step_by(512).map(|start| start..(start + 512).min(k)).collect(),
            false => depth_blocks(m, n, k).collect(),
        };
        let mut c = vec![0.0f32; m * n];
        for (i, j) in (0..m).flat_map(|i| (0..n).map(move |j| (i, j))) {
            c[i * n + j] = blocks
                .iter()
                .map(|block| block.clone().fold(0.0f32, |acc, l| a[i * k + l].mul_add(b[l * n + j], acc)))
                .fold(0.0, |sum, block| sum + block);
        }
        c
    }

    #[test]
    fn long_inner_dimensions_sum_in_blocks_that_no_cache_size_decides() {
        // a product of up to 64 × 64 outputs and a larger one, both with k > 512 (a weight's
        // gradient sums over the batch's tokens)
        for [m, k, n] in [[40, 1300, 24], [130, 2500, 70]] {
            let (a, b) = (random::<Cpu>([m, k]), random::<Cpu>([k, n]));
            let (a_host, b_host) =
                (a.to_data().to_vec::<f32>().unwrap(), b.to_data().to_vec::<f32>().unwrap());
            let got = Cpu::matmul(a, b).into_data().to_vec::<f32>().unwrap();
            assert_eq!(got, blocked_fma_reference(&a_host, &b_host, [m, k, n]), "[{m}, {k}, {n}]");
        }
        let lengths = |m, n, k| depth_blocks(m, n, k).map(|block| block.len()).collect::<Vec<_>>();
        assert_eq!(lengths(64, 64, 1300), [1300]);
        assert_eq!(lengths(1, 900, 1300), [1300]);
        assert_eq!(lengths(130, 70, 2500), [500; 5]);
        assert_eq!(lengths(130, 70, 1024), [512, 512]);
        assert_eq!(lengths(130, 70, 512), [512]);
    }

    #[test]
    fn gradients_equal_burns() {
        type Ad = Autodiff<Cpu>;
        for (a, b) in cases::<Cpu>() {
            let weights = random::<Ad>([a.dims()[0], b.dims()[1]]);
            let run = |host: bool| {
                let (a, b) = (
                    Tensor::<Ad, 2>::from_inner(a.clone()).require_grad(),
                    Tensor::<Ad, 2>::from_inner(b.clone()).require_grad(),
                );
                let c = if host { Ad::matmul(a.clone(), b.clone()) } else { a.clone().matmul(b.clone()) };
                let grads = (c * weights.clone()).sum().backward();
                (a.grad(&grads).expect("∂A"), b.grad(&grads).expect("∂B"))
            };
            let ((da, db), (da_ref, db_ref)) = (run(true), run(false));
            assert!(max_difference(da, da_ref) < 1e-4);
            assert!(max_difference(db, db_ref) < 1e-4);
        }
    }

    #[test]
    fn an_operand_without_gradient_gets_none() {
        type Ad = Autodiff<Cpu>;
        let (a, b) = (random::<Ad>([4, 6]).require_grad(), random::<Ad>([6, 2]));
        let grads = Ad::matmul(a.clone(), b.clone()).sum().backward();
        assert!(a.grad(&grads).is_some());
        assert!(b.grad(&grads).is_none());
    }
}
