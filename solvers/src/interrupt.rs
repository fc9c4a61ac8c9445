//! The process's stop request, polled by long computations (interior-point iterations, active-set
//! rounds, Jacobi sweeps, sweeps of runs) so that SIGINT/SIGTERM end every phase promptly.
//!
//! Two sources: the process-wide flag [`flag`] (the binary registers its signal handlers on it),
//! and a per-thread poll installed by [`with_poll`] for hosts that must check their own signals
//! on the computing thread (Python's `KeyboardInterrupt`). [`requested`] is one atomic load when
//! no poll is installed, so it may be called in inner loops. Computations that see a request
//! return [`crate::SolverError::Interrupted`] (or their own `Stopped` status).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

thread_local! {
    static POLL: RefCell<Option<Box<dyn FnMut() -> bool>>> = const { RefCell::new(None) };
}

/// The process-wide stop flag (false until a stop is requested); register signal handlers on it.
pub fn flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone()
}

/// Whether a stop was requested: the process flag, or this thread's poll (see [`with_poll`]).
pub fn requested() -> bool {
    if FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed)) {
        return true;
    }
    POLL.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.as_mut().map(|f| f())).unwrap_or(false))
}

/// `Err(Interrupted)` when a stop was requested.
pub fn check() -> Result<(), crate::SolverError> {
    if requested() {
        Err(crate::SolverError::Interrupted)
    } else {
        Ok(())
    }
}

/// Run `f` with `poll` as this thread's extra stop source (restored afterwards). `poll` should be
/// cheap or rate-limit itself; once it has returned true it should keep returning true.
pub fn with_poll<R>(poll: impl FnMut() -> bool + 'static, f: impl FnOnce() -> R) -> R {
    let old = POLL.with(|p| p.borrow_mut().replace(Box::new(poll)));
    struct Restore(Option<Box<dyn FnMut() -> bool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = self.0.take();
            POLL.with(|p| *p.borrow_mut() = old);
        }
    }
    let _restore = Restore(old);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A thread's poll is seen inside `with_poll` and gone after it.
    #[test]
    fn poll_is_scoped_to_the_call() {
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let inside = with_poll(
            move || {
                c.set(c.get() + 1);
                true
            },
            || (requested(), check().is_err()),
        );
        assert_eq!(inside, (true, true));
        assert_eq!(calls.get(), 2);
        assert!(!requested());
    }
}
