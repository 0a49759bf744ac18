//! Errors of the engine and the one place that turns them into RFC 9457 problem documents.
//!
//! Every error answer the engine gives is `application/problem+json`:
//! `{"type","title","status","detail"}` plus, for validation failures, `"errors"`, a list of
//! `{"loc":[source, name, …],"msg"}` naming every field that failed.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use std::fmt;

/// Where a request value came from; the first element of a validation error's `loc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Path,
    Query,
    Header,
    Form,
    Body,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Path => "path",
            Source::Query => "query",
            Source::Header => "header",
            Source::Form => "form",
            Source::Body => "body",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One element of a location: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LocPart {
    Key(String),
    Index(usize),
}

/// One failed field: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub loc: Vec<LocPart>,
    pub msg: String,
}

impl FieldError {
    /// A failure of the top-level field `name` read from `source`.
    pub fn new(source: Source, name: &str, msg: impl Into<String>) -> Self {
        FieldError {
            loc: vec![
                LocPart::Key(source.as_str().to_owned()),
                LocPart::Key(name.to_owned()),
            ],
            msg: msg.into(),
        }
    }
}

/// Why a request could not be read at all (a 400); each cause has its own problem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The body is not JSON.
    Json,
    /// The JSON body nests arrays and objects deeper than [`crate::json::MAX_DEPTH`].
    JsonTooDeep,
    /// The body is not a URL-encoded form.
    Form,
    /// The multipart body is broken or has no boundary.
    Multipart,
    /// A path segment, query string or form value decodes (`%XX`) to bytes that are not
    /// UTF-8.
    Encoding,
    /// A path segment, query string or form value holds a NUL character (`%00`).
    NulCharacter,
    /// An HTTP/1.1 request without a `Host` header (RFC 9112, section 3.2).
    MissingHost,
    /// A WebSocket route asked for without a valid upgrade.
    Upgrade,
    /// The connection failed while the body was being read.
    BodyRead,
}

impl Malformed {
    fn kind(self) -> (&'static str, &'static str) {
        match self {
            Malformed::Json => ("urn:spikard:problem:malformed-json", "Malformed JSON body"),
            Malformed::JsonTooDeep => (
                "urn:spikard:problem:json-too-deep",
                "JSON body nested too deeply",
            ),
            Malformed::Form => ("urn:spikard:problem:malformed-form", "Malformed form body"),
            Malformed::Multipart => (
                "urn:spikard:problem:malformed-multipart",
                "Malformed multipart body",
            ),
            Malformed::Encoding => (
                "urn:spikard:problem:invalid-encoding",
                "Percent-encoding is not UTF-8",
            ),
            Malformed::NulCharacter => ("urn:spikard:problem:nul-character", "NUL character"),
            Malformed::MissingHost => ("urn:spikard:problem:missing-host", "Missing Host header"),
            Malformed::Upgrade => ("urn:spikard:problem:bad-upgrade", "Bad WebSocket upgrade"),
            Malformed::BodyRead => ("urn:spikard:problem:body-read", "Body could not be read"),
        }
    }
}

