//! Building responses: JSON, text, bytes, with status and headers.
//!
//! Handlers return anything that implements axum's `IntoResponse`; these helpers cover the
//! common answers with the right content types.

use crate::error::Error;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

/// A 200 `application/json` answer of `value`.
///
/// Encoded with sonic-rs: the same bytes as serde_json, in less time (`make json-codecs`).
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Response, Error> {
    let mut buf = Vec::with_capacity(128);
    sonic_rs::to_writer(&mut buf, value)
        .map_err(|err| Error::Internal(format!("failed to encode the answer: {err}")))?;
    Ok(json_bytes(buf))
}

/// A 200 `application/json` answer of already encoded JSON.
pub fn json_bytes(body: impl Into<Bytes>) -> Response {
    with_content_type(body.into(), HeaderValue::from_static("application/json"))
}

/// A 200 `text/plain; charset=utf-8` answer.
pub fn text(body: impl Into<String>) -> Response {
    with_content_type(
        Bytes::from(body.into()),
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )
}

/// A 200 `text/html; charset=utf-8` answer.
pub fn html(body: impl Into<String>) -> Response {
    with_content_type(
        Bytes::from(body.into()),
        HeaderValue::from_static("text/html; charset=utf-8"),
    )
}

/// A 200 `application/octet-stream` answer.
pub fn bytes(body: impl Into<Bytes>) -> Response {
    with_content_type(
        body.into(),
        HeaderValue::from_static("application/octet-stream"),
    )
}

fn with_content_type(body: Bytes, content_type: HeaderValue) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Chainable changes to a response.
pub trait ResponseExt: Sized {
    fn with_status(self, status: StatusCode) -> Self;
    fn with_header(self, name: HeaderName, value: HeaderValue) -> Self;
}

impl ResponseExt for Response {
    fn with_status(mut self, status: StatusCode) -> Self {
        *self.status_mut() = status;
        self
    }
    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers_mut().insert(name, value);
        self
    }
}

/// An empty answer with `status`.
pub fn empty(status: StatusCode) -> Response {
    status.into_response()
}
