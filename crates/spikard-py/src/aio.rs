//! The asyncio loop of an engine thread, driven by that thread's tokio runtime.
//!
//! Each serving thread owns one `spikard._aio.EngineLoop`. A driver task on the thread's
//! current-thread runtime waits on what can give the loop work — its epoll descriptor turning
//! readable, its next timer, or a wake-up from a request that scheduled callbacks — and then
//! runs one non-blocking iteration of it. So an `async def` handler is a real asyncio Task on
//! the loop of the thread that owns its connection, and the loop is never touched from another
//! thread (other threads reach it through `call_soon_threadsafe`, whose wake-up byte makes the
//! descriptor readable).
//!
//! A request's task is created and the loop iterated once on the spot, so a handler that does
//! not suspend is answered then and there; one that suspends is answered when the task's done
//! callback fires.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::cell::RefCell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{oneshot, Notify};

use crate::handler::{call_raw, call_raw_kw};
use crate::soon::{self, Held};
use pyo3::types::{PyDict, PySet, PyString, PyTuple};

/// `spikard._aio` and `asyncio` objects, looked up once.
struct Names {
    engine_loop: Py<PyAny>,
    run_hooks: Py<PyAny>,
    close_stream: Py<PyAny>,
    next_item: Py<PyAny>,
    end: Py<PyAny>,
    /// `asyncio.Task`.
    task: Py<PyAny>,
    /// `asyncio.Future`.
    future: Py<PyAny>,
    /// Its methods, in [`Method`]'s order.
    methods: [Py<PyAny>; 5],
}

/// Methods of asyncio's futures (tasks inherit them) that the engine calls per request.
#[derive(Clone, Copy)]
pub enum Method {
    Done,
    Result,
    SetResult,
    SetException,
    AddDoneCallback,
}

impl Method {
    const NAMES: [&'static str; 5] = [
        "done",
        "result",
        "set_result",
        "set_exception",
        "add_done_callback",
    ];
}

/// An awaitable that is done at once, with None: what an `__aexit__` that did its work
/// already returns, where an asyncio future would be made and resolved for nothing.
#[pyclass(module = "spikard._spikard", frozen)]
pub struct Ready;

#[pymethods]
impl Ready {
    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Ends at once: the `await` gives None.
    fn __next__(&self) -> Option<()> {
        None
    }
}

/// The one [`Ready`] (it keeps no state, so every `await` may share it).
pub fn ready(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static READY: PyOnceLock<Py<Ready>> = PyOnceLock::new();
    let ready = READY.get_or_try_init(py, || Py::new(py, Ready))?;
    Ok(ready.bind(py).clone().into_any())
}

/// `future.<method>(*args)`. On an asyncio Future or Task (not a subclass, which may
/// override it) asyncio's own method is called directly, without looking it up by name.
pub fn call_future<'py>(
    future: &Bound<'py, PyAny>,
    method: Method,
    args: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    debug_assert!(args.len() <= 1);
    let py = future.py();
    let names = names(py)?;
    let ty = future.get_type();
    let own = ty.is(names.future.bind(py)) || ty.is(names.task.bind(py));
    // The future and at most one argument.
    let mut slots = [future.as_ptr(), std::ptr::null_mut()];
    let n = args.len().min(1);
    if let Some(arg) = args.first() {
        slots[1] = arg.as_ptr();
    }
    if own {
        let method = names.methods[method as usize].bind(py);
        // SAFETY: `slots[..=n]` holds live objects (`future` and the borrowed arguments) for
        // the call; the result is a new reference or NULL with an exception set; the GIL is
        // held (`py`).
        unsafe {
            let result = pyo3::ffi::PyObject_Vectorcall(
                method.as_ptr(),
                slots.as_ptr(),
                n + 1,
                std::ptr::null_mut(),
            );
            Bound::from_owned_ptr_or_err(py, result)
        }
    } else {
        let method = future.getattr(Method::NAMES[method as usize])?;
        call_raw(&method, slots[1..=n].iter().copied())
    }
}

static NAMES: PyOnceLock<Names> = PyOnceLock::new();

