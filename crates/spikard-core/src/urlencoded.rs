//! `application/x-www-form-urlencoded` decoding, shared by query strings and form bodies.
//!
//! Keys and values borrow from the input when they contain no `+` or `%`; a sequence that
//! decodes to invalid UTF-8, or to a NUL character, is an error (a malformed `%` escape is
//! kept literally, as browsers do).

use std::borrow::Cow;

/// Why a component cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// It decodes to bytes that are not UTF-8.
    Utf8,
    /// It holds a NUL character, sent as is or as `%00`.
    Nul,
}

impl Invalid {
    /// The 400 for a component of `what` ("the query string", "the form body").
    pub fn error(self, what: &str) -> crate::Error {
        use crate::error::Malformed;
        match self {
            Invalid::Utf8 => crate::Error::BadRequest(
                Malformed::Encoding,
                format!("{what} does not decode to UTF-8"),
            ),
            Invalid::Nul => crate::Error::BadRequest(
                Malformed::NulCharacter,
                format!("{what} holds a NUL character (%00)"),
            ),
        }
    }
}

/// Iterates over the `key=value` pairs of `input`, skipping empty segments.
pub fn pairs(input: &str) -> Pairs<'_> {
    Pairs { rest: Some(input) }
}

/// The pairs of a query string or form body ([`pairs`]), decoded one at a time.
pub struct Pairs<'a> {
    /// What is left after the last `&` cut; `None` once the end has been handed out.
    rest: Option<&'a str>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(Cow<'a, str>, Cow<'a, str>), Invalid>;

    // Inlined into its loops, the pair it yields stays in registers.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            // The cuts are at ASCII `&` and `=`, so at character boundaries. memchr finds the
            // next `&`; within a short key or value a plain loop is faster than its set-up.
            let segment = match memchr::memchr(b'&', rest.as_bytes()) {
                Some(amp) => {
                    self.rest = Some(&rest[amp + 1..]);
                    &rest[..amp]
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            if segment.is_empty() {
                continue;
            }
            let (key, value) = match segment.bytes().position(|b| b == b'=') {
                Some(eq) => (&segment[..eq], &segment[eq + 1..]),
                None => (segment, ""),
            };
            return Some(decode(key).and_then(|key| Ok((key, decode(value)?))));
        }
    }
}

/// Decodes one component: `+` is a space, `%XX` a byte; one pass, one allocation.
#[inline]
pub fn decode(text: &str) -> Result<Cow<'_, str>, Invalid> {
    let first = text.bytes().position(|b| b == b'+' || b == b'%' || b == 0);
    decode_from(text, first, true)
}

/// Decodes one path segment: `%XX` is a byte and `+` stays a `+` (RFC 3986).
pub fn decode_path(text: &str) -> Result<Cow<'_, str>, Invalid> {
    let first = text.bytes().position(|b| b == b'%' || b == 0);
    decode_from(text, first, false)
}

/// Decodes `text` from `first`, the first byte that may need it.
#[inline]
fn decode_from(
    text: &str,
    first: Option<usize>,
    plus_is_space: bool,
) -> Result<Cow<'_, str>, Invalid> {
    match first {
        None => Ok(Cow::Borrowed(text)),
        Some(first) => decode_escaped(text, first, plus_is_space),
    }
}

/// Decodes `text`, which needs it from `first` on.
fn decode_escaped(text: &str, first: usize, plus_is_space: bool) -> Result<Cow<'_, str>, Invalid> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                // A malformed escape stays as it was sent.
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    if memchr::memchr(0, &out).is_some() {
        return Err(Invalid::Nul);
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| Invalid::Utf8)
}

fn hex(digit: &u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &str) -> Vec<(String, String)> {
        pairs(input)
            .map(|pair| {
                let (k, v) = pair.unwrap_or_default();
                (k.into_owned(), v.into_owned())
            })
            .collect()
    }

    #[test]
    fn decodes_plus_and_percent() {
        assert_eq!(
            collect("name=John+Doe&email=john%40example.com&&flag"),
            vec![
                ("name".into(), "John Doe".into()),
                ("email".into(), "john@example.com".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(collect("a=100%"), vec![("a".into(), "100%".into())]);
        assert_eq!(collect("q=%2B1"), vec![("q".into(), "+1".into())]);
        assert_eq!(collect("x=%zz%4"), vec![("x".into(), "%zz%4".into())]);
        assert_eq!(
            collect("c=caf%C3%A9+%e2%9c%93"),
            vec![("c".into(), "café ✓".into())]
        );
    }

    #[test]
    fn rejects_invalid_utf8_and_nul() {
        assert_eq!(decode("a%FF"), Err(Invalid::Utf8));
        assert_eq!(decode("%ff"), Err(Invalid::Utf8));
        assert_eq!(decode("a%00b"), Err(Invalid::Nul));
        assert_eq!(decode("a\0b"), Err(Invalid::Nul));
        assert!(pairs("x=1&%00=2").any(|pair| pair.is_err()));
    }

    #[test]
    fn path_segments_keep_plus() {
        assert_eq!(decode_path("a+b%20c").as_deref(), Ok("a+b c"));
        assert!(matches!(decode_path("a+b"), Ok(Cow::Borrowed("a+b"))));
        assert_eq!(decode_path("%C3%A9"), Ok(Cow::Owned("é".into())));
        assert_eq!(decode_path("%ff"), Err(Invalid::Utf8));
        assert_eq!(decode_path("x%00"), Err(Invalid::Nul));
        assert_eq!(decode_path("x\0"), Err(Invalid::Nul));
    }

    #[test]
    fn borrows_when_nothing_to_decode() {
        assert!(matches!(decode("plain"), Ok(Cow::Borrowed("plain"))));
    }
}
