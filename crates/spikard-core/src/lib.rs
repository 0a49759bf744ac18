//! Spikard's HTTP engine.
//!
//! Routes declare a parameter plan (names, sources, types, defaults) once; per request the
//! engine reads path, query, header and form values in one pass, converts them to typed
//! [`Value`]s, and hands the handler finished values, or answers with an RFC 9457 problem
//! document naming every failed field. Handlers are Rust closures or any type implementing
//! [`Handler`], which is how other languages plug in.
//!
//! ```no_run
//! use spikard_core::{response, App, Param, ParamType, Request, Route, ServerConfig};
//!
//! async fn item(mut req: Request) -> Result<axum::response::Response, spikard_core::Error> {
//!     let id: i64 = req.param("id")?;
//!     response::json(&serde_json::json!({ "id": id }))
//! }
//!
//! let app = App::new().route(Route::get("/items/{id}", item).param(Param::path("id", ParamType::INT)));
//! spikard_core::server::run(app.into_router().unwrap(), &ServerConfig::default()).unwrap();
//! ```

pub mod body;
pub mod error;
pub mod json;
pub mod params;
pub mod request;
pub mod response;
pub mod routing;
pub mod server;
pub mod sse;
pub mod upload;
pub mod urlencoded;
pub mod websocket;

pub use body::{BodyData, BodyKind, BodyRules};
pub use error::{Error, FieldError, LocPart, Malformed, Source};
pub use params::{Absent, FormData, Param, ParamPlan, ParamType, Scalar, Value};
pub use request::{FromValue, Request};
pub use routing::{
    App, Handler, Route, RouteError, Router, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT,
};
pub use server::ServerConfig;
pub use sse::Event;
pub use upload::UploadFile;
pub use websocket::{Message, WebSocket, WsHandler};

/// Re-exported so applications build responses with the same types.
pub use axum::response::{IntoResponse, Response};
pub use http::{HeaderMap, HeaderValue, Method, StatusCode};
