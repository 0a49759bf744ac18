//! Helpers of the unit tests that run Python code in the embedded interpreter.

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Runs `code` with `globals` as its module namespace.
pub fn run(globals: &Bound<'_, PyDict>, code: &std::ffi::CStr) {
    globals
        .py()
        .run(code, Some(globals), None)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// What `code` left in `globals` under `name`.
pub fn global<'py>(globals: &Bound<'py, PyDict>, name: &str) -> Bound<'py, PyAny> {
    globals
        .get_item(name)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no {name}"))
}
