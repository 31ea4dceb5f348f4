//! The minimal reproduction of vendor/SEETHINK.md's burn-autodiff fix: a parameter's gradient
//! through `cat` survives another thread's `backward` (whose sweep for orphaned graphs used to
//! free the step behind it while `cat` copied: against the published 0.21.0 this program lost
//! the gradient in every pass).

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Tensor};

type B = Autodiff<NdArray<f32>>;

/// Passes of thread A (vendor/SEETHINK.md's program runs 200; each takes about half a second
/// here under the test profile, with thread B contending for the graphs' lock).
const PASSES: usize = 40;

#[test]
fn a_gradient_through_cat_survives_another_thread_s_backward() {
    let device = Default::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let q = Tensor::<B, 1>::ones([4], &device).require_grad();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = (q.clone() * 3.0).sum().backward();
            }
        });
        let frozen = Tensor::<B, 2>::zeros([1, 1 << 20], &device);
        let mut missing = 0;
        for _ in 0..PASSES {
            let p = Tensor::<B, 2>::random([1, 1 << 20], Distribution::Default, &device).require_grad();
            // after a backward, p's next use starts a graph of one node
            let _ = (p.clone() * 1.0).sum().backward();
            let z = Tensor::cat(vec![p.clone() * 2.0, frozen.clone()], 0);
            missing += usize::from(p.grad(&z.sum().backward()).is_none());
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(missing, 0, "of {PASSES} backward passes, {missing} lost the parameter's gradient");
    });
}
