//! The rules every JSON body follows in both servers, beyond what a decoder checks:
//!
//! - what a route decodes nests arrays and objects at most [`MAX_DEPTH`] (127) levels
//!   (deeper: 400, `json-too-deep`), whatever the route's type; a member the route's record
//!   does not have is skipped unread, as serde and msgspec skip it;
//! - an integer outside the signed 64-bit range is a 422 wherever it appears;
//! - a number too large for a 64-bit float (`1e400`) is a 422;
//! - `NaN` and `Infinity` are not JSON (400);
//! - of a repeated key, the last one wins.
//!
//! The checks here are written to cost almost nothing on an ordinary body: the integer check
//! looks at one byte in nineteen unless the body holds a run of nineteen digits, and the depth
//! scan runs only after a decode failed or where a type can nest without bound.

use crate::error::{Error, FieldError, LocPart, Malformed};
use memchr::memchr2;

/// The deepest nesting of arrays and objects a body may have: serde_json's own limit (it
/// refuses the 128th level).
pub const MAX_DEPTH: usize = 127;

/// The fewest digits an integer outside the signed 64-bit range can have.
const WIDE_DIGITS: usize = 19;

/// Whether `bytes` nests arrays and objects deeper than [`MAX_DEPTH`]. Strings are skipped;
/// the text need not be valid JSON.
pub fn too_deep(bytes: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = string_end(bytes, i + 1);
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// The 400 for a body nested too deeply.
pub fn too_deep_error() -> Error {
    Error::BadRequest(
        Malformed::JsonTooDeep,
        format!("the body nests arrays and objects deeper than {MAX_DEPTH} levels"),
    )
}

/// After a failed decode: the 400 for a body nested too deeply or not JSON at all, checked in
/// that order; `None` when it is JSON within the depth limit (and the failure is its shape).
#[cold]
pub fn not_json(bytes: &[u8]) -> Option<Error> {
    if too_deep(bytes) {
        return Some(too_deep_error());
    }
    let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err()?;
    Some(Error::BadRequest(
        Malformed::Json,
        format!("the body is not valid JSON: {syntax}"),
    ))
}

/// The 422 for an integer outside the signed 64-bit range, if `bytes` holds one.
pub fn check_integers(bytes: &[u8]) -> Result<(), Error> {
    if !has_digit_run(bytes, WIDE_DIGITS) {
        return Ok(());
    }
    match wide_integer(bytes) {
        None => Ok(()),
        Some(path) => {
            let mut loc = vec![LocPart::Key("body".into())];
            loc.extend(path);
            Err(Error::Validation(vec![FieldError {
                loc,
                msg: "integer outside the signed 64-bit range".into(),
            }]))
        }
    }
}

/// The 422 for a float literal beyond the range of a 64-bit float, which serde_json reports as
/// "number out of range".
pub fn number_out_of_range(err: &serde_json::Error) -> Option<Error> {
    let text = err.to_string();
    text.starts_with("number out of range").then(|| {
        Error::Validation(vec![FieldError {
            loc: vec![LocPart::Key("body".into())],
            msg: format!("number outside the range of a 64-bit float ({text})"),
        }])
    })
}

/// Whether `bytes` holds `run` ASCII digits in a row. Looks at one byte in `run` until it
/// finds a digit: a run of `run` digits must cover one of the bytes looked at.
fn has_digit_run(bytes: &[u8], run: usize) -> bool {
    let mut p = run - 1;
    while p < bytes.len() {
        if !bytes[p].is_ascii_digit() {
            p += run;
            continue;
        }
        let mut start = p;
        while start > 0 && bytes[start - 1].is_ascii_digit() {
            start -= 1;
        }
        let mut end = p + 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end - start >= run {
            return true;
        }
        p = end + run;
    }
    false
}

/// The index after the string whose content starts at `i` (the byte after its opening quote).
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(j) = bytes.get(i..).and_then(|rest| memchr2(b'"', b'\\', rest)) {
        if bytes[i + j] == b'\\' {
            i += j + 2;
        } else {
            return i + j + 1;
        }
    }
    bytes.len()
}

enum Frame {
    Object { key: String },
    Array { index: usize },
}

/// Where in `bytes` the first integer literal outside the signed 64-bit range is, as a path of
/// keys and indices; `None` when there is none (or the text is not JSON, which the decoder
/// reports).
fn wide_integer(bytes: &[u8]) -> Option<Vec<LocPart>> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let end = string_end(bytes, i + 1);
                if expect_key {
                    let raw = bytes.get(i..end)?;
                    let key = serde_json::from_slice::<String>(raw).ok()?;
                    if let Some(Frame::Object { key: slot }) = stack.last_mut() {
                        *slot = key;
                    }
                    expect_key = false;
                }
                i = end;
                continue;
            }
            b'{' => {
                stack.push(Frame::Object { key: String::new() });
                expect_key = true;
            }
            b'[' => stack.push(Frame::Array { index: 0 }),
            b']' | b'}' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { .. }) => expect_key = true,
                None => {}
            },
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = std::str::from_utf8(&bytes[start..i]).ok()?;
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() {
                    return Some(
                        stack
                            .iter()
                            .map(|frame| match frame {
                                Frame::Object { key } => LocPart::Key(key.clone()),
                                Frame::Array { index } => LocPart::Index(*index),
                            })
                            .collect(),
                    );
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_but_not_strings() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(nested(MAX_DEPTH).as_bytes()));
        assert!(too_deep(nested(MAX_DEPTH + 1).as_bytes()));
        // The same limit as serde_json's own.
        assert!(serde_json::from_str::<serde_json::Value>(&nested(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nested(MAX_DEPTH + 1)).is_err());
        let in_string = format!("{{\"a\":\"{}\\\"[\"}}", "[".repeat(500));
        assert!(!too_deep(in_string.as_bytes()));
        let objects = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert!(too_deep(objects.as_bytes()));
    }

    #[test]
    fn digit_runs_are_found_wherever_they_are() {
        for len in [18, 19, 20, 40] {
            for at in [0, 1, 7, 18, 19, 37] {
                let text = format!(
                    "{}{}{}",
                    "x".repeat(at),
                    "7".repeat(len),
                    "y".repeat(at % 5)
                );
                assert_eq!(
                    has_digit_run(text.as_bytes(), 19),
                    len >= 19,
                    "{len} at {at}"
                );
            }
        }
        assert!(!has_digit_run(b"12345678901234567 8901234567890", 19));
    }

    #[test]
    fn wide_integers_are_found_with_their_path() {
        let at = |text: &str| check_integers(text.as_bytes()).err();
        assert_eq!(
            at(r#"{"a":9223372036854775807,"b":-9223372036854775808}"#),
            None
        );
        assert_eq!(at(r#"{"a":"12345678901234567890123"}"#), None);
        assert_eq!(at(r#"{"a":1.2345678901234567890123}"#), None);
        assert_eq!(at(r#"{"a":12345678901234567890e-3}"#), None);
        let Some(Error::Validation(errors)) =
            at(r#"{"a":[1,{"x\"y":2},{"b":9223372036854775808}],"c":1}"#)
        else {
            panic!("not found");
        };
        let loc = serde_json::to_value(&errors[0].loc).unwrap_or_default();
        assert_eq!(loc, serde_json::json!(["body", "a", 2, "b"]));
        assert!(at("[-9223372036854775809]").is_some());
        assert!(at("1180591620717411303424").is_some());
    }
}