fn names(py: Python<'_>) -> PyResult<&Names> {
    NAMES.get_or_try_init(py, || {
        let aio = py.import("spikard._aio")?;
        Ok(Names {
            engine_loop: aio.getattr("EngineLoop")?.unbind(),
            run_hooks: aio.getattr("run_hooks")?.unbind(),
            close_stream: aio.getattr("close_stream")?.unbind(),
            next_item: aio.getattr("next_item")?.unbind(),
            end: aio.getattr("END")?.unbind(),
            task: py.import("asyncio")?.getattr("Task")?.unbind(),
            future: py.import("asyncio")?.getattr("Future")?.unbind(),
            methods: {
                let future = py.import("asyncio")?.getattr("Future")?;
                let method = |i: usize| future.getattr(Method::NAMES[i]).map(Bound::unbind);
                [method(0)?, method(1)?, method(2)?, method(3)?, method(4)?]
            },
        })
    })
}

/// What `EngineLoop.iterate` returns when only I/O can wake the loop.
const IDLE: f64 = -1.0;

/// Callbacks [`EngineLoop::run_ready`] runs before the engine serves its connections again
/// (`_BUDGET` of `spikard._aio`).
const READY_BUDGET: usize = 64;

/// One thread's asyncio loop and what its driver waits on.
pub struct EngineLoop {
    obj: Py<PyAny>,
    /// The loop's instance `__dict__`, where its `_scheduled` and `_debug` are read without
    /// an attribute look-up (asyncio's `_run_once` replaces the `_scheduled` list, so it is
    /// read afresh each time).
    attrs: Py<PyDict>,
    /// The loop's `_pending` set: suspended tasks, held until done (the loop itself keeps
    /// only weak references to tasks).
    pending: Py<PySet>,
    /// The loop's ready queue (`_ready`, a deque) and its `pop`.
    ready: Py<PyAny>,
    pop: Py<PyAny>,
    fd: RawFd,
    wake: Notify,
    stopping: AtomicBool,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<EngineLoop>>> = const { RefCell::new(None) };
}

/// The loop of the calling engine thread.
pub fn current() -> Option<Arc<EngineLoop>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// A task started by [`EngineLoop::spawn_with`].
pub enum Started<'py, R> {
    /// It finished during its first step: the task, ready for `result()`.
    Done(Bound<'py, PyAny>),
    /// It suspended: its done callback calls the `on_done` that `make` gave, and `R` is
    /// what else `make` gave (the receiving end of a channel, say).
    Pending(Py<PyAny>, R),
}

/// `asyncio.Task(coro, loop=lp, context=context, name=name)`, through vectorcall with
/// keyword names (no keyword dict built per task).
fn new_task<'py>(
    py: Python<'py>,
    coro: &Bound<'py, PyAny>,
    lp: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
    name: Option<&Bound<'py, PyString>>,
) -> PyResult<Bound<'py, PyAny>> {
    static WITH_NAME: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    static WITHOUT_NAME: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    let kwnames = match name {
        Some(_) => WITH_NAME.get_or_try_init(py, || {
            PyTuple::new(py, ["loop", "context", "name"]).map(Bound::unbind)
        })?,
        None => WITHOUT_NAME.get_or_try_init(py, || {
            PyTuple::new(py, ["loop", "context"]).map(Bound::unbind)
        })?,
    };
    let none = py.None();
    let context = context.map_or(none.as_ptr(), |c| c.as_ptr());
    let values = [
        coro.as_ptr(),
        lp.as_ptr(),
        context,
        name.map_or(std::ptr::null_mut(), |n| n.as_ptr()),
    ];
    let given = if name.is_some() { 4 } else { 3 };
    let task = names(py)?.task.bind(py);
    call_raw_kw(
        task,
        values[..given].iter().copied(),
        Some(kwnames.bind(py)),
    )
}

/// A task started by [`EngineLoop::spawn`].
pub enum Spawned<'py> {
    /// It finished during its first step: the task, ready for `result()`.
    Done(Bound<'py, PyAny>),
    /// It suspended: the task arrives here when it is done.
    Pending(Py<PyAny>, oneshot::Receiver<Py<PyAny>>),
}

