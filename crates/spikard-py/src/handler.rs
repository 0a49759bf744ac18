//! Python functions as engine handlers.
//!
//! Per request the engine has already parsed and validated every parameter; this module
//! turns the values into Python objects, calls the function inline on the thread that owns
//! the connection (no hand-off), and encodes the answer. A coroutine is stepped once with
//! `send(None)`: if it finishes, that is the answer; only a coroutine that really suspends is
//! handed to the process's persistent asyncio loop, and the request waits for it without
//! blocking other requests.

use crate::convert::{json_to_py, py_to_json, value_to_py};
use crate::response::PyResponse;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use spikard_core::{
    response, sse, BodyData, Error, Event, FieldError, IntoResponse, LocPart, Request, Response,
    StatusCode,
};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// How the body argument is produced.
pub enum BodyArg {
    /// JSON into dicts, lists, str, int, float, bool, None.
    Json,
    /// JSON through a typed decoder (`msgspec.json.Decoder(type)`), for dataclasses,
    /// TypedDicts and Structs.
    Typed(Py<PyAny>),
    /// The raw bytes.
    Bytes,
}

/// What the function returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An answer (dict, list, str, bytes, None, Response, dataclass, Struct).
    Answer,
    /// A generator or async generator of server-sent events.
    EventStream,
}

/// A registered Python handler.
pub struct PyHandler {
    pub name: String,
    pub func: Py<PyAny>,
    pub is_async: bool,
    pub kind: Kind,
    /// Position of the body among the function's arguments.
    pub body: Option<(usize, BodyArg)>,
}

/// The result of stepping a coroutine once.
enum Step<'py> {
    Done(Bound<'py, PyAny>),
    /// It suspended and was handed to the asyncio loop; the task arrives here when done.
    Pending(oneshot::Receiver<Py<PyAny>>),
}

/// Logs a Python exception with its traceback and turns it into a 500.
fn internal(py: Python<'_>, name: &str, err: PyErr) -> Error {
    eprintln!("spikard: handler {name} raised:");
    err.print(py);
    Error::Internal(format!("handler {name} raised"))
}

impl PyHandler {
    fn args<'py>(&self, py: Python<'py>, req: &mut Request) -> Result<Bound<'py, PyTuple>, Error> {
        let values = req.take_values();
        let mut args = Vec::with_capacity(values.len() + 1);
        for value in values {
            args.push(value_to_py(py, value).map_err(|e| internal(py, &self.name, e))?);
        }
        if let Some((position, kind)) = &self.body {
            let bytes = match req.take_body() {
                BodyData::Bytes(bytes) => bytes,
                _ => bytes::Bytes::new(),
            };
            let body = match kind {
                BodyArg::Json => json_to_py(py, &bytes).map_err(|err| {
                    Error::BadRequest(format!("the body is not valid JSON: {err}"))
                })?,
                BodyArg::Typed(decoder) => decode_typed(py, decoder.bind(py), &bytes)?,
                BodyArg::Bytes => PyBytes::new(py, &bytes).into_any(),
            };
            args.insert((*position).min(args.len()), body);
        }
        PyTuple::new(py, args).map_err(|e| internal(py, &self.name, e))
    }

    fn start(&self, mut req: Request) -> Pending {
        Python::attach(|py| {
            let args = match self.args(py, &mut req) {
                Ok(args) => args,
                Err(err) => return Pending::Ready(err.into_response()),
            };
            let called = match self.func.bind(py).call1(args) {
                Ok(called) => called,
                Err(err) => return Pending::Ready(internal(py, &self.name, err).into_response()),
            };
            if self.kind == Kind::EventStream {
                return Pending::Stream(called.unbind());
            }
            if !self.is_async {
                return Pending::Ready(answer(py, &self.name, &called));
            }
            match step(py, &called) {
                Ok(Step::Done(value)) => Pending::Ready(answer(py, &self.name, &value)),
                Ok(Step::Pending(rx)) => Pending::Task(rx),
                Err(err) => Pending::Ready(internal(py, &self.name, err).into_response()),
            }
        })
    }
}

