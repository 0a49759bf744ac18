//! Routes and the application: declaring routes with their parameter plans, checking them
//! at registration, and turning them into a [`Router`]: one `matchit` path table, looked up
//! once per request, whose routes read the body, execute the plan and call the handler.

use crate::body::{self, BodyKind, BodyRules};
use crate::error::{Error, Malformed, Source};
use crate::params::{Inputs, Param, ParamPlan, ParamType};
use crate::request::Request;
use crate::websocket::WsHandler;
use axum::extract::{FromRequestParts, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::Method;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// The default body limit: 2 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A handler of HTTP requests. Closures `Fn(Request) -> impl Future<Output = impl IntoResponse>`
/// implement it; a foreign-language binding implements it directly.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, request: Request) -> BoxFuture<'static, Response>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse + 'static,
{
    fn call(&self, request: Request) -> BoxFuture<'static, Response> {
        Box::pin(self(request).map(IntoResponse::into_response))
    }
}

enum Target {
    Http(Arc<dyn Handler>),
    WebSocket(Arc<dyn WsHandler>),
}

/// One route: a method, a path pattern (`/items/{id}`), a parameter plan, a body kind and a
/// handler.
pub struct Route {
    method: Method,
    path: String,
    params: Vec<Param>,
    body: BodyKind,
    target: Target,
}

impl Route {
    pub fn new(method: Method, path: impl Into<String>, handler: impl Handler) -> Self {
        Route {
            method,
            path: path.into(),
            params: Vec::new(),
            body: BodyKind::None,
            target: Target::Http(Arc::new(handler)),
        }
    }
    pub fn get(path: impl Into<String>, handler: impl Handler) -> Self {
        Self::new(Method::GET, path, handler)
    }
    pub fn post(path: impl Into<String>, handler: impl Handler) -> Self {
        Self::new(Method::POST, path, handler)
    }
    pub fn put(path: impl Into<String>, handler: impl Handler) -> Self {
        Self::new(Method::PUT, path, handler)
    }
    pub fn patch(path: impl Into<String>, handler: impl Handler) -> Self {
        Self::new(Method::PATCH, path, handler)
    }
    pub fn delete(path: impl Into<String>, handler: impl Handler) -> Self {
        Self::new(Method::DELETE, path, handler)
    }

    /// A `GET` route upgraded to WebSocket; `handler` owns each upgraded socket.
    pub fn websocket(path: impl Into<String>, handler: impl WsHandler) -> Self {
        Route {
            method: Method::GET,
            path: path.into(),
            params: Vec::new(),
            body: BodyKind::None,
            target: Target::WebSocket(Arc::new(handler)),
        }
    }

    /// Declares a parameter.
    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// Declares several parameters.
    pub fn params(mut self, params: impl IntoIterator<Item = Param>) -> Self {
        self.params.extend(params);
        self
    }

    /// Declares the body the route takes.
    pub fn body(mut self, kind: BodyKind) -> Self {
        self.body = kind;
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A route that cannot be served, found at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub method: Method,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route {} {}: {}", self.method, self.path, self.reason)
    }
}

impl std::error::Error for RouteError {}

/// The names of the `{captures}` of a path pattern (`{*rest}` gives `rest`).
pub fn path_captures(pattern: &str) -> Vec<&str> {
    pattern
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*'))
        .collect()
}

/// The default body timeout: 30 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// An application: routes plus engine settings.
pub struct App {
    routes: Vec<Route>,
    body: BodyRules,
}

impl Default for App {
    fn default() -> Self {
        App {
            routes: Vec::new(),
            body: BodyRules {
                limit: DEFAULT_BODY_LIMIT,
                timeout: DEFAULT_BODY_TIMEOUT,
            },
        }
    }
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    pub fn add_route(&mut self, route: Route) {
        self.routes.push(route);
    }

