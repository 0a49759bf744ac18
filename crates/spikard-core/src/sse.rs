//! Server-sent events: a stream of [`Event`]s answered as `text/event-stream`.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderValue};
use std::convert::Infallible;

/// One event: an optional `event:` name, an optional `id:`, and its data (multi-line data is
/// sent as several `data:` lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn data(data: impl Into<String>) -> Self {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.event = Some(name.into());
        self
    }

    /// The event in wire format, ending with the blank line.
    pub fn encode(&self) -> Bytes {
        encode(self.event.as_deref(), self.id.as_deref(), &self.data)
    }
}

/// An event in wire format, ending with the blank line, from borrowed parts (multi-line data
/// as several `data:` lines).
pub fn encode(event: Option<&str>, id: Option<&str>, data: &str) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 32);
    write(&mut out, event, id, data);
    Bytes::from(out)
}

/// [`encode`], at the end of `out` (several events can share one buffer).
pub fn write(out: &mut Vec<u8>, event: Option<&str>, id: Option<&str>, data: &str) {
    write_head(out, event, id);
    for line in data.split('\n') {
        push_field(out, "data", line.strip_suffix('\r').unwrap_or(line));
    }
    out.push(b'\n');
}

/// An event's `event:` and `id:` lines, for an encoder that writes its data itself: then
/// `data: `, one line of data holding no line break, and `\n\n`.
pub fn write_head(out: &mut Vec<u8>, event: Option<&str>, id: Option<&str>) {
    if let Some(event) = event {
        push_field(out, "event", event);
    }
    if let Some(id) = id {
        push_field(out, "id", id);
    }
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    // A field value cannot hold a line break; the data is split by lines before this.
    let value = value.as_bytes();
    if value.iter().any(|b| *b == b'\n' || *b == b'\r') {
        out.extend(value.iter().filter(|b| **b != b'\n' && **b != b'\r'));
    } else {
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// A `text/event-stream` answer that sends every event of `events`, then ends.
pub fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Event> + Send + 'static,
{
    encoded(events.map(|event| event.encode()))
}

/// A `text/event-stream` answer of events already in wire format (see [`encode`]).
pub fn encoded<S>(events: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let body = Body::from_stream(events.map(Ok::<_, Infallible>));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let event = Event::data("{\"seq\":1}").event("tick");
        assert_eq!(&event.encode()[..], b"event: tick\ndata: {\"seq\":1}\n\n");
        let multi = Event::data("a\nb");
        assert_eq!(&multi.encode()[..], b"data: a\ndata: b\n\n");
        let crlf = encode(Some("n\rame"), Some("7"), "x\r\ny\r");
        assert_eq!(&crlf[..], b"event: name\nid: 7\ndata: x\ndata: y\n\n");
    }
}
