//! Request bodies: what a route takes, reading it under the size limit, checking its content
//! type, and decoding forms and multipart bodies.

use crate::error::{Error, Malformed};
use crate::params::FormData;
use crate::upload::UploadFile;
use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

/// How much body a route accepts, and how long it may take to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRules {
    /// The largest body, in bytes; larger: 413.
    pub limit: usize,
    /// The longest a body may take once the request head is in; slower: 408.
    pub timeout: Duration,
}

/// The kind of body a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyKind {
    /// The body is not read.
    #[default]
    None,
    /// `application/json` (or any `+json` type); the handler decodes it.
    Json,
    /// `application/x-www-form-urlencoded` or `multipart/form-data`, decoded into the plan's
    /// form parameters. A route with file parameters takes multipart only.
    Form,
    /// Any content type; the handler gets the bytes.
    Bytes,
}

/// The body as handed to a handler.
#[derive(Debug, Default)]
pub enum BodyData {
    #[default]
    None,
    /// The raw bytes of a JSON or raw body.
    Bytes(Bytes),
    /// A decoded form (its values are also in the route's parameters).
    Form(FormData),
}

const FORM_URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data";

fn media_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim())
}

fn is_json(media: &str) -> bool {
    media.eq_ignore_ascii_case("application/json")
        || media
            .rsplit_once('+')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
}

/// Reads the whole body, or fails with 413 once it passes the limit, or with 408 when it has
/// not arrived within the timeout.
pub async fn read_limited<B>(headers: &HeaderMap, body: B, rules: BodyRules) -> Result<Bytes, Error>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let limit = rules.limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Error::PayloadTooLarge { limit });
    }
    let collect = http_body_util::Limited::new(body, limit).collect();
    tokio::pin!(collect);
    // A small body is usually in the connection's buffer already: only a body that is not
    // gets a timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(collected) => collected,
        Poll::Pending => tokio::time::timeout(rules.timeout, collect)
            .await
            .map_err(|_| Error::BodyTimeout {
                after: rules.timeout,
            })?,
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(Error::PayloadTooLarge { limit })
        }
        Err(err) => Err(Error::BadRequest(
            Malformed::BodyRead,
            format!("failed to read the body: {err}"),
        )),
    }
}

/// Reads and decodes the body a route of kind `kind` takes.
pub async fn read<B>(
    kind: BodyKind,
    files: bool,
    headers: &HeaderMap,
    body: B,
    rules: BodyRules,
) -> Result<BodyData, Error>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    match kind {
        BodyKind::None => Ok(BodyData::None),
        BodyKind::Bytes => Ok(BodyData::Bytes(read_limited(headers, body, rules).await?)),
        BodyKind::Json => {
            if !media_type(headers).is_some_and(is_json) {
                return Err(Error::UnsupportedMediaType {
                    expected: "application/json",
                });
            }
            Ok(BodyData::Bytes(read_limited(headers, body, rules).await?))
        }
        BodyKind::Form => {
            let media = media_type(headers).unwrap_or("");
            if media.eq_ignore_ascii_case(MULTIPART) {
                let boundary = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| multer::parse_boundary(v).ok())
                    .ok_or_else(|| {
                        Error::BadRequest(
                            Malformed::Multipart,
                            "multipart body without a boundary".into(),
                        )
                    })?;
                let bytes = read_limited(headers, body, rules).await?;
                Ok(BodyData::Form(multipart(bytes, boundary).await?))
            } else if !files && media.eq_ignore_ascii_case(FORM_URLENCODED) {
                let bytes = read_limited(headers, body, rules).await?;
                Ok(BodyData::Form(FormData::UrlEncoded(bytes)))
            } else {
                Err(Error::UnsupportedMediaType {
                    expected: if files {
                        MULTIPART
                    } else {
                        "application/x-www-form-urlencoded or multipart/form-data"
                    },
                })
            }
        }
    }
}

