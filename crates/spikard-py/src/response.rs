//! `Response` and `Event`, the classes a Python handler returns to control status, headers
//! and content type, or the fields of a server-sent event.

use crate::answer::{body_response, AnswerSize};
use crate::construct::{argument, Construct, Given};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use spikard_core::{sse, HeaderValue, Response, StatusCode};

/// `Response(content=None, status=200, headers=None, media_type=None)`.
#[pyclass(name = "Response", module = "spikard", frozen)]
pub struct PyResponse {
    #[pyo3(get)]
    content: Py<PyAny>,
    #[pyo3(get)]
    status: u16,
    headers: Vec<(String, String)>,
    #[pyo3(get)]
    media_type: Option<String>,
}

#[pymethods]
impl PyResponse {
    #[new]
    #[pyo3(signature = (content=None, status=200, headers=None, media_type=None))]
    fn new(
        content: Option<Py<PyAny>>,
        status: u16,
        headers: Option<&Bound<'_, PyDict>>,
        media_type: Option<String>,
        py: Python<'_>,
    ) -> PyResult<Self> {
        StatusCode::from_u16(status).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!("invalid status {status}"))
        })?;
        let mut pairs = Vec::new();
        if let Some(headers) = headers {
            for (name, value) in headers.iter() {
                pairs.push((name.extract::<String>()?, value.extract::<String>()?));
            }
        }
        Ok(PyResponse {
            content: content.unwrap_or_else(|| py.None()),
            status,
            headers: pairs,
            media_type,
        })
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in &self.headers {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!("Response(status={})", self.status)
    }
}

impl Construct for PyResponse {
    const PARAMS: &'static [&'static str] = &["content", "status", "headers", "media_type"];
    const REQUIRED: usize = 0;

    fn construct(py: Python<'_>, given: &Given<'_>) -> PyResult<Self> {
        let params = Self::PARAMS;
        let content = argument(given, params, 0, || None)?;
        let status = argument(given, params, 1, || 200)?;
        let headers: Option<Bound<'_, PyDict>> = argument(given, params, 2, || None)?;
        let media_type = argument(given, params, 3, || None)?;
        PyResponse::new(content, status, headers.as_ref(), media_type, py)
    }
}

impl PyResponse {
    /// The response; `size`: the route's answer size (see [`AnswerSize`]).
    pub fn to_response(&self, py: Python<'_>, size: &AnswerSize) -> PyResult<Response> {
        let content = self.content.bind(py);
        let mut response = if content.is_none() {
            Response::default()
        } else {
            body_response(content, size)?
        };
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        let invalid =
            |what: &str| pyo3::exceptions::PyValueError::new_err(format!("invalid header {what}"));
        if let Some(media_type) = &self.media_type {
            let value = HeaderValue::from_str(media_type).map_err(|_| invalid(media_type))?;
            headers.insert(http::header::CONTENT_TYPE, value);
        }
        for (name, value) in &self.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(name))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid(value))?;
            headers.append(name, value);
        }
        Ok(response)
    }
}

/// `Event(data, event=None, id=None)`: one server-sent event; `data` that is not a str is
/// sent as JSON.
#[pyclass(name = "Event", module = "spikard", frozen)]
pub struct PyEvent {
    data: Py<PyAny>,
    /// The handler's own str objects: nothing is copied until the event is written.
    #[pyo3(get)]
    event: Option<Py<PyString>>,
    #[pyo3(get)]
    id: Option<Py<PyString>>,
}

#[pymethods]
impl PyEvent {
    #[new]
    #[pyo3(signature = (data, event=None, id=None))]
    fn new(data: Py<PyAny>, event: Option<Py<PyString>>, id: Option<Py<PyString>>) -> Self {
        PyEvent { data, event, id }
    }

    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyAny> {
        self.data.clone_ref(py)
    }
}

impl Construct for PyEvent {
    const PARAMS: &'static [&'static str] = &["data", "event", "id"];
    const REQUIRED: usize = 1;

    fn construct(py: Python<'_>, given: &Given<'_>) -> PyResult<Self> {
        let params = Self::PARAMS;
        let data = argument(given, params, 0, || py.None())?;
        let event = argument(given, params, 1, || None)?;
        let id = argument(given, params, 2, || None)?;
        Ok(PyEvent::new(data, event, id))
    }
}

impl PyEvent {
    /// The event in wire format at the end of `out`: text data as it is, anything else as
    /// JSON.
    pub fn write(&self, py: Python<'_>, out: &mut Vec<u8>) -> PyResult<()> {
        let (event, id) = (self.event.as_ref(), self.id.as_ref());
        let (event, id) = (event.map(|e| e.bind(py)), id.map(|i| i.bind(py)));
        let event = event.as_ref().map(|e| e.to_str()).transpose()?;
        let id = id.as_ref().map(|i| i.to_str()).transpose()?;
        write_event(out, self.data.bind(py), event, id)
    }
}

/// An event's wire format from its parts, at the end of `out`, without copying the text on
/// the way: a type check rather than `extract` for text (a failed extract builds an
/// exception, per event); other data is written as JSON straight after the event's head
/// (compact JSON holds no line break). On an error `out` may hold part of the event.
pub fn write_event(
    out: &mut Vec<u8>,
    data: &Bound<'_, PyAny>,
    event: Option<&str>,
    id: Option<&str>,
) -> PyResult<()> {
    if let Ok(text) = data.cast::<PyString>() {
        sse::write(out, event, id, text.to_str()?);
        return Ok(());
    }
    sse::write_head(out, event, id);
    out.extend_from_slice(b"data: ");
    crate::convert::write_json(out, data, 0)?;
    out.extend_from_slice(b"\n\n");
    Ok(())
}
