//! A handler's return value as an HTTP answer, and a handler's failure as a 500.

use crate::convert::py_to_json;
use crate::response::PyResponse;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use spikard_core::{response, Error, IntoResponse, Response, StatusCode};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Logs a Python exception with its traceback and turns it into a 500; a
/// `spikard.postgres.Unavailable` is a 503 instead, logged in one line at most every 10 s.
pub fn internal(py: Python<'_>, name: &str, err: PyErr) -> Error {
    if crate::postgres::is_unavailable(py, &err) {
        let detail = err.value(py).to_string();
        static LAST: Mutex<Option<Instant>> = Mutex::new(None);
        if let Ok(mut last) = LAST.lock() {
            if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                *last = Some(Instant::now());
                eprintln!("spikard: handler {name}: {detail} (answered 503)");
            }
        }
        return Error::Unavailable(detail);
    }
    eprintln!("spikard: handler {name} raised:");
    err.print(py);
    Error::Internal(format!("handler {name} raised"))
}

/// Converts a handler's result into a response: its return value, or a 500 for what it
/// raised.
pub fn answer(py: Python<'_>, name: &str, result: PyResult<Bound<'_, PyAny>>) -> Response {
    let converted = result.and_then(|value| {
        if let Ok(custom) = value.cast::<PyResponse>() {
            return custom.borrow().to_response(py);
        }
        body_response(&value)
    });
    match converted {
        Ok(response) => response,
        Err(err) => internal(py, name, err).into_response(),
    }
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
