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
//!
//! When the engine starts a task itself, the task's first step is not queued at all
//! ([`holding`]): `asyncio.Task()` schedules it with `call_soon` as the last thing it does and
//! the engine runs it right after, so `call_soon` holds it back rather than build a handle to
//! be queued and popped again at once. The same goes for the wake-up of a task whose future
//! the engine resolves while nothing else is ready (a database query's answer).

use crate::context;
use crate::handler::call_raw;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};
use std::cell::RefCell;
use std::ffi::CStr;

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
    run_callback(
        &callback.into_bound(py),
        &args,
        ctx.bind(py),
        event_loop.as_ref().map(|l| l.bind(py)),
        Some(handle.as_any()),
    )
}

/// Calls `callback(*args)` in `ctx`; an exception other than `SystemExit` and
/// `KeyboardInterrupt` goes to `event_loop`'s exception handler (with `handle`, when the
/// callback had one), as `asyncio.Handle._run` does.
fn run_callback<'py>(
    callback: &Bound<'py, PyAny>,
    args: &[Py<PyAny>],
    ctx: &Bound<'py, PyAny>,
    event_loop: Option<&Bound<'py, PyAny>>,
    handle: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let py = callback.py();
    let called = context::run_in(py, ctx, || {
        call_raw(callback, args.iter().map(|a| a.as_ptr()))
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
    if let Some(handle) = handle {
        details.set_item("handle", handle)?;
    }
    event_loop.call_method1(pyo3::intern!(py, "call_exception_handler"), (details,))?;
    Ok(())
}

/// A task's step that `call_soon` held back (see [`holding`]): the step (its argument, for a
/// wake-up), the task's context, and the `call_soon` that held it.
pub struct Step {
    callback: Py<PyAny>,
    arg: Option<Py<PyAny>>,
    context: Py<PyAny>,
    soon: Py<CallSoon>,
}

impl Step {
    /// Runs the step in the task's context, as its handle would have run.
    pub fn run(self, py: Python<'_>) -> PyResult<()> {
        run_callback(
            self.callback.bind(py),
            self.arg.as_slice(),
            self.context.bind(py),
            Some(self.soon.get().event_loop.bind(py)),
            None,
        )
    }

    /// Queues the step after all: something was scheduled after it.
    fn queue(self, py: Python<'_>) -> PyResult<()> {
        let arg = self.arg.as_ref().map(Py::as_ptr);
        let soon = self.soon.get();
        soon.push(
            py,
            self.callback.bind(py),
            arg.as_slice(),
            self.context.into_bound(py),
        )
        .map(drop)
    }
}

/// Which task step a hold keeps back. Both are scheduled by C code that discards the handle
/// `call_soon` returns, so holding one back changes nothing but when it runs.
#[derive(Clone, Copy)]
pub enum Held {
    /// A C Task's first step (`TaskStepMethWrapper`, no arguments), which `asyncio.Task()`
    /// schedules as the last thing it does.
    FirstStep,
    /// A task's wake-up (`task_wakeup`, with the future as its argument), which resolving
    /// the future it awaits schedules.
    Wakeup,
}

impl Held {
    /// Whether `callback(*args)` is the step this hold keeps back.
    fn matches(self, callback: &Bound<'_, PyAny>, args: &[*mut ffi::PyObject]) -> bool {
        match self {
            Held::FirstStep => args.is_empty() && type_named(callback, c"TaskStepMethWrapper"),
            Held::Wakeup => args.len() == 1 && is_task_wakeup(callback),
        }
    }
}

/// What `call_soon` does with a task's step on this thread.
enum Holding {
    /// Queues it, as every other callback.
    Off,
    /// Holds back a step of this kind (see [`holding`]).
    Armed(Held, Option<Step>),
    /// Inside a hold that holds nothing more: queues every callback.
    Spent,
}

impl Holding {
    /// What `call_soon(callback, *args)` does in this state: whether it holds the callback
    /// back (as `step`), and the step held before that goes to the queue first.
    fn schedule(
        &mut self,
        callback: &Bound<'_, PyAny>,
        args: &[*mut ffi::PyObject],
        step: impl FnOnce() -> Step,
    ) -> (bool, Option<Step>) {
        match self {
            Holding::Off | Holding::Spent => (false, None),
            Holding::Armed(Held::FirstStep, held) => {
                if Held::FirstStep.matches(callback, args) {
                    (true, held.replace(step()))
                } else {
                    (false, held.take())
                }
            }
            Holding::Armed(Held::Wakeup, held) => {
                // Only a wake-up scheduled first, and only while nothing follows it, so that
                // running it before the queue keeps the order the callbacks were scheduled in.
                let earlier = held.take();
                if earlier.is_none() && Held::Wakeup.matches(callback, args) {
                    *held = Some(step());
                    (true, None)
                } else {
                    *self = Holding::Spent;
                    (false, earlier)
                }
            }
        }
    }

    /// The state of a hold of kind `outer` once a hold nested in it ended: a first step can
    /// still be held (the last one scheduled runs first, as the engine always ran it); a
    /// wake-up no longer, as callbacks were scheduled before it.
    fn after_nested(outer: Held) -> Holding {
        match outer {
            Held::FirstStep => Holding::Armed(Held::FirstStep, None),
            Held::Wakeup => Holding::Spent,
        }
    }
}

thread_local! {
    static HOLDING: RefCell<Holding> = const { RefCell::new(Holding::Off) };
}

/// Runs `schedule` with `call_soon` holding back a step of kind `held` instead of queueing
/// it, and returns that step, for the caller to run at once.
///
/// - [`Held::FirstStep`]: the first step of the task that `schedule` makes (`asyncio.Task()`
///   schedules it last). A step is held only while it is the last callback scheduled: when
///   anything else is scheduled after it (by code that runs meanwhile, a finalizer, say), it
///   is queued first, so the ready queue holds what it would have, in the same order, less
///   the step returned.
/// - [`Held::Wakeup`]: the wake-up of the task awaiting the future that `schedule` resolves,
///   when it is the only callback scheduled. Anything scheduled before or after it (another
///   task awaiting the same future, a done callback) sends it to the queue in its place, so a
///   caller that holds while the queue is empty runs the callbacks in the order they were
///   scheduled.
///
/// Returns none, and the step is in the queue as before, where none was held (`call_soon` is
/// asyncio's own in debug mode). When `schedule` fails, a step it held is queued rather than
/// lost.
pub fn holding<T>(
    py: Python<'_>,
    held: Held,
    schedule: impl FnOnce() -> PyResult<T>,
) -> PyResult<(T, Option<Step>)> {
    let after = match HOLDING.with(|h| h.replace(Holding::Armed(held, None))) {
        Holding::Off => Holding::Off,
        Holding::Spent => Holding::Spent,
        Holding::Armed(outer, step) => {
            // A hold inside another one's: the outer step is no longer the last.
            if let Some(step) = step {
                step.queue(py)?;
            }
            Holding::after_nested(outer)
        }
    };
    let made = schedule();
    let step = match HOLDING.with(|h| h.replace(after)) {
        Holding::Armed(_, step) => step,
        Holding::Off | Holding::Spent => None,
    };
    match made {
        Ok(made) => Ok((made, step)),
        Err(err) => {
            if let Some(step) = step {
                step.queue(py)?;
            }
            Err(err)
        }
    }
}

/// Whether `object`'s type is named `name` (its `tp_name`).
fn type_named(object: &Bound<'_, PyAny>, name: &CStr) -> bool {
    // SAFETY: every type object's `tp_name` is a NUL-terminated string that lives as long as
    // the type, which `object` keeps alive.
    unsafe { CStr::from_ptr((*ffi::Py_TYPE(object.as_ptr())).tp_name) == name }
}

/// Whether `callback` is a task's wake-up: the C function `task_wakeup` bound to the task,
/// which a future's done callbacks (every caller of `call_soon` with it) schedule and
/// discard the handle of.
fn is_task_wakeup(callback: &Bound<'_, PyAny>) -> bool {
    let ptr = callback.as_ptr();
    // SAFETY: a builtin function object is a `PyCFunctionObject`, whose method table and
    // its NUL-terminated name live as long as the function, which `callback` keeps alive.
    unsafe {
        if ffi::PyCFunction_Check(ptr) == 0 {
            return false;
        }
        let def = (*ptr.cast::<ffi::PyCFunctionObject>()).m_ml;
        !def.is_null() && CStr::from_ptr((*def).ml_name) == c"task_wakeup"
    }
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
    /// `call_soon` itself: queues `callback(*args)` in `context` (a copy of the current
    /// context when none) and returns its handle, or holds a task's step back while
    /// [`holding`] runs.
    fn queue<'py>(
        slf: &Bound<'py, CallSoon>,
        py: Python<'py>,
        callback: &Bound<'py, PyAny>,
        args: &[*mut ffi::PyObject],
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, Handle>>> {
        let context = match context {
            Some(context) if !context.is_none() => context.clone(),
            _ => context::copy(py)?,
        };
        let (hold, earlier) = HOLDING.with(|h| {
            h.borrow_mut().schedule(callback, args, || Step {
                callback: callback.clone().unbind(),
                // SAFETY: the caller's argument, borrowed and alive for the call.
                arg: args
                    .first()
                    .map(|&a| unsafe { Bound::from_borrowed_ptr(py, a) }.unbind()),
                context: context.clone().unbind(),
                soon: slf.clone().unbind(),
            })
        });
        // A step held before this callback: it goes first, as it would have.
        if let Some(earlier) = earlier {
            earlier.queue(py)?;
        }
        if hold {
            // Held: its caller, C Task or Future code, discards the handle.
            return Ok(None);
        }
        slf.get().push(py, callback, args, context).map(Some)
    }

    /// Queues `callback(*args)` in `context` on the ready queue.
    fn push<'py>(
        &self,
        py: Python<'py>,
        callback: &Bound<'py, PyAny>,
        args: &[*mut ffi::PyObject],
        context: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Handle>> {
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
            Ok(Some(handle)) => handle.into_any().into_ptr(),
            Ok(None) => py.None().into_ptr(),
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
) -> PyResult<Option<Bound<'py, Handle>>> {
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
    CallSoon::queue(&this, py, &callback, rest, context.as_ref())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{global, run};

    /// Runs `code` with `globals` as its module namespace and reads `name` back.
    fn eval<'py>(
        globals: &Bound<'py, PyDict>,
        code: &std::ffi::CStr,
        name: &str,
    ) -> Bound<'py, PyAny> {
        run(globals, code);
        global(globals, name)
    }

    /// A module namespace with `asyncio` and a new loop `lp` whose `call_soon` is a
    /// [`CallSoon`], after running `code` in it.
    fn engine_loop<'py>(py: Python<'py>, code: &std::ffi::CStr) -> Bound<'py, PyDict> {
        let globals = PyDict::new(py);
        run(&globals, c"import asyncio\nlp = asyncio.new_event_loop()\n");
        run(&globals, code);
        let lp = global(&globals, "lp");
        let ready = eval(&globals, c"x = lp._ready", "x");
        let soon = Bound::new(
            py,
            CallSoon::new(lp.clone().unbind(), &ready).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let call_soon = CallSoon::call_soon(&soon).unwrap_or_else(|e| panic!("{e}"));
        lp.setattr("call_soon", &call_soon)
            .unwrap_or_else(|e| panic!("{e}"));
        globals
    }

    /// The names of the callbacks in `lp`'s ready queue, in order.
    fn queued(globals: &Bound<'_, PyDict>) -> Vec<String> {
        eval(
            globals,
            c"q = [type(h._callback).__name__ for h in lp._ready]",
            "q",
        )
        .extract()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// While holding, only a task step scheduled last is held back (a nested hold keeps its
    /// own); every other step and callback is queued, in the order it was scheduled; outside
    /// a hold, steps are queued and `call_soon` returns their handles.
    #[test]
    fn holding_keeps_the_last_task_step_and_queues_the_rest() {
        Python::initialize();
        Python::attach(|py| {
            let globals = engine_loop(
                py,
                c"ran = []\n\
                  async def step(name):\n    ran.append(name)\n\
                  ",
            );
            let task = |name: &str| {
                globals
                    .set_item("name", name)
                    .unwrap_or_else(|e| panic!("{e}"));
                eval(&globals, c"t = asyncio.Task(step(name), loop=lp)", "t")
            };
            let queued = || queued(&globals);

            // In one hold: a task, a nested hold (which keeps its own task's step), another
            // task, a plain callback, a last task. Only the last task's step is held; the
            // others and the callback are queued in the order they were scheduled.
            let ((first, last), held) = holding(py, Held::FirstStep, || {
                let first = task("first");
                let (_, nested) = holding(py, Held::FirstStep, || Ok(task("nested")))
                    .unwrap_or_else(|e| panic!("{e}"));
                nested
                    .expect("the nested hold keeps its own step")
                    .run(py)
                    .unwrap_or_else(|e| panic!("{e}"));
                task("between");
                eval(&globals, c"lp.call_soon(lambda: None); x = 0", "x");
                Ok((first, task("last")))
            })
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                queued(),
                ["TaskStepMethWrapper", "TaskStepMethWrapper", "function"]
            );
            let ran: Vec<String> = eval(&globals, c"x = list(ran)", "x")
                .extract()
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ran, ["nested"]);
            held.expect("the last step is held")
                .run(py)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(last
                .call_method0("done")
                .unwrap_or_else(|e| panic!("{e}"))
                .is_truthy()
                .unwrap_or_else(|e| panic!("{e}")));
            assert!(!first
                .call_method0("done")
                .unwrap_or_else(|e| panic!("{e}"))
                .is_truthy()
                .unwrap_or_else(|e| panic!("{e}")));

            // Outside a hold, a task's step is queued and call_soon returns its handle.
            let handle = eval(
                &globals,
                c"t3 = asyncio.Task(step('third'), loop=lp); h = lp.call_soon(lambda: None)",
                "h",
            );
            assert!(handle.cast::<Handle>().is_ok());
            assert_eq!(
                queued(),
                [
                    "TaskStepMethWrapper",
                    "TaskStepMethWrapper",
                    "function",
                    "TaskStepMethWrapper",
                    "function"
                ]
            );
            eval(
                &globals,
                c"lp.run_until_complete(t3); lp.close(); x = list(ran)",
                "x",
            );
            let ran: Vec<String> = eval(&globals, c"x = list(ran)", "x")
                .extract()
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ran, ["nested", "last", "first", "between", "third"]);
        });
    }

    /// A wake-up is held only when it is the one callback its future schedules: with a
    /// second task awaiting the same future, both are queued in the order they were
    /// scheduled; a failed resolution queues what it held.
    #[test]
    fn holding_keeps_a_lone_wakeup_and_queues_the_rest_in_order() {
        Python::initialize();
        Python::attach(|py| {
            let globals = engine_loop(
                py,
                c"woke = []\n\
                  async def wait(name, fut):\n    woke.append((name, await fut))\n\
                  one = lp.create_future()\n\
                  two = lp.create_future()\n\
                  ",
            );
            let woke = || -> Vec<(String, i64)> {
                eval(&globals, c"x = list(woke)", "x")
                    .extract()
                    .unwrap_or_else(|e| panic!("{e}"))
            };
            run(
                &globals,
                c"a = lp.create_task(wait('a', one))\n\
                  b = lp.create_task(wait('b', two))\n\
                  c = lp.create_task(wait('c', two))\n\
                  lp.run_until_complete(asyncio.sleep(0))\n",
            );
            assert!(queued(&globals).is_empty());

            // One task awaits `one`: its wake-up is held, nothing is queued.
            let one = global(&globals, "one");
            let ((), held) = holding(py, Held::Wakeup, || {
                one.call_method1("set_result", (17,)).map(drop)
            })
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(queued(&globals).is_empty());
            held.expect("a lone wake-up is held")
                .run(py)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(woke(), [("a".to_owned(), 17)]);

            // Two await `two`: neither is held, both are queued in order, and run so.
            let two = global(&globals, "two");
            let ((), held) = holding(py, Held::Wakeup, || {
                two.call_method1("set_result", (29,)).map(drop)
            })
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(held.is_none());
            assert_eq!(
                queued(&globals),
                ["builtin_function_or_method", "builtin_function_or_method"]
            );
            run(
                &globals,
                c"lp.run_until_complete(asyncio.gather(a, b, c))\n",
            );
            assert_eq!(
                woke(),
                [
                    ("a".to_owned(), 17),
                    ("b".to_owned(), 29),
                    ("c".to_owned(), 29)
                ]
            );

            // A resolution that fails after scheduling the wake-up queues it.
            run(
                &globals,
                c"three = lp.create_future()\n\
                  d = lp.create_task(wait('d', three))\n\
                  lp.run_until_complete(asyncio.sleep(0))\n",
            );
            let three = global(&globals, "three");
            let failed = holding(py, Held::Wakeup, || {
                three.call_method1("set_result", (31,))?;
                Err::<(), _>(PyTypeError::new_err("after the result"))
            });
            assert!(failed.is_err());
            assert_eq!(queued(&globals), ["builtin_function_or_method"]);
            run(&globals, c"lp.run_until_complete(d); lp.close()\n");
            assert_eq!(woke().last(), Some(&("d".to_owned(), 31)));
        });
    }
}
