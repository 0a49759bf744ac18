//! asyncio's registry of live tasks, written to without a Python frame.
//!
//! Every `asyncio.Task` adds itself, in its C `__init__`, to the module's `weakref.WeakSet`
//! of tasks (`asyncio.tasks._all_tasks` on CPython 3.11, `_scheduled_tasks` on 3.12 and
//! 3.13), which `asyncio.all_tasks()` reads. `WeakSet.add` is Python code, and so is the
//! weak reference's callback that takes a freed task out again: two Python frames per task,
//! about 3,100 instructions of an `async def` request that does nothing else (12% of one).
//! [`TaskSet`] does the same two things natively and the engine loop installs its `add` on
//! that one set's instance (the C code looks `add` up on the instance, whose `__dict__`
//! comes before the class's function), so the set holds the same weak references, iterates
//! as before, and `all_tasks()` sees every task as it did.

use pyo3::prelude::*;
use pyo3::types::{PyList, PySet, PyWeakrefReference};
use pyo3::{intern, PyTraverseError, PyVisit};
use std::sync::OnceLock;

/// `add` and the removal callback of one `weakref.WeakSet`, as `WeakSet.add` and the set's
/// `_remove` closure behave: pending removals are committed before an add, and a member
/// freed while the set is being iterated is queued in `_pending_removals` rather than
/// discarded.
#[pyclass(module = "spikard._spikard", frozen)]
pub struct TaskSet {
    /// The set itself, for `_commit_removals()`.
    set: Py<PyAny>,
    /// Its `data` (the weak references), `_pending_removals` and `_iterating`: a `WeakSet`
    /// makes them in `__init__` and only changes them in place.
    data: Py<PySet>,
    pending_removals: Py<PyList>,
    iterating: Py<PySet>,
    /// `self.remove`, bound on first use: the callback of every weak reference `add` makes.
    callback: OnceLock<Py<PyAny>>,
}

#[pymethods]
impl TaskSet {
    /// For `set`, a `weakref.WeakSet`.
    #[new]
    fn new(set: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(TaskSet {
            set: set.clone().unbind(),
            data: set.getattr("data")?.cast_into::<PySet>()?.unbind(),
            pending_removals: set
                .getattr("_pending_removals")?
                .cast_into::<PyList>()?
                .unbind(),
            iterating: set.getattr("_iterating")?.cast_into::<PySet>()?.unbind(),
            callback: OnceLock::new(),
        })
    }

    /// `WeakSet.add(item)`: a weak reference to `item` whose callback is [`TaskSet::remove`].
    fn add(slf: &Bound<'_, Self>, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if !this.pending_removals.bind(py).is_empty() {
            this.set
                .bind(py)
                .call_method0(intern!(py, "_commit_removals"))?;
        }
        let callback = match this.callback.get() {
            Some(callback) => callback.bind(py).clone(),
            None => {
                let callback = slf.getattr(intern!(py, "remove"))?;
                let _ = this.callback.set(callback.clone().unbind());
                callback
            }
        };
        let reference = PyWeakrefReference::new_with(item, callback)?;
        this.data.bind(py).add(reference)
    }

    /// The weak references' callback (the set's `_remove`): `reference`'s object is gone.
    fn remove(&self, reference: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = reference.py();
        if self.iterating.bind(py).is_empty() {
            self.data.bind(py).discard(reference).map(drop)
        } else {
            self.pending_removals.bind(py).append(reference)
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.set)?;
        visit.call(&self.data)?;
        visit.call(&self.pending_removals)?;
        visit.call(&self.iterating)?;
        if let Some(callback) = self.callback.get() {
            visit.call(callback)?;
        }
        Ok(())
    }
}
