//! The `spikard._spikard` extension module: Python functions as handlers of the Spikard
//! engine. The Python-facing API lives in `python/spikard`; this crate holds the engine side.

mod aio;
mod answer;
mod app;
mod blocking;
mod construct;
mod context;
pub mod convert;
mod exit;
mod handler;
mod postgres;
mod response;
mod soon;
mod stream;
mod tasks;
#[cfg(test)]
mod test_support;
mod upload;
mod ws;

use pyo3::prelude::*;

// The engine's own allocations (request heads, parameter values, answer bodies, events,
// futures) come from mimalloc's thread-local pages, as in the Rust workload server; Python
// objects keep Python's allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _spikard(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<app::PyApp>()?;
    module.add_class::<app::ServerHandle>()?;
    module.add_class::<response::PyResponse>()?;
    module.add_class::<response::PyEvent>()?;
    construct::install::<response::PyResponse>(module.py());
    construct::install::<response::PyEvent>(module.py());
    module.add_class::<upload::PyUploadFile>()?;
    module.add_class::<aio::Completion>()?;
    module.add_class::<soon::Handle>()?;
    module.add_class::<soon::CallSoon>()?;
    module.add_function(wrap_pyfunction!(soon::drain, module)?)?;
    module.add_class::<tasks::TaskSet>()?;
    module.add_class::<postgres::PgPool>()?;
    module.add_class::<postgres::PgConnection>()?;
    module.add_class::<postgres::Acquired>()?;
    module.add_class::<postgres::Transaction>()?;
    module.add_function(wrap_pyfunction!(postgres::_settle, module)?)?;
    exit::register(module)?;
    Ok(())
}
