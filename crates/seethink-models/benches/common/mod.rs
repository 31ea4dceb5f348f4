//! What the benches of this crate that time one backend share: the backend, its name, and the
//! best-of-runs timing.

use std::time::Instant;

/// The compiled-in backend: cuda, else wgpu, else ndarray.
#[cfg(feature = "cuda")]
pub type B = burn::backend::Cuda;
/// The compiled-in backend: cuda, else wgpu, else ndarray.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type B = burn::backend::Wgpu;
/// The compiled-in backend: cuda, else wgpu, else ndarray.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
pub type B = burn::backend::NdArray<f32>;

/// [`B`]'s short name, for the printed lines.
pub fn backend_name() -> &'static str {
    std::any::type_name::<B>().split("::").last().unwrap_or("backend")
}

/// The least milliseconds `call` took over `SEETHINK_BENCH_RUNS` calls (default 5), after one
/// warm-up call.
pub fn best_ms(mut call: impl FnMut()) -> f64 {
    let runs: usize =
        std::env::var("SEETHINK_BENCH_RUNS").map_or(5, |r| r.parse().expect("SEETHINK_BENCH_RUNS"));
    let mut timed = || {
        let started = Instant::now();
        call();
        started.elapsed().as_secs_f64() * 1e3
    };
    timed();
    (0..runs).map(|_| timed()).fold(f64::INFINITY, f64::min)
}
