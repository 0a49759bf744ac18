//! The application object behind `spikard.Spikard`: routes registered from Python with their
//! compiled parameter plans, and serving them (blocking, or on a background thread for the
//! test client).

use crate::aio::EngineLoop;
use crate::blocking::{Pool, SlowLog};
use crate::handler::{BodyArg, Kind, Mode, PyHandler, SharedHandler};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use spikard_core::params::parse_scalar;
use spikard_core::{
    App, BodyKind, Method, Param, ParamType, Route, Scalar, ServerConfig, Source, Value, WebSocket,
};
use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

struct RouteSpec {
    method: Method,
    path: String,
    params: Vec<Param>,
    body: BodyKind,
    handler: Arc<PyHandler>,
    websocket: bool,
}

/// `spikard._spikard.App`: the engine side of a `Spikard` application.
#[pyclass(name = "App", module = "spikard._spikard")]
pub struct PyApp {
    routes: Mutex<Vec<RouteSpec>>,
    body: Mutex<spikard_core::BodyRules>,
    pool_size: usize,
    /// Started with the first `blocking=True` route.
    pool: OnceLock<&'static Pool>,
    slow_threshold: Duration,
}

fn scalar(spec: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    if let Ok(name) = spec.extract::<String>() {
        return Ok(match name.as_str() {
            "str" => Scalar::Str,
            "int" => Scalar::Int,
            "float" => Scalar::Float,
            "bool" => Scalar::Bool,
            "uuid" => Scalar::Uuid,
            "date" => Scalar::Date,
            "datetime" => Scalar::DateTime,
            other => return Err(PyValueError::new_err(format!("unknown type {other:?}"))),
        });
    }
    let (tag, choices): (String, Vec<String>) = spec.extract()?;
    if tag != "enum" {
        return Err(PyValueError::new_err(format!("unknown type {tag:?}")));
    }
    Ok(Scalar::Enum(choices.into()))
}

/// `"int"`, `("enum", [...])`, `("list", item, comma_separated)` or `"file"`.
fn param_type(spec: &Bound<'_, PyAny>) -> PyResult<ParamType> {
    if spec.extract::<String>().ok().as_deref() == Some("file") {
        return Ok(ParamType::File);
    }
    if let Ok(tuple) = spec.cast::<PyTuple>() {
        if tuple.len() == 3 && tuple.get_item(0)?.extract::<String>()? == "list" {
            return Ok(ParamType::List {
                item: scalar(&tuple.get_item(1)?)?,
                comma_separated: tuple.get_item(2)?.extract()?,
            });
        }
    }
    Ok(ParamType::One(scalar(spec)?))
}

/// A Python default as an engine value of type `ty`.
fn default_value(ty: &ParamType, default: &Bound<'_, PyAny>) -> PyResult<Value> {
    let one = |scalar: &Scalar, obj: &Bound<'_, PyAny>| -> PyResult<Value> {
        Ok(match scalar {
            Scalar::Int => Value::Int(obj.extract()?),
            Scalar::Float => Value::Float(obj.extract()?),
            Scalar::Bool => Value::Bool(obj.extract()?),
            Scalar::Str | Scalar::Enum(_) => Value::Str(obj.extract()?),
            other => {
                let text = obj.str()?.to_string();
                parse_scalar(other, Cow::Owned(text), None).map_err(PyValueError::new_err)?
            }
        })
    };
    match ty {
        ParamType::One(s) => one(s, default),
        ParamType::List { item, .. } => {
            let list = default
                .cast::<PyList>()
                .map_err(|_| PyValueError::new_err("a list default must be a list"))?;
            list.iter()
                .map(|v| one(item, &v))
                .collect::<PyResult<_>>()
                .map(Value::List)
        }
        ParamType::File => Err(PyValueError::new_err(
            "a file parameter cannot have a default",
        )),
    }
}

fn source(name: &str) -> PyResult<Source> {
    Ok(match name {
        "path" => Source::Path,
        "query" => Source::Query,
        "header" => Source::Header,
        "form" => Source::Form,
        other => return Err(PyValueError::new_err(format!("unknown source {other:?}"))),
    })
}

