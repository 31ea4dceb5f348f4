//! Independent pieces of work on the host's cores: the pieces of a batch (micro-batches,
//! groups of prompts) and, inside one piece, the fused host kernels.

use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    /// Whether this thread is one of [`map_parallel`]'s workers (which then keep to one core).
    static WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The cores this thread may spread work over: those the process may use (its affinity mask
/// and CPU quota), or 1 inside a [`map_parallel`] worker, whose siblings hold the others.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    match WORKER.get() {
        true => 1,
        false => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

/// The threads worth spreading `work` (elements or multiply-adds in all) over: [`cores`] from
/// 2¹⁶ on, one below that, where starting threads costs more than they save.
pub fn threads_for(work: usize) -> usize {
    if work >= 1 << 16 {
        cores()
    } else {
        1
    }
}

/// `work` on every item, spread over up to `threads` scoped threads (each a contiguous share);
/// the results in item order.
pub fn map_parallel<T: Send, R: Send>(items: Vec<T>, threads: usize, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(work).collect();
    }
    let share = items.len().div_ceil(threads);
    let mut items = items.into_iter();
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let share: Vec<T> = items.by_ref().take(share).collect();
                scope.spawn(move || {
                    WORKER.set(true);
                    share.into_iter().map(work).collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_workers_keep_to_one_core() {
        let items: Vec<usize> = (0..10).collect();
        for threads in [1, 2, 3, 16] {
            let out = map_parallel(items.clone(), threads, |i| (i * i, cores()));
            assert_eq!(
                out.iter().map(|o| o.0).collect::<Vec<_>>(),
                items.iter().map(|i| i * i).collect::<Vec<_>>()
            );
            if threads > 1 {
                assert!(out.iter().all(|o| o.1 == 1));
            }
        }
    }
}
