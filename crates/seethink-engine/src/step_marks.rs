//! Named points inside a GRPO update where a caller may look at the process while it runs: a
//! GPU benchmark reads its allocator's pools there, to place a step's peak memory within the
//! update. The observer runs on the thread that computes, which is where a backend's pools
//! are read (cubecl's memory usage is that of the calling thread's stream). No observer, no
//! cost beyond a thread-local read.
//!
//! The points, in the order an update reaches them (seethink-rl's `Grpo::learn`):
//! [`OLD_LOGPROBS`], [`REFERENCE_LOGPROBS`], then per mini-batch [`UPDATE_WEIGHTS`], per
//! micro-batch [`MICRO_BATCH_GRADIENTS`], and [`OPTIMIZER_STEP`].

use std::cell::RefCell;

/// The old (rollout policy) log-probs are computed, the policy is not yet dropped.
pub const OLD_LOGPROBS: &str = "old log-probs";
/// The reference model's log-probs are computed.
pub const REFERENCE_LOGPROBS: &str = "reference log-probs";
/// A mini-batch's trainable model is ready (its weights gathered, or cast to the compute type).
pub const UPDATE_WEIGHTS: &str = "mini-batch weights";
/// A micro-batch's forward and backward passes are done, its gradients added up.
pub const MICRO_BATCH_GRADIENTS: &str = "micro-batch gradients";
/// The optimizer has applied a mini-batch's gradients.
pub const OPTIMIZER_STEP: &str = "optimizer step";

type Observer = Box<dyn FnMut(&'static str)>;

thread_local! {
    static OBSERVER: RefCell<Option<Observer>> = const { RefCell::new(None) };
}

/// Runs `work` with `observer` called at every point this thread reaches meanwhile, then puts
/// back the observer that was there before (also when `work` panics).
pub fn observe<R>(observer: impl FnMut(&'static str) + 'static, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<Observer>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            OBSERVER.with(|slot| *slot.borrow_mut() = previous);
        }
    }
    let previous = OBSERVER.with(|slot| slot.borrow_mut().replace(Box::new(observer)));
    let _restore = Restore(previous);
    work()
}

/// This thread reached `point`: its observer, if any, is called.
pub fn reach(point: &'static str) {
    OBSERVER.with(|slot| {
        if let Some(observer) = slot.borrow_mut().as_mut() {
            observer(point);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn the_observer_sees_the_points_of_its_thread_and_scope_only() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        reach(OLD_LOGPROBS); // before: nobody listens
        observe(
            move |point| log.borrow_mut().push(point),
            || {
                reach(OLD_LOGPROBS);
                std::thread::spawn(|| reach(OPTIMIZER_STEP)).join().unwrap();
                reach(MICRO_BATCH_GRADIENTS);
            },
        );
        reach(UPDATE_WEIGHTS); // after: the observer is gone
        assert_eq!(*seen.borrow(), vec![OLD_LOGPROBS, MICRO_BATCH_GRADIENTS]);
    }

    #[test]
    fn an_inner_observer_is_replaced_by_the_outer_one_when_it_ends() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (outer, inner) = (seen.clone(), seen.clone());
        observe(
            move |point| outer.borrow_mut().push(("outer", point)),
            || {
                observe(move |point| inner.borrow_mut().push(("inner", point)), || reach(OLD_LOGPROBS));
                reach(OPTIMIZER_STEP);
            },
        );
        assert_eq!(*seen.borrow(), vec![("inner", OLD_LOGPROBS), ("outer", OPTIMIZER_STEP)]);
    }
}
