//! What the host kernels share: burn's ndarray backend types (with and without autodiff), the
//! check that a generic backend is one of them, and the cast between the two once checked.

use std::any::{Any, TypeId};

use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorMetadata;

pub(super) type Cpu = NdArray<f32>;
pub(super) type CpuAutodiff = Autodiff<Cpu>;
/// `Autodiff`'s tensor: the ndarray tensor and its node in the graph.
pub(super) type Tracked = FloatTensor<CpuAutodiff>;

/// How backend `B` runs on the host: `Some(false)` for `NdArray<f32>`, `Some(true)` for
/// `Autodiff<NdArray<f32>>`, `None` for any other backend (which keeps burn's generic ops).
pub(super) fn host_kind<B: Backend>() -> Option<bool> {
    let id = TypeId::of::<B>();
    match () {
        _ if id == TypeId::of::<Cpu>() => Some(false),
        _ if id == TypeId::of::<CpuAutodiff>() => Some(true),
        _ => None,
    }
}

/// `value` as `U`, which the caller has checked is the same type as `T`.
pub(super) fn cast<T: 'static, U: 'static>(value: T) -> U {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
        .expect("the caller checked that both types are the same")
}

/// The elements of an ndarray f32 tensor in row-major order (one copy, whatever its strides).
pub(super) fn host_f32(tensor: &NdArrayTensor) -> Vec<f32> {
    match tensor {
        NdArrayTensor::F32(storage) => {
            storage.view().as_standard_layout().as_slice().expect("row-major").to_vec()
        }
        other => unreachable!("the host kernels get f32 tensors, not {:?}", other.dtype()),
    }
}
