//! `contextvars` contexts: every request (and every event stream and WebSocket connection)
//! runs in its own copy of the serving thread's context, so what a handler sets in a
//! `ContextVar` is never seen by another request.

use pyo3::ffi;
use pyo3::prelude::*;

/// A copy of the calling thread's current context (`contextvars.copy_context()`).
pub fn copy(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: PyContext_CopyCurrent returns a new reference or NULL with an exception set;
    // the GIL is held (`py`).
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }
}

/// Runs `f` with `context` entered on the calling thread (`context.run(f)`).
pub fn run_in<R>(py: Python<'_>, context: &Bound<'_, PyAny>, f: impl FnOnce() -> R) -> PyResult<R> {
    // SAFETY: `context` is a contextvars.Context (made by `copy`); the GIL is held.
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(py));
    }
    let result = f();
    // SAFETY: exits the context entered above, on the same thread.
    if unsafe { ffi::PyContext_Exit(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(result)
}
