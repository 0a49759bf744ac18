//! WebSocket routes: the engine performs the upgrade, the handler owns the socket.

use futures_util::future::BoxFuture;

pub use axum::extract::ws::{Message, WebSocket};

/// A WebSocket handler: called once per upgraded connection.
pub trait WsHandler: Send + Sync + 'static {
    fn call(&self, socket: WebSocket) -> BoxFuture<'static, ()>;
}

impl<F, Fut> WsHandler for F
where
    F: Fn(WebSocket) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: WebSocket) -> BoxFuture<'static, ()> {
        Box::pin(self(socket))
    }
}
