//! Query parameters: Python values read into [`Arg`]s when the query is called (with the
//! GIL), then encoded in PostgreSQL's binary format for the type the prepared statement
//! declares for each parameter (without it), so `$1` of an `integer` column takes a Python
//! `int` and one of a `bigint` or `numeric` column the same `int`.

use super::numeric;
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use postgres_protocol::types as wire;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString,
    PyTime, PyTuple,
};
use std::error::Error as StdError;
use std::fmt;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type};

/// The deepest nesting of lists a parameter may have.
const MAX_DEPTH: usize = 64;

/// A parameter value, read from Python.
#[derive(Debug, Clone)]
pub enum Arg {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Uuid(uuid::Uuid),
    Date(NaiveDate),
    Time(NaiveTime),
    /// A `datetime` without `tzinfo`.
    Naive(NaiveDateTime),
    /// A `datetime` with `tzinfo`.
    Aware(DateTime<FixedOffset>),
    /// A `decimal.Decimal`, as `str()` writes it.
    Decimal(String),
    /// A list or tuple: an array, or a JSON array for a `json`/`jsonb` parameter.
    List(Vec<Arg>),
    /// A dict, already encoded as JSON: only a `json`/`jsonb` parameter takes it.
    Json(Vec<u8>),
}

/// Python classes that are read by class, looked up once.
struct Classes {
    uuid: Py<PyAny>,
    decimal: Py<PyAny>,
}

static CLASSES: pyo3::sync::PyOnceLock<Classes> = pyo3::sync::PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        Ok(Classes {
            uuid: py.import("uuid")?.getattr("UUID")?.unbind(),
            decimal: py.import("decimal")?.getattr("Decimal")?.unbind(),
        })
    })
}

/// Reads the parameters of one execution (`args`, a tuple or any sequence).
pub fn read_all(args: &Bound<'_, PyAny>) -> PyResult<Vec<Arg>> {
    if let Ok(tuple) = args.cast::<PyTuple>() {
        return read_numbered(tuple.iter());
    }
    if let Ok(list) = args.cast::<PyList>() {
        return read_numbered(list.iter());
    }
    if args.is_instance_of::<PyString>() || args.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "the arguments of one execution must be a tuple or list, not a str or bytes",
        ));
    }
    args.try_iter()?
        .enumerate()
        .map(|(i, a)| {
            let a = a?;
            read(&a, 0).map_err(|e| numbered(a.py(), i, e))
        })
        .collect()
}

/// The parameters of a tuple or list, read by index into a vector of their number.
fn read_numbered<'py>(
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Vec<Arg>> {
    let mut read_args = Vec::with_capacity(items.len());
    for (i, a) in items.enumerate() {
        read_args.push(read(&a, 0).map_err(|e| numbered(a.py(), i, e))?);
    }
    Ok(read_args)
}

/// The items of a list or tuple parameter (an array), read like [`read_numbered`].
fn read_items<'py>(
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> PyResult<Arg> {
    if depth >= MAX_DEPTH {
        return Err(PyValueError::new_err("the list is nested too deeply"));
    }
    let mut read_items = Vec::with_capacity(items.len());
    for item in items {
        read_items.push(read(&item, depth + 1)?);
    }
    Ok(Arg::List(read_items))
}

fn numbered(py: Python<'_>, i: usize, err: PyErr) -> PyErr {
    let message = format!("parameter ${}: {}", i + 1, err.value(py));
    if err.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(message)
    } else {
        PyValueError::new_err(message)
    }
}

