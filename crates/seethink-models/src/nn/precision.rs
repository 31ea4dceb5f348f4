//! Mixed precision as FSDP runs it (EasyR1's `worker.actor.fsdp.mp_param_dtype: bf16`): the
//! trained weights (the master copy) and AdamW's moments stay in the backend's float type
//! ([`float_dtype`]), and every pass runs on a copy of the model in a narrower compute type:
//! `W_c = cast(W, compute)`, activations in the compute type, the gradients `∂L/∂W_c` in it too,
//! then cast to the master type before they are summed and applied (FSDP's `mp_reduce_dtype:
//! fp32`).
//!
//! A model computes in its norms' type ([`RmsNorm::dtype`](super::RmsNorm::dtype)): norms are
//! vectors, which neither [`store_frozen`](super::store_frozen) nor a checkpoint's matrix type
//! make narrower, so a model's norms are in the backend's float type unless [`for_compute`]
//! cast them. Its inputs (token embeddings, pixel values) are cast to that type where they enter,
//! and the tables it builds (rotary angles, position interpolation) are made in it. Where
//! transformers upcasts, so does seethink: RMSNorm's mean square and the logits (log-probs and
//! sampling read them in the backend's float type, as EasyR1's `logprobs_from_logits` does).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use super::frozen::{float_dtype, stores_narrower};
use crate::checkpoint::Dtype;

/// `module` as a pass computes it in `dtype`: every float parameter wider than `dtype` cast to
/// it (a trained one as a new leaf with the same id, so that the pass's gradients are found by
/// parameter as the master copy's would be); parameters of `dtype` or narrower (a frozen matrix
/// stored narrower) are kept. `module` itself when `dtype` is the backend's float type.
pub fn for_compute<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    if dtype == float_dtype::<B>() {
        return module;
    }
    struct Narrow(DType);
    impl<B: Backend> ModuleMapper<B> for Narrow {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let tensor = param.val();
            if tensor.dtype().size() <= self.0.size() {
                return param;
            }
            let trained = param.is_require_grad();
            let (id, _, mapper) = param.consume();
            let narrow = tensor.cast(self.0);
            let narrow = if trained { narrow.detach().require_grad() } else { narrow };
            Param::from_mapped_value(id, narrow, mapper)
        }
    }
    module.map(&mut Narrow(dtype))
}

/// The compute type a run asking for `requested` (`actor.mixed_precision`) gets on `device`:
/// `requested` where the backend stores it, else f16 where `requested` is bf16 and the backend
/// stores f16 (as FSDP users fall back on GPUs without bf16); `None` (the backend's float type)
/// where it stores neither, or where `requested` is not narrower than the backend's float type.
pub fn compute_dtype<B: Backend>(requested: Dtype, device: &B::Device) -> Option<DType> {
    let fallback = (requested == Dtype::BF16).then_some(DType::F16);
    [Some(requested.burn()), fallback].into_iter().flatten().find(|&d| stores_narrower::<B>(d, device))
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::DType;

    use super::*;

    type F64 = NdArray<f64>;
    type A = Autodiff<F64>;

    #[test]
    fn the_compute_type_is_the_requested_one_where_the_backend_stores_it_and_narrower() {
        let device = Default::default();
        assert_eq!(compute_dtype::<F64>(Dtype::F32, &device), Some(DType::F32));
        assert_eq!(compute_dtype::<NdArray<f32>>(Dtype::F32, &device), None, "not narrower");
        assert_eq!(
            compute_dtype::<NdArray<f32>>(Dtype::BF16, &device),
            None,
            "ndarray stores no bf16 or f16"
        );
        assert_eq!(compute_dtype::<A>(Dtype::F32, &device), Some(DType::F32));
    }
}
