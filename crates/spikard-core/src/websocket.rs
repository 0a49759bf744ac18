//! WebSocket routes: the engine performs the upgrade, the handler owns the socket.
//!
//! Handlers read with [`receive`], which answers a broken message as RFC 6455 asks: text
//! that is not UTF-8 closes the connection with 1007, a message over the size limit with
//! 1009, any other protocol violation with 1002.

use futures_util::future::BoxFuture;

pub use axum::extract::ws::{CloseFrame, Message, WebSocket};

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

/// The next message, or `None` once the connection is over. A message that breaks the
/// protocol is answered with the close frame its cause calls for before `None` is returned.
pub async fn receive(socket: &mut WebSocket) -> Option<Message> {
    match socket.recv().await? {
        Ok(message) => Some(message),
        Err(err) => {
            if let Some(frame) = close_frame(err) {
                let _ = socket.send(Message::Close(Some(frame))).await;
            }
            None
        }
    }
}

/// The close frame for a receive error, or `None` when the connection itself failed.
fn close_frame(err: axum::Error) -> Option<CloseFrame> {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = err.into_inner();
    let (code, reason) = match inner.downcast_ref::<WsError>()? {
        WsError::Utf8(_) => (1007, "text message is not UTF-8"),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => (1009, "message too long"),
        WsError::Capacity(_) => (1009, "frame too large"),
        WsError::Protocol(_) => (1002, "protocol error"),
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}
