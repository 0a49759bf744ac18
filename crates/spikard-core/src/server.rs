//! Serving a router: binding (optionally with `SO_REUSEPORT` so worker processes share a
//! port), an HTTP/1.1 accept loop with a header-read timeout, and graceful shutdown that
//! stops accepting, lets in-flight requests finish, and returns.
//!
//! [`run`] serves in one of two shapes ([`Threading`]): by default thread per core — N OS
//! threads, each with a current-thread tokio runtime and its own `SO_REUSEPORT` listener on
//! the one port, so a connection lives and dies on the thread the kernel handed it to — or
//! one tokio multi-thread runtime whose workers share one listener and steal work.

use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either, FutureExt, Map, Ready};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How [`run`] spreads connections over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threading {
    /// One current-thread runtime per thread, each with its own `SO_REUSEPORT` listener:
    /// no cross-thread wake-ups or shared queues. The kernel spreads connections over the
    /// listeners by their address hash, and a connection stays on its thread, so a few busy
    /// long-lived connections can leave threads idle.
    #[default]
    PerCore,
    /// One tokio multi-thread runtime: its workers share one listener and steal work from
    /// each other, which evens out uneven connections at the price of synchronisation.
    MultiThread,
}

impl std::str::FromStr for Threading {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-core" => Ok(Threading::PerCore),
            "multi-thread" => Ok(Threading::MultiThread),
            other => Err(format!(
                "unknown threading {other:?} (per-core or multi-thread)"
            )),
        }
    }
}

/// How a server listens and shuts down.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Serving threads; 0 means one per CPU this process may run on (so `taskset` and
    /// cgroup limits are respected).
    pub threads: usize,
    /// Thread per core (the default) or one work-stealing runtime.
    pub threading: Threading,
    /// Set `SO_REUSEPORT`, so several processes can serve one port.
    pub reuse_port: bool,
    /// A client that has not sent a complete request head in this time is disconnected.
    pub header_read_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8000,
            threads: 0,
            threading: Threading::PerCore,
            reuse_port: false,
            header_read_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerConfig {
    /// The number of serving threads: `threads`, or one per CPU this process may run on.
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Builds one tokio runtime for all of this configuration's threads: a current-thread
    /// runtime for one thread, else a multi-thread one.
    pub fn runtime(&self) -> io::Result<tokio::runtime::Runtime> {
        let threads = self.thread_count();
        if threads == 1 {
            return current_thread();
        }
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

fn current_thread() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Binds `host:port` (call it inside the runtime) with `SO_REUSEADDR` (and `SO_REUSEPORT` when asked).
pub fn bind(config: &ServerConfig) -> io::Result<TcpListener> {
    TcpListener::from_std(bind_std(config, config.port, config.reuse_port)?)
}

/// Raises this process's soft limit of open files to its hard limit, once (as Go's runtime
/// does): every connection is a descriptor, and the soft limit is often 1024.
fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
            eprintln!("spikard: could not raise the open-file limit: {err}");
        }
    });
}

/// Binds a non-blocking listener on `host:port` outside any runtime.
fn bind_std(
    config: &ServerConfig,
    port: u16,
    reuse_port: bool,
) -> io::Result<std::net::TcpListener> {
    let addr: SocketAddr = (config.host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "host resolves to nothing"))?;
    raise_open_file_limit();
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Resolves when the process gets SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// What [`serve`] answers requests with: the engine's [`Router`](crate::routing::Router),
/// or an axum router.
pub trait Respond: Clone + Send + Sync + 'static {
    fn respond(&self, req: http::Request<Incoming>) -> BoxFuture<'static, Response>;
}

impl Respond for crate::routing::Router {
    fn respond(&self, req: http::Request<Incoming>) -> BoxFuture<'static, Response> {
        crate::routing::Router::respond(self, req)
    }
}