/// What calling a handler gave: an answer now, a suspended coroutine's task, or a stream.
enum Pending {
    Ready(Response),
    Task(oneshot::Receiver<Py<PyAny>>),
    Stream(Py<PyAny>),
}

/// A value now, or the receiver of the asyncio task that will produce it.
type NowOrLater<T> = Result<T, oneshot::Receiver<Py<PyAny>>>;

impl spikard_core::Handler for SharedHandler {
    fn call(&self, req: Request) -> BoxFuture<'static, Response> {
        let handler = Arc::clone(&self.0);
        match handler.start(req) {
            Pending::Ready(ready) => Box::pin(std::future::ready(ready)),
            Pending::Task(rx) => Box::pin(async move {
                let task = rx.await;
                Python::attach(|py| match task {
                    Ok(task) => match task.bind(py).call_method0("result") {
                        Ok(value) => answer(py, &handler.name, &value),
                        Err(err) => internal(py, &handler.name, err).into_response(),
                    },
                    Err(_) => {
                        Error::Internal("the asyncio loop dropped a task".into()).into_response()
                    }
                })
            }),
            Pending::Stream(source) => Box::pin(async move { event_stream(handler, source) }),
        }
    }
}

/// A cloneable handle to a [`PyHandler`], registered with the engine.
#[derive(Clone)]
pub struct SharedHandler(pub Arc<PyHandler>);

/// Converts a handler's return value into a response.
pub fn answer(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> Response {
    match answer_inner(py, value) {
        Ok(response) => response,
        Err(err) => internal(py, name, err).into_response(),
    }
}

fn answer_inner(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Response> {
    if let Ok(custom) = value.cast::<PyResponse>() {
        return custom.borrow().to_response(py);
    }
    body_response(value)
}

/// The default answer for a body value: bytes as octet-stream, str as text, None as 204,
/// anything else as JSON.
pub fn body_response(value: &Bound<'_, PyAny>) -> PyResult<Response> {
    if let Ok(text) = value.cast_exact::<PyString>() {
        return Ok(response::text(text.to_str()?.to_owned()));
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(response::bytes(bytes.as_bytes().to_vec()));
    }
    if value.is_none() {
        return Ok(response::empty(StatusCode::NO_CONTENT));
    }
    if value.cast::<PyDict>().is_err() && value.cast::<PyList>().is_err() {
        // A dataclass, Struct or other record: msgspec encodes it in C in one call.
        if let Some(encode) = &crate::convert::cached(value.py())?.encode {
            let json = encode.bind(value.py()).call1((value,))?;
            if let Ok(bytes) = json.cast::<PyBytes>() {
                return Ok(response::json_bytes(bytes.as_bytes().to_vec()));
            }
        }
    }
    Ok(response::json_bytes(py_to_json(value)?))
}

/// msgspec decodes into the declared type; its validation errors become 422s naming the
/// field (`Expected `int`, got `str` - at `$.count``).
fn decode_typed<'py>(
    py: Python<'py>,
    decoder: &Bound<'py, PyAny>,
    bytes: &[u8],
) -> Result<Bound<'py, PyAny>, Error> {
    decoder
        .call_method1("decode", (PyBytes::new(py, bytes),))
        .map_err(|err| {
            let msg = err.value(py).to_string();
            let is_validation = err
                .get_type(py)
                .name()
                .map(|n| n.to_str().map(|n| n == "ValidationError").unwrap_or(false))
                .unwrap_or(false);
            // A shape error in a document that is not JSON at all is a 400, not a 422.
            let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err();
            if !is_validation || syntax.is_some() {
                let why = syntax.map(|e| e.to_string()).unwrap_or(msg);
                return Error::BadRequest(format!("the body is not valid JSON: {why}"));
            }
            let mut loc = vec![LocPart::Key("body".into())];
            if let Some((text, path)) = msg.rsplit_once(" - at `$") {
                for part in path
                    .trim_end_matches('`')
                    .split(['.', '['])
                    .filter(|p| !p.is_empty())
                {
                    match part.trim_end_matches(']').parse::<usize>() {
                        Ok(i) if part.ends_with(']') => loc.push(LocPart::Index(i)),
                        _ => loc.push(LocPart::Key(part.to_owned())),
                    }
                }
                return Error::Validation(vec![FieldError {
                    loc,
                    msg: text.to_owned(),
                }]);
            }
            if let Some(field) = msg
                .strip_prefix("Object missing required field `")
                .and_then(|r| r.strip_suffix('`'))
            {
                loc.push(LocPart::Key(field.to_owned()));
            }
            Error::Validation(vec![FieldError { loc, msg }])
        })
}

