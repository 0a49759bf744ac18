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
use crate::response::{encode_event, PyEvent};
use bytes::Bytes;
use futures_util::StreamExt;
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use spikard_core::{sse, Error, IntoResponse, Request, Response};
use std::sync::Arc;

/// Calls the handler for its generator and answers with the event stream.
pub async fn respond(handler: Arc<PyHandler>, mut req: Request) -> Response {
    let started = Python::attach(|py| -> Result<EventSource, Error> {
        let args = handler.args(py, &mut req)?;
        let fail = |err: PyErr| internal(py, &handler.name, err);
        let ctx = context::copy(py).map_err(fail)?;
        let source = context::run_in(py, &ctx, || call(handler.func.bind(py), &args))
            .and_then(|r| r)
            .map_err(fail)?;
        let is_async = source
            .hasattr(pyo3::intern!(py, "__anext__"))
            .map_err(fail)?;
        Ok(EventSource {
            handler: Arc::clone(&handler),
            source: source.unbind(),
            ctx: ctx.unbind(),
            is_async,
            pending: None,
            finished: false,
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

/// A running generator and the context it runs in.
struct EventSource {
    handler: Arc<PyHandler>,
    source: Py<PyAny>,
    ctx: Py<PyAny>,
    is_async: bool,
    /// The task pulling the next item of an async generator, while it waits.
    pending: Option<Py<PyAny>>,
    finished: bool,
}

/// The next item of a stream: an event in wire format, or `None` at its end (or on a
/// failure, logged).
type Item = Option<Bytes>;

impl EventSource {
    async fn next(&mut self) -> Item {
        if self.finished {
            return None;
        }
        let item = if self.is_async {
            self.next_async().await
        } else {
            self.next_sync().await
        };
        if item.is_none() {
            self.finished = true;
        }
        item
    }

    async fn next_sync(&mut self) -> Item {
        // `inline`: on the engine thread, where a slow pull is logged.
        let pull = |handler: &PyHandler, source: &Py<PyAny>, ctx: &Py<PyAny>, inline: bool| {
            Python::attach(|py| {
                // The iterator protocol's C slot: no `__next__` lookup per event, and the
                // end is a NULL rather than a StopIteration.
                let next = || match source.bind(py).cast::<PyIterator>() {
                    Ok(iterator) => iterator.clone().next().transpose(),
                    Err(err) => Err(PyErr::from(err)),
                };
                let pulled = context::run_in(py, ctx.bind(py), || {
                    if inline {
                        handler.slow.time(&handler.name, next)
                    } else {
                        next()
                    }
                })
                .and_then(|r| r);
                match pulled {
                    Ok(Some(item)) => report(py, handler, to_event(&item)),
                    Ok(None) => None,
                    Err(err) => report(py, handler, Err(err)),
                }
            })
        };
        match self.handler.mode {
            Mode::Blocking(pool) => {
                let (handler, source, ctx) = Python::attach(|py| {
                    (
                        Arc::clone(&self.handler),
                        self.source.clone_ref(py),
                        self.ctx.clone_ref(py),
                    )
                });
                pool.run(move || pull(&handler, &source, &ctx, false))
                    .await
                    .ok()
                    .flatten()
            }
            _ => pull(&self.handler, &self.source, &self.ctx, true),
        }
    }

    async fn next_async(&mut self) -> Item {
        let lp = aio::current()?;
        let started = Python::attach(|py| -> PyResult<Result<Item, _>> {
            let coro = aio::next_item(py, self.source.bind(py))?;
            Ok(match lp.spawn(py, &coro, Some(self.ctx.bind(py)))? {
                Spawned::Done(task) => Ok(self.item(py, task_result(&task))),
                Spawned::Pending(task, rx) => {
                    self.pending = Some(task);
                    Err(rx)
                }
            })
        });
        match started {
            Ok(Ok(item)) => item,
            Ok(Err(rx)) => {
                let task = rx.await.ok()?;
                self.pending = None;
                Python::attach(|py| self.item(py, task_result(task.bind(py))))
            }
            Err(err) => Python::attach(|py| report(py, &self.handler, Err(err))),
        }
    }

    fn item(&self, py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> Item {
        match result {
            Ok(item) if aio::is_end(py, &item).unwrap_or(false) => None,
            Ok(item) => report(py, &self.handler, to_event(&item)),
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

fn to_event(item: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(custom) = item.cast::<PyEvent>() {
        return custom.borrow().encode(item.py());
    }
    encode_event(item, None, None)
}
