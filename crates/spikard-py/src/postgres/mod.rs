//! `spikard.postgres`: a PostgreSQL connection pool that runs in the engine.
//!
//! Queries go through tokio-postgres (connections pooled by deadpool, statements prepared
//! once per connection) on the tokio runtime of the thread that awaits them: on an engine
//! thread, the runtime that also serves its connections and drives its asyncio loop, so a
//! query never leaves the thread. A call returns an `asyncio.Future` at once; when the
//! answer is in, its rows are decoded straight into Python objects, the future is resolved,
//! and the task it wakes (the handler) runs right away, without waiting for a loop
//! iteration. Awaited anywhere else (a start-up hook, `asyncio.run` in a script), the query
//! runs on a background runtime and the result comes back through
//! `loop.call_soon_threadsafe`.
//!
//! Each thread that runs queries gets its own connections (up to `max_size`): a
//! connection is driven by the runtime that opened it.

mod args;
mod errors;
mod numeric;
mod rows;

pub use errors::is_unavailable;

use crate::aio::{self, Method};
use crate::app::positive_seconds;
use crate::exit;
use args::Arg;
use deadpool_postgres::{Manager, ManagerConfig, Object, RecyclingMethod, Runtime, Timeouts};
use errors::{chain_text, Failure};
use futures_util::{FutureExt, TryStreamExt};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use tokio_postgres::{NoTls, Row};

/// What the pool and its connections share: the configuration and one deadpool per thread.
struct Shared {
    config: tokio_postgres::Config,
    max_size: usize,
    timeouts: Timeouts,
    /// Each thread's pool, and the process generation it was made in (see [`generation`]).
    pools: Mutex<Vec<(ThreadId, u64, deadpool_postgres::Pool)>>,
    closed: AtomicBool,
}

/// Bumped in the child of every `fork()`: the child inherits the parent's pools, but not the
/// threads and runtimes that drive their connections, so it makes its own (a worker forked
/// after its parent ran a query starts afresh).
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn generation() -> u64 {
    static WATCH: std::sync::Once = std::sync::Once::new();
    WATCH.call_once(|| {
        // SAFETY: registers a child handler that only increments an atomic, which is
        // async-signal-safe as a handler run in the child of fork must be.
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    });
    GENERATION.load(Ordering::Relaxed)
}

impl Shared {
    /// The calling thread's pool.
    fn local(&self) -> Result<deadpool_postgres::Pool, Failure> {
        let me = std::thread::current().id();
        let now = generation();
        let mut pools = self.pools.lock().map_err(|_| Failure::Closed)?;
        if let Some((_, _, pool)) = pools.iter().find(|(t, g, _)| *t == me && *g == now) {
            return Ok(pool.clone());
        }
        // A parent's pools: their connections are the parent's, driven by threads this
        // process does not have; they are forgotten, not closed.
        let (current, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut *pools)
            .into_iter()
            .partition(|(_, g, _)| *g == now);
        *pools = current;
        for (_, _, pool) in stale {
            std::mem::forget(pool);
        }
        let manager = Manager::from_config(
            self.config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(self.max_size)
            .runtime(Runtime::Tokio1)
            .timeouts(self.timeouts)
            .build()
            .map_err(|e| Failure::Unavailable(format!("cannot build the pool: {e}")))?;
        pools.push((me, now, pool.clone()));
        Ok(pool)
    }

    async fn get(&self) -> Result<Object, Failure> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Failure::Closed);
        }
        self.local()?.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Closed => Failure::Closed,
            err => Failure::Unavailable(format!(
                "the database cannot be reached: {}",
                chain_text(&err)
            )),
        })
    }
}

/// What an operation does with its statement.
#[derive(Clone, Copy)]
enum Op {
    /// Every row (of every execution).
    Rows,
    /// The first row, or None.
    Row,
    /// One column of the first row, or None.
    Value(usize),
    /// The rows affected (of every execution).
    Count,
}

/// One statement, run once per parameter list (several are pipelined on one connection).
struct Job {
    op: Op,
    query: String,
    executions: Vec<Vec<Arg>>,
}