impl EngineLoop {
    /// A new loop for the calling thread (not yet driven: see [`EngineLoop::install`]).
    pub fn new(py: Python<'_>) -> PyResult<Arc<EngineLoop>> {
        let obj = names(py)?.engine_loop.bind(py).call0()?;
        let fd: RawFd = obj.call_method0(pyo3::intern!(py, "fileno"))?.extract()?;
        let attrs = obj.getattr("__dict__")?.cast_into::<PyDict>()?.unbind();
        let pending = obj.getattr("_pending")?.cast_into::<PySet>()?.unbind();
        let ready = obj.getattr("_ready")?;
        let pop = ready.getattr("pop")?.unbind();
        Ok(Arc::new(EngineLoop {
            obj: obj.unbind(),
            attrs,
            pending,
            ready: ready.unbind(),
            pop,
            fd,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
        }))
    }

    /// Runs start-up or shut-down hooks to completion (before the loop is installed, or
    /// after it was removed).
    pub fn run_hooks(&self, py: Python<'_>, hooks: &Bound<'_, PyAny>) -> PyResult<()> {
        let coro = names(py)?.run_hooks.bind(py).call1((hooks,))?;
        self.obj
            .bind(py)
            .call_method1(pyo3::intern!(py, "run_until_complete"), (coro,))?;
        Ok(())
    }

