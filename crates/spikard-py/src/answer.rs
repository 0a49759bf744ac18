//! A handler's return value as an HTTP answer, and a handler's failure as a 500.

use crate::convert::py_to_json_in;
use crate::response::PyResponse;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use spikard_core::{response, Error, IntoResponse, Response, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// How long a route's JSON answers are (see [`AnswerSize::record`]): the next one is written
/// into a buffer about that large from the start, so an answer longer than the default
/// capacity is not grown (and copied) several times on the way.
pub struct AnswerSize(AtomicUsize);

impl AnswerSize {
    /// The capacity a first answer starts with.
    const DEFAULT: usize = 512;
    /// The most a buffer is given up front (a route's one huge answer does not make every
    /// later one allocate as much).
    const MAX: usize = 64 * 1024;

    pub const fn new() -> Self {
        AnswerSize(AtomicUsize::new(0))
    }

    /// The capacity the next answer's buffer starts with.
    fn capacity(&self) -> usize {
        let last = self.0.load(Ordering::Relaxed);
        (last + last / 8 + 16).clamp(Self::DEFAULT, Self::MAX)
    }

    /// Notes an answer's length when it outgrew the last one noted or is less than half of
    /// it: a route whose answers keep about one length stops writing to the shared counter,
    /// which the serving threads then only read.
    fn record(&self, len: usize) {
        let last = self.0.load(Ordering::Relaxed);
        if len > last || len < last / 2 {
            self.0.store(len, Ordering::Relaxed);
        }
    }
}

impl Default for AnswerSize {
    fn default() -> Self {
        Self::new()
    }
}

/// Converts a handler's result into a response: its return value, or a 500 for what it
/// raised. `size`: the route's answer size (see [`AnswerSize`]).
pub fn answer(
    py: Python<'_>,
    name: &str,
    size: &AnswerSize,
    result: PyResult<Bound<'_, PyAny>>,
) -> Response {
    let converted = result.and_then(|value| {
        if let Ok(custom) = value.cast::<PyResponse>() {
            return custom.borrow().to_response(py, size);
        }
        body_response(&value, size)
    });
    match converted {
        Ok(response) => response,
        Err(err) => internal(py, name, err).into_response(),
    }
}

/// The default answer for a body value: bytes as octet-stream, str as text, None as 204,
/// anything else as JSON.
pub fn body_response(value: &Bound<'_, PyAny>, size: &AnswerSize) -> PyResult<Response> {
    if let Ok(text) = value.cast_exact::<PyString>() {
        return Ok(response::text(crate::convert::utf8_owned(text)?));
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
    let json = py_to_json_in(value, size.capacity())?;
    size.record(json.len());
    Ok(response::json_bytes(json))
}

#[cfg(test)]
mod tests {
    use super::AnswerSize;

    #[test]
    fn answer_buffers_follow_the_routes_answers() {
        let size = AnswerSize::new();
        assert_eq!(size.capacity(), AnswerSize::DEFAULT);
        size.record(100);
        assert_eq!(size.capacity(), AnswerSize::DEFAULT);
        size.record(4000);
        assert_eq!(size.capacity(), 4000 + 500 + 16);
        // Shorter, but not by half: the buffer stays.
        size.record(2100);
        assert_eq!(size.capacity(), 4516);
        size.record(1900);
        assert_eq!(size.capacity(), 1900 + 237 + 16);
        size.record(10_000_000);
        assert_eq!(size.capacity(), AnswerSize::MAX);
    }
}
