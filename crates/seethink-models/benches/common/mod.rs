//! What the benches of this crate share: the backend they run on.

/// The compiled-in backend: cuda, else wgpu, else ndarray.
#[cfg(feature = "cuda")]
pub type B = burn::backend::Cuda;
/// The compiled-in backend: cuda, else wgpu, else ndarray.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type B = burn::backend::Wgpu;
/// The compiled-in backend: cuda, else wgpu, else ndarray.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
pub type B = burn::backend::NdArray<f32>;