impl Respond for axum::Router {
    fn respond(&self, req: http::Request<Incoming>) -> BoxFuture<'static, Response> {
        let router = self.clone();
        Box::pin(async move {
            match tower::ServiceExt::oneshot(router, req).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets open
/// requests finish (up to `config.shutdown_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: impl Respond,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(());
    // Every connection task holds a sender; when all are gone, `recv` returns `None`.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    let mut failures = AcceptFailures::default();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Out of file descriptors and the like: wait for some to be freed
                    // instead of spinning, and say so at most once a second.
                    failures.note(&err);
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        () = &mut shutdown => break,
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = RequireHost(router.clone());
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(alive);
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    drop(alive_tx);
    let _ = tokio::time::timeout(config.shutdown_timeout, alive_rx.recv()).await;
    Ok(())
}

/// How long the accept loop waits after a failed `accept` (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Failed accepts since the last log line; logs at most once a second.
#[derive(Default)]
struct AcceptFailures {
    since_log: u64,
    logged: Option<std::time::Instant>,
}

impl AcceptFailures {
    fn note(&mut self, err: &io::Error) {
        self.since_log += 1;
        let now = std::time::Instant::now();
        if self
            .logged
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            eprintln!(
                "spikard: accept failed {} time(s), retrying every {} ms: {err}",
                self.since_log,
                ACCEPT_BACKOFF.as_millis()
            );
            self.since_log = 0;
            self.logged = Some(now);
        }
    }
}

/// One connection's service: a check every HTTP/1.1 request must pass before routing, a
/// `Host` header (RFC 9112, section 3.2), else a 400 and the connection is closed; then the
/// router.
struct RequireHost<S>(S);

type Answer = Result<Response, Infallible>;

impl<S: Respond> hyper::service::Service<http::Request<Incoming>> for RequireHost<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Answer>, Map<BoxFuture<'static, Response>, fn(Response) -> Answer>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        if req.version() == http::Version::HTTP_11
            && !req.headers().contains_key(http::header::HOST)
        {
            let missing = crate::Error::BadRequest(
                crate::Malformed::MissingHost,
                "an HTTP/1.1 request must carry a Host header".into(),
            );
            return Either::Left(futures_util::future::ready(Ok(missing.into_response())));
        }
        Either::Right(self.0.respond(req).map(Ok as fn(Response) -> Answer))
    }
}

/// Serves `router` with the engine's accept loop ([`serve`]) in the shape `config.threading`
/// asks for, printing the address, until SIGINT/SIGTERM; then every thread finishes its
/// open requests and `run` returns.
pub fn run(router: impl Respond, config: &ServerConfig) -> io::Result<()> {
    run_with(config, |listener, stop| {
        serve(listener, router.clone(), config, stop.into_future())
    })
}

/// The threads, listeners and shutdown of [`run`] around any accept loop: `serve_one(listener,
/// stop)` is called once per serving thread, inside that thread's runtime, and must return
/// once `stop` has resolved and its connections are done. Bind errors are returned before
/// anything is served.
pub fn run_with<F, Fut>(config: &ServerConfig, serve_one: F) -> io::Result<()>
where
    F: Fn(TcpListener, Stop) -> Fut + Sync,
    Fut: Future<Output = io::Result<()>>,
{
    let threads = config.thread_count();
    if config.threading == Threading::MultiThread || threads == 1 {
        let runtime = config.runtime()?;
        return runtime.block_on(async {
            let listener = bind(config)?;
            eprintln!("spikard: listening on http://{}", listener.local_addr()?);
            let (stop_tx, stop) = Stop::new();
            let serving = serve_one(listener, stop);
            tokio::pin!(serving);
            tokio::select! {
                served = &mut serving => return served,
                () = shutdown_signal() => {}
            }
            let _ = stop_tx.send(true);
            serving.await
        });
    }
    // Thread per core: the first listener fixes the port (also when 0 asked for a free one),
    // the others join it through SO_REUSEPORT.
    let first = bind_std(config, config.port, true)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(bind_std(config, addr.port(), true)?);
    }
    eprintln!("spikard: listening on http://{addr}");
    eprintln!("spikard: {threads} threads, one runtime and listener each");
    let (stop_tx, stop) = Stop::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<io::Result<()>>();
    std::thread::scope(|scope| {
        for (i, listener) in listeners.into_iter().enumerate() {
            let stop = stop.clone();
            let done = done_tx.clone();
            let serve_one = &serve_one;
            let spawned = std::thread::Builder::new()
                .name(format!("spikard-{i}"))
                .spawn_scoped(scope, move || {
                    let served = current_thread().and_then(|runtime| {
                        runtime.block_on(async {
                            serve_one(TcpListener::from_std(listener)?, stop).await
                        })
                    });
                    let _ = done.send(served);
                });
            if let Err(err) = spawned {
                let _ = done_tx.send(Err(err));
                break;
            }
        }
        drop(done_tx);
        // This thread waits for a signal, or for a serving thread that ended on its own (an
        // error), and then stops the others.
        let first_end = current_thread().map(|runtime| {
            runtime.block_on(async {
                tokio::select! {
                    () = shutdown_signal() => None,
                    ended = done_rx.recv() => ended,
                }
            })
        });
        let _ = stop_tx.send(true);
        let mut result = match first_end {
            Ok(Some(Err(err))) | Err(err) => Err(err),
            Ok(_) => Ok(()),
        };
        while let Some(ended) = done_rx.blocking_recv() {
            if let (Ok(()), Err(err)) = (&result, ended) {
                result = Err(err);
            }
        }
        result
    })
}

/// Resolves when [`run_with`] tells its serving threads to stop.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }
}

impl IntoFuture for Stop {
    type Output = ();
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(mut self) -> Self::IntoFuture {
        Box::pin(async move {
            let _ = self.0.wait_for(|stopped| *stopped).await;
        })
    }
}