/// Everything the engine can answer with instead of a handler's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A request that cannot be read at all (broken JSON, form or multipart, bad encoding):
    /// 400, with a problem type per cause.
    BadRequest(Malformed, String),
    /// Missing or wrongly typed fields: 422, with every failed field listed.
    Validation(Vec<FieldError>),
    /// No route matches the path: 404.
    NotFound,
    /// The path exists but not for this method: 405, `allow` lists the methods that exist.
    MethodNotAllowed { allow: String },
    /// The body is larger than the configured limit: 413.
    PayloadTooLarge { limit: usize },
    /// The body's content type is not one the route takes: 415.
    UnsupportedMediaType { expected: &'static str },
    /// A handler failed (raised, panicked, or misused the API): 500. The detail is logged,
    /// never sent.
    Internal(String),
    /// A backend the handler needs (a database) cannot be reached: 503, with the reason.
    Unavailable(String),
    /// The body did not arrive within the body timeout: 408, and the connection is closed.
    BodyTimeout { after: std::time::Duration },
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(..) => StatusCode::BAD_REQUEST,
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// A validation error of one field.
    pub fn field(source: Source, name: &str, msg: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(source, name, msg)])
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Error::BadRequest(why, _) => why.kind(),
            Error::Validation(_) => (
                "urn:spikard:problem:validation",
                "Request validation failed",
            ),
            Error::NotFound => ("urn:spikard:problem:not-found", "Not Found"),
            Error::MethodNotAllowed { .. } => (
                "urn:spikard:problem:method-not-allowed",
                "Method Not Allowed",
            ),
            Error::PayloadTooLarge { .. } => {
                ("urn:spikard:problem:payload-too-large", "Payload Too Large")
            }
            Error::UnsupportedMediaType { .. } => (
                "urn:spikard:problem:unsupported-media-type",
                "Unsupported Media Type",
            ),
            Error::Internal(_) => ("urn:spikard:problem:internal", "Internal Server Error"),
            Error::Unavailable(_) => ("urn:spikard:problem:unavailable", "Service Unavailable"),
            Error::BodyTimeout { .. } => ("urn:spikard:problem:body-timeout", "Request Timeout"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Error::BadRequest(_, detail) => detail.clone(),
            Error::Validation(errors) => match errors.len() {
                1 => "1 field failed validation".to_owned(),
                n => format!("{n} fields failed validation"),
            },
            Error::NotFound => "no route matches this path".to_owned(),
            Error::MethodNotAllowed { allow } => {
                format!("this path accepts only: {allow}")
            }
            Error::PayloadTooLarge { limit } => {
                format!("the request body is larger than the limit of {limit} bytes")
            }
            Error::UnsupportedMediaType { expected } => {
                format!("this route takes a body of type {expected}")
            }
            Error::Internal(_) => "the handler failed; the error was logged".to_owned(),
            Error::Unavailable(detail) => detail.clone(),
            Error::BodyTimeout { after } => format!(
                "the request body did not arrive within {} s",
                after.as_secs_f64()
            ),
        }
    }

    /// The problem document as JSON bytes.
    pub fn to_problem_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Problem<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            title: &'static str,
            status: u16,
            detail: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            errors: Option<&'a [FieldError]>,
        }
        let (kind, title) = self.kind();
        let problem = Problem {
            kind,
            title,
            status: self.status().as_u16(),
            detail: self.detail(),
            errors: match self {
                Error::Validation(errors) => Some(errors),
                _ => None,
            },
        };
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(&problem).unwrap_or_default()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.detail())
    }
}

impl std::error::Error for Error {}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(detail) = &self {
            eprintln!("spikard: handler error: {detail}");
        }
        let mut response = (self.status(), self.to_problem_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Error::MethodNotAllowed { allow } = &self {
            if let Ok(value) = HeaderValue::from_str(allow) {
                headers.insert(header::ALLOW, value);
            }
        }
        // The rest of a stalled body may still come: the connection cannot be reused.
        if matches!(
            self,
            Error::BodyTimeout { .. } | Error::BadRequest(Malformed::MissingHost, _)
        ) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Maps a serde_json failure of a typed body to 400 (not JSON) or 422 (wrong shape).
pub(crate) fn from_json_error(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = err.path().clone();
    let inner = err.into_inner();
    if let Some(out_of_range) = crate::json::number_out_of_range(&inner) {
        return out_of_range;
    }
    match inner.classify() {
        serde_json::error::Category::Data => {
            let mut loc = vec![LocPart::Key("body".to_owned())];
            for segment in path.iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => loc.push(LocPart::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => {
                        loc.push(LocPart::Key(key.clone()))
                    }
                    serde_path_to_error::Segment::Enum { variant } => {
                        loc.push(LocPart::Key(variant.clone()))
                    }
                    serde_path_to_error::Segment::Unknown => {}
                }
            }
            // serde reports a missing field at the level of its parent record.
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            if let Some(name) = msg
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                loc.push(LocPart::Key(name.to_owned()));
            }
            Error::Validation(vec![FieldError { loc, msg }])
        }
        _ => Error::BadRequest(
            Malformed::Json,
            format!("the body is not valid JSON: {inner}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_lists_every_field() {
        let err = Error::Validation(vec![
            FieldError::new(Source::Query, "page", "not an integer"),
            FieldError::new(Source::Path, "id", "not a UUID"),
        ]);
        let doc: serde_json::Value =
            serde_json::from_slice(&err.to_problem_json()).unwrap_or_default();
        assert_eq!(doc["status"], 422);
        assert_eq!(
            doc["errors"][0]["loc"],
            serde_json::json!(["query", "page"])
        );
        assert_eq!(doc["errors"][1]["loc"], serde_json::json!(["path", "id"]));
        assert_eq!(doc["detail"], "2 fields failed validation");
    }

    #[test]
    fn non_validation_problem_has_no_errors_member() {
        let doc: serde_json::Value =
            serde_json::from_slice(&Error::NotFound.to_problem_json()).unwrap_or_default();
        assert_eq!(doc["status"], 404);
        assert!(doc.get("errors").is_none());
    }
}
