//! Conversions between Rust values and Python objects, in one place: engine [`Value`]s into
//! Python arguments, JSON bytes straight into Python objects (no `json.loads`), and Python
//! answers straight into JSON bytes.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use spikard_core::{UploadFile, Value};
use std::fmt;

/// Python objects looked up once per interpreter.
pub struct Cached {
    pub uuid_class: Py<PyAny>,
    pub upload_class: Py<PyAny>,
    /// `msgspec.to_builtins`, for values nested in dicts that are dataclasses, Structs and
    /// the like.
    pub to_builtins: Option<Py<PyAny>>,
    /// `msgspec.json.encode`, for answers that are dataclasses, Structs and the like.
    pub encode: Option<Py<PyAny>>,
}

static CACHED: PyOnceLock<Cached> = PyOnceLock::new();

pub fn cached(py: Python<'_>) -> PyResult<&Cached> {
    CACHED.get_or_try_init(py, || {
        let uuid_class = py.import("uuid")?.getattr("UUID")?.unbind();
        let upload_class = py
            .import("spikard._upload")?
            .getattr("UploadFile")?
            .unbind();
        let msgspec = py.import("msgspec").ok();
        let lookup = |path: &[&str]| {
            let mut obj = msgspec.clone()?.into_any();
            for name in path {
                obj = obj.getattr(*name).ok()?;
            }
            Some(obj.unbind())
        };
        Ok(Cached {
            uuid_class,
            upload_class,
            to_builtins: lookup(&["to_builtins"]),
            encode: lookup(&["json", "encode"]),
        })
    })
}

/// A finished engine value as a Python object.
pub fn value_to_py<'py>(py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Str(s) => PyString::new(py, &s).into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, f).into_any(),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Uuid(u) => {
            let kwargs = PyDict::new(py);
            kwargs.set_item("int", u.as_u128())?;
            cached(py)?.uuid_class.bind(py).call((), Some(&kwargs))?
        }
        Value::Date(d) => {
            use chrono::Datelike;
            PyDate::new(py, d.year(), d.month() as u8, d.day() as u8)?.into_any()
        }
        Value::DateTime(dt) => dt.into_pyobject(py)?.into_any(),
        Value::NaiveDateTime(dt) => dt.into_pyobject(py)?.into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::File(file) => upload_to_py(py, *file)?,
    })
}

fn upload_to_py<'py>(py: Python<'py>, file: UploadFile) -> PyResult<Bound<'py, PyAny>> {
    let data = PyBytes::new(py, &file.data);
    cached(py)?
        .upload_class
        .bind(py)
        .call1((file.filename, file.content_type, data))
}

/// Decodes JSON bytes straight into Python objects.
pub fn json_to_py<'py>(
    py: Python<'py>,
    bytes: &[u8],
) -> Result<Bound<'py, PyAny>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = PySeed(py).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct PySeed<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for PySeed<'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn py_err<E: serde::de::Error>(err: PyErr) -> E {
    E::custom(err.to_string())
}

impl<'de, 'py> Visitor<'de> for PySeed<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0, v).into_any())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = seq.next_element_seed(self)? {
            list.append(item).map_err(py_err)?;
        }
        Ok(list.into_any())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            // Keys repeat across objects of a body: interning shares one string object.
            let key = PyString::intern(self.0, &key);
            let value = map.next_value_seed(self)?;
            dict.set_item(key, value).map_err(py_err)?;
        }
        Ok(dict.into_any())
    }
}

/// Encodes a Python answer as JSON bytes: dicts, lists, tuples, str, int, float, bool, None;
/// UUIDs, dates and date-times as strings; anything else (dataclasses, msgspec Structs)
/// through `msgspec.to_builtins`.
///
/// Values nested deeper than [`MAX_ANSWER_DEPTH`] are refused (an error, not a stack overflow).
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, &PyJson(obj, 0))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(out)
}

/// The deepest nesting of lists, tuples and dicts an answer may have.
pub const MAX_ANSWER_DEPTH: usize = 1000;

/// A Python value and how deep in the answer it is.
struct PyJson<'a, 'py>(&'a Bound<'py, PyAny>, usize);

