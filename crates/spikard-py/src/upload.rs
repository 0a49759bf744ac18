//! `UploadFile`, a file of a `multipart/form-data` body as a handler receives it.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

/// `UploadFile(filename, content_type, data)`: the file's name and content type as the
/// client sent them, and its bytes. Built by the engine without running Python code.
#[pyclass(name = "UploadFile", module = "spikard", frozen)]
pub struct PyUploadFile {
    #[pyo3(get)]
    filename: Py<PyAny>,
    #[pyo3(get)]
    content_type: Py<PyAny>,
    #[pyo3(get)]
    data: Py<PyBytes>,
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
            data,
        }
    }

    /// The number of bytes.
    #[getter]
    fn size(&self, py: Python<'_>) -> usize {
        self.data.bind(py).as_bytes().len()
    }

    /// The file's bytes.
    fn read(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
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
            this.data.clone_ref(py),
        );
        (slf.get_type(), args).into_pyobject(py)
    }
}

/// The engine's upload as a Python `UploadFile`: one copy of the bytes, no Python frame.
pub fn upload_to_py(
    py: Python<'_>,
    file: spikard_core::UploadFile,
) -> PyResult<Bound<'_, PyUploadFile>> {
    let value = PyUploadFile {
        filename: PyString::new(py, &file.filename).into_any().unbind(),
        content_type: PyString::new(py, &file.content_type).into_any().unbind(),
        data: PyBytes::new(py, &file.data).unbind(),
    };
    Bound::new(py, value)
}
