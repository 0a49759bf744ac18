//! Conversions between Rust values and Python objects, in one place: engine [`Value`]s into
//! Python arguments, JSON bytes straight into Python objects (no `json.loads`), and Python
//! answers straight into JSON bytes.

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDict, PyFloat, PyInt, PyList,
    PyString, PyTime, PyTimeAccess, PyTuple, PyType, PyTzInfoAccess,
};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use spikard_core::Value;
use std::fmt;

/// Python objects looked up once per interpreter.
pub struct Cached {
    pub uuid_class: Py<PyType>,
    /// `uuid.SafeUUID.unknown`: a UUID is built the way `uuid.UUID(int=…)` builds it,
    /// without running its Python `__init__`.
    safe_unknown: Py<PyAny>,
    /// `msgspec.json.encode`, for answers that are (or hold) dataclasses, Structs and the like.
    pub encode: Option<Py<PyAny>>,
}

static CACHED: PyOnceLock<Cached> = PyOnceLock::new();

pub fn cached(py: Python<'_>) -> PyResult<&Cached> {
    CACHED.get_or_try_init(py, || {
        let uuid_module = py.import("uuid")?;
        let uuid_class = uuid_module.getattr("UUID")?.cast_into::<PyType>()?.unbind();
        let safe_unknown = uuid_module
            .getattr("SafeUUID")?
            .getattr("unknown")?
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
            safe_unknown,
            encode: lookup(&["json", "encode"]),
        })
    })
}

/// A finished engine value as a Python object.
pub fn value_to_py<'py>(py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Str(s) => str_to_py(py, &s)?,
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
            // SAFETY: PyList_New returns a new list of `len` empty (NULL) slots or NULL with
            // an exception set; each slot is filled once, in order, with a new reference it
            // takes over. Should a conversion fail, the list (its later slots still empty,
            // which list_dealloc allows) is dropped without having been seen by Python.
            let list = unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    pyo3::ffi::PyList_New(items.len() as pyo3::ffi::Py_ssize_t),
                )?
            };
            for (i, item) in items.into_iter().enumerate() {
                let item = value_to_py(py, item)?;
                // SAFETY: `i` < the list's length, the slot is still empty (see above).
                unsafe {
                    pyo3::ffi::PyList_SET_ITEM(
                        list.as_ptr(),
                        i as pyo3::ffi::Py_ssize_t,
                        item.into_ptr(),
                    )
                };
            }
            list
        }
        Value::File(file) => crate::upload::upload_to_py(py, *file)?.into_any(),
    })
}

/// A new list of `len` items, the `i`-th made by `item(i)`, in order; the first error is
/// returned and the list dropped.
pub(crate) fn filled_list<'py>(
    py: Python<'py>,
    len: usize,
    item: impl FnMut(usize) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: PyList_New and PyList_SET_ITEM are the pair `filled` asks for.
    unsafe {
        let list = filled(py, len, ffi::PyList_New, ffi::PyList_SET_ITEM, item)?;
        Ok(list.cast_into_unchecked())
    }
}

/// A new tuple of `len` items, the `i`-th made by `item(i)`, as [`filled_list`].
pub(crate) fn filled_tuple<'py>(
    py: Python<'py>,
    len: usize,
    item: impl FnMut(usize) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    // SAFETY: PyTuple_New and PyTuple_SET_ITEM are the pair `filled` asks for.
    unsafe {
        let tuple = filled(py, len, ffi::PyTuple_New, ffi::PyTuple_SET_ITEM, item)?;
        Ok(tuple.cast_into_unchecked())
    }
}

/// A container made by `new(len)` with its slots `0..len` set in order by `set` to what
/// `item` makes. Should `item` fail, the container, its later slots still NULL (which the
/// deallocation and the garbage collector's traversal of lists and tuples allow), is dropped
/// without having been returned to Python.
///
/// # Safety
///
/// `new` must return a new list or tuple of `len` NULL slots (or NULL with an exception set)
/// and `set` must store a new reference in one of its slots, taking it over.
unsafe fn filled<'py>(
    py: Python<'py>,
    len: usize,
    new: unsafe extern "C" fn(ffi::Py_ssize_t) -> *mut ffi::PyObject,
    set: unsafe fn(*mut ffi::PyObject, ffi::Py_ssize_t, *mut ffi::PyObject),
    mut item: impl FnMut(usize) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let container = Bound::from_owned_ptr_or_err(py, new(len as ffi::Py_ssize_t))?;
    for i in 0..len {
        let value = item(i)?;
        set(container.as_ptr(), i as ffi::Py_ssize_t, value.into_ptr());
    }
    Ok(container)
}

