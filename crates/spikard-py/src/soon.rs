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
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
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

    /// `call_soon` itself, a builtin function bound to this object, which the loop installs
    /// as its instance's `call_soon`. It takes its arguments straight from the vectorcall
    /// array: parsing `*args` and `context=` the generic way cost more than the rest of
    /// the call.
    #[getter]
    fn call_soon<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `CALL_SOON` is a static method table of the flags its function takes; the
        // new function object holds a reference to `slf`, which `call_soon_raw` receives.
        unsafe {
            let def = std::ptr::addr_of!(CALL_SOON.0).cast_mut();
            let function = ffi::PyCFunction_NewEx(def, slf.as_ptr(), std::ptr::null_mut());
            Bound::from_owned_ptr_or_err(slf.py(), function)
        }
    }
}

impl CallSoon {
    fn queue<'py>(
        &self,
        py: Python<'py>,
        callback: &Bound<'py, PyAny>,
        args: &[*mut ffi::PyObject],
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Handle>> {
        let context = match context {
            Some(context) if !context.is_none() => context.clone(),
            _ => context::copy(py)?,
        };
        let args = args
            .iter()
            // SAFETY: the caller's arguments, borrowed and alive for the call.
            .map(|&a| unsafe { Bound::from_borrowed_ptr(py, a) }.unbind())
            .collect();
        let handle = Bound::new(
            py,
            Handle {
                callback: Some(callback.clone().unbind()),
                args,
                context: Some(context.unbind()),
                event_loop: Some(self.event_loop.clone_ref(py)),
                cancelled: false,
            },
        )?;
        call_raw(self.append.bind(py), std::iter::once(handle.as_ptr()))?;
        Ok(handle)
    }
}

/// The method table of [`CallSoon::call_soon`]'s function.
struct MethodDef(ffi::PyMethodDef);

// SAFETY: the table is never written; its pointers are to static strings and a function.
unsafe impl Sync for MethodDef {}

static CALL_SOON: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"call_soon".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: call_soon_raw,
    },
    ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"call_soon(callback, *args, context=None)\n--\n\nQueues callback(*args) on the loop's ready queue; returns its handle.".as_ptr(),
});

/// CPython's entry to [`CallSoon::call_soon`]'s function: `slf` is the [`CallSoon`], `args`
/// the positional arguments followed by the values of the keywords `kwnames` names.
unsafe extern "C" fn call_soon_raw(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: CPython passes `nargs` positional arguments and then one value per
            // name in `kwnames` (a tuple of str, or NULL), all borrowed for the call, and
            // `slf` is the object the function was made with.
            unsafe { call_soon_args(py, slf, args, nargs, kwnames) }
        }));
        let result = called.unwrap_or_else(|_| {
            Err(PanicException::new_err(
                "call_soon panicked; see the message above",
            ))
        });
        match result {
            Ok(handle) => handle.into_any().into_ptr(),
            Err(err) => {
                err.restore(py);
                std::ptr::null_mut()
            }
        }
    })
}

/// [`call_soon_raw`]'s arguments read and checked as `(callback, *args, context=None)`.
///
/// # Safety
/// As CPython calls a `METH_FASTCALL | METH_KEYWORDS` function made with a [`CallSoon`].
unsafe fn call_soon_args<'py>(
    py: Python<'py>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Bound<'py, Handle>> {
    let keywords = if kwnames.is_null() {
        None
    } else {
        Some(unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?)
    };
    let positional = usize::try_from(nargs).unwrap_or(0);
    let given = positional + keywords.as_ref().map_or(0, |k| k.len());
    let values = if given == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(args, given) }
    };
    let mut context = None;
    if let Some(keywords) = &keywords {
        for (name, &value) in keywords.iter().zip(&values[positional..]) {
            if name
                .cast::<PyString>()
                .is_ok_and(|n| n.to_str().is_ok_and(|n| n == "context"))
            {
                context = Some(unsafe { Bound::from_borrowed_ptr(py, value) });
            } else {
                return Err(PyTypeError::new_err(format!(
                    "call_soon() got an unexpected keyword argument {}",
                    name.repr()?
                )));
            }
        }
    }
    let Some((&callback, rest)) = values[..positional].split_first() else {
        return Err(PyTypeError::new_err(
            "call_soon() missing 1 required positional argument: 'callback'",
        ));
    };
    let this = unsafe { Bound::from_borrowed_ptr(py, slf) }.cast_into::<CallSoon>()?;
    let callback = unsafe { Bound::from_borrowed_ptr(py, callback) };
    this.get().queue(py, &callback, rest, context.as_ref())
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
