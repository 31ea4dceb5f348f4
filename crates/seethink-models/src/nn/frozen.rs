//! Frozen weights in a narrower float type than the backend computes in. A checkpoint stored in
//! bf16 or f16 keeps its frozen matrices (the KL reference, a frozen vision tower, the base
//! under LoRA) in that type on a backend that can store it: half the bytes of f32. Every
//! product with them is still computed in the backend's float type. Nothing is lost: a frozen
//! weight holds the checkpoint's own values, which its stored type represents exactly.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::{Backend, DTypeUsage};
use burn::tensor::{DType, Element, Tensor};

use crate::checkpoint::Dtype;
use crate::kernels::Kernels;

/// The backend's float type: what it computes in, unless a mixed-precision run casts a model to
/// a narrower one ([`crate::nn::precision`]); the type of the trained (master) weights.
pub fn float_dtype<B: Backend>() -> DType {
    <B::FloatElem as Element>::dtype()
}

/// The type a checkpoint stored in `stored` keeps its frozen weights in on `device`. It is
/// `stored` when that type is narrower than the backend's float type and the backend can store
/// it (bf16 or f16 on cuda; on wgpu as far as the adapter supports them; f32 on `NdArray<f64>`).
/// Otherwise it is the backend's float type: `NdArray<f32>` always keeps f32.
pub fn frozen_dtype<B: Backend>(stored: Dtype, device: &B::Device) -> DType {
    let stored = stored.burn();
    match stores_narrower::<B>(stored, device) {
        true => stored,
        false => float_dtype::<B>(),
    }
}

/// Whether `dtype` is narrower than the backend's float type and the backend can store it on
/// `device`: what keeping frozen weights, or computing, in it needs.
pub(crate) fn stores_narrower<B: Backend>(dtype: DType, device: &B::Device) -> bool {
    dtype.size() < float_dtype::<B>().size() && B::dtype_usage(device, dtype).contains(DTypeUsage::Storage)
}

/// `module` with its frozen matrices cast to `dtype`: the rank-2 float parameters that take no
/// gradient, which is all of them on a backend without autodiff. Norms, biases and trained
/// parameters keep their type. A matrix already of `dtype` is kept as it is, not copied.
pub fn store_frozen<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    module.map(&mut CastMatrices { dtype, trained: false })
}

/// `module` with its trained matrices (rank-2 float parameters that take a gradient) in the
/// backend's float type, each a new leaf: what a model loaded with its matrices in a narrower
/// type ([`crate::AnyVlm::load_in`]) trains in, once its frozen parts are marked. A matrix
/// already in that type is kept as it is.
pub fn widen_trained<B: Backend, M: Module<B>>(module: M) -> M {
    module.map(&mut CastMatrices { dtype: float_dtype::<B>(), trained: true })
}

/// Casts to `dtype` the matrices that take a gradient (`trained`, each cast made a new leaf) or
/// those that do not.
struct CastMatrices {
    dtype: DType,
    trained: bool,
}

impl<B: Backend> ModuleMapper<B> for CastMatrices {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if D != 2 || param.is_require_grad() != self.trained || param.val().dtype() == self.dtype {
            return param;
        }
        match self.trained {
            true => param.map(|t| t.cast(self.dtype).detach().require_grad()),
            false => param.map(|t| t.cast(self.dtype)),
        }
    }
}

/// `y = x·W` for `x [rows, d_in]` and `W [d_in, d_out]`, computed in `x`'s type whatever `W` is
/// stored in: the backend's product ([`Kernels::matmul`]) when the types agree, else
/// [`Kernels::frozen_matmul`] (a weight of another type is a frozen one, [`store_frozen`]).
pub fn weight_product<B: Kernels>(x: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    match w.dtype() == x.dtype() {
        true => B::matmul(x, w),
        false => B::frozen_matmul(x, w),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::DType;

    use super::*;

    type F64 = NdArray<f64>;
    type A = Autodiff<F64>;

    #[test]
    fn frozen_weights_are_kept_narrower_only_where_the_backend_computes_wider_and_stores_it() {
        let device = Default::default();
        assert_eq!(frozen_dtype::<NdArray<f32>>(Dtype::BF16, &device), DType::F32, "ndarray stores no bf16");
        assert_eq!(frozen_dtype::<NdArray<f32>>(Dtype::F32, &device), DType::F32);
        assert_eq!(frozen_dtype::<F64>(Dtype::F32, &device), DType::F32);
        assert_eq!(frozen_dtype::<F64>(Dtype::F16, &device), DType::F64);
        assert_eq!(frozen_dtype::<A>(Dtype::F32, &device), DType::F32);
    }
}