/// A Python `str` of `text`: ASCII text (most parameter values) is copied straight into a
/// new compact string, without UTF-8 decoding; other text is laid out by [`unicode_to_py`].
fn str_to_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    if !text.is_ascii() {
        return unicode_to_py(py, text);
    }
    // SAFETY: the GIL is held; `PyUnicode_New(n, 127)` returns a compact ASCII string with
    // room for `n` one-byte characters, or NULL with an exception set; it is filled before
    // anything else sees it, and `text` is ASCII, as asked.
    unsafe {
        let obj = pyo3::ffi::PyUnicode_New(text.len() as pyo3::ffi::Py_ssize_t, 127);
        if !obj.is_null() {
            let data = pyo3::ffi::PyUnicode_DATA(obj).cast::<u8>();
            std::ptr::copy_nonoverlapping(text.as_ptr(), data, text.len());
        }
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// A Python `str` of non-ASCII `text`, written as the units of the narrowest kind its
/// largest character fits (one, two or four bytes), as CPython's own decoder lays it out, but
/// without its general machinery: one pass to count the characters and find the largest,
/// one to write them. `text` is valid UTF-8, so it holds no surrogate.
fn unicode_to_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let (count, max) = text
        .chars()
        .fold((0usize, 0u32), |(n, max), c| (n + 1, max.max(c as u32)));
    // SAFETY: the GIL is held; `PyUnicode_New(count, max)` returns a compact string of
    // `count` units of the kind `max` needs (1 byte up to U+00FF, 2 up to U+FFFF, else 4),
    // or NULL with an exception set; every unit is written, each character fitting its
    // kind, before anything else sees it. `max` is the text's largest character, so the
    // string is in CPython's canonical form.
    unsafe {
        let obj = pyo3::ffi::PyUnicode_New(count as pyo3::ffi::Py_ssize_t, max as _);
        if !obj.is_null() {
            let data = pyo3::ffi::PyUnicode_DATA(obj);
            if max < 0x100 {
                fill_units(data.cast::<u8>(), text, |c| c as u8);
            } else if max < 0x1_0000 {
                fill_units(data.cast::<u16>(), text, |c| c as u16);
            } else {
                fill_units(data.cast::<u32>(), text, |c| c as u32);
            }
        }
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// Writes `text`'s characters, each made a unit by `unit`, from `units` on.
///
/// # Safety
///
/// `units` must have room for as many units as `text` has characters, each of which
/// `unit` turns into a unit without loss.
unsafe fn fill_units<T>(units: *mut T, text: &str, unit: impl Fn(char) -> T) {
    for (i, c) in text.chars().enumerate() {
        units.add(i).write(unit(c));
    }
}

/// A `uuid.UUID` with the slots `uuid.UUID(int=…)` sets (`int`, `is_safe`), set directly:
/// `UUID.__setattr__` refuses every assignment, so the generic setter is used, as
/// `__init__`'s own `object.__setattr__` does. The object is allocated by the class's
/// `tp_alloc`, which is all `object.__new__(UUID)` does for a class that is not abstract,
/// without the call's argument tuple.
pub fn uuid_to_py<'py>(py: Python<'py>, u: uuid::Uuid) -> PyResult<Bound<'py, PyAny>> {
    let cached = cached(py)?;
    let ty = cached.uuid_class.bind(py).as_type_ptr();
    // SAFETY: `ty` is a live type object; its `tp_alloc` (inherited from `object`, filled in
    // by `PyType_Ready`) returns a new reference or NULL with an exception set.
    let obj = unsafe {
        let alloc = (*ty).tp_alloc.unwrap_or(pyo3::ffi::PyType_GenericAlloc);
        Bound::from_owned_ptr_or_err(py, alloc(ty, 0))?
    };
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
/// through `msgspec.json.encode`, as a record answered on its own is.
///
/// Values nested deeper than [`MAX_ANSWER_DEPTH`] are refused (an error, not a stack overflow).
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    py_to_json_in(obj, 512)
}

/// [`py_to_json`] into a buffer that starts with room for `capacity` bytes.
pub fn py_to_json_in(obj: &Bound<'_, PyAny>, capacity: usize) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    write_json(&mut out, obj, 0)?;
    Ok(out)
}

/// The deepest nesting of lists, tuples and dicts an answer may have.
pub const MAX_ANSWER_DEPTH: usize = 1000;

/// Appends `obj` as JSON to `out` (see [`py_to_json`]); `depth`: how deep `obj` sits.
pub fn write_json(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    // The thread's key cache for the whole walk of a list or of a dict of a few keys (for one
    // or two, reaching the cache costs what it saves); a walk that starts inside another
    // (Python code the walk runs, encoding an answer of its own) goes without it.
    let ptr = obj.as_ptr();
    // SAFETY: `ptr` is a live object; a dict's `ma_used` is its number of items.
    let keyed = unsafe {
        if pyo3::ffi::PyDict_Check(ptr) != 0 {
            (*ptr.cast::<pyo3::ffi::PyDictObject>()).ma_used >= 4
        } else {
            pyo3::ffi::PyList_Check(ptr) != 0
        }
    };
    if !keyed {
        return encode(out, obj, depth, None);
    }
    KEYS.with(|keys| match keys.try_borrow_mut() {
        Ok(mut keys) => {
            let keys = keys.get_or_insert_with(KeyCache::new);
            encode(out, obj, depth, Some(keys))
        }
        Err(_) => encode(out, obj, depth, None),
    })
}

/// [`write_json`] with the key cache, if the walk has it.
fn encode(
    out: &mut Vec<u8>,
    obj: &Bound<'_, PyAny>,
    depth: usize,
    keys: Option<&mut KeyCache>,
) -> PyResult<()> {
    let depth = depth + 1;
    if depth > MAX_ANSWER_DEPTH {
        return Err(too_deep());
    }
    if let Ok(text) = obj.cast_exact::<PyString>() {
        write_str(out, text_of(text)?);
        return Ok(());
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return encode_dict(out, dict, depth, keys);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return write_items(out, list.iter(), depth, keys);
    }
    if obj.is_none() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
        return Ok(());
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return match i.extract::<i64>() {
            Ok(v) => write_number(out, v),
            Err(_) => write_number(out, i.extract::<u64>()?),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        // Not finite: `null`, as serde_json and msgspec write it.
        return write_float(out, f.value());
    }
    encode_other(out, obj, depth, keys)
}

#[cold]
#[inline(never)]
fn too_deep() -> PyErr {
    PyValueError::new_err(format!(
        "the answer nests lists and dicts deeper than {MAX_ANSWER_DEPTH} levels"
    ))
}