/// What came back, decoded into Python when the GIL is at hand.
enum Outcome {
    Rows(Op, Vec<Row>),
    Count(u64),
    Connection(Object),
    Nothing,
}

impl Job {
    async fn run(&self, client: &Object) -> Result<Outcome, Failure> {
        let statement = client.prepare_cached(&self.query).await?;
        // Each execution's arguments go to the driver as they are (`&Arg` is `ToSql`), with
        // no list of trait objects built for it.
        if let [args] = self.executions.as_slice() {
            return Ok(match self.op {
                Op::Count => Outcome::Count(client.execute_raw(&statement, args.iter()).await?),
                op => Outcome::Rows(op, rows(client, &statement, args).await?),
            });
        }
        // tokio-postgres sends concurrent statements on one connection as a pipeline.
        match self.op {
            Op::Count => {
                let counts = futures_util::future::try_join_all(
                    self.executions
                        .iter()
                        .map(|args| client.execute_raw(&statement, args.iter())),
                )
                .await?;
                Ok(Outcome::Count(counts.into_iter().sum()))
            }
            op => {
                let results = futures_util::future::try_join_all(
                    self.executions
                        .iter()
                        .map(|args| rows(client, &statement, args)),
                )
                .await?;
                Ok(Outcome::Rows(op, results.into_iter().flatten().collect()))
            }
        }
    }
}

/// Every row `statement` returns for `args`.
async fn rows(
    client: &Object,
    statement: &tokio_postgres::Statement,
    args: &[Arg],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    client
        .query_raw(statement, args.iter())
        .await?
        .try_collect()
        .await
}

impl Outcome {
    fn into_py(self, py: Python<'_>, shared: &Arc<Shared>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Outcome::Rows(Op::Row, rows) => match rows.first() {
                Some(row) => rows::row_to_py(py, row)?.into_any().unbind(),
                None => py.None(),
            },
            Outcome::Rows(Op::Value(column), rows) => match rows.first() {
                Some(row) if column < row.len() => rows::column_to_py(py, row, column)?.unbind(),
                Some(row) => {
                    return Err(PyIndexError::new_err(format!(
                        "column {column} asked for; the query returns {} columns",
                        row.len()
                    )))
                }
                None => py.None(),
            },
            Outcome::Rows(_, rows) => crate::convert::filled_list(py, rows.len(), |i| {
                Ok(rows::row_to_py(py, &rows[i])?.into_any())
            })?
            .into_any()
            .unbind(),
            Outcome::Count(n) => n.into_pyobject(py)?.into_any().unbind(),
            Outcome::Connection(object) => Py::new(
                py,
                PgConnection {
                    shared: Arc::clone(shared),
                    client: Mutex::new(Some(Arc::new(object))),
                    in_transaction: Arc::new(AtomicBool::new(false)),
                    lost: Arc::new(AtomicBool::new(false)),
                },
            )?
            .into_any(),
            Outcome::Nothing => py.None(),
        })
    }
}

