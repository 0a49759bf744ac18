//! `Templates`: Jinja templates from a directory, rendered by MiniJinja in the engine.
//!
//! A render converts the context's plain values (str, int, float, bool, None, and dicts,
//! lists and tuples of them) into MiniJinja values once; any other object is looked at
//! lazily (attributes and items when the template asks for them, `str()` when it is written
//! out). Templates whose names end in `.html`, `.htm` or `.xml` escape what they write as
//! `html.escape` does (`&`, `<`, `>`, `"` and `'`); a value with `__html__` (markupsafe's
//! `Markup`) is written as its `__html__()` says, unescaped.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyNotADirectoryError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::response::PyResponse;

create_exception!(
    spikard,
    TemplateError,
    PyException,
    "A template that could not be read, parsed or rendered."
);
create_exception!(
    spikard,
    TemplateNotFound,
    TemplateError,
    "No template of that name in the templates' directory."
);

/// Nesting below which a context's dicts, lists and tuples are converted at once; deeper
/// ones (or a list that holds itself) are looked at lazily, as other objects are.
const EAGER_DEPTH: usize = 32;

/// `Templates(directory)`.
#[pyclass(name = "Templates", module = "spikard.templating", frozen)]
pub struct PyTemplates {
    env: Environment<'static>,
    #[pyo3(get)]
    directory: PathBuf,
}

#[pymethods]
impl PyTemplates {
    #[new]
    fn new(directory: PathBuf) -> PyResult<Self> {
        if !directory.is_dir() {
            return Err(PyNotADirectoryError::new_err(format!(
                "no template directory at {}",
                directory.display()
            )));
        }
        let mut env = Environment::new();
        env.set_loader(minijinja::path_loader(&directory));
        env.set_formatter(write_value);
        Ok(PyTemplates { env, directory })
    }

    /// The template `name` rendered with `context` and the keyword arguments (which win
    /// over the context's keys), as a str.
    #[pyo3(signature = (name, context=None, /, **values))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        context: Option<&Bound<'py, PyDict>>,
        values: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyString>> {
        let page = self.page(name, context, values)?;
        Ok(PyString::new(py, &page))
    }

    /// A `Response` with the rendered template as its body, `text/html; charset=utf-8`
    /// unless `media_type` says otherwise.
    #[pyo3(signature = (name, context=None, /, *, status=200, headers=None, media_type=None))]
    fn response(
        &self,
        py: Python<'_>,
        name: &str,
        context: Option<&Bound<'_, PyDict>>,
        status: u16,
        headers: Option<&Bound<'_, PyDict>>,
        media_type: Option<String>,
    ) -> PyResult<PyResponse> {
        let page = self.page(name, context, None)?;
        let body = PyBytes::new(py, page.as_bytes()).into_any().unbind();
        let media_type = media_type.unwrap_or_else(|| "text/html; charset=utf-8".to_owned());
        PyResponse::new(Some(body), status, headers, Some(media_type), py)
    }

    fn __repr__(&self) -> String {
        format!("Templates({:?})", self.directory)
    }
}

impl PyTemplates {
    fn page(
        &self,
        name: &str,
        context: Option<&Bound<'_, PyDict>>,
        values: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let template = self.env.get_template(name).map_err(template_error)?;
        let mut pairs = Vec::new();
        for dict in [context, values].into_iter().flatten() {
            for (key, value) in dict.iter() {
                let Ok(key) = key.cast::<PyString>() else {
                    return Err(PyTypeError::new_err(format!(
                        "template context keys must be str, not {}",
                        key.get_type().name()?
                    )));
                };
                pairs.push((Value::from(key.to_str()?), to_value(&value, 0)));
            }
        }
        template
            .render(Value::from_iter(pairs))
            .map_err(template_error)
    }
}

fn template_error(err: Error) -> PyErr {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    match err.kind() {
        ErrorKind::TemplateNotFound => TemplateNotFound::new_err(message),
        _ => TemplateError::new_err(message),
    }
}

/// A context value as MiniJinja sees it.
fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> Value {
    if let Ok(text) = obj.cast_exact::<PyString>() {
        return text_value(text);
    }
    if obj.is_none() {
        return Value::from(());
    }
    if let Ok(flag) = obj.cast::<PyBool>() {
        return Value::from(flag.is_true());
    }
    if let Ok(int) = obj.cast_exact::<PyInt>() {
        return int_value(int);
    }
    if let Ok(float) = obj.cast_exact::<PyFloat>() {
        return Value::from(float.value());
    }
    if depth < EAGER_DEPTH {
        if let Ok(tuple) = obj.cast_exact::<PyTuple>() {
            return tuple
                .iter()
                .map(|item| to_value(&item, depth + 1))
                .collect();
        }
        if let Ok(list) = obj.cast_exact::<PyList>() {
            return list.iter().map(|item| to_value(&item, depth + 1)).collect();
        }
        if let Ok(dict) = obj.cast_exact::<PyDict>() {
            return dict
                .iter()
                .map(|(key, value)| (to_value(&key, depth + 1), to_value(&value, depth + 1)))
                .collect::<Value>();
        }
    }
    if let Some(markup) = html_of(obj) {
        return Value::from_safe_string(markup);
    }
    // Subclasses (an enum member, say) as their base's value.
    if let Ok(text) = obj.cast::<PyString>() {
        return text_value(text);
    }
    if let Ok(int) = obj.cast::<PyInt>() {
        return int_value(int);
    }
    if let Ok(float) = obj.cast::<PyFloat>() {
        return Value::from(float.value());
    }
    let iterable = obj
        .get_type()
        .hasattr(intern!(obj.py(), "__iter__"))
        .unwrap_or(false);
    Value::from_object(PyValue {
        obj: obj.clone().unbind(),
        iterable,
    })
}