/// [`encode`] for the kinds an answer holds less often: tuples, UUIDs, dates and times,
/// Structs and dataclasses (through msgspec), anything with an `isoformat`; out of line like
/// [`encode_dict`].
#[inline(never)]
fn encode_other(
    out: &mut Vec<u8>,
    obj: &Bound<'_, PyAny>,
    depth: usize,
    keys: Option<&mut KeyCache>,
) -> PyResult<()> {
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return write_items(out, tuple.iter(), depth, keys);
    }
    if obj.cast::<PyBytes>().is_ok() || obj.cast::<PyByteArray>().is_ok() {
        return Err(PyValueError::new_err("bytes cannot be encoded as JSON"));
    }
    let py = obj.py();
    let cached = cached(py)?;
    if obj.get_type().is(cached.uuid_class.bind(py)) {
        // A plain UUID: its text from its `int`, without a call of `UUID.__str__`.
        let int: u128 = obj.getattr(pyo3::intern!(py, "int"))?.extract()?;
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid::Uuid::from_u128(int)
            .hyphenated()
            .encode_lower(&mut text);
        write_str(out, text);
        return Ok(());
    }
    // The datetime module's own dates, and its date-times and times without a `tzinfo`:
    // written from their fields as `isoformat` writes them, without its call and the
    // `printf` formatting behind it.
    if write_iso(out, obj) {
        return Ok(());
    }
    // Other dates, times and date-times by type check: asking other objects for `isoformat`
    // would raise (and format) an AttributeError each time.
    if obj.is_instance_of::<PyDate>() || obj.is_instance_of::<PyTime>() {
        let text = obj.call_method0(pyo3::intern!(py, "isoformat"))?;
        return encode(out, &text, depth, keys);
    }
    if obj
        .is_instance(cached.uuid_class.bind(py).as_any())
        .unwrap_or(false)
    {
        return encode(out, obj.str()?.as_any(), depth, keys);
    }
    // Structs, dataclasses and the like: msgspec writes them in C in one call, and its bytes
    // go into the answer as they are; failing that, anything with an `isoformat` (date types
    // of other libraries).
    let encoded = cached
        .encode
        .as_ref()
        .and_then(|encode| encode.bind(py).call1((obj,)).ok());
    if let Some(bytes) = encoded.as_ref().and_then(|e| e.cast::<PyBytes>().ok()) {
        out.extend_from_slice(bytes.as_bytes());
        return Ok(());
    }
    if obj.hasattr(pyo3::intern!(py, "isoformat")).unwrap_or(false) {
        let text = obj.call_method0(pyo3::intern!(py, "isoformat"))?;
        return encode(out, &text, depth, keys);
    }
    Err(PyValueError::new_err(format!(
        "cannot encode {} as JSON",
        obj.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    )))
}

