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

/// Puts this thread, and the threads it starts, in Linux's lowest scheduling class
/// (`SCHED_IDLE`): it runs on the cores other threads leave idle, so work beside a training
/// fills the training's gaps without slowing it (same-priority threads beside it would take
/// turns with its workers, each round of which waits for its slowest). Elsewhere a no-op.
pub fn take_only_idle_cores() {
    #[cfg(target_os = "linux")]
    {
        // the process-wide pool of the matrix products is made now, if not yet, so that its
        // threads, which every thread's products use, keep the normal class
        rayon::current_num_threads();
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param`; pid 0 is the calling thread. A refusal
        // leaves the thread as it was, which changes only the speed.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    }
}

/// Puts this process's threads in the idle class ([`take_only_idle_cores`]) back in the
/// normal class, for when the process waits for their work: left idle, they would get almost
/// no core while another process's threads are busy. Linux lets a thread leave the idle class
/// with `CAP_SYS_NICE` or an `RLIMIT_NICE` of 20 (`ulimit -e 20`); where it refuses, they stay
/// (which changes only the speed). A thread an idle one starts during the call may stay idle
/// until it ends (a host kernel's, within its call). Elsewhere a no-op.
pub fn back_to_all_cores() {
    #[cfg(target_os = "linux")]
    {
        let Ok(threads) = std::fs::read_dir("/proc/self/task") else { return };
        let param = libc::sched_param { sched_priority: 0 };
        for thread in threads.flatten() {
            let Some(tid) = thread.file_name().to_str().and_then(|name| name.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            // SAFETY: `param` is a valid `sched_param`; `tid` names a thread of this process
            // (one that ended since gives ESRCH, a refusal EPERM: both leave things as they were).
            unsafe {
                if libc::sched_getscheduler(tid) == libc::SCHED_IDLE {
                    libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param);
                }
            }
        }
    }
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

    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_thread_goes_back_to_the_normal_class_when_awaited() {
        // SAFETY: 0 is the calling thread.
        let class = || unsafe { libc::sched_getscheduler(0) };
        let (entered, awaited) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            let beside = scope.spawn(|| {
                take_only_idle_cores();
                let idle = class();
                entered.wait();
                awaited.wait();
                (idle, class())
            });
            entered.wait();
            back_to_all_cores();
            awaited.wait();
            let (idle, after) = beside.join().expect("the thread beside");
            assert_eq!(idle, libc::SCHED_IDLE);
            // leaving the idle class needs CAP_SYS_NICE or RLIMIT_NICE 20 (root has both)
            // SAFETY: `limit` is a valid `rlimit` to write into.
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            let may_leave = unsafe {
                libc::geteuid() == 0
                    || (libc::getrlimit(libc::RLIMIT_NICE, &mut limit) == 0 && limit.rlim_cur >= 20)
            };
            assert_eq!(after, if may_leave { libc::SCHED_OTHER } else { libc::SCHED_IDLE });
        });
        assert_eq!(class(), libc::SCHED_OTHER, "the caller's class is left as it was");
    }
}