/// `seconds` as a duration, or a `ValueError` naming `what` unless it is positive.
pub(crate) fn positive_seconds(what: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!("{what} must be a positive number of seconds"))
        })
}

#[pymethods]
impl PyApp {
    /// `thread_pool_size` bounds the threads of `blocking=True` handlers; a `def` handler
    /// that holds the engine thread for `slow_threshold` seconds or more is logged.
    #[new]
    #[pyo3(signature = (body_limit = spikard_core::DEFAULT_BODY_LIMIT, thread_pool_size = 40, slow_threshold = 0.1, body_timeout = spikard_core::DEFAULT_BODY_TIMEOUT.as_secs_f64()))]
    fn new(
        body_limit: usize,
        thread_pool_size: usize,
        slow_threshold: f64,
        body_timeout: f64,
    ) -> PyResult<Self> {
        let slow_threshold = Duration::try_from_secs_f64(slow_threshold)
            .map_err(|_| PyValueError::new_err("slow_threshold must be a number of seconds"))?;
        Ok(PyApp {
            routes: Mutex::new(Vec::new()),
            body: Mutex::new(spikard_core::BodyRules {
                limit: body_limit,
                timeout: positive_seconds("body_timeout", body_timeout)?,
            }),
            pool_size: thread_pool_size,
            pool: OnceLock::new(),
            slow_threshold,
        })
    }

    /// Sets how long a request body may take to arrive once its head is in.
    fn set_body_timeout(&self, seconds: f64) -> PyResult<()> {
        let timeout = positive_seconds("body_timeout", seconds)?;
        self.body
            .lock()
            .map_err(|_| PyValueError::new_err("body rules poisoned"))?
            .timeout = timeout;
        Ok(())
    }

