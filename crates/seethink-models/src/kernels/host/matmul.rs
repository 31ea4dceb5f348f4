//! Matrix products on the host, for the ndarray backend with and without autodiff.
//!
//! burn-ndarray's matmul runs on one core through `matrixmultiply` and first copies an operand
//! that is not row-major: `x·Eᵀ` with a tied `[vocab, hidden]` embedding copied the whole table
//! on every call, and under autodiff every linear layer's `dy·Wᵀ` copied its weight. Here one
//! call of the `gemm` crate reads both operands through their own strides and spreads the
//! product over the cores this thread may use; with one row (decoding at batch 1) it runs as
//! a matrix-vector product instead of packing the weight. The backward pass takes the same
//! route: `∂L/∂A = ∂L/∂C · Bᵀ` and `∂L/∂B = Aᵀ · ∂L/∂C` on transposed strides, no copies.

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
        // SAFETY: `a` and `b` describe live tensors whose strides stay inside their storage;
        // `out` is a distinct row-major m×n buffer; `read_dst: false` ignores its contents.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.ptr,
                a.col_stride,
                a.row_stride,
                b.ptr,
                b.col_stride,
                b.row_stride,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
    NdArrayTensor::from_data(TensorData::new(out, [m, n]))
}

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
