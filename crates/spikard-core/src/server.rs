//! Serving a router: binding (optionally with `SO_REUSEPORT` so worker processes share a
//! port), an HTTP/1.1 accept loop with a header-read timeout, and graceful shutdown that
//! stops accepting, lets in-flight requests finish, and returns.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use socket2::{Domain, Protocol, Socket, Type};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How a server listens and shuts down.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Tokio worker threads; 1 runs a current-thread runtime. 0 means one per CPU.
    pub threads: usize,
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
            reuse_port: false,
            header_read_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerConfig {
    /// Builds the tokio runtime this configuration asks for.
    pub fn runtime(&self) -> io::Result<tokio::runtime::Runtime> {
        let mut builder = if self.threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        };
        if self.threads > 1 {
            builder.worker_threads(self.threads);
        }
        builder.enable_all().build()
    }
}

/// Binds `host:port` (call it inside the runtime) with `SO_REUSEADDR` (and `SO_REUSEPORT` when asked).
pub fn bind(config: &ServerConfig) -> io::Result<TcpListener> {
    let addr: SocketAddr = (config.host.as_str(), config.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "host resolves to nothing"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if config.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
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

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets open
/// requests finish (up to `config.shutdown_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
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
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("spikard: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
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

/// Builds the runtime, binds, prints the address, and serves until SIGINT/SIGTERM.
pub fn run(router: Router, config: &ServerConfig) -> io::Result<()> {
    let runtime = config.runtime()?;
    runtime.block_on(async {
        let listener = bind(config)?;
        eprintln!("spikard: listening on http://{}", listener.local_addr()?);
        serve(listener, router, config, shutdown_signal()).await
    })
}