/// The process's asyncio machinery, from `spikard._aio`, started on first use.
struct Aio {
    loop_: Py<PyAny>,
    set_running_loop: Py<PyAny>,
    resume: Py<PyAny>,
}

static AIO: PyOnceLock<Aio> = PyOnceLock::new();

fn aio(py: Python<'_>) -> PyResult<&Aio> {
    AIO.get_or_try_init(py, || {
        let module = py.import("spikard._aio")?;
        Ok(Aio {
            loop_: module.call_method0("shared_loop")?.unbind(),
            set_running_loop: py.import("asyncio")?.getattr("_set_running_loop")?.unbind(),
            resume: module.getattr("resume")?.unbind(),
        })
    })
}

/// Steps `coro` once with the shared loop set as the running loop, so `asyncio.sleep` and
/// friends bind to it. Any exception but `StopIteration` is returned as it is.
fn step<'py>(py: Python<'py>, coro: &Bound<'py, PyAny>) -> PyResult<Step<'py>> {
    let aio = aio(py)?;
    let set_running = aio.set_running_loop.bind(py);
    set_running.call1((aio.loop_.bind(py),))?;
    let sent = coro.call_method1(pyo3::intern!(py, "send"), (py.None(),));
    set_running.call1((py.None(),))?;
    match sent {
        Ok(yielded) => {
            let (tx, rx) = oneshot::channel();
            let done = Py::new(
                py,
                Completion {
                    tx: Mutex::new(Some(tx)),
                },
            )?;
            aio.loop_.bind(py).call_method1(
                pyo3::intern!(py, "call_soon_threadsafe"),
                (aio.resume.bind(py), coro, yielded, done),
            )?;
            Ok(Step::Pending(rx))
        }
        Err(err) if err.is_instance_of::<PyStopIteration>(py) => {
            let value = err.value(py).getattr(pyo3::intern!(py, "value"))?;
            Ok(Step::Done(value))
        }
        Err(err) => Err(err),
    }
}

/// Receives the finished asyncio task of a suspended coroutine.
#[pyclass(module = "spikard._spikard")]
struct Completion {
    tx: Mutex<Option<oneshot::Sender<Py<PyAny>>>>,
}

#[pymethods]
impl Completion {
    fn __call__(&self, task: Py<PyAny>) {
        if let Some(tx) = self.tx.lock().ok().and_then(|mut tx| tx.take()) {
            let _ = tx.send(task);
        }
    }
}

/// One item of an event stream: the next event, the end, or a failure.
enum Next {
    Event(Event),
    End,
}

