//! Calls of the classes a handler makes per answer or per event (`Response`, `Event`) the
//! way CPython calls its own builtin types: through vectorcall, the arguments read straight
//! off the caller's stack. A class made by pyo3 is otherwise called through `type.__call__`,
//! which packs the positional arguments into a tuple and the keywords into a dict, for
//! `__new__` to unpack again: about 1,100 instructions for `Event(data, event="tick")`, once
//! per event of a stream.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use pyo3::{PyClass, PyClassInitializer};

/// The most parameters a [`Construct`] class takes.
const MAX_PARAMS: usize = 4;

/// The arguments of one call, one slot per parameter (`None` where not given).
pub type Given<'py> = [Option<Bound<'py, PyAny>>; MAX_PARAMS];

/// A class whose calls take the vectorcall path once [`install`]ed. Its `#[new]` stays for
/// `Class.__new__(Class, …)`; both must take the same arguments.
pub trait Construct: PyClass + Into<PyClassInitializer<Self>> {
    // The class's name in messages is its Python name, `PyClass::NAME`.
    /// Its parameters in order, each given by position or by keyword.
    const PARAMS: &'static [&'static str];
    /// How many of the first parameters are required.
    const REQUIRED: usize;
    /// The instance, from the arguments given for each parameter (the required ones are
    /// there).
    fn construct(py: Python<'_>, given: &Given<'_>) -> PyResult<Self>;
}

/// Makes every call of `T` take [`vectorcall`]. A class's vectorcall is not inherited, and a
/// pyo3 class is not a base type unless it says so: these classes cannot be subclassed.
pub fn install<T: Construct>(py: Python<'_>) {
    debug_assert!(T::PARAMS.len() <= MAX_PARAMS && T::REQUIRED <= T::PARAMS.len());
    let class = py.get_type::<T>();
    // SAFETY: the GIL is held and the type object lives as long as the module; CPython reads
    // `tp_vectorcall` of a class when it is called (`_PyVectorcall_Function` through the
    // metatype's `tp_vectorcall_offset`), and a function there takes the place of
    // `type.__call__`, which for these classes only calls `__new__` (their `__init__` is
    // `object.__init__`).
    unsafe { (*class.as_type_ptr()).tp_vectorcall = Some(vectorcall::<T>) };
}

/// CPython's entry for a call of `T`: `args` holds the positional arguments, then the values
/// of the keywords `kwnames` names.
unsafe extern "C" fn vectorcall<T: Construct>(
    _class: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: CPython passes `PyVectorcall_NARGS(nargsf)` positional arguments and then
            // one value per name in `kwnames` (a tuple of str, or NULL), all borrowed for the
            // call.
            let given = unsafe { read::<T>(py, args, nargsf, kwnames) }?;
            Bound::new(py, T::construct(py, &given)?).map(Bound::into_any)
        }));
        let made = made.unwrap_or_else(|_| {
            Err(PanicException::new_err(format!(
                "{}() panicked; see the message above",
                <T as PyClass>::NAME
            )))
        });
        match made {
            Ok(obj) => obj.into_ptr(),
            Err(err) => {
                err.restore(py);
                std::ptr::null_mut()
            }
        }
    })
}

/// The arguments of a call of `T`, each in its parameter's slot, with the errors Python gives
/// for too many, unknown, repeated or missing ones.
///
/// # Safety
/// As CPython calls a vectorcall function: see [`vectorcall`].
unsafe fn read<'py, T: Construct>(
    py: Python<'py>,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Given<'py>> {
    let name = <T as PyClass>::NAME;
    let params = T::PARAMS;
    let positional = usize::try_from(unsafe { ffi::PyVectorcall_NARGS(nargsf) }).unwrap_or(0);
    let keywords = if kwnames.is_null() {
        None
    } else {
        Some(unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?)
    };
    if positional > params.len() {
        return Err(PyTypeError::new_err(format!(
            "{name}() takes from {} to {} positional arguments but {positional} were given",
            T::REQUIRED,
            params.len()
        )));
    }
    let count = positional + keywords.as_ref().map_or(0, |k| k.len());
    let values = if count == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(args, count) }
    };
    let mut given = Given::default();
    for (slot, &value) in given.iter_mut().zip(&values[..positional]) {
        *slot = Some(unsafe { Bound::from_borrowed_ptr(py, value) });
    }
    if let Some(keywords) = &keywords {
        for (keyword, &value) in keywords.iter().zip(&values[positional..]) {
            let keyword = keyword.cast_into::<PyString>()?;
            let keyword = keyword.to_str()?;
            let Some(i) = params.iter().position(|p| *p == keyword) else {
                return Err(PyTypeError::new_err(format!(
                    "{name}() got an unexpected keyword argument '{keyword}'"
                )));
            };
            if given[i].is_some() {
                return Err(PyTypeError::new_err(format!(
                    "{name}() got multiple values for argument '{keyword}'"
                )));
            }
            given[i] = Some(unsafe { Bound::from_borrowed_ptr(py, value) });
        }
    }
    if let Some(missing) = params[..T::REQUIRED]
        .iter()
        .zip(&given)
        .find_map(|(param, slot)| slot.is_none().then_some(param))
    {
        return Err(PyTypeError::new_err(format!(
            "{name}() missing 1 required positional argument: '{missing}'"
        )));
    }
    Ok(given)
}

/// The argument in slot `i`, converted, or `default` when not given. A `TypeError` names the
/// parameter, as pyo3 names it for a `#[new]`; any other error is the conversion's own.
pub fn argument<'a, 'py, V: FromPyObject<'a, 'py>>(
    given: &'a Given<'py>,
    params: &[&str],
    i: usize,
    default: impl FnOnce() -> V,
) -> PyResult<V> {
    let Some(value) = &given[i] else {
        return Ok(default());
    };
    value.extract::<V>().map_err(|err| {
        let err: PyErr = err.into();
        let py = value.py();
        if err.is_instance_of::<PyTypeError>(py) {
            PyTypeError::new_err(format!("argument '{}': {}", params[i], err.value(py)))
        } else {
            err
        }
    })
}