/// The runtime of queries awaited outside an engine thread: one thread, started on first
/// use (again in a forked child, which does not inherit it).
fn background() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: Mutex<Option<(u64, &'static tokio::runtime::Runtime)>> = Mutex::new(None);
    let now = generation();
    let mut slot = RUNTIME
        .lock()
        .map_err(|_| PyRuntimeError::new_err("the database runtime failed"))?;
    if let Some((made, runtime)) = *slot {
        if made == now {
            return Ok(runtime);
        }
        // The parent's: its thread did not survive the fork; it stays unused.
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("spikard-postgres")
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the database runtime: {e}")))?;
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
    *slot = Some((now, runtime));
    Ok(runtime)
}

/// Resolves `future` with `value` (or raises `error` into it), unless it was cancelled:
/// called on the loop's thread by `call_soon_threadsafe`.
#[pyfunction]
#[pyo3(signature = (future, value, error))]
pub fn _settle(
    future: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    error: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if aio::call_future(future, Method::Done, &[])?.is_truthy()? {
        return Ok(());
    }
    if error.is_none() {
        aio::call_future(future, Method::SetResult, &[value])?;
    } else {
        aio::call_future(future, Method::SetException, &[error])?;
    }
    Ok(())
}

/// The result of `work` as the Python value it resolves to, or the exception it raises.
fn resolve(
    py: Python<'_>,
    shared: &Arc<Shared>,
    done: Result<Outcome, Failure>,
) -> Result<Py<PyAny>, PyErr> {
    done.map_err(|f| f.into_py(py))
        .and_then(|outcome| outcome.into_py(py, shared))
}

/// Resolves `future` with what `done` comes to in Python, or raises its error into it.
fn answer(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    shared: &Arc<Shared>,
    done: Result<Outcome, Failure>,
) -> PyResult<()> {
    let none = py.None().into_bound(py);
    match resolve(py, shared, done) {
        Ok(value) => _settle(future, value.bind(py), &none),
        Err(err) => _settle(future, &none, err.value(py)),
    }
}

/// Starts `work` and returns the `asyncio.Future` it resolves.
fn submit<'py, W>(py: Python<'py>, shared: &Arc<Shared>, work: W) -> PyResult<Bound<'py, PyAny>>
where
    W: Future<Output = Result<Outcome, Failure>> + Send + 'static,
{
    let shared = Arc::clone(shared);
    // On the heap once: the driver's futures are kilobytes, and a task moves its future
    // several times (into the task, through each stage) where it moves a box in one word.
    let work = Box::pin(work);
    if let Some(lp) = aio::current() {
        // An engine thread: the query runs on this thread's runtime, and the handler it
        // wakes runs as soon as its answer is in.
        let future = lp.create_future(py)?;
        let target = future.clone().unbind();
        tokio::spawn(async move {
            let done = work.await;
            // `move`: the future is dropped inside, with the GIL, rather than after it, where
            // pyo3 would queue its reference for the next thread that takes the GIL.
            Python::attach(move |py| {
                let target = target.into_bound(py);
                if let Err(err) = lp.settle(py, || answer(py, &target, &shared, done)) {
                    eprintln!("spikard: a database result could not be delivered:");
                    err.print(py);
                }
            });
        });
        return Ok(future);
    }
    let event_loop = running_loop(py)?;
    let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let (target, event_loop) = (future.clone().unbind(), event_loop.unbind());
    background()?.spawn(async move {
        let done = work.await;
        // Not once the interpreter is exiting (see `exit`): the script that awaited it is done.
        exit::attach(move |py| {
            let (value, error) = match resolve(py, &shared, done) {
                Ok(value) => (value, py.None()),
                Err(err) => (py.None(), err.value(py).clone().into_any().unbind()),
            };
            let settle = wrap_pyfunction!(_settle, py);
            // A loop that closed meanwhile has nobody left to tell.
            let _ = settle.and_then(|settle| {
                event_loop.bind(py).call_method1(
                    pyo3::intern!(py, "call_soon_threadsafe"),
                    (settle, target, value, error),
                )
            });
        });
    });
    Ok(future)
}

/// `asyncio.get_running_loop()`: a query can only be awaited in a coroutine.
fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let get = GET.get_or_try_init(py, || {
        PyResult::Ok(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
    })?;
    get.bind(py).call0()
}

fn job(op: Op, query: &str, args: &Bound<'_, PyTuple>) -> PyResult<Job> {
    Ok(Job {
        op,
        query: query.to_owned(),
        executions: vec![args::read_all(args.as_any())?],
    })
}

fn many(op: Op, query: &str, executions: &Bound<'_, PyAny>) -> PyResult<Job> {
    let executions = if let Ok(list) = executions.cast::<PyList>() {
        // The usual case, read by index into a vector of the right size.
        let mut read = Vec::with_capacity(list.len());
        for args in list {
            read.push(args::read_all(&args)?);
        }
        read
    } else {
        executions
            .try_iter()?
            .map(|args| args::read_all(&args?))
            .collect::<PyResult<Vec<_>>>()?
    };
    Ok(Job {
        op,
        query: query.to_owned(),
        executions,
    })
}

