//! Stopping a run at the next safe point: a signal handler (the CLI installs one for Ctrl-C and
//! SIGTERM) calls [`request_stop`]; the run loop finishes its step, checkpoints it whatever the
//! save rule says, and the run ends with [`TrainError::Interrupted`](crate::error::TrainError).
//! The flag is process-wide: every later run and phase of the process stops at once too.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static LATCHED: AtomicBool = AtomicBool::new(false);

/// Asks the running training to stop after its current step (async-signal-safe: one store).
pub fn request_stop() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Called by the run loop once a step is done: whether the run stops after it. From the first
/// `true` on, [`stopping`] is true, so the step's checkpoint is written whatever the save rule
/// (a request arriving later is seen after the next step).
pub(crate) fn latch() -> bool {
    if stop_requested() {
        LATCHED.store(true, Ordering::SeqCst);
    }
    stopping()
}

/// Whether the run loop has latched a stop.
pub(crate) fn stopping() -> bool {
    LATCHED.load(Ordering::SeqCst)
}