/// `obj.isoformat()` as a JSON string, for an exact `datetime.date`, and an exact
/// `datetime.datetime` or `datetime.time` without a `tzinfo` (whose `isoformat` would ask it
/// for its offset); false, with nothing written, for anything else. `YYYY-MM-DD`,
/// `HH:MM:SS` and the two joined by `T`, with `.ffffff` when the microseconds are not zero,
/// as `isoformat()` writes them.
fn write_iso(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> bool {
    fn date(text: &mut [u8], year: i32, month: u8, day: u8) -> usize {
        // `isoformat` writes the year with `%04d`; a date's year is 1..=9999.
        let year = year.clamp(0, 9999) as u32;
        digits(&mut text[..4], year);
        text[4] = b'-';
        digits(&mut text[5..7], u32::from(month));
        text[7] = b'-';
        digits(&mut text[8..10], u32::from(day));
        10
    }
    fn time(text: &mut [u8], hour: u8, minute: u8, second: u8, micro: u32) -> usize {
        digits(&mut text[..2], u32::from(hour));
        text[2] = b':';
        digits(&mut text[3..5], u32::from(minute));
        text[5] = b':';
        digits(&mut text[6..8], u32::from(second));
        if micro == 0 {
            return 8;
        }
        text[8] = b'.';
        digits(&mut text[9..15], micro);
        15
    }
    // The last `text.len()` decimal digits of `n`, zero-padded.
    fn digits(text: &mut [u8], mut n: u32) {
        for digit in text.iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    // "YYYY-MM-DDTHH:MM:SS.ffffff" and its quotes.
    let mut text = [0u8; 28];
    text[0] = b'"';
    let len = if obj.is_exact_instance_of::<PyDate>() {
        // SAFETY: checked just above.
        let d = unsafe { obj.cast_unchecked::<PyDate>() };
        date(&mut text[1..], d.get_year(), d.get_month(), d.get_day())
    } else if obj.is_exact_instance_of::<PyDateTime>() {
        // SAFETY: checked just above.
        let dt = unsafe { obj.cast_unchecked::<PyDateTime>() };
        if dt.get_tzinfo().is_some() {
            return false;
        }
        let n = date(&mut text[1..], dt.get_year(), dt.get_month(), dt.get_day());
        text[1 + n] = b'T';
        let t = &mut text[2 + n..];
        n + 1
            + time(
                t,
                dt.get_hour(),
                dt.get_minute(),
                dt.get_second(),
                dt.get_microsecond(),
            )
    } else if obj.is_exact_instance_of::<PyTime>() {
        // SAFETY: checked just above.
        let t = unsafe { obj.cast_unchecked::<PyTime>() };
        if t.get_tzinfo().is_some() {
            return false;
        }
        time(
            &mut text[1..],
            t.get_hour(),
            t.get_minute(),
            t.get_second(),
            t.get_microsecond(),
        )
    } else {
        return false;
    };
    text[1 + len] = b'"';
    out.extend_from_slice(&text[..len + 2]);
    true
}

/// A dict as a JSON object (see [`encode`]): out of line, so that the stack each level of
/// nesting takes stays small, in debug builds too.
#[inline(never)]
fn encode_dict(
    out: &mut Vec<u8>,
    dict: &Bound<'_, PyDict>,
    depth: usize,
    mut keys: Option<&mut KeyCache>,
) -> PyResult<()> {
    out.push(b'{');
    let py = dict.py();
    let mut pos: pyo3::ffi::Py_ssize_t = 0;
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    let mut first = true;
    // SAFETY: `dict` is a live dict and the GIL is held; PyDict_Next hands out borrowed
    // references, valid while no Python code runs (which could change the dict), and it
    // stays memory-safe when the dict changes. The key is written (which runs no Python
    // code; an error ends the walk) before its value; a value whose encoding could run
    // Python code (anything but those of `is_plain`) gets a new reference first.
    while unsafe { pyo3::ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) } != 0 {
        let key = unsafe { pyo3::Borrowed::from_ptr(py, key) };
        if !first {
            out.push(b',');
        }
        first = false;
        let key = key
            .cast::<PyString>()
            .map_err(|_| PyValueError::new_err("JSON object keys must be strings"))?;
        match keys.as_deref_mut() {
            Some(cache) => cache.write(out, &key)?,
            None => write_key(out, &key)?,
        }
        let value = unsafe { pyo3::Borrowed::from_ptr(py, value) };
        if let Some(n) = exact_int(value.as_ptr()) {
            write_int(out, n);
        } else if is_plain(value.as_ptr()) {
            encode(out, &value, depth, keys.as_deref_mut())?;
        } else {
            encode(out, &value.to_owned(), depth, keys.as_deref_mut())?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// The value of `obj` when it is exactly an `int` that fits an `i64`: read without a
/// reference taken or the type checks of [`encode`] (the usual value of an answer's ids and
/// counts). A subclass, or an `int` beyond `i64`, goes through [`encode`].
#[inline(always)]
pub(crate) fn exact_int(obj: *mut pyo3::ffi::PyObject) -> Option<i64> {
    // SAFETY: `obj` is a live object and the GIL is held. For an exact int,
    // PyLong_AsLongLongAndOverflow calls no Python code and sets no exception: a value out
    // of range only sets `overflow`.
    unsafe {
        if pyo3::ffi::Py_TYPE(obj) != std::ptr::addr_of_mut!(pyo3::ffi::PyLong_Type) {
            return None;
        }
        let mut overflow = 0;
        let n = pyo3::ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
        (overflow == 0).then_some(n)
    }
}

/// An integer in decimal.
#[inline(always)]
fn write_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Whether `obj` is exactly a str, float, bool or None: encoding one runs no Python code and
/// allocates no Python object (so no garbage collection, which can run finalizers, starts
/// either), except for a str that cannot be encoded, whose error ends the walk. (An int can
/// raise and go on: one beyond `i64` is tried as `u64`.)
#[inline(always)]
fn is_plain(obj: *mut pyo3::ffi::PyObject) -> bool {
    // SAFETY: `obj` is a live object; only its type is read and compared with the builtins'.
    unsafe {
        let ty = pyo3::ffi::Py_TYPE(obj);
        ty == std::ptr::addr_of_mut!(pyo3::ffi::PyUnicode_Type)
            || ty == std::ptr::addr_of_mut!(pyo3::ffi::PyFloat_Type)
            || ty == std::ptr::addr_of_mut!(pyo3::ffi::PyBool_Type)
            || obj == pyo3::ffi::Py_None()
    }
}

/// The text of a `str`: a compact ASCII string's characters read in place (the usual case for
/// keys and values of an answer), any other string as its UTF-8 form (which CPython builds
/// once and keeps).
fn text_of<'a>(text: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    let ptr = text.as_ptr();
    // SAFETY: `ptr` is a live str (the borrow of `text` keeps it alive for 'a); a compact
    // ASCII string holds its `length` one-byte characters at `PyUnicode_DATA`, all ASCII and
    // so valid UTF-8, and a str is immutable.
    unsafe {
        if pyo3::ffi::PyUnicode_IS_COMPACT_ASCII(ptr) != 0 {
            let data = pyo3::ffi::PyUnicode_DATA(ptr).cast::<u8>();
            let len = pyo3::ffi::PyUnicode_GET_LENGTH(ptr) as usize;
            return Ok(std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                data, len,
            )));
        }
    }
    text.to_str()
}

/// The UTF-8 form of a `str` as a new `String`, for a text answer: a compact ASCII string's
/// characters copied as they are, a Latin-1 or two-byte one encoded from its units by
/// encoding_rs, without CPython building (and keeping with the string) a UTF-8 copy of its own
/// to copy from. A string of four-byte units, or with a surrogate (which has no UTF-8 form:
/// CPython's error), goes through CPython.
pub(crate) fn utf8_owned(text: &Bound<'_, PyString>) -> PyResult<String> {
    // SAFETY: a live str (the borrow of `text` keeps it alive), immutable.
    match unsafe { compact_utf8(text.as_ptr()) } {
        // SAFETY: encoding_rs writes UTF-8; the two-byte units held no surrogate to replace.
        Some(bytes) => Ok(unsafe { String::from_utf8_unchecked(bytes) }),
        None => Ok(text.to_str()?.to_owned()),
    }
}

/// The UTF-8 of the str at `ptr` for [`utf8_owned`], or None where CPython is to make it.
///
/// # Safety
///
/// `ptr` is a live str.
unsafe fn compact_utf8(ptr: *mut ffi::PyObject) -> Option<Vec<u8>> {
    if ffi::PyUnicode_IS_COMPACT(ptr) == 0 {
        return None;
    }
    // A compact string holds `length` units of `kind` bytes each at `PyUnicode_DATA`, and an
    // ASCII one's units are its UTF-8.
    let data = ffi::PyUnicode_DATA(ptr);
    let len = ffi::PyUnicode_GET_LENGTH(ptr) as usize;
    if ffi::PyUnicode_IS_ASCII(ptr) != 0 {
        return Some(std::slice::from_raw_parts(data.cast::<u8>(), len).to_vec());
    }
    match ffi::PyUnicode_KIND(ptr) {
        ffi::PyUnicode_1BYTE_KIND => {
            let units = std::slice::from_raw_parts(data.cast::<u8>(), len);
            Some(encoded(2 * len, |out| {
                encoding_rs::mem::convert_latin1_to_utf8(units, out)
            }))
        }
        ffi::PyUnicode_2BYTE_KIND => {
            let units = std::slice::from_raw_parts(data.cast::<u16>(), len);
            if units
                .iter()
                .fold(false, |any, &u| any | (u & 0xF800 == 0xD800))
            {
                return None;
            }
            Some(encoded(3 * len, |out| {
                encoding_rs::mem::convert_utf16_to_utf8(units, out)
            }))
        }
        _ => None,
    }
}

/// What `convert` writes into a buffer of `room` bytes (the most it may write) and says it
/// wrote; the buffer is given back to the allocator where it was far too large.
fn encoded(room: usize, convert: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
    let mut out = vec![0; room];
    let written = convert(&mut out);
    out.truncate(written);
    if room - written > 4096 {
        out.shrink_to_fit();
    }
    out
}

/// A dict's key and its colon.
#[inline(always)]
fn write_key(out: &mut Vec<u8>, key: &Bound<'_, PyString>) -> PyResult<()> {
    write_str(out, text_of(key)?);
    out.push(b':');
    Ok(())
}

/// How many pairs of keys a thread's [`KeyCache`] holds, and the longest JSON form
/// (`"key":`) it keeps.
const KEY_BUCKETS: usize = 256;
const KEY_BYTES: usize = 32;

thread_local! {
    // Boxed: an extension module's thread-locals live in the little static TLS space that
    // the dynamic loader sets aside for libraries loaded later.
    static KEYS: std::cell::RefCell<Option<Box<KeyCache>>> = const { std::cell::RefCell::new(None) };
}

/// Answer keys already written as JSON, by object: the keys of a dict display in a handler
/// (`{"id": …, "name": …}`) are the same interned `str` objects on every call, so each is
/// escaped and copied once and afterwards written as one fixed-size copy. Only interned
/// strings are kept (a key built per request would only push the others out), each with a
/// reference, so no other object can come to live at its address while it is cached; a `str`
/// never changes. Two keys per bucket of addresses, the newer first.
pub struct KeyCache {
    buckets: [[Option<CachedKey>; 2]; KEY_BUCKETS],
}

struct CachedKey {
    key: Py<PyString>,
    len: usize,
    json: [u8; KEY_BYTES],
}

impl KeyCache {
    fn new() -> Box<KeyCache> {
        Box::new(KeyCache {
            buckets: [const { [None, None] }; KEY_BUCKETS],
        })
    }

    /// Appends `key` and its colon.
    #[inline(always)]
    fn write(&mut self, out: &mut Vec<u8>, key: &Bound<'_, PyString>) -> PyResult<()> {
        let ptr = key.as_ptr();
        // SAFETY: `ptr` is a live str; this reads its state bits.
        let interned = unsafe { (*ptr.cast::<pyo3::ffi::PyASCIIObject>()).interned() } != 0;
        if !interned {
            return write_key(out, key);
        }
        // Objects are 16-byte aligned; Fibonacci hashing spreads the rest of the address.
        let hash = ((ptr as usize >> 4) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bucket = &mut self.buckets[(hash >> 56) as usize % KEY_BUCKETS];
        for cached in bucket.iter().flatten() {
            if cached.key.as_ptr() == ptr {
                out.reserve(KEY_BYTES);
                let len = out.len();
                // SAFETY: the reserve leaves room for KEY_BYTES bytes after `len`, of which
                // the first `cached.len` (at most KEY_BYTES) are the key's, set before the
                // length covers them.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        cached.json.as_ptr(),
                        out.as_mut_ptr().add(len),
                        KEY_BYTES,
                    );
                    out.set_len(len + cached.len);
                }
                return Ok(());
            }
        }
        let start = out.len();
        write_key(out, key)?;
        let written = &out[start..];
        if written.len() <= KEY_BYTES {
            let mut json = [0u8; KEY_BYTES];
            json[..written.len()].copy_from_slice(written);
            bucket.swap(0, 1);
            bucket[0] = Some(CachedKey {
                key: key.clone().unbind(),
                len: written.len(),
                json,
            });
        }
        Ok(())
    }
}