/// The Python methods of `PgPool` (or `PgConnection`): the statement methods they share,
/// each running its [`Job`] through the class's own `run` (on a connection taken from the
/// pool for the job, or on the acquired one), then the class's own methods, `$rest`.
macro_rules! with_statement_methods {
    ($class:ty { $($rest:tt)* }) => {
        #[pymethods]
        impl $class {
            /// Every row, as tuples.
            #[pyo3(signature = (query, *args))]
            fn fetch<'py>(
                &self,
                py: Python<'py>,
                query: &str,
                args: &Bound<'py, PyTuple>,
            ) -> PyResult<Bound<'py, PyAny>> {
                self.run(py, job(Op::Rows, query, args)?)
            }

            /// The first row as a tuple, or None.
            #[pyo3(signature = (query, *args))]
            fn fetchrow<'py>(
                &self,
                py: Python<'py>,
                query: &str,
                args: &Bound<'py, PyTuple>,
            ) -> PyResult<Bound<'py, PyAny>> {
                self.run(py, job(Op::Row, query, args)?)
            }

            /// One column (the first unless `column` says) of the first row, or None.
            #[pyo3(signature = (query, *args, column = 0))]
            fn fetchval<'py>(
                &self,
                py: Python<'py>,
                query: &str,
                args: &Bound<'py, PyTuple>,
                column: usize,
            ) -> PyResult<Bound<'py, PyAny>> {
                self.run(py, job(Op::Value(column), query, args)?)
            }

            /// Runs the statement; resolves to the number of rows it affected.
            #[pyo3(signature = (query, *args))]
            fn execute<'py>(
                &self,
                py: Python<'py>,
                query: &str,
                args: &Bound<'py, PyTuple>,
            ) -> PyResult<Bound<'py, PyAny>> {
                self.run(py, job(Op::Count, query, args)?)
            }

            /// Runs the query once per argument tuple, pipelined on one connection; every
            /// row of every execution, in order.
            fn fetchmany<'py>(
                &self,
                py: Python<'py>,
                query: &str,
                args: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyAny>> {
                self.run(py, many(Op::Rows, query, args)?)
            }

            /// Runs the statement once per argument tuple, pipelined on one connection;
            /// resolves to the rows affected in all.
            fn executemany<'py>(
                &self,
                py: Python<'py>,
                query: &str,
                args: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyAny>> {
                self.run(py, many(Op::Count, query, args)?)
            }

            $($rest)*
        }
    };
}

/// `spikard.postgres.Pool`'s engine side.
#[pyclass(module = "spikard._spikard", name = "PgPool", subclass, frozen)]
pub struct PgPool {
    shared: Arc<Shared>,
}

impl PgPool {
    /// Runs `job` on a connection of the pool, taken for the job and given back after it.
    fn run<'py>(&self, py: Python<'py>, job: Job) -> PyResult<Bound<'py, PyAny>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Failure::Closed.into_py(py));
        }
        let shared = Arc::clone(&self.shared);
        submit(py, &self.shared, async move {
            let client = shared.get().await?;
            let done = job.run(&client).await;
            if done.as_ref().is_err_and(Failure::is_lost) {
                // A lost connection does not go back for the next query to find.
                drop(Object::take(client));
            }
            done
        })
    }
}