fn text_value(text: &Bound<'_, PyString>) -> Value {
    match text.to_str() {
        Ok(text) => Value::from(text),
        // A lone surrogate has no UTF-8 form.
        Err(_) => Value::from(text.to_string_lossy().into_owned()),
    }
}

fn int_value(int: &Bound<'_, PyInt>) -> Value {
    if let Ok(n) = int.extract::<i64>() {
        Value::from(n)
    } else if let Ok(n) = int.extract::<i128>() {
        Value::from(n)
    } else {
        Value::from(int.to_string())
    }
}

/// What `obj.__html__()` gives, for an object that has it and answers a str.
fn html_of(obj: &Bound<'_, PyAny>) -> Option<String> {
    let py = obj.py();
    if !obj.get_type().hasattr(intern!(py, "__html__")).ok()? {
        return None;
    }
    let markup = obj.call_method0(intern!(py, "__html__")).ok()?;
    Some(markup.cast::<PyString>().ok()?.to_str().ok()?.to_owned())
}

/// A context object MiniJinja reads through Python: `x.name` is `getattr` (then `x[name]`),
/// `x[key]` is `x[key]`; names that start with `_` are not looked up.
#[derive(Debug)]
struct PyValue {
    obj: Py<PyAny>,
    iterable: bool,
}

impl Object for PyValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.iterable {
            ObjectRepr::Iterable
        } else {
            ObjectRepr::Plain
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            let key = match key.as_str() {
                Some(name) if name.starts_with('_') => return None,
                Some(name) => {
                    if let Ok(found) = obj.getattr(name) {
                        return Some(to_value(&found, 0));
                    }
                    PyString::new(py, name).into_any()
                }
                None => key.as_i64()?.into_pyobject(py).ok()?.into_any(),
            };
            obj.get_item(key).ok().map(|found| to_value(&found, 0))
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if !self.iterable {
            return Enumerator::NonEnumerable;
        }
        Python::attach(|py| match self.obj.bind(py).try_iter() {
            Ok(items) => {
                let items: Vec<Value> = items.flatten().map(|item| to_value(&item, 0)).collect();
                Enumerator::Iter(Box::new(items.into_iter()))
            }
            Err(_) => Enumerator::Empty,
        })
    }

    fn is_true(self: &Arc<Self>) -> bool {
        Python::attach(|py| self.obj.bind(py).is_truthy().unwrap_or(false))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Python::attach(|py| match self.obj.bind(py).str() {
            Ok(text) => f.write_str(&text.to_string_lossy()),
            Err(_) => Err(fmt::Error),
        })
    }
}

/// How `{{ value }}` is written: in an HTML template, escaped as `html.escape` escapes
/// (MiniJinja's own escaper also escapes `/`); otherwise as MiniJinja writes it.
fn write_value(out: &mut Output<'_>, state: &State<'_, '_>, value: &Value) -> Result<(), Error> {
    if state.auto_escape() != AutoEscape::Html || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    match value.as_str() {
        Some(text) => escape_html(out, text),
        None => match value.kind() {
            ValueKind::Undefined | ValueKind::None | ValueKind::Bool | ValueKind::Number => {
                return minijinja::escape_formatter(out, state, value);
            }
            _ => escape_html(out, &value.to_string()),
        },
    }
    .map_err(Error::from)
}

/// `text` with `&`, `<`, `>`, `"` and `'` written as `html.escape` writes them: runs
/// without them go out whole, found by a scan of the bytes (each is ASCII, so never part of
/// a longer UTF-8 sequence).
fn escape_html(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, byte) in bytes.iter().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => continue,
        };
        out.write_str(&text[start..at])?;
        out.write_str(entity)?;
        start = at + 1;
    }
    out.write_str(&text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_html_escape_does() -> fmt::Result {
        let mut out = String::new();
        escape_html(&mut out, r#"<a href="/x">Tom & 'Jerry'</a> ü"#)?;
        assert_eq!(
            out,
            "&lt;a href=&quot;/x&quot;&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/a&gt; ü"
        );
        let mut plain = String::new();
        escape_html(&mut plain, "nothing to do")?;
        assert_eq!(plain, "nothing to do");
        Ok(())
    }
}