    /// Makes this the running loop of the calling thread and starts its driver on the
    /// current tokio runtime.
    pub fn install(self: &Arc<Self>, py: Python<'_>) -> PyResult<tokio::task::JoinHandle<()>> {
        self.obj
            .bind(py)
            .call_method0(pyo3::intern!(py, "attach"))?;
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(self)));
        // SAFETY: the loop's epoll descriptor stays open until `close`, which runs after the
        // driver (the owner of this registration) has ended.
        let fd = unsafe { AsyncFd::register_with_interest(self.fd, Interest::READABLE) }
            .map_err(|e| PyRuntimeError::new_err(format!("cannot watch the asyncio loop: {e}")))?;
        Ok(tokio::spawn(drive(Arc::clone(self), fd)))
    }

    /// Stops the driver (await its handle), then the caller calls [`EngineLoop::close`].
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Detaches the loop from the thread, runs the shut-down hooks, cancels what is still
    /// pending and closes the loop (`EngineLoop.shut_down`).
    pub fn close(&self, py: Python<'_>, shutdown: &Bound<'_, PyAny>) -> PyResult<()> {
        CURRENT.with(|c| *c.borrow_mut() = None);
        self.obj
            .bind(py)
            .call_method1(pyo3::intern!(py, "shut_down"), (shutdown,))?;
        Ok(())
    }

    /// One non-blocking iteration; tells the driver when the loop next needs it.
    fn iterate(&self, py: Python<'_>, poll: bool) -> PyResult<f64> {
        let next: f64 = self
            .obj
            .bind(py)
            .call_method1(pyo3::intern!(py, "iterate"), (poll,))?
            .extract()?;
        Ok(next)
    }

    /// Creates an asyncio Task of `coro` (in `context`, or a copy of the current context;
    /// named `name`, or asyncio's `Task-N`) and runs its first step now, inside the task, as
    /// Python 3.12's eager tasks do.
    pub fn spawn<'py>(
        &self,
        py: Python<'py>,
        coro: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyString>>,
    ) -> PyResult<Spawned<'py>> {
        let make = || {
            let (tx, rx) = oneshot::channel();
            let on_done: OnDone = Box::new(move |_, task| {
                let _ = tx.send(task.clone().unbind());
            });
            (on_done, rx)
        };
        Ok(match self.spawn_with(py, coro, context, name, make)? {
            Started::Done(task) => Spawned::Done(task),
            Started::Pending(task, rx) => Spawned::Pending(task, rx),
        })
    }

    /// [`EngineLoop::spawn`] for a task that, when it does not finish in its first step,
    /// calls the `on_done` that `make` gives (with the task, on the loop's thread, with the
    /// GIL, from its done callback); `make` runs only then, so a task that finishes at once
    /// allocates nothing for it.
    pub fn spawn_with<'py, R>(
        &self,
        py: Python<'py>,
        coro: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyString>>,
        make: impl FnOnce() -> (OnDone, R),
    ) -> PyResult<Started<'py, R>> {
        let lp = self.obj.bind(py);
        let before = self.timers(py)?;
        let (task, first) = soon::holding(py, Held::FirstStep, || {
            new_task(py, coro, lp, context, name)
        })?;
        // Task() scheduled its first step last: run it here instead of in a loop iteration,
        // held back by `call_soon` or, where asyncio's own queued it, popped from the queue.
        match first {
            Some(step) => step.run(py)?,
            None => soon::run_any(&call_raw(self.pop.bind(py), std::iter::empty())?)?,
        }
        let wake = self.needs_driver(py, before)?;
        let done = call_future(&task, Method::Done, &[])?.is_truthy()?;
        if wake {
            // New callbacks or timers: the driver recomputes what it waits for.
            self.wake.notify_one();
        }
        if done {
            return Ok(Started::Done(task));
        }
        let (on_done, extra) = make();
        let pending = self.pending.bind(py);
        let completion = Py::new(
            py,
            Completion {
                on_done: Mutex::new(Some(on_done)),
                pending: pending.clone().unbind(),
            },
        )?;
        pending.add(&task)?;
        call_future(
            &task,
            Method::AddDoneCallback,
            &[completion.bind(py).as_any()],
        )?;
        Ok(Started::Pending(task.unbind(), extra))
    }

    /// `loop.create_future()`: `asyncio.Future(loop=…)`, as the loop's own method makes it.
    pub fn create_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static LOOP: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
        let kwnames = LOOP.get_or_try_init(py, || PyTuple::new(py, ["loop"]).map(Bound::unbind))?;
        call_raw_kw(
            names(py)?.future.bind(py),
            std::iter::once(self.obj.as_ptr()),
            Some(kwnames.bind(py)),
        )
    }

    /// Calls `settle`, which resolves one of the loop's futures from outside the loop, and
    /// runs what that queued (the task it wakes, and what that task's end schedules) now, as
    /// the loop's next iteration would, and tells the driver when work is left or the timers
    /// changed; returns what `settle` returned. When nothing else was ready, the woken
    /// task's step is not queued at all ([`soon::holding`]). In debug mode the driver runs
    /// the callbacks in asyncio's own iteration, which reports slow callbacks.
    pub fn settle(&self, py: Python<'_>, settle: impl FnOnce() -> PyResult<()>) -> PyResult<()> {
        let debug = self
            .attr(py, pyo3::intern!(py, "_debug"))
            .and_then(|d| d.is_truthy())
            .unwrap_or(true);
        let mut settled = Ok(());
        if debug {
            settled = settle();
            self.wake.notify_one();
            return settled;
        }
        // The future is resolved whatever else fails here: its task must not wait forever.
        let ready = self.ready.bind(py);
        let before = self.timers(py);
        let woken = if ready.len().is_ok_and(|n| n == 0) {
            // The wake-up would be the first callback in the queue: it runs here, after the
            // future is resolved, rather than be queued and popped at once.
            soon::holding(py, Held::Wakeup, || {
                settled = settle();
                Ok(())
            })
            .map(|((), woken)| woken)
        } else {
            settled = settle();
            Ok(None)
        };
        let ran = woken.and_then(|woken| {
            if let Some(step) = woken {
                step.run(py)?;
            }
            let before = before?;
            soon::drain(ready, READY_BUDGET)?;
            self.needs_driver(py, before)
        });
        match ran {
            Ok(false) => return settled,
            Ok(true) => {}
            Err(err) => {
                eprintln!("spikard: the asyncio loop failed running its callbacks:");
                err.print(py);
            }
        }
        self.wake.notify_one();
        settled
    }

    /// How many timers the loop holds (`len(loop._scheduled)`).
    fn timers(&self, py: Python<'_>) -> PyResult<usize> {
        self.attr(py, pyo3::intern!(py, "_scheduled"))?.len()
    }

    /// The loop's instance attribute `name`, read from its `__dict__`.
    fn attr<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.attrs.bind(py).get_item(name)? {
            Some(value) => Ok(value),
            None => self.obj.bind(py).getattr(name),
        }
    }

    /// Whether the driver must recompute what it waits for after callbacks ran outside an
    /// iteration: some are left to run, or the count of timers changed from `timers_before`.
    fn needs_driver(&self, py: Python<'_>, timers_before: usize) -> PyResult<bool> {
        Ok(self.ready.bind(py).len()? != 0 || self.timers(py)? != timers_before)
    }

    /// Runs `coro` as a task and waits for its result.
    pub async fn run(
        &self,
        coro: Py<PyAny>,
        context: Option<Py<PyAny>>,
        name: Option<Py<PyString>>,
    ) -> Result<Py<PyAny>, PyErr> {
        // The closures take what they use (`move`), so each Python object is dropped with the
        // GIL rather than after it, where pyo3 would queue it for the next thread that takes
        // the GIL.
        let spawned = Python::attach(move |py| -> PyResult<Result<Py<PyAny>, _>> {
            let context = context.as_ref().map(|c| c.bind(py));
            let name = name.as_ref().map(|n| n.bind(py));
            match self.spawn(py, coro.bind(py), context, name)? {
                Spawned::Done(task) => Ok(Ok(task.unbind())),
                Spawned::Pending(_, rx) => Ok(Err(rx)),
            }
        })?;
        let task = match spawned {
            Ok(task) => task,
            Err(rx) => rx
                .await
                .map_err(|_| PyRuntimeError::new_err("the asyncio loop dropped a task"))?,
        };
        Python::attach(move |py| Ok(task_result(task.bind(py))?.unbind()))
    }

    /// Starts `close_stream(stream, pending)` on the loop (an event stream's client left).
    pub fn close_stream(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        pending: Option<&Bound<'_, PyAny>>,
        context: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let coro = names(py)?
            .close_stream
            .bind(py)
            .call1((stream, pending.cloned().unwrap_or(py.None().into_bound(py))))?;
        self.spawn(py, &coro, Some(context), None).map(|_| ())
    }
}

