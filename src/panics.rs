//! Panics become log lines and errors, never a dead process or a trace on stderr.
//!
//! redb panics on some damaged files (`entered unreachable code`) instead of returning
//! an error. The hook installed by [`install_hook`] logs a panic as one error line
//! (message and location, no backtrace); [`catch`] and [`CatchPanic`] turn one into an
//! `Err` carrying the message, so start-up can print a clear message and a request can
//! answer a JSON 500 while the server goes on.

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// Set while [`catch`] runs: its caller reports the panic itself.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Replaces the default hook (a multi-line trace on stderr) by one log line.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        if QUIET.with(Cell::get) {
            return;
        }
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            message = %message(info.payload()),
            %location,
            thread = std::thread::current().name().unwrap_or("?"),
            "internal error (a panic); the server goes on"
        );
    }));
}

/// The text a panic was raised with.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs `f`; a panic in it is returned as its message and not logged by the hook.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let was = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    out.map_err(|p| message(p.as_ref()))
}

/// A future whose panics become `Err(message)` (logged by the hook); the task survives.
pub struct CatchPanic<F>(pub F);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the inner future is never moved out of the pinned wrapper.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(p) => Poll::Ready(Err(message(p.as_ref()))),
        }
    }
}