fn to_event(py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<Event> {
    if let Ok(custom) = item.cast::<crate::response::PyEvent>() {
        return Ok(custom.borrow().to_event(py));
    }
    let data = match item.cast_exact::<PyString>() {
        Ok(text) => text.to_str()?.to_owned(),
        Err(_) => String::from_utf8(py_to_json(item)?).unwrap_or_default(),
    };
    Ok(Event::data(data))
}

/// Pulls the next item of a generator (inline) or async generator (stepped like a
/// coroutine; a suspended step waits on the asyncio loop).
async fn next_event(handler: &PyHandler, source: &Py<PyAny>, is_async: bool) -> Result<Next, ()> {
    let step_result = Python::attach(|py| -> PyResult<NowOrLater<Next>> {
        let source = source.bind(py);
        if !is_async {
            return match source.call_method0(pyo3::intern!(py, "__next__")) {
                Ok(item) => Ok(Ok(Next::Event(to_event(py, &item)?))),
                Err(err) if err.is_instance_of::<PyStopIteration>(py) => Ok(Ok(Next::End)),
                Err(err) => Err(err),
            };
        }
        let awaitable = source.call_method0(pyo3::intern!(py, "__anext__"))?;
        match step(py, &awaitable) {
            Ok(Step::Done(item)) => Ok(Ok(Next::Event(to_event(py, &item)?))),
            Ok(Step::Pending(rx)) => Ok(Err(rx)),
            Err(err) if err.is_instance_of::<PyStopAsyncIteration>(py) => Ok(Ok(Next::End)),
            Err(err) => Err(err),
        }
    });
    let report = |err: PyErr| {
        Python::attach(|py| {
            internal(py, &handler.name, err);
        })
    };
    match step_result {
        Ok(Ok(next)) => Ok(next),
        Ok(Err(rx)) => {
            let task = rx.await.map_err(|_| ())?;
            Python::attach(|py| match task.bind(py).call_method0("result") {
                Ok(item) => to_event(py, &item).map(Next::Event).map_err(|e| {
                    internal(py, &handler.name, e);
                }),
                Err(err) if err.is_instance_of::<PyStopAsyncIteration>(py) => Ok(Next::End),
                Err(err) => {
                    internal(py, &handler.name, err);
                    Err(())
                }
            })
        }
        Err(err) => {
            report(err);
            Err(())
        }
    }
}

fn event_stream(handler: Arc<PyHandler>, source: Py<PyAny>) -> Response {
    let is_async = Python::attach(|py| source.bind(py).hasattr("__anext__").unwrap_or(false));
    let events = futures_util::stream::unfold(Some((handler, source)), move |state| async move {
        let (handler, source) = state?;
        match next_event(&handler, &source, is_async).await {
            Ok(Next::Event(event)) => Some((event, Some((handler, source)))),
            // The stream ends; a failure mid-stream is logged and closes it.
            Ok(Next::End) | Err(()) => None,
        }
    });
    sse::sse(events.boxed())
}

/// Calls a WebSocket message handler with one message; returns the reply, if any.
pub async fn call_message_handler(
    handler: &Arc<PyHandler>,
    message: spikard_core::Message,
) -> Option<spikard_core::Message> {
    use spikard_core::Message;
    let started = Python::attach(|py| -> PyResult<NowOrLater<Option<Py<PyAny>>>> {
        let arg = match &message {
            Message::Text(text) => PyString::new(py, text.as_str()).into_any(),
            Message::Binary(data) => PyBytes::new(py, data).into_any(),
            _ => return Ok(Ok(None)),
        };
        let called = handler.func.bind(py).call1((arg,))?;
        if !handler.is_async {
            return Ok(Ok(Some(called.unbind())));
        }
        match step(py, &called)? {
            Step::Done(value) => Ok(Ok(Some(value.unbind()))),
            Step::Pending(rx) => Ok(Err(rx)),
        }
    });
    let reply = match started {
        Ok(Ok(reply)) => reply,
        Ok(Err(rx)) => {
            let task = rx.await.ok()?;
            Python::attach(|py| match task.bind(py).call_method0("result") {
                Ok(value) => Some(value.unbind()),
                Err(err) => {
                    internal(py, &handler.name, err);
                    None
                }
            })
        }
        Err(err) => {
            Python::attach(|py| internal(py, &handler.name, err));
            None
        }
    }?;
    Python::attach(|py| {
        let reply = reply.bind(py);
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
    })
}

/// Registers the module's helper classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Completion>()?;
    Ok(())
}
