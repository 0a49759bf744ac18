//! Python functions as engine handlers: the request path.
//!
//! Per request the engine has already parsed and validated every parameter; here the values
//! become Python arguments and the function is called where its kind says:
//!
//! - a `def` handler inline on the engine thread, in a fresh copy of the thread's
//!   `contextvars` context (the fastest path; one that holds the thread too long is logged);
//! - a `def` handler declared `blocking=True` on the application's thread pool, so a handler
//!   that waits on a blocking driver does not stop the worker's other requests;
//! - an `async def` handler as an asyncio Task on the thread's own loop (see [`crate::aio`]),
//!   its first step run at once;
//! - a generator as an event stream (see [`crate::stream`]).

use crate::aio::{self, task_result, Started};
use crate::answer::{answer, internal, AnswerSize};
use crate::blocking::{Pool, SlowLog};
use crate::context;
use crate::convert::{json_to_py, value_to_py};
use futures_util::future::BoxFuture;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use spikard_core::{
    json, BodyData, Error, FieldError, IntoResponse, LocPart, Malformed, Request, Response,
};
use std::sync::Arc;
use tokio::sync::oneshot;

/// How the body argument is produced.
pub enum BodyArg {
    /// JSON into dicts, lists, str, int, float, bool, None.
    Json,
    /// JSON through a typed decoder (`msgspec.json.Decoder(type)`), for dataclasses,
    /// TypedDicts and Structs. `nests_freely`: the type holds `Any`, a bare container or
    /// itself, so a decoded body may nest without bound and its depth is checked.
    Typed {
        decoder: Py<PyAny>,
        nests_freely: bool,
    },
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

/// Where the function runs.
#[derive(Clone, Copy)]
pub enum Mode {
    /// `def`, on the engine thread.
    Inline,
    /// `def` declared blocking, on the thread pool.
    Blocking(&'static Pool),
    /// `async def`, as a task on the engine thread's asyncio loop.
    Async,
}

/// A registered Python handler.
pub struct PyHandler {
    pub name: String,
    /// `name` as a Python string: the name of the asyncio Task an `async def` call runs in
    /// (asyncio's default, `Task-N`, is formatted by `printf` for every task).
    pub task_name: Py<PyString>,
    pub func: Py<PyAny>,
    pub mode: Mode,
    pub kind: Kind,
    /// Position of the body among the function's arguments.
    pub body: Option<(usize, BodyArg)>,
    pub slow: SlowLog,
    /// How long its JSON answers are.
    pub answer_size: AnswerSize,
}

/// A cloneable handle to a [`PyHandler`], registered with the engine.
#[derive(Clone)]
pub struct SharedHandler(pub Arc<PyHandler>);

impl spikard_core::Handler for SharedHandler {
    fn call(&self, mut req: Request) -> BoxFuture<'static, Response> {
        let handler = Arc::clone(&self.0);
        if handler.kind == Kind::EventStream {
            return Box::pin(crate::stream::respond(handler, req));
        }
        match handler.mode {
            Mode::Inline => {
                let response = Python::attach(|py| handler.call_inline(py, &mut req));
                Box::pin(std::future::ready(response))
            }
            Mode::Blocking(pool) => Box::pin(handler.call_blocking(pool, req)),
            Mode::Async => Box::pin(handler.call_async(req)),
        }
    }
}

impl PyHandler {
    /// What the function returned (or raised) as the route's response.
    fn answer(&self, py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> Response {
        answer(py, &self.name, &self.answer_size, result)
    }

    fn call_inline(&self, py: Python<'_>, req: &mut Request) -> Response {
        let args = match self.args(py, req) {
            Ok(args) => args,
            Err(err) => return err.into_response(),
        };
        let called = context::copy(py).and_then(|ctx| {
            context::run_in(py, &ctx, || {
                self.slow
                    .time(&self.name, || call(self.func.bind(py), &args))
            })
        });
        self.answer(py, called.and_then(|r| r))
    }

    async fn call_blocking(self: Arc<Self>, pool: &'static Pool, mut req: Request) -> Response {
        let prepared = Python::attach(|py| -> Result<(Py<PyTuple>, Py<PyAny>), Error> {
            let args = self.args(py, &mut req)?;
            let args = PyTuple::new(py, args).map_err(|e| internal(py, &self.name, e))?;
            let ctx = context::copy(py).map_err(|e| internal(py, &self.name, e))?;
            Ok((args.unbind(), ctx.unbind()))
        });
        let (args, ctx) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => return err.into_response(),
        };
        let handler = Arc::clone(&self);
        let done = pool.run(move || {
            // `move`: the arguments and context are dropped with the GIL, not queued by pyo3.
            Python::attach(move |py| {
                let called = context::run_in(py, ctx.bind(py), || {
                    handler.func.bind(py).call1(args.bind(py))
                });
                handler.answer(py, called.and_then(|r| r))
            })
        });
        done.await.unwrap_or_else(|_| {
            Error::Internal("the thread pool dropped a handler call".into()).into_response()
        })
    }