/// One Python value as an [`Arg`].
pub fn read(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Arg> {
    // The usual parameter first, read in place: an exact `int` that fits 64 bits.
    if let Some(i) = crate::convert::exact_int(obj.as_ptr()) {
        return Ok(Arg::Int(i));
    }
    let py = obj.py();
    if obj.is_none() {
        return Ok(Arg::Null);
    }
    // bool before int: `True` is an int too.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Arg::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<i64>().map(Arg::Int).or_else(|_| {
            // Too large for 64 bits: only a numeric parameter can take it.
            Ok(Arg::Decimal(obj.str()?.to_str()?.to_owned()))
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Arg::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Arg::Text(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Arg::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Arg::Bytes(b.to_vec()));
    }
    // Lists (arrays) before the classes looked up by name, which cost a call each.
    if let Ok(list) = obj.cast::<PyList>() {
        return read_items(list.iter(), depth);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return read_items(tuple.iter(), depth);
    }
    // datetime before date: a datetime is a date too.
    if obj.is_instance_of::<PyDateTime>() {
        if obj.getattr(pyo3::intern!(py, "tzinfo"))?.is_none() {
            return Ok(Arg::Naive(obj.extract()?));
        }
        return Ok(Arg::Aware(obj.extract()?));
    }
    if obj.is_instance_of::<PyDate>() {
        return Ok(Arg::Date(obj.extract()?));
    }
    if obj.is_instance_of::<PyTime>() {
        if !obj.getattr(pyo3::intern!(py, "tzinfo"))?.is_none() {
            return Err(PyValueError::new_err(
                "a time with tzinfo (timetz) is not supported",
            ));
        }
        return Ok(Arg::Time(obj.extract()?));
    }
    let classes = classes(py)?;
    if obj.is_instance(classes.uuid.bind(py))? {
        let int: u128 = obj.getattr(pyo3::intern!(py, "int"))?.extract()?;
        return Ok(Arg::Uuid(uuid::Uuid::from_u128(int)));
    }
    if obj.is_instance(classes.decimal.bind(py))? {
        return Ok(Arg::Decimal(obj.str()?.to_str()?.to_owned()));
    }
    if obj.is_instance_of::<PyDict>() {
        return crate::convert::py_to_json(obj).map(Arg::Json);
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a {} to PostgreSQL",
        obj.get_type().name()?
    )))
}

/// Why a parameter could not be encoded for its declared type (becomes a `TypeError` or
/// `ValueError` naming the parameter).
#[derive(Debug)]
pub struct ArgError {
    pub message: String,
    /// A value out of the type's range (ValueError) rather than a wrong kind (TypeError).
    pub out_of_range: bool,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ArgError {}

type Encoded = Result<IsNull, Box<dyn StdError + Sync + Send>>;

fn wrong(arg: &Arg, ty: &Type) -> Box<dyn StdError + Sync + Send> {
    Box::new(ArgError {
        message: format!(
            "PostgreSQL expects {ty} here; a {} does not convert to it",
            arg.kind()
        ),
        out_of_range: false,
    })
}

fn out_of_range(what: impl fmt::Display, ty: &Type) -> Box<dyn StdError + Sync + Send> {
    Box::new(ArgError {
        message: format!("{what} is out of range for {ty}"),
        out_of_range: true,
    })
}

impl Arg {
    fn kind(&self) -> &'static str {
        match self {
            Arg::Null => "None",
            Arg::Bool(_) => "bool",
            Arg::Int(_) => "int",
            Arg::Float(_) => "float",
            Arg::Text(_) => "str",
            Arg::Bytes(_) => "bytes",
            Arg::Uuid(_) => "UUID",
            Arg::Date(_) => "date",
            Arg::Time(_) => "time",
            Arg::Naive(_) => "datetime without tzinfo",
            Arg::Aware(_) => "datetime with tzinfo",
            Arg::Decimal(_) => "Decimal",
            Arg::List(_) => "list",
            Arg::Json(_) => "dict",
        }
    }

