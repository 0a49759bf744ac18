//! Generators as server-sent event streams.
//!
//! A stream runs in one `contextvars` context for its whole life. A generator's items are
//! pulled inline (or on the thread pool for `blocking=True` handlers); an async generator's
//! each as a task on the thread's asyncio loop. When the client goes away before the end,
//! the generator is closed — an async one with `aclose()` on the loop, so `finally` blocks
//! that await run.

use crate::aio::{self, task_result, Spawned};
use crate::answer::internal;
use crate::context;
use crate::handler::{call, Mode, PyHandler};
use crate::response::{write_event, PyEvent};
use bytes::Bytes;
use futures_util::StreamExt;
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use spikard_core::{sse, Error, IntoResponse, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls the handler for its generator and answers with the event stream.
pub async fn respond(handler: Arc<PyHandler>, mut req: Request) -> Response {
    let started = Python::attach(|py| -> Result<EventSource, Error> {
        let args = handler.args(py, &mut req)?;
        let fail = |err: PyErr| internal(py, &handler.name, err);
        let ctx = context::copy(py).map_err(fail)?;
        let source = context::run_in(py, &ctx, || call(handler.func.bind(py), &args))
            .and_then(|r| r)
            .map_err(fail)?;
        let is_async = is_async_iterator(&source);
        Ok(EventSource {
            handler: Arc::clone(&handler),
            source: source.unbind(),
            ctx: ctx.unbind(),
            is_async,
            pending: None,
            finished: false,
            batch: FIRST_BATCH,
        })
    });
    let source = match started {
        Ok(source) => source,
        Err(err) => return err.into_response(),
    };
    let events = futures_util::stream::unfold(source, |mut source| async move {
        let event = source.next().await?;
        Some((event, source))
    });
    sse::encoded(events.boxed())
}

/// Whether `source` is an async iterator: its type has `__anext__` (the slot `async for`
/// calls). Read off the type rather than with `hasattr`, which for a plain generator builds
/// and discards an `AttributeError` on every stream.
fn is_async_iterator(source: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `source` is a live object and the GIL is held; a type's `tp_as_async`, where
    // set, points to slots that live as long as the type.
    unsafe {
        let slots = (*pyo3::ffi::Py_TYPE(source.as_ptr())).tp_as_async;
        !slots.is_null() && (*slots).am_anext.is_some()
    }
}

/// A running generator and the context it runs in.
struct EventSource {
    handler: Arc<PyHandler>,
    source: Py<PyAny>,
    ctx: Py<PyAny>,
    is_async: bool,
    /// The task pulling the next item of an async generator, while it waits.
    pending: Option<Py<PyAny>>,
    finished: bool,
    /// What an inline batch's buffer starts with: the size of the batch before it (a
    /// stream's events are mostly alike), so that it is not grown by doubling event by event.
    batch: usize,
}

/// The next item of a stream: one or more events in wire format, or `None` at its end (or on
/// a failure, logged).
type Item = Option<Bytes>;

/// A generator pulled inline gives its events in batches: one pull after another while they
/// come fast, in one hold of the interpreter and one chunk of the answer, up to any of these
/// bounds. hyper keeps asking for the next chunk until its write buffer is full anyway, so
/// the client sees no event later than before, give or take one batch's time.
const BATCH_EVENTS: usize = 16;
const BATCH_BYTES: usize = 16 * 1024;
const BATCH_TIME: Duration = Duration::from_micros(100);
/// The buffer a stream's first batch starts with.
const FIRST_BATCH: usize = 512;
/// The buffer an event sent on its own (from an async or blocking generator) starts with,
/// and the least a batch's buffer starts with.
const ONE_EVENT: usize = 128;

impl EventSource {
    async fn next(&mut self) -> Item {
        if self.finished {
            return None;
        }
        let (item, ended) = if self.is_async {
            let item = self.next_async().await;
            let ended = item.is_none();
            (item, ended)
        } else if matches!(self.handler.mode, Mode::Blocking(_)) {
            let item = self.next_blocking().await;
            let ended = item.is_none();
            (item, ended)
        } else {
            self.next_inline()
        };
        if ended {
            self.finished = true;
        }
        item
    }

    /// A batch of events from a generator pulled on the engine thread (where a slow pull is
    /// logged), and whether the stream ended with it.
    fn next_inline(&mut self) -> (Item, bool) {
        let handler = &self.handler;
        let capacity = self.batch;
        let (item, ended) = Python::attach(|py| {
            let mut out = Vec::with_capacity(capacity);
            let mut ended = false;
            let started = Instant::now();
            let pulled = context::run_in(py, self.ctx.bind(py), || {
                for _ in 0..BATCH_EVENTS {
                    let next = || next_of(py, &self.source);
                    let failed = match handler.slow.time(&handler.name, next) {
                        Ok(Some(item)) => {
                            let mark = out.len();
                            let written = write_item(&mut out, &item);
                            if written.is_err() {
                                out.truncate(mark);
                            }
                            written.err()
                        }
                        Ok(None) => {
                            ended = true;
                            break;
                        }
                        Err(err) => Some(err),
                    };
                    if let Some(err) = failed {
                        let _: Error = internal(py, &handler.name, err);
                        ended = true;
                        break;
                    }
                    if out.len() >= BATCH_BYTES || started.elapsed() >= BATCH_TIME {
                        break;
                    }
                }
            });
            if let Err(err) = pulled {
                let _: Error = internal(py, &handler.name, err);
                ended = true;
            }
            let item = (!out.is_empty()).then(|| Bytes::from(out));
            let ended = ended || item.is_none();
            (item, ended)
        });
        if let Some(item) = &item {
            // The next batch's buffer: this one's size, within what a batch can come to.
            self.batch = item.len().clamp(ONE_EVENT, BATCH_BYTES);
        }
        (item, ended)
    }

    /// The next event of a generator pulled on the thread pool (`blocking=True`): one at a
    /// time, since the next pull may wait on anything.
    async fn next_blocking(&mut self) -> Item {
        let Mode::Blocking(pool) = self.handler.mode else {
            return None;
        };
        let (handler, source, ctx) = Python::attach(|py| {
            (
                Arc::clone(&self.handler),
                self.source.clone_ref(py),
                self.ctx.clone_ref(py),
            )
        });
        pool.run(move || {
            // `move`: the source and context are dropped with the GIL, not queued by pyo3.
            Python::attach(move |py| {
                let pulled =
                    context::run_in(py, ctx.bind(py), || next_of(py, &source)).and_then(|r| r);
                match pulled {
                    Ok(Some(item)) => report(py, &handler, encode_item(&item)),
                    Ok(None) => None,
                    Err(err) => report(py, &handler, Err(err)),
                }
            })
        })
        .await
        .ok()
        .flatten()
    }

    async fn next_async(&mut self) -> Item {
        let lp = aio::current()?;
        let started = Python::attach(|py| -> PyResult<Result<Item, _>> {
            let coro = aio::next_item(py, self.source.bind(py))?;
            let name = self.handler.task_name.bind(py);
            Ok(
                match lp.spawn(py, &coro, Some(self.ctx.bind(py)), Some(name))? {
                    Spawned::Done(task) => Ok(self.item(py, task_result(&task))),
                    Spawned::Pending(task, rx) => {
                        self.pending = Some(task);
                        Err(rx)
                    }
                },
            )
        });
        match started {
            Ok(Ok(item)) => item,
            Ok(Err(rx)) => {
                let task = rx.await.ok()?;
                self.pending = None;
                Python::attach(move |py| self.item(py, task_result(task.bind(py))))
            }
            Err(err) => Python::attach(|py| report(py, &self.handler, Err(err))),
        }
    }

    fn item(&self, py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> Item {
        match result {
            Ok(item) if aio::is_end(py, &item).unwrap_or(false) => None,
            Ok(item) => report(py, &self.handler, encode_item(&item)),
            Err(err) => report(py, &self.handler, Err(err)),
        }
    }
}

impl Drop for EventSource {
    /// The client left (or an item failed) before the generator ended: close it in its
    /// context, an async one on the loop with `aclose()`.
    fn drop(&mut self) {
        if self.finished && self.pending.is_none() {
            return;
        }
        Python::attach(|py| {
            let source = self.source.bind(py);
            let ctx = self.ctx.bind(py);
            let closed = if self.is_async {
                match aio::current() {
                    Some(lp) => {
                        let pending = self.pending.as_ref().map(|p| p.bind(py));
                        lp.close_stream(py, source, pending, ctx)
                    }
                    None => Ok(()),
                }
            } else {
                context::run_in(py, ctx, || source.call_method0(pyo3::intern!(py, "close")))
                    .and_then(|r| r)
                    .map(|_| ())
            };
            if let Err(err) = closed {
                internal(py, &self.handler.name, err);
            }
        });
    }
}

/// A failure mid-stream is logged and ends the stream.
fn report(py: Python<'_>, handler: &PyHandler, event: PyResult<Bytes>) -> Item {
    match event {
        Ok(event) => Some(event),
        Err(err) => {
            let _: Error = internal(py, &handler.name, err);
            None
        }
    }
}

/// A generator's next item through the iterator protocol's C slot: no `__next__` lookup per
/// event, and the end is a NULL rather than a StopIteration.
fn next_of<'py>(py: Python<'py>, source: &Py<PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    match source.bind(py).cast::<PyIterator>() {
        Ok(iterator) => iterator.clone().next().transpose(),
        Err(err) => Err(PyErr::from(err)),
    }
}

/// An item of the stream (an `Event`, or data) in wire format, on its own.
fn encode_item(item: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let mut out = Vec::with_capacity(ONE_EVENT);
    write_item(&mut out, item)?;
    Ok(out.into())
}

/// An item of the stream (an `Event`, or data) in wire format at the end of `out`.
fn write_item(out: &mut Vec<u8>, item: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(custom) = item.cast::<PyEvent>() {
        return custom.borrow().write(item.py(), out);
    }
    write_event(out, item, None, None)
}