    /// Sets the largest body accepted, in bytes (default 2 MiB); larger bodies get a 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body.limit = bytes;
        self
    }

    /// Sets both body rules at once.
    pub fn body_rules(mut self, rules: BodyRules) -> Self {
        self.body = rules;
        self
    }

    /// Sets how long a body may take to arrive once the request head is in (default 30 s);
    /// a slower one gets a 408 and the connection is closed.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body.timeout = timeout;
        self
    }

    /// The `(method, path pattern)` of every route.
    pub fn endpoints(&self) -> Vec<(Method, String)> {
        self.routes
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect()
    }

    /// Checks every route and builds the router. Fails on the first route that cannot be
    /// served as declared.
    pub fn into_router(self) -> Result<Router, RouteError> {
        let body_rules = self.body;
        let mut by_path: BTreeMap<String, Vec<(Method, Served)>> = BTreeMap::new();
        for route in self.routes {
            let method = route.method.clone();
            let path = route.path.clone();
            let fail = |reason: String| RouteError {
                method: method.clone(),
                path: path.clone(),
                reason,
            };
            let entry = by_path.entry(path.clone()).or_default();
            if entry.iter().any(|(m, _)| *m == method) {
                return Err(fail("declared twice".into()));
            }
            let served = match route.target {
                Target::Http(handler) => Served::Http(
                    compile(&path, route.params, route.body, handler, body_rules).map_err(fail)?,
                ),
                Target::WebSocket(handler) => {
                    if !route.params.is_empty() {
                        return Err(fail("WebSocket routes take no parameters".into()));
                    }
                    Served::WebSocket(handler)
                }
            };
            entry.push((method, served));
        }

        let mut paths = matchit::Router::new();
        for (path, methods) in by_path {
            let mut allow: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
            if allow.contains(&"GET") && !allow.contains(&"HEAD") {
                allow.push("HEAD");
            }
            let allow = allow.join(", ");
            let endpoint = Endpoint { methods, allow };
            paths
                .insert(path.clone(), endpoint)
                .map_err(|err| RouteError {
                    method: Method::GET,
                    path,
                    reason: format!("the path cannot be routed: {err}"),
                })?;
        }
        Ok(Router(Arc::new(paths)))
    }
}

/// An application ready to serve ([`App::into_router`]): the path table, and per path the
/// routes by method. Cheap to clone.
///
/// A request's path is matched as sent (percent-encoded), and its captures are decoded by the
/// route's plan. A path no route has is a 404; a method the path does not take is a 405 with
/// `Allow`; a `GET` route also answers `HEAD` (hyper sends the head without the body).
#[derive(Clone)]
pub struct Router(Arc<matchit::Router<Endpoint>>);

struct Endpoint {
    methods: Vec<(Method, Served)>,
    allow: String,
}

enum Served {
    Http(Compiled),
    WebSocket(Arc<dyn WsHandler>),
}

impl Endpoint {
    fn find(&self, method: &Method) -> Option<&Served> {
        let found = |m: &Method| self.methods.iter().find(|(have, _)| have == m);
        found(method)
            .or_else(|| {
                (*method == Method::HEAD)
                    .then(|| found(&Method::GET))
                    .flatten()
            })
            .map(|(_, served)| served)
    }
}

impl Router {
    /// Answers one request.
    pub fn respond<B>(&self, req: http::Request<B>) -> BoxFuture<'static, Response>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let router = self.clone();
        Box::pin(async move { router.dispatch(req).await })
    }

    async fn dispatch<B>(&self, req: http::Request<B>) -> Response
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        // The path's captures borrow the URI, which is put back before the request moves on.
        let uri = std::mem::take(&mut parts.uri);
        let Ok(matched) = self.0.at(uri.path()) else {
            return Error::NotFound.into_response();
        };
        let endpoint = matched.value;
        let served = match endpoint.find(&parts.method) {
            Some(served) => served,
            None => {
                let allow = endpoint.allow.clone();
                return Error::MethodNotAllowed { allow }.into_response();
            }
        };
        let compiled = match served {
            Served::Http(compiled) => compiled,
            Served::WebSocket(handler) => {
                parts.uri = uri;
                return upgrade(parts, Arc::clone(handler)).await;
            }
        };
        let mut captures = [("", ""); MAX_INLINE_CAPTURES];
        let mut spilled = Vec::new();
        let path: &[(&str, &str)] = if matched.params.len() <= MAX_INLINE_CAPTURES {
            for (slot, capture) in captures.iter_mut().zip(matched.params.iter()) {
                *slot = capture;
            }
            &captures[..matched.params.len()]
        } else {
            spilled.extend(matched.params.iter());
            &spilled
        };
        let prepared = compiled.prepare(&parts.headers, &uri, path, body).await;
        parts.uri = uri;
        match prepared {
            Ok((values, body)) => {
                let request = Request::new(parts, Arc::clone(&compiled.plan), values, body);
                let call = AssertUnwindSafe(compiled.handler.call(request)).catch_unwind();
                match call.await {
                    Ok(response) => response,
                    Err(panic) => Error::Internal(panic_message(&*panic)).into_response(),
                }
            }
            Err(err) => err.into_response(),
        }
    }
}

