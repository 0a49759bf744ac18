//! The application object behind `spikard.Spikard`: routes registered from Python with their
//! compiled parameter plans, and serving them (blocking, or on a background thread for the
//! test client).

use crate::handler::{call_message_handler, BodyArg, Kind, PyHandler, SharedHandler};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use spikard_core::params::parse_scalar;
use spikard_core::{
    App, BodyKind, Method, Param, ParamType, Route, Scalar, ServerConfig, Source, Value, WebSocket,
};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
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
    body_limit: usize,
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

#[pymethods]
impl PyApp {
    #[new]
    #[pyo3(signature = (body_limit = spikard_core::DEFAULT_BODY_LIMIT))]
    fn new(body_limit: usize) -> Self {
        PyApp {
            routes: Mutex::new(Vec::new()),
            body_limit,
        }
    }

    /// Registers a route. `params` are `(name, source, type, required, default, key, bounds)` in the
    /// order of the function's arguments (the body excluded); `body` is `None` or
    /// `(position, "json" | "bytes" | decoder)`.
    #[pyo3(signature = (method, path, func, params, body, is_async, event_stream, name))]
    #[allow(clippy::too_many_arguments)]
    fn add_route(
        &self,
        method: &str,
        path: String,
        func: Py<PyAny>,
        params: &Bound<'_, PyList>,
        body: Option<&Bound<'_, PyTuple>>,
        is_async: bool,
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
                    _ => (BodyKind::Json, BodyArg::Typed(how.unbind())),
                };
                (kind, Some((position, arg)))
            }
        };
        let handler = PyHandler {
            name,
            func,
            is_async,
            kind: if event_stream {
                Kind::EventStream
            } else {
                Kind::Answer
            },
            body: body_arg,
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
        path: String,
        func: Py<PyAny>,
        is_async: bool,
        name: String,
    ) -> PyResult<()> {
        let handler = PyHandler {
            name,
            func,
            is_async,
            kind: Kind::Answer,
            body: None,
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

    /// Serves until SIGINT/SIGTERM on a current-thread runtime in the calling thread.
    #[pyo3(signature = (host, port, reuse_port = false))]
    fn serve(&self, py: Python<'_>, host: String, port: u16, reuse_port: bool) -> PyResult<()> {
        let router = self.router()?;
        let config = ServerConfig {
            host,
            port,
            threads: 1,
            reuse_port,
            ..ServerConfig::default()
        };
        py.detach(|| spikard_core::server::run(router, &config))
            .map_err(|e| PyOSError::new_err(e.to_string()))
    }

    /// Serves on a background thread; returns a handle with the bound port.
    #[pyo3(signature = (host = "127.0.0.1".to_owned(), port = 0))]
    fn start(&self, py: Python<'_>, host: String, port: u16) -> PyResult<ServerHandle> {
        let router = self.router()?;
        let config = ServerConfig {
            host,
            port,
            threads: 1,
            shutdown_timeout: Duration::from_secs(5),
            ..ServerConfig::default()
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let served = config.runtime().and_then(|runtime| {
                runtime.block_on(async {
                    let listener = spikard_core::server::bind(&config)?;
                    let _ = ready_tx.send(listener.local_addr().map(|a| a.port()));
                    spikard_core::server::serve(listener, router, &config, async {
                        let _ = stop_rx.await;
                    })
                    .await
                })
            });
            if let Err(err) = served {
                eprintln!("spikard: background server failed: {err}");
            }
        });
        let port = py
            .detach(move || ready_rx.recv())
            .map_err(|_| PyOSError::new_err("the server thread failed to start"))?
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(ServerHandle {
            port,
            stop: Mutex::new(Some((stop_tx, thread))),
        })
    }
}

impl PyApp {
    fn push(&self, spec: RouteSpec) -> PyResult<()> {
        let mut routes = self
            .routes
            .lock()
            .map_err(|_| PyValueError::new_err("route table poisoned"))?;
        routes.push(spec);
        Ok(())
    }

    /// Builds the engine router; a route the engine cannot serve raises `ValueError` naming it.
    fn router(&self) -> PyResult<axum::Router> {
        let routes = self
            .routes
            .lock()
            .map_err(|_| PyValueError::new_err("route table poisoned"))?;
        let mut app = App::new().body_limit(self.body_limit);
        for spec in routes.iter() {
            let route = if spec.websocket {
                let handler = Arc::clone(&spec.handler);
                Route::websocket(spec.path.clone(), move |socket: WebSocket| {
                    let handler = Arc::clone(&handler);
                    message_loop(handler, socket)
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

async fn message_loop(handler: Arc<PyHandler>, mut socket: WebSocket) {
    use spikard_core::Message;
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, Message::Close(_)) {
            break;
        }
        if let Some(reply) = call_message_handler(&handler, message).await {
            if socket.send(reply).await.is_err() {
                break;
            }
        }
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