    fn encode(&self, ty: &Type, out: &mut BytesMut) -> Encoded {
        // The usual pair first: an int for an `integer` or `bigint` (the match below tries
        // each type in turn).
        if let Arg::Int(i) = *self {
            if *ty == Type::INT4 {
                wire::int4_to_sql(i32::try_from(i).map_err(|_| out_of_range(i, ty))?, out);
                return Ok(IsNull::No);
            }
            if *ty == Type::INT8 {
                wire::int8_to_sql(i, out);
                return Ok(IsNull::No);
            }
        }
        if let Arg::Null = self {
            return Ok(IsNull::Yes);
        }
        match ty.kind() {
            Kind::Array(member) => return self.encode_array(ty, member, out),
            Kind::Domain(base) => return self.encode(base, out),
            Kind::Enum(_) => {
                return match self {
                    Arg::Text(s) => {
                        out.put_slice(s.as_bytes());
                        Ok(IsNull::No)
                    }
                    _ => Err(wrong(self, ty)),
                }
            }
            _ => {}
        }
        match (self, ty) {
            (Arg::Bool(b), &Type::BOOL) => wire::bool_to_sql(*b, out),
            (Arg::Int(i), &Type::INT2) => {
                wire::int2_to_sql(i16::try_from(*i).map_err(|_| out_of_range(i, ty))?, out)
            }
            (Arg::Int(i), &Type::INT4) => {
                wire::int4_to_sql(i32::try_from(*i).map_err(|_| out_of_range(i, ty))?, out)
            }
            (Arg::Int(i), &Type::INT8) => wire::int8_to_sql(*i, out),
            (Arg::Int(i), &Type::OID) => {
                wire::oid_to_sql(u32::try_from(*i).map_err(|_| out_of_range(i, ty))?, out)
            }
            (Arg::Int(i), &Type::FLOAT4) => wire::float4_to_sql(*i as f32, out),
            (Arg::Int(i), &Type::FLOAT8) => wire::float8_to_sql(*i as f64, out),
            (Arg::Float(f), &Type::FLOAT4) => wire::float4_to_sql(*f as f32, out),
            (Arg::Float(f), &Type::FLOAT8) => wire::float8_to_sql(*f, out),
            (Arg::Int(i), &Type::NUMERIC) => numeric::to_sql(&i.to_string(), out)?,
            (Arg::Float(f), &Type::NUMERIC) => numeric::to_sql(&float_text(*f), out)?,
            (Arg::Decimal(d), &Type::NUMERIC) => numeric::to_sql(d, out)?,
            (Arg::Decimal(d), &Type::FLOAT8) => wire::float8_to_sql(decimal_float(d, ty)?, out),
            (Arg::Decimal(d), &Type::FLOAT4) => {
                wire::float4_to_sql(decimal_float(d, ty)? as f32, out)
            }
            (Arg::Decimal(d), &Type::INT8 | &Type::INT4 | &Type::INT2) => {
                return Err(out_of_range(d, ty))
            }
            (
                Arg::Text(s),
                &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN,
            ) => out.put_slice(s.as_bytes()),
            (Arg::Text(s), _) if ty.name() == "citext" => out.put_slice(s.as_bytes()),
            (Arg::Text(s), &Type::JSON) => out.put_slice(s.as_bytes()),
            (Arg::Text(s), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            (Arg::Json(json), &Type::JSON) => out.put_slice(json),
            (Arg::Json(json), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(json);
            }
            (Arg::List(_), &Type::JSON | &Type::JSONB) => {
                if ty == &Type::JSONB {
                    out.put_u8(1);
                }
                let mut json = Vec::new();
                self.write_json(&mut json);
                out.put_slice(&json);
            }
            (Arg::Bytes(b), &Type::BYTEA) => out.put_slice(b),
            (Arg::Uuid(u), &Type::UUID) => wire::uuid_to_sql(*u.as_bytes(), out),
            (Arg::Text(s), &Type::UUID) => {
                let u = uuid::Uuid::parse_str(s).map_err(|_| {
                    Box::new(ArgError {
                        message: format!("{s:?} is not a UUID"),
                        out_of_range: true,
                    })
                })?;
                wire::uuid_to_sql(*u.as_bytes(), out);
            }
            (Arg::Date(d), &Type::DATE) => return d.to_sql(ty, out),
            (Arg::Time(t), &Type::TIME) => return t.to_sql(ty, out),
            (Arg::Naive(dt), &Type::TIMESTAMP) => return dt.to_sql(ty, out),
            (Arg::Aware(dt), &Type::TIMESTAMPTZ) => return dt.with_timezone(&Utc).to_sql(ty, out),
            (Arg::Naive(_), &Type::TIMESTAMPTZ) => {
                return Err(Box::new(ArgError {
                    message: "a timestamptz takes a datetime with tzinfo; this one has none".into(),
                    out_of_range: false,
                }))
            }
            (Arg::Aware(_), &Type::TIMESTAMP) => {
                return Err(Box::new(ArgError {
                    message: "a timestamp (without time zone) takes a datetime without tzinfo; \
                              this one has one"
                        .into(),
                    out_of_range: false,
                }))
            }
            _ => return Err(wrong(self, ty)),
        }
        Ok(IsNull::No)
    }

    /// A one-dimensional array of `member`s.
    fn encode_array(&self, ty: &Type, member: &Type, out: &mut BytesMut) -> Encoded {
        let Arg::List(items) = self else {
            return Err(wrong(self, ty));
        };
        if items.iter().any(|item| matches!(item, Arg::List(_))) {
            return Err(Box::new(ArgError {
                message: "multi-dimensional arrays are not supported as parameters".into(),
                out_of_range: false,
            }));
        }
        let len = i32::try_from(items.len()).map_err(|_| out_of_range("the list", ty))?;
        wire::array_to_sql(
            [wire::ArrayDimension {
                len,
                lower_bound: 1,
            }],
            member.oid(),
            items,
            |item, buf| {
                Ok(match item.encode(member, buf)? {
                    IsNull::Yes => postgres_protocol::IsNull::Yes,
                    IsNull::No => postgres_protocol::IsNull::No,
                })
            },
            out,
        )?;
        Ok(IsNull::No)
    }

    /// The value as JSON (for a list sent to a `json`/`jsonb` parameter).
    fn write_json(&self, out: &mut Vec<u8>) {
        let text = |out: &mut Vec<u8>, s: &str| {
            // serde_json writes a string with JSON's escapes; it cannot fail on a String.
            out.extend_from_slice(serde_json::to_string(s).unwrap_or_default().as_bytes());
        };
        match self {
            Arg::Null => out.extend_from_slice(b"null"),
            Arg::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Arg::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Arg::Float(f) if f.is_finite() => out.extend_from_slice(float_text(*f).as_bytes()),
            Arg::Float(_) => out.extend_from_slice(b"null"),
            Arg::Decimal(d) => out.extend_from_slice(d.as_bytes()),
            Arg::Text(s) => text(out, s),
            Arg::Bytes(b) => text(out, &String::from_utf8_lossy(b)),
            Arg::Uuid(u) => text(out, &u.to_string()),
            Arg::Date(d) => text(out, &d.to_string()),
            Arg::Time(t) => text(out, &t.to_string()),
            Arg::Naive(dt) => text(out, &dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
            Arg::Aware(dt) => text(out, &dt.to_rfc3339()),
            Arg::Json(json) => out.extend_from_slice(json),
            Arg::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
        }
    }
}

/// A float as the shortest text that reads back the same (`NaN`, `Infinity` and
/// `-Infinity` as `numeric` spells them).
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        serde_json::to_string(&f).unwrap_or_default()
    }
}

fn decimal_float(d: &str, ty: &Type) -> Result<f64, Box<dyn StdError + Sync + Send>> {
    d.parse::<f64>().map_err(|_| out_of_range(d, ty))
}

impl ToSql for Arg {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Encoded {
        self.encode(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        // Every value is checked against the declared type in `to_sql`, with an error that
        // says what was given and what was expected.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}
