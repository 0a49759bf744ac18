//! Entering the interpreter from the extension's own threads while the process exits.
//!
//! The database's background runtime resolves the futures of queries awaited outside an
//! engine thread (a script's `asyncio.run`) from a thread of its own. When the script's last
//! `asyncio.run` returns, the main thread goes straight on to finalize the interpreter; a
//! thread still inside the interpreter then (waiting to take the GIL back after a call that
//! released it) is made to exit by CPython in the middle of Rust code, and the process
//! aborts ("PyGILState_Release: thread state … must be current"). So such threads enter
//! through [`attach`], and an `atexit` hook, which runs before finalization begins, closes
//! the way in and waits until no thread is inside.

use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Threads between entering [`attach`] and leaving the interpreter.
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// Set by the `atexit` hook: nothing enters any more.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// How long the hook waits for a thread inside (the code these threads run is short: a
/// result decoded and handed to a loop).
const PATIENCE: Duration = Duration::from_secs(2);

extern "C" fn forked() {
    // The child has none of the parent's other threads, so none of them is inside.
    INSIDE.store(0, SeqCst);
}

/// Runs `f` attached to the interpreter, or drops it and returns None once the interpreter
/// is on its way out.
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // Counted before the check, and the hook closes before it counts, so either the hook
    // sees this thread or this thread sees the hook.
    INSIDE.fetch_add(1, SeqCst);
    let done = if CLOSED.load(SeqCst) {
        None
    } else {
        Some(Python::attach(f))
    };
    INSIDE.fetch_sub(1, SeqCst);
    done
}

/// The `atexit` hook: closes [`attach`] and waits, detached, for the threads inside.
#[pyfunction]
pub fn _at_exit(py: Python<'_>) {
    CLOSED.store(true, SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + PATIENCE;
        while INSIDE.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Registers the hook (once, at import).
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    // SAFETY: the child handler only stores to an atomic, which is async-signal-safe as a
    // handler run in the child of fork must be.
    unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    let hook = wrap_pyfunction!(_at_exit, module)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