fn write_items<'py>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
    mut keys: Option<&mut KeyCache>,
) -> PyResult<()> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match exact_int(item.as_ptr()) {
            Some(n) => write_int(out, n),
            None => encode(out, &item, depth, keys.as_deref_mut())?,
        }
    }
    out.push(b']');
    Ok(())
}

/// A number as serde_json writes it (shortest round-trip floats; `null` when not finite).
fn write_number<N: Serialize>(out: &mut Vec<u8>, n: N) -> PyResult<()> {
    serde_json::to_writer(out, &n).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A float as Python's `repr` (and so `json.dumps`) writes it: the shortest digits that read
/// back as the same double, as serde_json writes them, except below 1e-4, where Python
/// switches to an exponent of at least two digits (`1e-05`) and serde_json does not
/// (`0.00001`, `1.5e-7`); `null` when not finite, as serde_json and msgspec write it.
fn write_float(out: &mut Vec<u8>, f: f64) -> PyResult<()> {
    if f == 0.0 || f.abs() >= 1e-4 || !f.is_finite() {
        return write_number(out, f);
    }
    use std::io::Write;
    let text = format!("{f:e}");
    let (digits, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, exponent) = match exponent.strip_prefix('-') {
        Some(exponent) => ("-", exponent),
        None => ("+", exponent),
    };
    write!(out, "{digits}e{sign}{exponent:0>2}").map_err(|e| PyValueError::new_err(e.to_string()))
}

/// What a byte of a JSON string becomes: 0 itself, `u` a `\u00XX` escape, else the letter
/// after the backslash (serde_json's table).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// `b` in every byte of a word.
const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// Whether a byte of the word `w` is below 0x20, `"` or `\\`: the bytes [`ESCAPE`] names
/// (the classic "has a zero byte" / "has a byte less than n" tests, exact for whether any
/// byte matches).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(splat(1)) & !v;
    let control = w.wrapping_sub(splat(0x20)) & !w;
    let quote = has_zero(w ^ splat(b'"'));
    let backslash = has_zero(w ^ splat(b'\\'));
    (control | quote | backslash) & splat(0x80) != 0
}

/// Where the first byte of `bytes` that needs an escape is, looked for eight at a time.
#[inline]
fn first_escape(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if word_needs_escape(u64::from_le_bytes(w)) {
            break;
        }
        i += 8;
    }
    // The byte is within the next eight, or the tail is shorter than a word.
    (i..bytes.len()).find(|&j| ESCAPE[bytes[j] as usize] != 0)
}

/// A JSON string: text without anything to escape (nearly every key and value of an answer)
/// in one copy between its quotes, inline in the walk; otherwise see [`write_escaped`].
#[inline(always)]
fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if let Some(first) = first_escape(bytes) {
        return write_escaped(out, bytes, first);
    }
    out.reserve(bytes.len() + 2);
    let len = out.len();
    // SAFETY: the reserve above leaves room for the quotes and the text after `len`, and
    // every byte up to the new length is written before it is set.
    unsafe {
        let end = out.as_mut_ptr().add(len);
        *end = b'"';
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), end.add(1), bytes.len());
        *end.add(bytes.len() + 1) = b'"';
        out.set_len(len + bytes.len() + 2);
    }
}

