//! Why a database operation failed: the driver's and the pool's errors sorted into what the
//! caller did wrong (`TypeError`, `ValueError`), what PostgreSQL refused (`PostgresError`
//! with its SQLSTATE) and a database out of reach (`Unavailable`, answered 503).

use super::args;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// An error and its causes, `: `-separated (deadpool's own text omits the cause).
pub(super) fn chain_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

/// Why an operation failed, before it is a Python exception.
pub(super) enum Failure {
    /// The database cannot be reached (no connection, or it broke): `Unavailable`.
    Unavailable(String),
    /// The pool was closed.
    Closed,
    /// The connection was released before the operation.
    Released,
    /// A parameter does not convert to its declared type (`TypeError`, or `ValueError` when
    /// out of range), or the count of parameters is wrong.
    Argument { message: String, out_of_range: bool },
    /// PostgreSQL refused the statement (`PostgresError` with its SQLSTATE).
    Server {
        message: String,
        sqlstate: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    /// Anything else from the driver (`PostgresError`).
    Driver(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Self {
        use std::error::Error as _;
        if let Some(db) = err.as_db_error() {
            let sqlstate = db.code().code().to_owned();
            // Class 08 (connection exception) and the shut-down codes of class 57: the
            // server is going away, not refusing the statement.
            if sqlstate.starts_with("08")
                || matches!(sqlstate.as_str(), "57P01" | "57P02" | "57P03")
            {
                return Failure::Unavailable(format!(
                    "the database connection failed: {}",
                    db.message()
                ));
            }
            return Failure::Server {
                message: db.message().to_owned(),
                sqlstate,
                detail: db.detail().map(str::to_owned),
                hint: db.hint().map(str::to_owned),
            };
        }
        if let Some(arg) = err
            .source()
            .and_then(|s| s.downcast_ref::<args::ArgError>())
        {
            // "error serializing parameter N", N from 0.
            let index = err
                .to_string()
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok());
            let message = match index {
                Some(i) => format!("parameter ${}: {arg}", i + 1),
                None => arg.to_string(),
            };
            return Failure::Argument {
                message,
                out_of_range: arg.out_of_range,
            };
        }
        let text = err.to_string();
        if err.is_closed() || err.source().is_some_and(|s| s.is::<std::io::Error>()) {
            return Failure::Unavailable(format!("the database connection failed: {err}"));
        }
        if text.starts_with("expected ") && text.contains(" parameters but got ") {
            let counts = &text["expected ".len()..];
            return Failure::Argument {
                message: format!(
                    "the query takes {}",
                    counts.replace(" but got ", "; given: ")
                ),
                out_of_range: false,
            };
        }
        match err.source() {
            Some(source) => Failure::Driver(format!("{text}: {source}")),
            None => Failure::Driver(text),
        }
    }
}

/// `spikard.postgres`'s exception classes, looked up once.
struct Exceptions {
    postgres_error: Py<PyAny>,
    unavailable: Py<PyAny>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let module = py.import("spikard.postgres")?;
        Ok(Exceptions {
            postgres_error: module.getattr("PostgresError")?.unbind(),
            unavailable: module.getattr("Unavailable")?.unbind(),
        })
    })
}

/// Whether `err` is a `spikard.postgres.Unavailable` (the engine answers it with a 503).
pub fn is_unavailable(py: Python<'_>, err: &PyErr) -> bool {
    // Only once the module was imported: an application that never imported it raises no
    // such error, and this check must not import it.
    let imported = || -> PyResult<bool> {
        py.import("sys")?
            .getattr("modules")?
            .contains("spikard.postgres")
    };
    let exceptions = match EXCEPTIONS.get(py) {
        Some(exceptions) => exceptions,
        None if imported().unwrap_or(false) => match exceptions(py) {
            Ok(exceptions) => exceptions,
            Err(_) => return false,
        },
        None => return false,
    };
    err.value(py)
        .is_instance(exceptions.unavailable.bind(py))
        .unwrap_or(false)
}

impl Failure {
    /// Whether the connection it happened on is lost (`Unavailable`): it must not be used
    /// again.
    pub(super) fn is_lost(&self) -> bool {
        matches!(self, Failure::Unavailable(_))
    }

    pub(super) fn into_py(self, py: Python<'_>) -> PyErr {
        let raise = |class: &Py<PyAny>,
                     message: String,
                     sqlstate: Option<String>,
                     detail: Option<String>,
                     hint: Option<String>| {
            match class.bind(py).call1((message, sqlstate, detail, hint)) {
                Ok(exc) => PyErr::from_value(exc),
                Err(err) => err,
            }
        };
        let exceptions = match exceptions(py) {
            Ok(e) => e,
            Err(err) => return err,
        };
        match self {
            Failure::Unavailable(message) => {
                raise(&exceptions.unavailable, message, None, None, None)
            }
            Failure::Closed => raise(
                &exceptions.postgres_error,
                "the pool is closed".into(),
                None,
                None,
                None,
            ),
            Failure::Released => raise(
                &exceptions.postgres_error,
                "the connection was released to the pool".into(),
                None,
                None,
                None,
            ),
            Failure::Argument {
                message,
                out_of_range: true,
            } => PyValueError::new_err(message),
            Failure::Argument { message, .. } => PyTypeError::new_err(message),
            Failure::Server {
                message,
                sqlstate,
                detail,
                hint,
            } => raise(
                &exceptions.postgres_error,
                message,
                Some(sqlstate),
                detail,
                hint,
            ),
            Failure::Driver(message) => {
                raise(&exceptions.postgres_error, message, None, None, None)
            }
        }
    }
}
