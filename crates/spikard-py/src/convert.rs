//! Conversions between Rust values and Python objects, in one place: engine [`Value`]s into
//! Python arguments, JSON bytes straight into Python objects (no `json.loads`), and Python
//! answers straight into JSON bytes.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDict, PyFloat, PyInt, PyList, PyString, PyTime, PyTuple,
};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use spikard_core::{UploadFile, Value};
use std::fmt;

/// Python objects looked up once per interpreter.
pub struct Cached {
    pub uuid_class: Py<PyAny>,
    /// `object.__new__` and `uuid.SafeUUID.unknown`: a UUID is built the way
    /// `uuid.UUID(int=…)` builds it, without running its Python `__init__`.
    object_new: Py<PyAny>,
    safe_unknown: Py<PyAny>,
    /// `msgspec.to_builtins`, for values nested in dicts that are dataclasses, Structs and
    /// the like.
    pub to_builtins: Option<Py<PyAny>>,
    /// `msgspec.json.encode`, for answers that are dataclasses, Structs and the like.
    pub encode: Option<Py<PyAny>>,
}

static CACHED: PyOnceLock<Cached> = PyOnceLock::new();

pub fn cached(py: Python<'_>) -> PyResult<&Cached> {
    CACHED.get_or_try_init(py, || {
        let uuid_module = py.import("uuid")?;
        let uuid_class = uuid_module.getattr("UUID")?.unbind();
        let safe_unknown = uuid_module
            .getattr("SafeUUID")?
            .getattr("unknown")?
            .unbind();
        let object_new = py
            .import("builtins")?
            .getattr("object")?
            .getattr("__new__")?
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
            object_new,
            safe_unknown,
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
        Value::Uuid(u) => uuid_to_py(py, u)?,
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

/// A `uuid.UUID` with the slots `uuid.UUID(int=…)` sets (`int`, `is_safe`), set directly:
/// `UUID.__setattr__` refuses every assignment, so the generic setter is used, as
/// `__init__`'s own `object.__setattr__` does.
fn uuid_to_py<'py>(py: Python<'py>, u: uuid::Uuid) -> PyResult<Bound<'py, PyAny>> {
    let cached = cached(py)?;
    let obj = cached
        .object_new
        .bind(py)
        .call1((cached.uuid_class.bind(py),))?;
    let int = u.as_u128().into_pyobject(py)?;
    for (name, value) in [
        (pyo3::intern!(py, "int"), int.as_any()),
        (pyo3::intern!(py, "is_safe"), cached.safe_unknown.bind(py)),
    ] {
        // SAFETY: three valid, live objects; the call only reads them and reports failure
        // by its return value with a Python exception set.
        if unsafe {
            pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr())
        } != 0
        {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(obj)
}

/// `spikard.UploadFile`, looked up once per interpreter.
static UPLOAD_CLASS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn upload_to_py<'py>(py: Python<'py>, file: UploadFile) -> PyResult<Bound<'py, PyAny>> {
    let class = UPLOAD_CLASS.get_or_try_init(py, || {
        PyResult::Ok(
            py.import("spikard._upload")?
                .getattr("UploadFile")?
                .unbind(),
        )
    })?;
    let data = PyBytes::new(py, &file.data);
    class
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
        if obj.get_type().is(cached.uuid_class.bind(py)) {
            // A plain UUID: its text from its `int`, without a call of `UUID.__str__`.
            let int: u128 = obj
                .getattr(pyo3::intern!(py, "int"))
                .and_then(|i| i.extract())
                .map_err(S::Error::custom)?;
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let text = uuid::Uuid::from_u128(int)
                .hyphenated()
                .encode_lower(&mut text);
            return s.serialize_str(text);
        }
        // Dates, times and date-times by type check: asking other objects for `isoformat`
        // would raise (and format) an AttributeError each time.
        if obj.is_instance_of::<PyDate>() || obj.is_instance_of::<PyTime>() {
            let text = obj
                .call_method0(pyo3::intern!(py, "isoformat"))
                .map_err(S::Error::custom)?;
            return PyJson(&text, depth).serialize(s);
        }
        if obj.is_instance(cached.uuid_class.bind(py)).unwrap_or(false) {
            let text = obj.str().map_err(S::Error::custom)?;
            return PyJson(text.as_any(), depth).serialize(s);
        }
        // Structs, dataclasses and the like as plain values; failing that, anything with an
        // `isoformat` (date types of other libraries).
        let plain = cached
            .to_builtins
            .as_ref()
            .and_then(|to_builtins| to_builtins.bind(py).call1((obj,)).ok());
        if let Some(plain) = plain {
            return PyJson(&plain, depth).serialize(s);
        }
        if obj.hasattr(pyo3::intern!(py, "isoformat")).unwrap_or(false) {
            let text = obj
                .call_method0(pyo3::intern!(py, "isoformat"))
                .map_err(S::Error::custom)?;
            return PyJson(&text, depth).serialize(s);
        }
        Err(S::Error::custom(format!(
            "cannot encode {} as JSON",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )))
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
    fn uuids_are_built_and_encoded_as_the_uuid_module_does() {
        Python::initialize();
        Python::attach(|py| {
            let u = uuid::Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000 ^ 0x5a5a);
            let ours = value_to_py(py, Value::Uuid(u)).unwrap_or_else(|e| panic!("{e}"));
            let theirs = py
                .import("uuid")
                .and_then(|m| m.getattr("UUID"))
                .and_then(|c| c.call1((u.to_string(),)))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(ours.eq(&theirs).unwrap_or(false));
            assert!(ours.get_type().is(theirs.get_type()));
            assert_eq!(ours.str().map(|s| s.to_string()).ok(), Some(u.to_string()));
            let is_safe = |o: &Bound<'_, PyAny>| o.getattr("is_safe").map(|v| v.to_string()).ok();
            assert_eq!(is_safe(&ours), is_safe(&theirs));
            assert!(ours.setattr("int", 1).is_err(), "a UUID stays immutable");
            let list = PyList::new(py, [&ours, &theirs]).unwrap_or_else(|e| panic!("{e}"));
            let json = py_to_json(&list).unwrap_or_default();
            assert_eq!(json, format!("[\"{u}\",\"{u}\"]").into_bytes());
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