async fn multipart(bytes: Bytes, boundary: String) -> Result<FormData, Error> {
    let broken = |err: multer::Error| {
        Error::BadRequest(
            Malformed::Multipart,
            format!("broken multipart body: {err}"),
        )
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let (mut fields, mut files) = (Vec::new(), Vec::new());
    while let Some(field) = parts.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(filename) => {
                let content_type = field
                    .content_type()
                    .map(|m| m.essence_str().to_owned())
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let data = field_data(field).await.map_err(broken)?;
                files.push((
                    name,
                    UploadFile {
                        filename,
                        content_type,
                        data,
                    },
                ));
            }
            None => {
                let bytes = field.bytes().await.map_err(broken)?;
                let text = std::str::from_utf8(&bytes)
                    .map(str::to_owned)
                    .map_err(|_| {
                        Error::BadRequest(
                            Malformed::Encoding,
                            format!("multipart field {name:?} is not UTF-8 text"),
                        )
                    })?;
                if text.contains('\0') {
                    return Err(Error::BadRequest(
                        Malformed::NulCharacter,
                        format!("multipart field {name:?} holds a NUL character"),
                    ));
                }
                fields.push((name, text));
            }
        }
    }
    Ok(FormData::Multipart { fields, files })
}

/// A field's bytes. The whole body is in multer's buffer before parsing starts, so a field
/// usually comes as one chunk, a slice of that buffer, taken without a copy;
/// `Field::bytes` would copy it into a new buffer every time.
async fn field_data(mut field: multer::Field<'_>) -> Result<Bytes, multer::Error> {
    let Some(first) = field.chunk().await? else {
        return Ok(Bytes::new());
    };
    let Some(second) = field.chunk().await? else {
        return Ok(first);
    };
    let mut data = bytes::BytesMut::with_capacity(first.len() + second.len());
    data.extend_from_slice(&first);
    data.extend_from_slice(&second);
    while let Some(chunk) = field.chunk().await? {
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("x/y")),
        );
        h
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert_eq!(
            media_type(&headers("application/json; charset=utf-8")),
            Some("application/json")
        );
    }

    #[tokio::test]
    async fn limit_is_enforced_while_reading() {
        let big = Body::from(vec![b'x'; 100]);
        let rules = BodyRules {
            limit: 10,
            timeout: Duration::from_secs(1),
        };
        let err = read_limited(&HeaderMap::new(), big, rules).await;
        assert_eq!(err, Err(Error::PayloadTooLarge { limit: 10 }));
        let ok = read_limited(&HeaderMap::new(), Body::from("abc"), rules).await;
        assert_eq!(ok, Ok(Bytes::from_static(b"abc")));
    }

    #[tokio::test]
    async fn multipart_fields_and_files() {
        let body = "--XB\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nhello\r\n\
                    --XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n\x01\x02\x03\r\n--XB--\r\n";
        let form = multipart(Bytes::from(body), "XB".into()).await;
        let Ok(FormData::Multipart { fields, files }) = form else {
            panic!("not parsed: {form:?}");
        };
        assert_eq!(fields, vec![("description".into(), "hello".into())]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].1.data.as_ref(), b"\x01\x02\x03");
        assert_eq!(files[0].1.filename, "a.bin");
        let broken = multipart(Bytes::from("--XB\r\nnonsense"), "XB".into()).await;
        assert!(matches!(
            broken,
            Err(Error::BadRequest(Malformed::Multipart, _))
        ));
    }

    /// A file whose bytes arrive in many chunks (the stream pauses between pieces) is put
    /// back together whole, in order, for several sizes and piece lengths.
    #[tokio::test]
    async fn file_data_in_many_chunks() {
        use futures_util::StreamExt;
        for (size, piece) in [(0usize, 3usize), (1, 1), (4_097, 7), (20_000, 1_500)] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let mut body =
                b"--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n"
                    .to_vec();
            body.extend_from_slice(&data);
            body.extend_from_slice(b"\r\n--XB--\r\n");
            let pieces: Vec<Bytes> = body.chunks(piece).map(Bytes::copy_from_slice).collect();
            let stream = futures_util::stream::iter(pieces).then(|p| async move {
                tokio::task::yield_now().await;
                Ok::<Bytes, std::io::Error>(p)
            });
            let mut parts = multer::Multipart::new(stream, "XB");
            let field = parts.next_field().await.ok().flatten();
            let got = match field {
                Some(field) => field_data(field).await.ok(),
                None => None,
            };
            assert_eq!(
                got.as_deref(),
                Some(&data[..]),
                "size {size}, pieces of {piece}"
            );
        }
    }
}