with_statement_methods!(PgPool {
    /// A pool of at most `max_size` connections per serving thread (each worker process has
    /// one) to the database `dsn` names (`postgresql://user:password@host:port/dbname` or
    /// `host=… dbname=…`). No connection opens before the first query.
    #[new]
    #[pyo3(signature = (dsn, *, max_size = 10, connect_timeout = 5.0, acquire_timeout = 5.0))]
    fn new(
        dsn: &str,
        max_size: usize,
        connect_timeout: f64,
        acquire_timeout: f64,
    ) -> PyResult<Self> {
        let mut config: tokio_postgres::Config = dsn.parse().map_err(|e| {
            PyValueError::new_err(format!("not a PostgreSQL connection string: {e}"))
        })?;
        if max_size == 0 {
            return Err(PyValueError::new_err("max_size must be at least 1"));
        }
        let connect = positive_seconds("connect_timeout", connect_timeout)?;
        let acquire = positive_seconds("acquire_timeout", acquire_timeout)?;
        config.connect_timeout(connect);
        Ok(PgPool {
            shared: Arc::new(Shared {
                config,
                max_size,
                timeouts: Timeouts {
                    wait: Some(acquire),
                    create: Some(connect),
                    recycle: Some(connect),
                },
                pools: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// `async with pool.acquire() as conn`: one connection for several statements, given
    /// back when the block ends.
    fn acquire(slf: Bound<'_, Self>) -> Acquired {
        Acquired {
            pool: slf.unbind(),
            taken: Mutex::new(None),
        }
    }

    /// A connection of its own, until its `release()` (see `acquire()`).
    fn _acquire<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Failure::Closed.into_py(py));
        }
        if let Some(lp) = aio::current() {
            // An idle connection is handed over at once, in an answered future: the handler's
            // `await` goes on without a turn of the loop. Otherwise (none idle yet, or all in
            // use) the connection is waited for as any query is.
            if let Some(taken) = self.shared.get().now_or_never() {
                let future = lp.create_future(py)?;
                answer(py, &future, &self.shared, taken.map(Outcome::Connection))?;
                return Ok(future);
            }
        }
        let shared = Arc::clone(&self.shared);
        submit(py, &self.shared, async move {
            shared.get().await.map(Outcome::Connection)
        })
    }

    /// Refuses new queries and closes idle connections; those in use close when given back.
    fn _close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Ok(pools) = self.shared.pools.lock() {
            for (_, _, pool) in pools.iter() {
                pool.close();
            }
        }
    }

    #[getter]
    fn max_size(&self) -> usize {
        self.shared.max_size
    }

    #[getter]
    fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
});

/// A connection taken from the pool (`async with pool.acquire() as conn`), until `release()`.
#[pyclass(module = "spikard._spikard", name = "Connection", frozen)]
pub struct PgConnection {
    shared: Arc<Shared>,
    client: Mutex<Option<Arc<Object>>>,
    /// Set while a `transaction()` of this connection is open.
    in_transaction: Arc<AtomicBool>,
    /// Set when a statement found the connection lost (`Unavailable`).
    lost: Arc<AtomicBool>,
}

impl PgConnection {
    fn client(&self) -> Result<Arc<Object>, Failure> {
        self.client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(Failure::Released)
    }

    fn run<'py>(&self, py: Python<'py>, job: Job) -> PyResult<Bound<'py, PyAny>> {
        self.submit_on(py, |client| async move { job.run(&client).await })
    }

    /// Starts `work` on this connection's client; a connection `work` finds lost is marked
    /// so (see [`PgConnection::spoilt`]).
    fn submit_on<'py, W, F>(&self, py: Python<'py>, work: W) -> PyResult<Bound<'py, PyAny>>
    where
        W: FnOnce(Arc<Object>) -> F,
        F: Future<Output = Result<Outcome, Failure>> + Send + 'static,
    {
        let client = self.client().map_err(|f| f.into_py(py))?;
        let lost = Arc::clone(&self.lost);
        let work = work(client);
        submit(py, &self.shared, async move {
            let done = work.await;
            if done.as_ref().is_err_and(Failure::is_lost) {
                lost.store(true, Ordering::Release);
            }
            done
        })
    }

    /// Whether the connection must not go back to the pool: a transaction is still open
    /// on it, or it was lost.
    fn spoilt(&self) -> bool {
        self.in_transaction.swap(false, Ordering::AcqRel) | self.lost.load(Ordering::Acquire)
    }

    /// `BEGIN`, `COMMIT` or `ROLLBACK`; `open`: whether a transaction is open after it.
    fn control<'py>(
        &self,
        py: Python<'py>,
        sql: &'static str,
        open: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let flag = Arc::clone(&self.in_transaction);
        self.submit_on(py, |client| async move {
            let done = client.batch_execute(sql).await;
            // After a failed COMMIT PostgreSQL has ended the transaction too.
            flag.store(open && done.is_ok(), Ordering::Release);
            done.map(|()| Outcome::Nothing).map_err(Failure::from)
        })
    }
}