/// Captures of a path held on the stack; a path with more spills to the heap.
const MAX_INLINE_CAPTURES: usize = 8;

async fn upgrade(mut parts: http::request::Parts, handler: Arc<dyn WsHandler>) -> Response {
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade
            .on_upgrade(move |socket| handler.call(socket))
            .into_response(),
        Err(rejection) => Error::BadRequest(
            Malformed::Upgrade,
            format!("this route takes a WebSocket upgrade: {rejection}"),
        )
        .into_response(),
    }
}

/// A route ready to serve: its plan, body kind and handler.
struct Compiled {
    plan: Arc<ParamPlan>,
    body: BodyKind,
    body_rules: BodyRules,
    handler: Arc<dyn Handler>,
}

fn compile(
    path: &str,
    mut params: Vec<Param>,
    mut body: BodyKind,
    handler: Arc<dyn Handler>,
    body_rules: BodyRules,
) -> Result<Compiled, String> {
    let captures = path_captures(path);
    for param in params.iter().filter(|p| p.source == Source::Path) {
        if !captures.contains(&param.key.as_str()) {
            return Err(format!(
                "path parameter {:?} is not a {{capture}} of the path",
                param.name
            ));
        }
        if matches!(param.ty, ParamType::List { .. } | ParamType::File) {
            return Err(format!(
                "path parameter {:?} must be a single value",
                param.name
            ));
        }
    }
    for capture in &captures {
        let declared = params
            .iter()
            .any(|p| p.source == Source::Path && p.key == *capture);
        if !declared {
            params.push(Param::path(*capture, ParamType::STR));
        }
    }
    let mut names = std::collections::HashSet::new();
    for param in &params {
        if !names.insert(param.name.as_str()) {
            return Err(format!("parameter {:?} is declared twice", param.name));
        }
        if param.ty == ParamType::File && param.source != Source::Form {
            return Err(format!(
                "file parameter {:?} must be read from the form",
                param.name
            ));
        }
    }
    let plan = ParamPlan::new(params);
    if plan.reads_form() {
        match body {
            BodyKind::None | BodyKind::Form => body = BodyKind::Form,
            other => return Err(format!("form parameters need a form body, not {other:?}")),
        }
    }
    Ok(Compiled {
        plan: Arc::new(plan),
        body,
        body_rules,
        handler,
    })
}

impl Compiled {
    /// Reads the body and runs the plan over the path's captures, the query, the headers
    /// and the form.
    async fn prepare<B>(
        &self,
        headers: &http::HeaderMap,
        uri: &http::Uri,
        path: &[(&str, &str)],
        body: B,
    ) -> Result<(Vec<crate::params::Value>, body::BodyData), Error>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let body = body::read(
            self.body,
            self.plan.reads_files(),
            headers,
            body,
            self.body_rules,
        )
        .await?;
        let form = match &body {
            body::BodyData::Form(form) => Some(form),
            _ => None,
        };
        let values = self.plan.extract(Inputs {
            path,
            query: uri.query(),
            headers,
            form,
        })?;
        Ok((values, body))
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text panic payload");
    format!("handler panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok(_: Request) -> &'static str {
        "ok"
    }

    #[test]
    fn captures() {
        assert_eq!(path_captures("/a/{x}/b/{y}"), vec!["x", "y"]);
        assert_eq!(path_captures("/files/{*rest}"), vec!["rest"]);
        assert!(path_captures("/plain").is_empty());
    }

    #[test]
    fn registration_errors_name_the_route() {
        let app =
            App::new().route(Route::get("/a/{id}", ok).param(Param::path("other", ParamType::INT)));
        let err = app
            .into_router()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("GET /a/{id}") && err.contains("\"other\""),
            "{err}"
        );

        let twice = App::new()
            .route(Route::get("/a", ok))
            .route(Route::get("/a", ok));
        assert!(twice.into_router().is_err());

        let form_json = App::new().route(
            Route::post("/f", ok)
                .param(Param::form("x", ParamType::STR))
                .body(BodyKind::Json),
        );
        assert!(form_json.into_router().is_err());
    }
}
