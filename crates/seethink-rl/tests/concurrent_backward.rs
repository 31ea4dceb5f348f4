//! The minimal reproductions of vendor/SEETHINK.md's burn-autodiff fixes: a parameter's
//! gradient through `cat` survives another thread's `backward` (whose sweep for orphaned graphs
//! used to free the step behind it while `cat` copied: against the published 0.21.0 this program
//! lost the gradient in every pass); and a backward pass does not wait for another thread's to
//! end (that sweep waited for every other graph's lock, which a backward pass holds throughout).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Tensor, TensorPrimitive};

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

/// An op that passes its input through, and whose backward pass, once entered, says so on
/// `entered` and waits for `release`: a backward pass held open on one thread.
#[derive(Debug)]
struct HeldOpen {
    entered: Sender<()>,
    release: Receiver<()>,
}

impl Backward<NdArray<f32>, 1> for HeldOpen {
    type State = ();

    /// `∂L/∂x = ∂L/∂y`, after the release.
    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<NdArray<f32>>(&ops.node);
        let _ = self.entered.send(());
        let _ = self.release.recv();
        if let [Some(parent)] = ops.parents {
            grads.register::<NdArray<f32>>(parent.id, grad);
        }
    }
}

/// Thread B's backward pass is held open; thread A runs a backward pass of its own graph
/// meanwhile. Against 0.21.0, A's sweep for orphaned graphs waited for B's graph, locked until
/// B's pass ends, so A never finished before B was released (here after 30 s); now it does at once.
#[test]
fn a_backward_pass_does_not_wait_for_another_thread_s() {
    let (entered, has_entered) = channel();
    let (release, released) = channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let q = Tensor::<B, 1>::ones([4], &Default::default()).require_grad();
            let x = (q.clone() * 3.0).into_primitive().tensor();
            let held = HeldOpen { entered, release: released }.prepare::<NoCheckpointing>([x.node.clone()]);
            let y = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(
                held.compute_bound().stateless(x.primitive),
            ));
            assert!(q.grad(&y.sum().backward()).is_some(), "the held pass lost its gradient");
        });
        has_entered.recv().unwrap();
        let (done, is_done) = channel();
        scope.spawn(move || {
            let p = Tensor::<B, 1>::ones([4], &Default::default()).require_grad();
            let _ = done.send(p.grad(&(p.clone() * 2.0).sum().backward()).is_some());
        });
        let finished = is_done.recv_timeout(Duration::from_secs(30));
        release.send(()).unwrap();
        assert_eq!(finished, Ok(true), "a backward pass waited for another thread's to end");
    });
}