with_statement_methods!(PgConnection {
    /// `async with conn.transaction():` — `BEGIN`, then `COMMIT`, or `ROLLBACK` when the
    /// block raises.
    fn transaction(slf: Bound<'_, Self>) -> PyResult<Transaction> {
        if slf.get().in_transaction.load(Ordering::Acquire) {
            return Err(
                Failure::Driver("a transaction is already open on this connection".into())
                    .into_py(slf.py()),
            );
        }
        Ok(Transaction {
            connection: slf.unbind(),
        })
    }

    /// Gives the connection back to the pool. One left inside a transaction is closed
    /// instead, so that no later query runs in it, and so is one a statement found lost.
    fn release(&self) {
        let client = self.client.lock().ok().and_then(|mut c| c.take());
        if let Some(client) = client {
            if self.spoilt() {
                discard(client);
            }
        }
    }

    #[getter]
    fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::Acquire)
    }

    #[getter]
    fn released(&self) -> bool {
        self.client.lock().map(|c| c.is_none()).unwrap_or(true)
    }
});

impl Drop for PgConnection {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().ok().and_then(Option::take) {
            if self.spoilt() {
                discard(client);
            }
        }
    }
}

/// Takes a connection out of its pool and closes it; one that a query in flight still
/// holds is rolled back after that query instead, and then goes back.
fn discard(client: Arc<Object>) {
    match Arc::try_unwrap(client) {
        Ok(object) => drop(Object::take(object)),
        Err(client) => {
            if let Ok(runtime) = background() {
                runtime.spawn(async move {
                    let _ = client.batch_execute("ROLLBACK").await;
                });
            }
        }
    }
}

/// `pool.acquire()`: an async context manager whose block holds one connection of the pool.
#[pyclass(module = "spikard._spikard", name = "Acquired", frozen)]
pub struct Acquired {
    pool: Py<PgPool>,
    /// The future `__aenter__` returned (it resolves to the connection), until `__aexit__`.
    taken: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl Acquired {
    fn __aenter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut taken = self
            .taken
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the connection's holder failed"))?;
        if let Some(earlier) = taken.as_ref() {
            // One whose wait was cancelled holds nothing.
            if !earlier.bind(py).call_method0("cancelled")?.is_truthy()? {
                return Err(PyRuntimeError::new_err(
                    "this acquire() already holds a connection: call pool.acquire() for another",
                ));
            }
        }
        let future = self.pool.get()._acquire(py)?;
        *taken = Some(future.clone().unbind());
        Ok(future)
    }

    /// Gives the connection back; an exception from the block propagates.
    #[pyo3(signature = (_exc_type, _exc, _traceback))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: &Bound<'py, PyAny>,
        _exc: &Bound<'py, PyAny>,
        _traceback: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let taken = self.taken.lock().ok().and_then(|mut t| t.take());
        if let Some(future) = taken {
            // The block ran, so the future holds the connection.
            let connection = aio::call_future(future.bind(py), Method::Result, &[])?;
            connection.cast::<PgConnection>()?.get().release();
        }
        aio::ready(py)
    }
}

/// `conn.transaction()`: an async context manager.
#[pyclass(module = "spikard._spikard", name = "Transaction", frozen)]
pub struct Transaction {
    connection: Py<PgConnection>,
}

#[pymethods]
impl Transaction {
    fn __aenter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.bind(py).get();
        let begun = connection.control(py, "BEGIN", true)?;
        // Resolve to the connection rather than None.
        let target = self.connection.clone_ref(py).into_any();
        chain(py, &begun, target)
    }

    #[pyo3(signature = (exc_type, _exc, _traceback))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc_type: &Bound<'py, PyAny>,
        _exc: &Bound<'py, PyAny>,
        _traceback: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let connection = self.connection.bind(py).get();
        let sql = if exc_type.is_none() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        // Resolves to None: an exception from the block propagates.
        connection.control(py, sql, false)
    }
}

/// A coroutine that awaits `first` and then returns `value`.
fn chain<'py>(
    py: Python<'py>,
    first: &Bound<'py, PyAny>,
    value: Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    static THEN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let then = THEN.get_or_try_init(py, || {
        PyResult::Ok(py.import("spikard.postgres")?.getattr("_then")?.unbind())
    })?;
    then.bind(py).call1((first, value))
}
