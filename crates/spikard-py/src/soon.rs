//! The engine loop's ready queue: `call_soon`, the handles it queues, and running them.
//!
//! asyncio's `call_soon` is Python code (it checks the loop, then `asyncio.Handle.__init__`
//! runs), and the loop runs each handle through `Handle._run`, another Python frame. A
//! handler that suspends goes through several per await: every task step, every future's
//! done callback, every `asyncio.shield` and pool release. The engine loop installs
//! [`CallSoon`] as its instance's `call_soon` (not in debug mode, where asyncio's own checks
//! apply), and [`drain`] runs its ready queue. A [`Handle`] behaves as `asyncio.Handle`:
//! `cancel()`, `cancelled()`, `get_context()`, `_run()`, its callback runs in its context, and
//! an exception from the callback goes to the loop's exception handler.

use crate::context;
use crate::handler::call_raw;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

/// A callback queued by [`CallSoon`]: `asyncio.Handle`'s behaviour, built and run in Rust.
#[pyclass(module = "spikard._spikard", name = "Handle")]
pub struct Handle {
    /// None once cancelled or run.
    callback: Option<Py<PyAny>>,
    args: Vec<Py<PyAny>>,
    context: Option<Py<PyAny>>,
    event_loop: Option<Py<PyAny>>,
    cancelled: bool,
}

#[pymethods]
impl Handle {
    /// Cancels the callback: it will not run, and its references are dropped.
    fn cancel(&mut self) {
        if !self.cancelled {
            self.cancelled = true;
            self.callback = None;
            self.args = Vec::new();
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled
    }

    #[getter(_cancelled)]
    fn cancelled_flag(&self) -> bool {
        self.cancelled
    }

    fn get_context(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.context.as_ref().map(|c| c.clone_ref(py))
    }

    #[getter(_callback)]
    fn callback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.callback.as_ref().map(|c| c.clone_ref(py))
    }

    #[getter(_args)]
    fn args<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        if self.callback.is_none() {
            return Ok(None);
        }
        PyTuple::new(py, self.args.iter().map(|a| a.bind(py))).map(Some)
    }

    #[getter(_loop)]
    fn event_loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.event_loop.as_ref().map(|l| l.clone_ref(py))
    }

    /// Runs the callback (asyncio's loop calls this for the handles it pops itself).
    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        run(slf)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = if self.cancelled { " cancelled" } else { "" };
        match &self.callback {
            Some(callback) => Ok(format!("<Handle{state} {}>", callback.bind(py).repr()?)),
            None => Ok(format!("<Handle{state}>")),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(callback) = &self.callback {
            visit.call(callback)?;
        }
        for arg in &self.args {
            visit.call(arg)?;
        }
        if let Some(context) = &self.context {
            visit.call(context)?;
        }
        if let Some(event_loop) = &self.event_loop {
            visit.call(event_loop)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.callback = None;
        self.args = Vec::new();
        self.context = None;
        self.event_loop = None;
    }
}

/// Runs `handle`'s callback in its context, once; an exception other than `SystemExit` and
/// `KeyboardInterrupt` goes to the loop's exception handler, as `asyncio.Handle._run` does.
fn run(handle: &Bound<'_, Handle>) -> PyResult<()> {
    let py = handle.py();
    let (callback, args, ctx, event_loop) = {
        let mut h = handle.borrow_mut();
        let Some(callback) = h.callback.take() else {
            return Ok(());
        };
        let Some(ctx) = h.context.as_ref().map(|c| c.clone_ref(py)) else {
            return Ok(());
        };
        let event_loop = h.event_loop.as_ref().map(|l| l.clone_ref(py));
        (callback, std::mem::take(&mut h.args), ctx, event_loop)
    };
    let callback = callback.into_bound(py);
    let called = context::run_in(py, ctx.bind(py), || {
        call_raw(&callback, args.iter().map(|a| a.as_ptr()))
    })?;
    let Err(err) = called else {
        return Ok(());
    };
    if err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py) {
        return Err(err);
    }
    let Some(event_loop) = event_loop else {
        return Err(err);
    };
    let details = PyDict::new(py);
    details.set_item(
        "message",
        format!("Exception in callback {}", callback.repr()?),
    )?;
    details.set_item("exception", err.value(py))?;
    details.set_item("handle", handle)?;
    event_loop
        .bind(py)
        .call_method1(pyo3::intern!(py, "call_exception_handler"), (details,))?;
    Ok(())
}

/// `loop.call_soon(callback, *args, context=None)`: queues a [`Handle`] on the loop's ready
/// queue and returns it.
#[pyclass(module = "spikard._spikard", frozen)]
pub struct CallSoon {
    event_loop: Py<PyAny>,
    append: Py<PyAny>,
}

#[pymethods]
impl CallSoon {
    /// For `event_loop`, whose ready queue (a deque) is `ready`.
    #[new]
    fn new(event_loop: Py<PyAny>, ready: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(CallSoon {
            event_loop,
            append: ready.getattr("append")?.unbind(),
        })
    }

    /// `call_soon` itself. The loop installs this bound method (not the object): a builtin
    /// method takes the `context=` keyword through vectorcall, without a keyword dict.
    #[pyo3(signature = (callback, *args, context = None))]
    fn call_soon<'py>(
        &self,
        py: Python<'py>,
        callback: Py<PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Handle>> {
        let context = match context {
            Some(context) if !context.is_none() => context,
            _ => context::copy(py)?,
        };
        let handle = Bound::new(
            py,
            Handle {
                callback: Some(callback),
                args: args.iter().map(Bound::unbind).collect(),
                context: Some(context.unbind()),
                event_loop: Some(self.event_loop.clone_ref(py)),
                cancelled: false,
            },
        )?;
        call_raw(self.append.bind(py), std::iter::once(handle.as_ptr()))?;
        Ok(handle)
    }
}

/// Runs up to `budget` handles from the front of `ready` (a deque), those that callbacks
/// queue meanwhile included, skipping cancelled ones; [`Handle`]s run here directly, other
/// handles (asyncio's own, for I/O and threads) through their `_run`.
#[pyfunction]
pub fn drain(ready: &Bound<'_, PyAny>, budget: usize) -> PyResult<()> {
    let py = ready.py();
    let popleft = ready.getattr(pyo3::intern!(py, "popleft"))?;
    for _ in 0..budget {
        if ready.len()? == 0 {
            break;
        }
        let item = call_raw(&popleft, std::iter::empty())?;
        run_any(&item)?;
    }
    Ok(())
}

/// Runs a handle from the ready queue unless it was cancelled: a [`Handle`] here, asyncio's
/// own through its `_run`.
pub fn run_any(item: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = item.py();
    if let Ok(handle) = item.cast::<Handle>() {
        run(handle)
    } else if !item.getattr(pyo3::intern!(py, "_cancelled"))?.is_truthy()? {
        item.call_method0(pyo3::intern!(py, "_run")).map(drop)
    } else {
        Ok(())
    }
}
