//! The reproduction of vendor/burn-ndarray's patch (vendor/SEETHINK.md): burn-ndarray 0.21.0
//! copied every tensor it reshaped, row-major or not. A row-major tensor now takes its new
//! shape in place, sharing its storage; one of other strides still becomes a row-major copy; and
//! a tensor sharing its storage is copied, not written, by an op that would write in place.
#![cfg(feature = "ndarray")]

use burn::backend::ndarray::NdArrayTensor;
use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor};

/// The address of the first element of `t`'s storage.
fn address<const D: usize>(t: &Tensor<NdArray, D>) -> usize {
    match t.clone().into_primitive().tensor() {
        NdArrayTensor::F32(storage) => storage.view().as_ptr() as usize,
        _ => panic!("an f32 tensor"),
    }
}

#[test]
fn a_row_major_tensor_is_reshaped_in_place() {
    let t = Tensor::<NdArray, 3>::random([4, 8, 16], Distribution::Default, &Default::default());
    let values = t.to_data();
    let rows = t.clone().reshape([32, 16]);
    assert_eq!(address(&rows), address(&t), "a row-major reshape copied the tensor");
    assert_eq!(rows.clone().reshape([4, 8, 16]).into_data(), values);

    let transposed = t.clone().swap_dims(1, 2);
    let reshaped = transposed.clone().reshape([64, 8]);
    assert_ne!(address(&reshaped), address(&t));
    let expected: Vec<f32> = transposed.to_data().iter::<f32>().collect();
    assert_eq!(reshaped.into_data().iter::<f32>().collect::<Vec<_>>(), expected);

    // `rows` shares `t`'s storage: an op that writes in place when it holds it alone copies
    let shifted = rows.add_scalar(1.0);
    assert_eq!(t.into_data(), values, "a write through a reshaped tensor reached its source");
    let expected: Vec<f32> = values.iter::<f32>().map(|x| x + 1.0).collect();
    assert_eq!(shifted.into_data().iter::<f32>().collect::<Vec<_>>(), expected);
}
