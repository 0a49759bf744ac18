//! WebSocket message handlers: the function is called with each text (`str`) or binary
//! (`bytes`) message, and what it returns is sent back. A connection runs in one
//! `contextvars` context; an `async def` handler's calls are tasks on the thread's loop.

use crate::aio;
use crate::answer::internal;
use crate::context;
use crate::convert::py_to_json;
use crate::handler::{Mode, PyHandler};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use spikard_core::{Message, WebSocket};
use std::sync::Arc;

/// Serves one connection: every message to the handler, every reply back.
pub async fn message_loop(handler: Arc<PyHandler>, mut socket: WebSocket) {
    let Ok(ctx) = Python::attach(|py| context::copy(py).map(Bound::unbind)) else {
        return;
    };
    while let Some(message) = spikard_core::websocket::receive(&mut socket).await {
        if matches!(message, Message::Close(_)) {
            break;
        }
        if let Some(reply) = call(&handler, &ctx, message).await {
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    }
}

/// Calls the handler with one message; returns the reply, if any.
async fn call(handler: &Arc<PyHandler>, ctx: &Py<PyAny>, message: Message) -> Option<Message> {
    let message = &message;
    let called: PyResult<Py<PyAny>> = match handler.mode {
        Mode::Inline => Python::attach(|py| {
            let arg = arg(py, message)?;
            Some(
                context::run_in(py, ctx.bind(py), || {
                    handler
                        .slow
                        .time(&handler.name, || handler.func.bind(py).call1((arg,)))
                })
                .and_then(|r| r)
                .map(Bound::unbind),
            )
        })?,
        Mode::Blocking(pool) => {
            let (arg, ctx, h) = Python::attach(|py| {
                Some((
                    arg(py, message)?.unbind(),
                    ctx.clone_ref(py),
                    Arc::clone(handler),
                ))
            })?;
            pool.run(move || {
                // `move`: the context is dropped with the GIL, not queued by pyo3.
                Python::attach(move |py| {
                    context::run_in(py, ctx.bind(py), || h.func.bind(py).call1((arg,)))
                        .and_then(|r| r)
                        .map(Bound::unbind)
                })
            })
            .await
            .ok()?
        }
        Mode::Async => {
            let lp = aio::current()?;
            let (coro, ctx, name) = Python::attach(|py| {
                let coro = handler
                    .func
                    .bind(py)
                    .call1((arg(py, message)?,))
                    .map(Bound::unbind);
                Some((coro, ctx.clone_ref(py), handler.task_name.clone_ref(py)))
            })?;
            match coro {
                Ok(coro) => lp.run(coro, Some(ctx), Some(name)).await,
                Err(err) => Err(err),
            }
        }
    };
    Python::attach(|py| match called {
        Ok(reply) => to_message(reply.bind(py)),
        Err(err) => {
            internal(py, &handler.name, err);
            None
        }
    })
}

fn arg<'py>(py: Python<'py>, message: &Message) -> Option<Bound<'py, PyAny>> {
    match message {
        Message::Text(text) => Some(PyString::new(py, text.as_str()).into_any()),
        Message::Binary(data) => Some(PyBytes::new(py, data).into_any()),
        _ => None,
    }
}

fn to_message(reply: &Bound<'_, PyAny>) -> Option<Message> {
    if let Ok(text) = reply.cast_exact::<PyString>() {
        return text.to_str().ok().map(|t| Message::Text(t.into()));
    }
    if let Ok(bytes) = reply.cast::<PyBytes>() {
        return Some(Message::Binary(bytes::Bytes::copy_from_slice(
            bytes.as_bytes(),
        )));
    }
    if reply.is_none() {
        return None;
    }
    py_to_json(reply)
        .ok()
        .map(|json| Message::Text(String::from_utf8_lossy(&json).into_owned().into()))
}