    /// Registers a route. `params` are `(name, source, type, required, default, key, bounds)` in the
    /// order of the function's arguments (the body excluded); `body` is `None` or
    /// `(position, "json" | "bytes" | decoder)`; `blocking` runs a `def` handler on the
    /// thread pool.
    #[pyo3(signature = (method, path, func, params, body, is_async, blocking, event_stream, name))]
    #[allow(clippy::too_many_arguments)]
    fn add_route(
        &self,
        method: &str,
        path: String,
        func: Py<PyAny>,
        params: &Bound<'_, PyList>,
        body: Option<&Bound<'_, PyTuple>>,
        is_async: bool,
        blocking: bool,
        event_stream: bool,
        name: String,
    ) -> PyResult<()> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err("bad method"))?;
        let mut plan = Vec::with_capacity(params.len());
        let mut has_form = false;
        for spec in params.iter() {
            #[allow(clippy::type_complexity)]
            let (pname, src, ty, required, default, key, bounds): (
                String,
                String,
                Bound<'_, PyAny>,
                bool,
                Bound<'_, PyAny>,
                String,
                Option<(i64, i64)>,
            ) = spec.extract()?;
            let ty = param_type(&ty)?;
            let src = source(&src)?;
            has_form |= src == Source::Form;
            let mut param = Param::new(pname, src, ty.clone()).key(key);
            if let Some((min, max)) = bounds {
                param = param.range(min, max);
            }
            if !required {
                param = if default.is_none() {
                    param.optional()
                } else {
                    param.default(default_value(&ty, &default)?)
                };
            }
            plan.push(param);
        }
        let (body_kind, body_arg) = match body {
            None => (
                if has_form {
                    BodyKind::Form
                } else {
                    BodyKind::None
                },
                None,
            ),
            Some(spec) => {
                let position: usize = spec.get_item(0)?.extract()?;
                let how = spec.get_item(1)?;
                let (kind, arg) = match how.extract::<String>().ok().as_deref() {
                    Some("json") => (BodyKind::Json, BodyArg::Json),
                    Some("bytes") => (BodyKind::Bytes, BodyArg::Bytes),
                    _ => (
                        BodyKind::Json,
                        BodyArg::Typed {
                            decoder: how.unbind(),
                            nests_freely: spec.get_item(2)?.extract()?,
                        },
                    ),
                };
                (kind, Some((position, arg)))
            }
        };
        let handler = PyHandler {
            task_name: PyString::intern(params.py(), &name).unbind(),
            name,
            func,
            mode: self.mode(is_async, blocking),
            kind: if event_stream {
                Kind::EventStream
            } else {
                Kind::Answer
            },
            body: body_arg,
            slow: SlowLog::new(self.slow_threshold),
            answer_size: Default::default(),
        };
        self.push(RouteSpec {
            method,
            path,
            params: plan,
            body: body_kind,
            handler: Arc::new(handler),
            websocket: false,
        })
    }

    /// Registers a WebSocket route whose handler is called once per message.
    fn add_websocket(
        &self,
        py: Python<'_>,
        path: String,
        func: Py<PyAny>,
        is_async: bool,
        blocking: bool,
        name: String,
    ) -> PyResult<()> {
        let handler = PyHandler {
            task_name: PyString::intern(py, &name).unbind(),
            name,
            func,
            mode: self.mode(is_async, blocking),
            kind: Kind::Answer,
            body: None,
            slow: SlowLog::new(self.slow_threshold),
            answer_size: Default::default(),
        };
        self.push(RouteSpec {
            method: Method::GET,
            path,
            params: Vec::new(),
            body: BodyKind::None,
            handler: Arc::new(handler),
            websocket: true,
        })
    }

    /// `[(method, path), ...]` of every route.
    fn endpoints(&self) -> Vec<(String, String)> {
        self.routes
            .lock()
            .map(|routes| {
                routes
                    .iter()
                    .map(|r| (r.method.to_string(), r.path.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Serves until SIGINT/SIGTERM on a current-thread runtime in the calling thread, with
    /// the thread's own asyncio loop: `startup` hooks run on it before the first connection
    /// is accepted, `shutdown` hooks after the last request finished.
    #[pyo3(signature = (host, port, reuse_port = false, startup = None, shutdown = None))]
    fn serve(
        &self,
        py: Python<'_>,
        host: String,
        port: u16,
        reuse_port: bool,
        startup: Option<Py<PyAny>>,
        shutdown: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let router = self.router()?;
        let config = ServerConfig {
            host,
            port,
            threads: 1,
            reuse_port,
            ..ServerConfig::default()
        };
        let hooks = Hooks::new(py, startup, shutdown);
        py.detach(|| {
            serve_thread(
                router,
                &config,
                hooks,
                spikard_core::server::shutdown_signal(),
                |addr| {
                    if let Ok(addr) = addr {
                        eprintln!("spikard: listening on http://{addr}");
                    }
                },
            )
        })
    }

    /// Serves on a background thread; returns a handle with the bound port.
    #[pyo3(signature = (host = "127.0.0.1".to_owned(), port = 0, startup = None, shutdown = None))]
    fn start(
        &self,
        py: Python<'_>,
        host: String,
        port: u16,
        startup: Option<Py<PyAny>>,
        shutdown: Option<Py<PyAny>>,
    ) -> PyResult<ServerHandle> {
        let router = self.router()?;
        let config = ServerConfig {
            host,
            port,
            threads: 1,
            shutdown_timeout: Duration::from_secs(5),
            ..ServerConfig::default()
        };
        let hooks = Hooks::new(py, startup, shutdown);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let stop = async {
                let _ = stop_rx.await;
            };
            // Attached for the thread's whole life, so its Python thread state (the running
            // loop, the current context) outlives each request's attach.
            let served = Python::attach(|py| {
                py.detach(|| {
                    serve_thread(router, &config, hooks, stop, |addr| {
                        let _ = ready_tx.send(addr.map(|a| a.port()).map_err(|e| e.to_string()));
                    })
                })
            });
            if let Err(err) = served {
                Python::attach(|py| {
                    eprintln!("spikard: background server failed:");
                    err.print(py);
                });
            }
        });
        let port = py
            .detach(move || ready_rx.recv())
            .map_err(|_| PyOSError::new_err("the server thread failed to start"))?
            .map_err(PyOSError::new_err)?;
        Ok(ServerHandle {
            port,
            stop: Mutex::new(Some((stop_tx, thread))),
        })
    }
}

/// The application's start-up and shut-down hooks (lists of callables).
struct Hooks {
    startup: Py<PyAny>,
    shutdown: Py<PyAny>,
}

impl Hooks {
    fn new(py: Python<'_>, startup: Option<Py<PyAny>>, shutdown: Option<Py<PyAny>>) -> Hooks {
        let empty = || PyList::empty(py).into_any().unbind();
        Hooks {
            startup: startup.unwrap_or_else(empty),
            shutdown: shutdown.unwrap_or_else(empty),
        }
    }
}

/// Serves on the calling thread: a current-thread runtime and, on the same thread, the
/// asyncio loop that the `async def` handlers run on. `ready` gets the bound address (or
/// why nothing was bound) once the start-up hooks have run.
fn serve_thread(
    router: spikard_core::Router,
    config: &ServerConfig,
    hooks: Hooks,
    stop: impl Future<Output = ()>,
    ready: impl FnOnce(std::io::Result<std::net::SocketAddr>),
) -> PyResult<()> {
    let os_error = |e: std::io::Error| PyOSError::new_err(e.to_string());
    let runtime = config.runtime().map_err(os_error)?;
    runtime.block_on(async {
        let lp = Python::attach(|py| -> PyResult<_> {
            let lp = EngineLoop::new(py)?;
            lp.run_hooks(py, hooks.startup.bind(py)).map_err(|err| {
                let failure = PyRuntimeError::new_err("a start-up hook raised");
                failure.set_cause(py, Some(err));
                failure
            })?;
            Ok(lp)
        });
        let lp = match lp {
            Ok(lp) => lp,
            Err(err) => {
                ready(Err(std::io::Error::other("a start-up hook raised")));
                return Err(err);
            }
        };
        let listener = match spikard_core::server::bind(config) {
            Ok(listener) => listener,
            Err(err) => {
                ready(Err(std::io::Error::new(err.kind(), err.to_string())));
                return Err(os_error(err));
            }
        };
        let driver = Python::attach(|py| lp.install(py))?;
        ready(listener.local_addr());
        let served = spikard_core::server::serve(listener, router, config, stop).await;
        lp.stop();
        let _ = driver.await;
        Python::attach(|py| lp.close(py, hooks.shutdown.bind(py)))?;
        served.map_err(os_error)
    })
}

impl PyApp {
    fn mode(&self, is_async: bool, blocking: bool) -> Mode {
        match (is_async, blocking) {
            (true, _) => Mode::Async,
            (false, false) => Mode::Inline,
            (false, true) => Mode::Blocking(self.pool.get_or_init(|| Pool::leak(self.pool_size))),
        }
    }

    fn push(&self, spec: RouteSpec) -> PyResult<()> {
        let mut routes = self
            .routes
            .lock()
            .map_err(|_| PyValueError::new_err("route table poisoned"))?;
        routes.push(spec);
        Ok(())
    }

    /// Builds the engine router; a route the engine cannot serve raises `ValueError` naming it.
    fn router(&self) -> PyResult<spikard_core::Router> {
        let routes = self
            .routes
            .lock()
            .map_err(|_| PyValueError::new_err("route table poisoned"))?;
        let body = *self
            .body
            .lock()
            .map_err(|_| PyValueError::new_err("body rules poisoned"))?;
        let mut app = App::new().body_rules(body);
        for spec in routes.iter() {
            let route = if spec.websocket {
                let handler = Arc::clone(&spec.handler);
                Route::websocket(spec.path.clone(), move |socket: WebSocket| {
                    crate::ws::message_loop(Arc::clone(&handler), socket)
                })
            } else {
                Route::new(
                    spec.method.clone(),
                    spec.path.clone(),
                    SharedHandler(Arc::clone(&spec.handler)),
                )
                .params(spec.params.iter().cloned())
                .body(spec.body)
            };
            app.add_route(route);
        }
        app.into_router()
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// A server running on a background thread.
#[pyclass(module = "spikard._spikard")]
pub struct ServerHandle {
    #[pyo3(get)]
    port: u16,
    stop: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            std::thread::JoinHandle<()>,
        )>,
    >,
}

#[pymethods]
impl ServerHandle {
    /// Stops accepting, finishes open requests, and joins the thread.
    fn stop(&self, py: Python<'_>) {
        let taken = self.stop.lock().ok().and_then(|mut s| s.take());
        if let Some((tx, thread)) = taken {
            let _ = tx.send(());
            py.detach(|| {
                let _ = thread.join();
            });
        }
    }
}