/// `task.result()`: what the task's coroutine returned, or what it raised.
pub fn task_result<'py>(task: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call_future(task, Method::Result, &[])
}

/// `next_item(stream)`: the next item of an async generator, or `END` after its last.
pub fn next_item<'py>(py: Python<'py>, stream: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    names(py)?.next_item.bind(py).call1((stream,))
}

/// The value `next_item` gives when the stream is over.
pub fn is_end(py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(item.is(names(py)?.end.bind(py)))
}

/// Whether the loop's epoll descriptor has events waiting (level-triggered descriptors
/// that an iteration left ready do not make the edge-triggered registration fire again).
fn readable_now(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout; the descriptor is the loop's own epoll fd.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

async fn drive(lp: Arc<EngineLoop>, fd: AsyncFd<RawFd>) {
    let mut poll = true;
    while !lp.stopping.load(Ordering::Acquire) {
        let next = Python::attach(|py| {
            lp.iterate(py, poll).unwrap_or_else(|err| {
                eprintln!("spikard: the asyncio loop failed an iteration:");
                err.print(py);
                IDLE
            })
        });
        poll = poll && readable_now(lp.fd);
        if poll || next == 0.0 {
            tokio::task::yield_now().await;
            continue;
        }
        let sleep = (next > 0.0).then(|| Duration::from_secs_f64(next));
        tokio::select! {
            () = lp.wake.notified() => {}
            ready = fd.readable() => {
                if let Ok(mut guard) = ready {
                    guard.clear_ready();
                }
                poll = true;
            }
            () = tokio::time::sleep(sleep.unwrap_or_default()), if sleep.is_some() => {}
        }
    }
}

/// What a [`Completion`] does with the finished task.
pub type OnDone = Box<dyn FnOnce(Python<'_>, &Bound<'_, PyAny>) + Send>;

/// The one done callback of a suspended task: lets go of it in the loop's pending set and
/// hands it on.
#[pyclass(module = "spikard._spikard")]
pub struct Completion {
    on_done: Mutex<Option<OnDone>>,
    pending: Py<PySet>,
}

#[pymethods]
impl Completion {
    fn __call__(&self, task: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = task.py();
        self.pending.bind(py).discard(task)?;
        if let Some(on_done) = self.on_done.lock().ok().and_then(|mut f| f.take()) {
            on_done(py, task);
        }
        Ok(())
    }
}
