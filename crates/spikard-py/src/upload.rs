//! `UploadFile`, a file of a `multipart/form-data` body as a handler receives it.

use bytes::Bytes;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple};
use std::os::raw::c_int;

/// `UploadFile(filename, content_type, data)`: the file's name and content type as the
/// client sent them, and its bytes. Built by the engine without running Python code.
///
/// The engine's file stays where the request body put it: `data` (and `read()`) make the
/// `bytes` on first use, and the buffer protocol (`memoryview(file)`, `file.view`, or the file
/// given to `hashlib`, `zlib.crc32`, a file's `write`) reads it without a copy.
#[pyclass(name = "UploadFile", module = "spikard", frozen)]
pub struct PyUploadFile {
    #[pyo3(get)]
    filename: Py<PyAny>,
    #[pyo3(get)]
    content_type: Py<PyAny>,
    content: Content,
    /// The content as `bytes`, once asked for.
    bytes: PyOnceLock<Py<PyBytes>>,
}

/// Where an upload's bytes are.
enum Content {
    /// In the engine's request body.
    Engine(Bytes),
    /// In the `bytes` the file was made with.
    Given(Py<PyBytes>),
}

impl PyUploadFile {
    /// The file's bytes, borrowed for as long as `self` lives (neither kind of content ever
    /// changes or moves).
    fn content<'a>(&'a self, py: Python<'_>) -> &'a [u8] {
        match &self.content {
            Content::Engine(data) => data,
            Content::Given(data) => data.as_bytes(py),
        }
    }
}

#[pymethods]
impl PyUploadFile {
    #[new]
    fn py_new(
        filename: Bound<'_, PyString>,
        content_type: Bound<'_, PyString>,
        data: Py<PyBytes>,
    ) -> Self {
        PyUploadFile {
            filename: filename.into_any().unbind(),
            content_type: content_type.into_any().unbind(),
            content: Content::Given(data),
            bytes: PyOnceLock::new(),
        }
    }

    /// The file's bytes, as `bytes` (made on first use, then the same object).
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyBytes> {
        match &self.content {
            Content::Given(data) => data.clone_ref(py),
            Content::Engine(data) => self
                .bytes
                .get_or_init(py, || PyBytes::new(py, data).unbind())
                .clone_ref(py),
        }
    }

    /// The file's bytes as a read-only `memoryview`, without a copy.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `slf` supports the buffer protocol (below); the view holds a reference.
        unsafe {
            Bound::from_owned_ptr_or_err(slf.py(), ffi::PyMemoryView_FromObject(slf.as_ptr()))
        }
    }

    /// The number of bytes.
    #[getter]
    fn size(&self, py: Python<'_>) -> usize {
        self.content(py).len()
    }

    /// The file's bytes (the same object as `data`).
    fn read(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data(py)
    }

    /// The buffer protocol: the file's bytes, read-only.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        let content = slf.get().content(py);
        // SAFETY: `view` is the caller's buffer struct; `content` lives as long as `slf`,
        // which PyBuffer_FillInfo keeps a reference to in the view. It refuses a writable
        // view with a BufferError.
        let filled = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                content.as_ptr().cast_mut().cast(),
                content.len() as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if filled == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(py))
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "UploadFile(filename={}, content_type={}, size={})",
            self.filename.bind(py).repr()?,
            self.content_type.bind(py).repr()?,
            self.size(py)
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        let args = (
            this.filename.clone_ref(py),
            this.content_type.clone_ref(py),
            this.data(py),
        );
        (slf.get_type(), args).into_pyobject(py)
    }
}

/// The engine's upload as a Python `UploadFile`: its bytes stay in the request body, no
/// Python frame runs.
pub fn upload_to_py(
    py: Python<'_>,
    file: spikard_core::UploadFile,
) -> PyResult<Bound<'_, PyUploadFile>> {
    let value = PyUploadFile {
        filename: PyString::new(py, &file.filename).into_any().unbind(),
        content_type: PyString::new(py, &file.content_type).into_any().unbind(),
        content: Content::Engine(file.data),
        bytes: PyOnceLock::new(),
    };
    Bound::new(py, value)
}