    async fn call_async(self: Arc<Self>, mut req: Request) -> Response {
        let Some(lp) = aio::current() else {
            return Error::Internal("no asyncio loop on this thread".into()).into_response();
        };
        let started = Python::attach(|py| {
            let args = match self.args(py, &mut req) {
                Ok(args) => args,
                Err(err) => return Ok(err.into_response()),
            };
            let name = self.task_name.bind(py);
            // A task that suspends is answered from its done callback, with the GIL the loop
            // already holds there.
            let make = || {
                let (tx, rx) = oneshot::channel();
                let handler = Arc::clone(&self);
                let on_done: aio::OnDone = Box::new(move |py, task| {
                    let _ = tx.send(handler.answer(py, task_result(task)));
                });
                (on_done, rx)
            };
            let spawned = call(self.func.bind(py), &args)
                .and_then(|coro| lp.spawn_with(py, &coro, None, Some(name), make));
            match spawned {
                Ok(Started::Done(task)) => Ok(self.answer(py, task_result(&task))),
                Ok(Started::Pending(_, rx)) => Err(rx),
                Err(err) => Ok(internal(py, &self.name, err).into_response()),
            }
        });
        match started {
            Ok(response) => response,
            Err(rx) => rx.await.unwrap_or_else(|_| {
                Error::Internal("the asyncio loop dropped a task".into()).into_response()
            }),
        }
    }

    /// The function's arguments: parameters in plan order, the body at its position.
    pub fn args<'py>(
        &self,
        py: Python<'py>,
        req: &mut Request,
    ) -> Result<Vec<Bound<'py, PyAny>>, Error> {
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
                BodyArg::Json => {
                    let body = json_to_py(py, &bytes).map_err(|err| json_error(&bytes, &err))?;
                    json::check_integers(&bytes)?;
                    body
                }
                BodyArg::Typed {
                    decoder,
                    nests_freely,
                } => {
                    let body = decode_typed(py, decoder.bind(py), &bytes)?;
                    json::check_integers(&bytes)?;
                    if *nests_freely && json::too_deep(&bytes) {
                        return Err(json::too_deep_error());
                    }
                    body
                }
                BodyArg::Bytes => PyBytes::new(py, &bytes).into_any(),
            };
            args.insert((*position).min(args.len()), body);
        }
        Ok(args)
    }
}

/// Calls `func` with `args` through the vectorcall protocol: the arguments are handed over as
/// an array on the stack, no tuple is built and torn down per call.
pub fn call<'py>(
    func: &Bound<'py, PyAny>,
    args: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    call_raw(func, args.iter().map(|a| a.as_ptr()))
}

/// [`call`] with the arguments as raw object pointers, which the caller keeps alive for the
/// duration of the call.
pub fn call_raw<'py>(
    func: &Bound<'py, PyAny>,
    args: impl ExactSizeIterator<Item = *mut pyo3::ffi::PyObject>,
) -> PyResult<Bound<'py, PyAny>> {
    call_raw_kw(func, args, None)
}

/// [`call_raw`] whose last arguments are keyword arguments, named by `kwnames` (a tuple of
/// str), as vectorcall takes them: no keyword dict is built.
pub fn call_raw_kw<'py>(
    func: &Bound<'py, PyAny>,
    args: impl ExactSizeIterator<Item = *mut pyo3::ffi::PyObject>,
    kwnames: Option<&Bound<'py, PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    const ON_STACK: usize = 24;
    let n = args.len();
    let keywords = kwnames.map_or(0, |k| k.len());
    debug_assert!(keywords <= n);
    let mut stack = [std::ptr::null_mut(); ON_STACK + 1];
    let mut heap = Vec::new();
    let slots: &mut [*mut pyo3::ffi::PyObject] = if n <= ON_STACK {
        &mut stack[..=n]
    } else {
        heap.resize(n + 1, std::ptr::null_mut());
        &mut heap
    };
    for (slot, arg) in slots[1..].iter_mut().zip(args) {
        *slot = arg;
    }
    // SAFETY: `slots[1..]` holds `n` borrowed, live objects (the caller keeps them alive for
    // the call), the last `keywords` of them the values `kwnames` names; slot 0 is scratch
    // space the callee may use, as PY_VECTORCALL_ARGUMENTS_OFFSET allows. The result is a
    // new reference or NULL with an exception set; the GIL is held (`func.py()`).
    unsafe {
        let result = pyo3::ffi::PyObject_Vectorcall(
            func.as_ptr(),
            slots.as_ptr().add(1),
            (n - keywords) | pyo3::ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            kwnames.map_or(std::ptr::null_mut(), |k| k.as_ptr()),
        );
        Bound::from_owned_ptr_or_err(func.py(), result)
    }
}

/// Why our own decoder refused a body.
#[cold]
fn json_error(bytes: &[u8], err: &serde_json::Error) -> Error {
    json::not_json(bytes)
        .or_else(|| json::number_out_of_range(err))
        .unwrap_or_else(|| {
            Error::BadRequest(
                Malformed::Json,
                format!("the body is not valid JSON: {err}"),
            )
        })
}

/// msgspec decodes into the declared type; its validation errors become 422s naming the
/// field (`Expected `int`, got `str` - at `$.count``).
fn decode_typed<'py>(
    py: Python<'py>,
    decoder: &Bound<'py, PyAny>,
    bytes: &[u8],
) -> Result<Bound<'py, PyAny>, Error> {
    decoder
        .call_method1(pyo3::intern!(py, "decode"), (PyBytes::new(py, bytes),))
        .map_err(|err| {
            let msg = err.value(py).to_string();
            let is_validation = err
                .get_type(py)
                .name()
                .map(|n| n.to_str().map(|n| n == "ValidationError").unwrap_or(false))
                .unwrap_or(false);
            // Too deep, whatever the type says; a shape error in a document that is not
            // JSON at all is a 400, not a 422.
            if let Some(refusal) = json::not_json(bytes) {
                return refusal;
            }
            if !is_validation {
                return Error::BadRequest(
                    Malformed::Json,
                    format!("the body is not valid JSON: {msg}"),
                );
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