impl Serialize for PyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.0;
        let depth = self.1 + 1;
        if depth > MAX_ANSWER_DEPTH {
            return Err(S::Error::custom(format!(
                "the answer nests lists and dicts deeper than {MAX_ANSWER_DEPTH} levels"
            )));
        }
        if let Ok(text) = obj.cast_exact::<PyString>() {
            return s.serialize_str(text.to_str().map_err(S::Error::custom)?);
        }
        if let Ok(dict) = obj.cast::<PyDict>() {
            let mut map = s.serialize_map(Some(dict.len()))?;
            for (key, value) in dict.iter() {
                let key = key
                    .cast_into::<PyString>()
                    .map_err(|_| S::Error::custom("JSON object keys must be strings"))?;
                map.serialize_entry(
                    key.to_str().map_err(S::Error::custom)?,
                    &PyJson(&value, depth),
                )?;
            }
            return map.end();
        }
        if let Ok(list) = obj.cast::<PyList>() {
            let mut seq = s.serialize_seq(Some(list.len()))?;
            for item in list.iter() {
                seq.serialize_element(&PyJson(&item, depth))?;
            }
            return seq.end();
        }
        if obj.is_none() {
            return s.serialize_unit();
        }
        if let Ok(b) = obj.cast_exact::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if let Ok(i) = obj.cast::<PyInt>() {
            return match i.extract::<i64>() {
                Ok(v) => s.serialize_i64(v),
                Err(_) => s.serialize_u64(i.extract::<u64>().map_err(S::Error::custom)?),
            };
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return s.serialize_f64(f.value());
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            let mut seq = s.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&PyJson(&item, depth))?;
            }
            return seq.end();
        }
        if obj.cast::<PyBytes>().is_ok() || obj.cast::<PyByteArray>().is_ok() {
            return Err(S::Error::custom("bytes cannot be encoded as JSON"));
        }
        let py = obj.py();
        let cached = cached(py).map_err(S::Error::custom)?;
        if obj.is_instance(cached.uuid_class.bind(py)).unwrap_or(false)
            || obj.hasattr("isoformat").unwrap_or(false)
        {
            let text = if obj.hasattr("isoformat").unwrap_or(false) {
                obj.call_method0("isoformat")
            } else {
                obj.str().map(Bound::into_any)
            }
            .map_err(S::Error::custom)?;
            return PyJson(&text, depth).serialize(s);
        }
        match &cached.to_builtins {
            Some(to_builtins) => {
                let plain = to_builtins
                    .bind(py)
                    .call1((obj,))
                    .map_err(S::Error::custom)?;
                PyJson(&plain, depth).serialize(s)
            }
            None => Err(S::Error::custom(format!(
                "cannot encode {} as JSON",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_python_objects() {
        Python::initialize();
        Python::attach(|py| {
            let text = br#"{"a":[1,-2,3.5,true,false,null,"x\u00e9"],"b":{"c":18446744073709551615},"d":"\ud83d\ude00"}"#;
            let obj = json_to_py(py, text).unwrap_or_else(|e| panic!("{e}"));
            let dict = obj.cast::<PyDict>().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(dict.len(), 3);
            let again = py_to_json(&obj).unwrap_or_else(|e| panic!("{e}"));
            let a: serde_json::Value = serde_json::from_slice(text).unwrap_or_default();
            let b: serde_json::Value = serde_json::from_slice(&again).unwrap_or_default();
            assert_eq!(a, b);
            assert!(json_to_py(py, b"{\"a\":").is_err());
            assert!(json_to_py(py, b"[1] 2").is_err());
        });
    }

    #[test]
    fn encoding_rejects_what_json_cannot_hold() {
        Python::initialize();
        Python::attach(|py| {
            let bad_key = py
                .eval(c"{1: 2}", None, None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(py_to_json(&bad_key).is_err());
            let bytes = py
                .eval(c"[b'x']", None, None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(py_to_json(&bytes).is_err());
            let tuple = py
                .eval(c"(1, 'a', None)", None, None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(py_to_json(&tuple).unwrap_or_default(), b"[1,\"a\",null]");
        });
    }
}
