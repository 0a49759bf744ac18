//! `application/x-www-form-urlencoded` decoding, shared by query strings and form bodies.
//!
//! Keys and values borrow from the input when they contain no `+` or `%`; a sequence that
//! decodes to invalid UTF-8 is an error (a malformed `%` escape is kept literally, as
//! browsers do).

use percent_encoding::percent_decode;
use std::borrow::Cow;

/// The input decodes to bytes that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Iterates over the `key=value` pairs of `input`, skipping empty segments.
pub fn pairs(
    input: &str,
) -> impl Iterator<Item = Result<(Cow<'_, str>, Cow<'_, str>), InvalidUtf8>> {
    input
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
            Ok((decode(key)?, decode(value)?))
        })
}

/// Decodes one component: `+` is a space, `%XX` a byte.
pub fn decode(text: &str) -> Result<Cow<'_, str>, InvalidUtf8> {
    if !text.bytes().any(|b| b == b'+' || b == b'%') {
        return Ok(Cow::Borrowed(text));
    }
    let spaced: Cow<'_, str> = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    let decoded = percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map_err(|_| InvalidUtf8)?;
    Ok(Cow::Owned(decoded.into_owned()))
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
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert!(pairs("a=%FF").any(|pair| pair.is_err()));
    }

    #[test]
    fn borrows_when_nothing_to_decode() {
        assert!(matches!(decode("plain"), Ok(Cow::Borrowed("plain"))));
    }
}