/// A JSON string whose byte `first` needs an escape: runs of plain bytes copied whole, `"`,
/// `\\` and control characters escaped.
#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], first: usize) {
    out.reserve(bytes.len() + 8);
    out.push(b'"');
    let mut start = 0;
    let mut i = first;
    loop {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        let escape = ESCAPE[b as usize];
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
        match first_escape(&bytes[start..]) {
            Some(next) => i = start + next,
            None => break,
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{global, run};

    /// Every ASCII character and a few longer ones, at every position of strings of 0 to 39
    /// characters, alone and followed by more characters to escape, written after other
    /// output, against serde_json's escaping.
    #[test]
    fn strings_escape_as_serde_json_does() {
        let specials: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain(['é', '速', '😀', '\u{7f}', '\u{2028}'])
            .collect();
        for len in 0..40 {
            for pos in 0..len.max(1) {
                for &c in &specials {
                    // `c` at `pos`, and then also a quote and a newline further on.
                    let plain = |i: usize| (b'a' + (i % 26) as u8) as char;
                    let one: String = (0..len)
                        .map(|i| if i == pos { c } else { plain(i) })
                        .collect();
                    let more: String = (0..len)
                        .map(|i| match i {
                            _ if i == pos => c,
                            _ if i == pos + 9 => '"',
                            _ if i + 1 == len && i > pos => '\n',
                            _ => plain(i),
                        })
                        .collect();
                    for text in [one, more] {
                        let mut ours = b"[".to_vec();
                        write_str(&mut ours, &text);
                        let theirs = serde_json::to_string(&text).unwrap_or_default();
                        assert_eq!(String::from_utf8_lossy(&ours[1..]), theirs, "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn text_values_become_equal_python_strings() {
        Python::initialize();
        Python::attach(|py| {
            for text in [
                "",
                "a",
                "hello world!",
                "x".repeat(300).as_str(),
                "é",
                "速さ 1",
                "a😀",
            ] {
                let obj =
                    value_to_py(py, Value::Str(text.to_owned())).unwrap_or_else(|e| panic!("{e}"));
                let s = obj.cast::<PyString>().unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(s.to_str().unwrap_or_default(), text);
                assert_eq!(s.len().unwrap_or_default(), text.chars().count());
                let equal = s.as_any().eq(PyString::new(py, text)).unwrap_or(false);
                assert!(equal, "{text:?}");
                let hashes = (s.hash().ok(), PyString::new(py, text).hash().ok());
                assert_eq!(hashes.0, hashes.1, "{text:?}");
            }
        });
    }

    /// Keys and values of every kind of str (ASCII, Latin-1, two-byte, astral, empty, escaped,
    /// built by slicing and by concatenation; keys also of a str subclass) encode as
    /// `json.dumps` writes them; parameter values become lists of the right length and order.
    #[test]
    fn answer_strings_encode_as_json_dumps_does() {
        Python::initialize();
        Python::attach(|py| {
            let code = c"class S(str): pass\n\
values = ['', 'plain', 'caf\\u00e9', '\\u901f\\u3055', 'a\\U0001f600', 'tab\\there', 'q\"uote',\n\
          'x' * 300, ('prefix-' + 'y' * 40)[3:], 'ab' + 'c\\u00e9']\n\
answer = {v: [v, {v: v}] for v in values}\n\
answer[S('key')] = 'value'\n\
answer[S('k\\u00e9y')] = 1\n";
            let globals = PyDict::new(py);
            run(&globals, code);
            let answer = global(&globals, "answer");
            let ours = py_to_json(&answer).unwrap_or_else(|e| panic!("{e}"));
            let dumps = py
                .import("json")
                .and_then(|json| {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("ensure_ascii", false)?;
                    kwargs.set_item("separators", (",", ":"))?;
                    json.call_method("dumps", (&answer,), Some(&kwargs))
                })
                .and_then(|text| text.extract::<String>())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(String::from_utf8_lossy(&ours), dumps);

            let values = vec![
                Value::Str("a".into()),
                Value::Int(-7),
                Value::Str("\u{e9}".into()),
                Value::Null,
            ];
            let list = value_to_py(py, Value::List(values)).unwrap_or_else(|e| panic!("{e}"));
            let json = py_to_json(&list).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(String::from_utf8_lossy(&json), "[\"a\",-7,\"\u{e9}\",null]");
            let empty = value_to_py(py, Value::List(vec![])).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(empty.len().unwrap_or(1), 0);
        });
    }

    /// Interned keys (the cached ones: short, long, escaped, non-ASCII, thousands of them so
    /// that they push each other out), equal keys that are other objects, and keys interned
    /// after earlier ones were dropped, encode as `json.dumps` writes them, every time.
    #[test]
    fn cached_keys_encode_as_json_dumps_does() {
        Python::initialize();
        Python::attach(|py| {
            let code = cr#"
import json, sys
keys = [sys.intern(f'key_{i}') for i in range(3000)]
keys += [sys.intern(k) for k in ('', 'q"uote', 'x' * 40, 'y' * 29, 'z' * 30, '\u00e9t\u00e9')]
def answers():
    for j in range(1, 40):
        yield {k: [j, k] for k in keys[j::j * 7]}
    yield {''.join(['key_', '1']): 1, 'key_1' + '': 2, str(10 ** 20): 3}
    yield {sys.intern(f'later_{i}'): {sys.intern('inner'): i} for i in range(50)}
expected = [json.dumps(a, ensure_ascii=False, separators=(',', ':')) for a in answers()]
"#;
            let globals = PyDict::new(py);
            run(&globals, code);
            let expected: Vec<String> = global(&globals, "expected").extract().unwrap_or_default();
            assert_eq!(expected.len(), 41);
            for round in 0..3 {
                let answers = global(&globals, "answers")
                    .call0()
                    .unwrap_or_else(|e| panic!("{e}"));
                let answers = answers.try_iter().unwrap_or_else(|e| panic!("{e}"));
                for (answer, expected) in answers.zip(&expected) {
                    let answer = answer.unwrap_or_else(|e| panic!("{e}"));
                    let ours = py_to_json(&answer).unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(&String::from_utf8_lossy(&ours), expected, "round {round}");
                }
            }
        });
    }

    /// An answer whose encoding runs Python code that encodes another answer: the inner walk
    /// goes without the cache the outer one holds, and both come out right.
    #[test]
    fn a_walk_within_a_walk_encodes_both() {
        Python::initialize();
        Python::attach(|py| {
            let encode = pyo3::types::PyCFunction::new_closure(py, None, None, |args, _| {
                let obj = args.get_item(0)?;
                let json = py_to_json(&obj)?;
                Ok::<_, PyErr>(String::from_utf8_lossy(&json).into_owned())
            })
            .unwrap_or_else(|e| panic!("{e}"));
            let globals = PyDict::new(py);
            globals
                .set_item("encode", encode)
                .unwrap_or_else(|e| panic!("{e}"));
            let code = cr#"
class Stamp:
    def __init__(self, n):
        self.n = n
    def isoformat(self):
        return encode({'inner': [self.n, 'x'], 'key': self.n})
answer = {'outer': Stamp(1), 'key': 3, 'more': [{'key': Stamp(2)}]}
"#;
            run(&globals, code);
            let answer = global(&globals, "answer");
            for _ in 0..2 {
                let ours = py_to_json(&answer).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    r#"{"outer":"{\"inner\":[1,\"x\"],\"key\":1}","key":3,"more":[{"key":"{\"inner\":[2,\"x\"],\"key\":2}"}]}"#
                );
            }
        });
    }

    /// Non-ASCII parameter text comes out as the `str` CPython's decoder makes of it: the
    /// same characters in the same kind of string (strings of different kinds never compare
    /// equal), for text whose largest character needs one, two or four bytes.
    #[test]
    fn parameter_text_is_the_str_python_makes() {
        Python::initialize();
        Python::attach(|py| {
            let code = cr#"
import random, sys
rng = random.Random(1208)
ranges = [(0x80, 0xFF), (0x100, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF), (0x20, 0x7E)]
texts = ['\u00e9', 'caf\u00e9s', '\u20ac', '\U0001f600', 'a\U0001f600\u00e9', '\u00ff', '\u0100', '\uffff',
         '\U00010000', '\U0010ffff', '\u00e9' * 300]
for _ in range(3000):
    picks = rng.sample(ranges, rng.randint(1, 3))
    texts.append(''.join(chr(rng.randint(*rng.choice(picks))) for _ in range(rng.randint(1, 40))))
texts = [t for t in texts if not t.isascii()]
sizes = [sys.getsizeof(t) for t in texts]
"#;
            let globals = PyDict::new(py);
            run(&globals, code);
            let texts = global(&globals, "texts");
            let sizes = global(&globals, "sizes");
            let getsizeof = py
                .import("sys")
                .and_then(|sys| sys.getattr("getsizeof"))
                .unwrap_or_else(|e| panic!("{e}"));
            let count = texts.len().unwrap_or(0);
            assert!(count > 2500, "{count}");
            for i in 0..count {
                let theirs = texts.get_item(i).unwrap_or_else(|e| panic!("{e}"));
                let text: String = theirs.extract().unwrap_or_else(|e| panic!("{e}"));
                let ours =
                    value_to_py(py, Value::Str(text.clone())).unwrap_or_else(|e| panic!("{e}"));
                assert!(ours.eq(&theirs).unwrap_or(false), "{text:?}");
                let size = getsizeof
                    .call1((&ours,))
                    .and_then(|s| s.extract::<usize>())
                    .ok();
                let expected = sizes.get_item(i).and_then(|s| s.extract::<usize>()).ok();
                assert_eq!(size, expected, "{text:?}");
            }
        });
    }

    /// Dates, date-times and times written from their fields read as `isoformat()` does; a
    /// subclass's own `isoformat` and an aware value's offset still count.
    #[test]
    fn dates_and_times_are_written_as_isoformat_writes_them() {
        Python::initialize();
        Python::attach(|py| {
            let code = cr#"
import datetime as dt, json, random
rng = random.Random(20261208)
class Day(dt.date):
    def isoformat(self):
        return 'day ' + super().isoformat()
zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
values = [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(999, 3, 4),
          dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
          dt.datetime(2024, 2, 29, 0, 0, 0, 1), dt.time(0, 0), dt.time(23, 59, 59, 999999),
          dt.time(7, 8, 9, 10), dt.datetime(2024, 5, 6, 7, 8, 9, fold=1),
          dt.datetime(2024, 5, 6, 7, 8, 9, 500, tzinfo=zone), dt.time(1, 2, 3, tzinfo=dt.timezone.utc),
          Day(2024, 1, 15)]
for _ in range(2000):
    day = dt.date.fromordinal(rng.randrange(1, dt.date.max.toordinal() + 1))
    micro = rng.choice([0, rng.randrange(1, 1000000)])
    moment = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60), micro))
    values += [day, moment, moment.time()]
answer = {'values': values, 'day': values[0]}
expected = json.dumps({'values': [v.isoformat() for v in values], 'day': values[0].isoformat()},
                      separators=(',', ':'))
"#;
            let globals = PyDict::new(py);
            run(&globals, code);
            let ours = py_to_json(&global(&globals, "answer")).unwrap_or_else(|e| panic!("{e}"));
            let expected: String = global(&globals, "expected").extract().unwrap_or_default();
            assert!(expected.contains("\"day 2024-01-15\"") && expected.contains("+05:30"));
            assert_eq!(String::from_utf8_lossy(&ours), expected);
        });
    }

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
            let tracked = |o: &Bound<'_, PyAny>| {
                py.import("gc")
                    .and_then(|gc| gc.call_method1("is_tracked", (o,)))
                    .map(|t| t.to_string())
                    .ok()
            };
            assert_eq!(tracked(&ours), tracked(&theirs));
            assert_eq!(tracked(&ours).as_deref(), Some("True"));
            let list = PyList::new(py, [&ours, &theirs]).unwrap_or_else(|e| panic!("{e}"));
            let json = py_to_json(&list).unwrap_or_default();
            assert_eq!(json, format!("[\"{u}\",\"{u}\"]").into_bytes());
        });
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        Python::initialize();
        Python::attach(|py| {
            let mut text: String = (0u8..0x80).map(char::from).collect();
            text.push_str("é😀\u{2028}\"\\end");
            let ours = py_to_json(PyString::new(py, &text).as_any()).unwrap_or_default();
            assert_eq!(ours, serde_json::to_vec(&text).unwrap_or_default());
            let nested = py
                .eval(
                    c"{'a': [1, -2, 2**64 - 1, 0.1, float('nan'), True, None, ('x',)], 'b': {}}",
                    None,
                    None,
                )
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                py_to_json(&nested).unwrap_or_default(),
                br#"{"a":[1,-2,18446744073709551615,0.1,null,true,null,["x"]],"b":{}}"#
            );
            let huge = py
                .eval(c"[2**64]", None, None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(py_to_json(&huge).is_err());
        });
    }

    /// Ints in dicts and lists, at the ends of `i64` and past them, and the `int` subclasses
    /// (`bool`, an `IntEnum`), come out as `json.dumps` writes them.
    #[test]
    fn ints_are_written_as_json_dumps_writes_them() {
        Python::initialize();
        Python::attach(|py| {
            let globals = PyDict::new(py);
            run(
                &globals,
                c"import enum, json, random\n\
                  class Level(enum.IntEnum):\n    HIGH = 7\n\
                  r = random.Random(12)\n\
                  ints = [0, 1, -1, 2**63 - 1, -2**63, 2**63, 2**64 - 1, True, False, Level.HIGH]\n\
                  ints += [r.randrange(-2**63, 2**64) for _ in range(200)]\n\
                  value = {'list': ints, **{f'k{i}': n for i, n in enumerate(ints)}}\n\
                  expected = json.dumps(value, separators=(',', ':')).encode()\n",
            );
            let expected: Vec<u8> = global(&globals, "expected").extract().unwrap_or_default();
            assert_eq!(
                py_to_json(&global(&globals, "value")).unwrap_or_default(),
                expected
            );
            let beyond = py
                .eval(c"{'n': -2**63 - 1}", None, None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(py_to_json(&beyond).is_err());
        });
    }

    /// Floats come out as `json.dumps` writes them: shortest digits, exponents where Python
    /// uses them (from 1e16 up, below 1e-4), at least two exponent digits.
    #[test]
    fn floats_encode_as_json_dumps_does() {
        Python::initialize();
        Python::attach(|py| {
            let code = cr#"
import json, random, struct
r = random.Random(7)
floats = [0.0, -0.0, 1.0, 0.1, 1e-4, 9.99e-5, -1e-5, 1.5e-7, 5e-324, 2.2250738585072014e-308,
          1e15, 1e16, 1.2345e16, 1e21, 1e22, 123456789012345.6, 1.7976931348623157e308,
          0.46135590666100923, 1e-100, -4.705452238396024e-05]
floats += [r.random() ** 9 for _ in range(300)] + [r.uniform(-1e300, 1e300) for _ in range(100)]
floats += [struct.unpack('d', r.randbytes(8))[0] for _ in range(2000)]
floats = [f for f in floats if f == f and abs(f) != float('inf')]
expected = json.dumps(floats, separators=(',', ':'))
"#;
            let globals = PyDict::new(py);
            run(&globals, code);
            let expected: String = global(&globals, "expected").extract().unwrap_or_default();
            let ours = py_to_json(&global(&globals, "floats")).unwrap_or_else(|e| panic!("{e}"));
            let ours = String::from_utf8_lossy(&ours);
            for (a, b) in ours.split(',').zip(expected.split(',')) {
                assert_eq!(a, b);
            }
            assert_eq!(ours, expected);
        });
    }

    /// Strings of each kind (ASCII, Latin-1, two- and four-byte units), with the other kinds'
    /// characters at every position around runs of 8, against `str.encode()`; a lone surrogate
    /// is CPython's UnicodeEncodeError.
    #[test]
    fn text_answers_are_the_strings_utf8() {
        Python::initialize();
        Python::attach(|py| {
            let code = cr#"
import random
r = random.Random(11)
pools = ["abc<>&", "abc\xe9\xff\x80", "a\u0800\u07ff\u30d5\uffff", "a\U0001f600\U0010ffff\u00e9"]
texts = [""]
for pool in pools:
    for n in range(0, 40):
        for pos in range(n):
            chars = [r.choice("xyz .") for _ in range(n)]
            chars[pos] = r.choice(pool)
            texts.append("".join(chars))
    texts.append("".join(r.choice(pool) for _ in range(5000)))
expected = [t.encode() for t in texts]
"#;
            let globals = PyDict::new(py);
            run(&globals, code);
            let texts = global(&globals, "texts");
            let expected = global(&globals, "expected");
            let count = texts.len().unwrap_or_default();
            assert!(count > 3000);
            for i in 0..count {
                let text = texts.get_item(i).unwrap_or_else(|e| panic!("{e}"));
                let text = text.cast::<PyString>().unwrap_or_else(|e| panic!("{e}"));
                let want: Vec<u8> = expected
                    .get_item(i)
                    .and_then(|b| b.extract())
                    .unwrap_or_else(|e| panic!("{e}"));
                let ours = utf8_owned(text).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(ours.as_bytes(), &want[..], "{text}");
                // SAFETY: a live compact str; its `utf8` is CPython's UTF-8 copy, if made.
                let (kind, ascii, cached) = unsafe {
                    let ptr = text.as_ptr();
                    let compact = ptr.cast::<ffi::PyCompactUnicodeObject>();
                    (
                        ffi::PyUnicode_KIND(ptr),
                        ffi::PyUnicode_IS_ASCII(ptr) != 0,
                        !(*compact).utf8.is_null(),
                    )
                };
                // Latin-1 and two-byte strings are encoded here, not by CPython.
                if !ascii && kind != ffi::PyUnicode_4BYTE_KIND {
                    assert!(!cached, "{text}");
                }
            }
            let lone = py
                .eval(cr#"'ab\ud800cd'"#, None, None)
                .unwrap_or_else(|e| panic!("{e}"));
            let lone = lone.cast::<PyString>().unwrap_or_else(|e| panic!("{e}"));
            let err = utf8_owned(lone)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("UnicodeEncodeError"), "{err}");
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
