//! Result rows as Python tuples: each column's binary value decoded by its type straight into
//! the Python object (`int`, `float`, `str`, `bytes`, `bool`, `uuid.UUID`, `datetime`,
//! `decimal.Decimal`, lists for arrays, dicts and lists for `json`/`jsonb`, `None` for NULL).

use super::numeric;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyList, PyString, PyTuple};
use std::error::Error as StdError;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::Row;

type Failure = Box<dyn StdError + Sync + Send>;

/// A column's raw bytes (None for NULL), whatever its type.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Failure> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Failure> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `decimal.Decimal`, looked up once.
static DECIMAL: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

fn decimal<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let class = DECIMAL.get_or_try_init(py, || {
        PyResult::Ok(py.import("decimal")?.getattr("Decimal")?.unbind())
    })?;
    class.bind(py).call1((text,))
}

fn column_error(row: &Row, i: usize, err: impl std::fmt::Display) -> PyErr {
    let column = &row.columns()[i];
    PyTypeError::new_err(format!(
        "column {} ({}) of type {}: {err}",
        i + 1,
        column.name(),
        column.type_()
    ))
}

/// One row as a tuple.
pub fn row_to_py<'py>(py: Python<'py>, row: &Row) -> PyResult<Bound<'py, PyTuple>> {
    crate::convert::filled_tuple(py, row.len(), |i| column_to_py(py, row, i))
}

/// Column `i` of `row`.
pub fn column_to_py<'py>(py: Python<'py>, row: &Row, i: usize) -> PyResult<Bound<'py, PyAny>> {
    let ty = row.columns()[i].type_();
    let Raw(raw) = row
        .try_get::<_, Raw<'_>>(i)
        .map_err(|e| column_error(row, i, e))?;
    let Some(raw) = raw else {
        return Ok(py.None().into_bound(py));
    };
    value_to_py(py, ty, raw).map_err(|e| match e {
        Decode::Python(err) => err,
        Decode::Wire(err) => column_error(row, i, err),
    })
}

enum Decode {
    Python(PyErr),
    Wire(Failure),
}

impl From<PyErr> for Decode {
    fn from(err: PyErr) -> Self {
        Decode::Python(err)
    }
}

impl From<std::convert::Infallible> for Decode {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<Failure> for Decode {
    fn from(err: Failure) -> Self {
        Decode::Wire(err)
    }
}

fn value_to_py<'py>(py: Python<'py>, ty: &Type, raw: &[u8]) -> Result<Bound<'py, PyAny>, Decode> {
    match ty.kind() {
        Kind::Array(member) => return array_to_py(py, member, raw),
        Kind::Domain(base) => return value_to_py(py, base, raw),
        Kind::Enum(_) => return text_to_py(py, raw),
        _ => {}
    }
    Ok(match *ty {
        Type::BOOL => wire::bool_from_sql(raw)?
            .into_pyobject(py)?
            .to_owned()
            .into_any(),
        Type::INT2 => wire::int2_from_sql(raw)?.into_pyobject(py)?.into_any(),
        Type::INT4 => wire::int4_from_sql(raw)?.into_pyobject(py)?.into_any(),
        Type::INT8 => wire::int8_from_sql(raw)?.into_pyobject(py)?.into_any(),
        Type::OID => wire::oid_from_sql(raw)?.into_pyobject(py)?.into_any(),
        Type::FLOAT4 => PyFloat::new(py, f64::from(wire::float4_from_sql(raw)?)).into_any(),
        Type::FLOAT8 => PyFloat::new(py, wire::float8_from_sql(raw)?).into_any(),
        Type::NUMERIC => decimal(py, &numeric::from_sql(raw)?)?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            text_to_py(py, raw)?
        }
        Type::CHAR => PyString::new(
            py,
            &char::from(raw.first().copied().unwrap_or(0)).to_string(),
        )
        .into_any(),
        Type::BYTEA => PyBytes::new(py, raw).into_any(),
        Type::UUID => {
            let bytes = wire::uuid_from_sql(raw)?;
            crate::convert::uuid_to_py(py, uuid::Uuid::from_bytes(bytes))?
        }
        Type::DATE => NaiveDate::from_sql(ty, raw)?.into_pyobject(py)?.into_any(),
        Type::TIME => NaiveTime::from_sql(ty, raw)?.into_pyobject(py)?.into_any(),
        Type::TIMESTAMP => NaiveDateTime::from_sql(ty, raw)?
            .into_pyobject(py)?
            .into_any(),
        Type::TIMESTAMPTZ => DateTime::<Utc>::from_sql(ty, raw)?
            .into_pyobject(py)?
            .into_any(),
        Type::JSON => json(py, raw)?,
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => json(py, rest)?,
            _ => return Err(Decode::Wire("unknown jsonb version".into())),
        },
        Type::VOID => py.None().into_bound(py),
        _ if ty.name() == "citext" => text_to_py(py, raw)?,
        _ => {
            return Err(Decode::Wire(
                "spikard.postgres does not convert this type: cast it in the query \
                 (e.g. `::text`)"
                    .into(),
            ))
        }
    })
}

/// A text column as a `str`, its UTF-8 checked once, by CPython's decoder as it builds the
/// string; bytes that are not UTF-8 are the column's error.
fn text_to_py<'py>(py: Python<'py>, raw: &[u8]) -> Result<Bound<'py, PyAny>, Decode> {
    // SAFETY: the GIL is held; PyUnicode_DecodeUTF8 reads `raw.len()` bytes at `raw` and
    // returns a new reference, or NULL with an exception set.
    let decoded = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyUnicode_DecodeUTF8(
                raw.as_ptr().cast(),
                raw.len() as pyo3::ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
    };
    decoded.map_err(|err| match std::str::from_utf8(raw) {
        Err(invalid) => Decode::Wire(Box::new(invalid)),
        Ok(_) => Decode::Python(err),
    })
}

fn json<'py>(py: Python<'py>, raw: &[u8]) -> Result<Bound<'py, PyAny>, Decode> {
    crate::convert::json_to_py(py, raw).map_err(|e| Decode::Wire(Box::new(e)))
}

/// An array as a list (nested lists for more than one dimension).
fn array_to_py<'py>(
    py: Python<'py>,
    member: &Type,
    raw: &[u8],
) -> Result<Bound<'py, PyAny>, Decode> {
    let array = wire::array_from_sql(raw)?;
    let dimensions: Vec<usize> = array
        .dimensions()
        .map(|d| Ok(usize::try_from(d.len).unwrap_or(0)))
        .collect()?;
    let mut values = Vec::new();
    let mut items = array.values();
    while let Some(item) = items.next()? {
        values.push(match item {
            Some(raw) => value_to_py(py, member, raw)?,
            None => py.None().into_bound(py),
        });
    }
    if dimensions.is_empty() {
        return Ok(PyList::empty(py).into_any());
    }
    let mut values = values.into_iter();
    nest(py, &dimensions, &mut values)
}

fn nest<'py>(
    py: Python<'py>,
    dimensions: &[usize],
    values: &mut impl Iterator<Item = Bound<'py, PyAny>>,
) -> Result<Bound<'py, PyAny>, Decode> {
    let (len, inner) = dimensions
        .split_first()
        .map(|(l, r)| (*l, r))
        .unwrap_or((0, &[]));
    let list = PyList::empty(py);
    for _ in 0..len {
        if inner.is_empty() {
            let value = values
                .next()
                .ok_or_else(|| Decode::Wire("an array is cut short".into()))?;
            list.append(value)?;
        } else {
            list.append(nest(py, inner, values)?)?;
        }
    }
    Ok(list.into_any())
}
