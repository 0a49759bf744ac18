//! `numeric` in PostgreSQL's binary format, to and from decimal text (what Python's
//! `decimal.Decimal` reads and writes), at full precision.
//!
//! The format (`numeric_send` in PostgreSQL): `ndigits`, `weight`, `sign` and `dscale` as
//! 16-bit integers, then `ndigits` base-10000 digits; the value is
//! `Σ digit[i] · 10000^(weight − i)`, shown with `dscale` decimal places.

use bytes::{BufMut, BytesMut};
use std::error::Error as StdError;

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PLUS_INFINITY: u16 = 0xD000;
const MINUS_INFINITY: u16 = 0xF000;

type Failure = Box<dyn StdError + Sync + Send>;

fn not_decimal(text: &str) -> Failure {
    Box::new(super::args::ArgError {
        message: format!("{text:?} is not a decimal number"),
        out_of_range: true,
    })
}

/// Encodes decimal text (`-12.5`, `1E+3`, `NaN`, `Infinity`) as a binary `numeric`.
pub fn to_sql(text: &str, out: &mut BytesMut) -> Result<(), Failure> {
    let special = |sign: u16, out: &mut BytesMut| {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_i16(0);
    };
    let sign = match text.trim() {
        "NaN" | "nan" | "sNaN" => Some(NAN),
        "Infinity" | "+Infinity" | "inf" => Some(PLUS_INFINITY),
        "-Infinity" | "-inf" => Some(MINUS_INFINITY),
        _ => None,
    };
    if let Some(sign) = sign {
        special(sign, out);
        return Ok(());
    }
    let (negative, digits, exponent) = parse(text).ok_or_else(|| not_decimal(text))?;
    // value = digits × 10^exponent; split at the decimal point.
    let (int_part, frac_part) = if exponent >= 0 {
        let zeros = usize::try_from(exponent).map_err(|_| not_decimal(text))?;
        if zeros > 131_072 {
            return Err(not_decimal(text));
        }
        (format!("{digits}{}", "0".repeat(zeros)), String::new())
    } else {
        let places = usize::try_from(-exponent).map_err(|_| not_decimal(text))?;
        if places > 16_383 {
            return Err(not_decimal(text));
        }
        if digits.len() > places {
            let (i, f) = digits.split_at(digits.len() - places);
            (i.to_owned(), f.to_owned())
        } else {
            (
                "0".to_owned(),
                format!("{}{digits}", "0".repeat(places - digits.len())),
            )
        }
    };
    let dscale = frac_part.len();
    let int_part = int_part.trim_start_matches('0');
    // Groups of four digits, aligned at the decimal point.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let int_text = format!("{}{int_part}", "0".repeat(int_pad));
    let frac_text = format!("{frac_part}{}", "0".repeat(frac_pad));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
            .collect()
    };
    let mut groups = group(&int_text);
    let mut weight = groups.len() as i32 - 1;
    groups.extend(group(&frac_text));
    // Leading zero groups lower the weight; trailing ones carry nothing.
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let weight = i16::try_from(weight).map_err(|_| not_decimal(text))?;
    let ndigits = i16::try_from(groups.len()).map_err(|_| not_decimal(text))?;
    out.put_i16(ndigits);
    out.put_i16(weight);
    out.put_u16(if negative && !groups.is_empty() {
        NEGATIVE
    } else {
        POSITIVE
    });
    out.put_i16(i16::try_from(dscale).map_err(|_| not_decimal(text))?);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// `[-+]digits[.digits][e[-+]digits]` as (negative, significant digits without leading
/// zeros, power of ten).
fn parse(text: &str) -> Option<(bool, String, i64)> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int_digits, frac_digits) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    if !int_digits
        .bytes()
        .chain(frac_digits.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let exponent = exponent.checked_sub(i64::try_from(frac_digits.len()).ok()?)?;
    let digits = format!("{int_digits}{frac_digits}");
    let digits = digits.trim_start_matches('0');
    Some((
        negative,
        if digits.is_empty() { "0" } else { digits }.to_owned(),
        exponent,
    ))
}

fn read_i16(raw: &[u8], at: usize) -> Result<i16, Failure> {
    raw.get(at..at + 2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "a numeric value is cut short".into())
}

/// Decodes a binary `numeric` as decimal text with its scale (`1.50`, `-0.001`, `NaN`).
pub fn from_sql(raw: &[u8]) -> Result<String, Failure> {
    let ndigits = usize::try_from(read_i16(raw, 0)?).map_err(|_| "bad numeric digit count")?;
    let weight = i32::from(read_i16(raw, 2)?);
    let sign = read_i16(raw, 4)? as u16;
    let dscale = usize::try_from(read_i16(raw, 6)?).map_err(|_| "bad numeric scale")?;
    match sign {
        NAN => return Ok("NaN".into()),
        PLUS_INFINITY => return Ok("Infinity".into()),
        MINUS_INFINITY => return Ok("-Infinity".into()),
        POSITIVE | NEGATIVE => {}
        _ => return Err("bad numeric sign".into()),
    }
    let digits = (0..ndigits)
        .map(|i| read_i16(raw, 8 + 2 * i))
        .collect::<Result<Vec<_>, _>>()?;
    // digit i stands for 10000^(weight − i).
    let digit = |power: i32| -> i16 {
        usize::try_from(weight - power)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::with_capacity(8 + 4 * ndigits + dscale);
    if sign == NEGATIVE {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for power in (0..=weight).rev() {
            if power == weight {
                out.push_str(&digit(power).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(power)));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut power = -1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(power)));
            power -= 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let mut out = BytesMut::new();
        to_sql(text, &mut out).expect("encodes");
        from_sql(&out).expect("decodes")
    }

    #[test]
    fn decimal_text_survives_the_binary_format() {
        for (given, back) in [
            ("0", "0"),
            ("1", "1"),
            ("-1", "-1"),
            ("12345.678", "12345.678"),
            ("0.0001", "0.0001"),
            ("0.00001", "0.00001"),
            ("-0.5", "-0.5"),
            ("10000", "10000"),
            ("100000000.00000001", "100000000.00000001"),
            ("1.50", "1.50"),
            ("1E+3", "1000"),
            ("1.23E-7", "0.000000123"),
            ("-0", "0"),
            (
                "99999999999999999999999999999999.99",
                "99999999999999999999999999999999.99",
            ),
            ("NaN", "NaN"),
            ("-Infinity", "-Infinity"),
        ] {
            assert_eq!(round_trip(given), back, "{given}");
        }
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for text in [
            "",
            "-",
            "1.2.3",
            "abc",
            "1e",
            "0x10",
            "1e999999999999999999",
        ] {
            assert!(to_sql(text, &mut BytesMut::new()).is_err(), "{text}");
        }
    }

    #[test]
    fn postgres_own_encoding_decodes() {
        // SELECT numeric_send(-1234.5600): ndigits 2, weight 0, NEGATIVE, dscale 4, 1234 5600.
        let raw = [0, 2, 0, 0, 0x40, 0, 0, 4, 0x04, 0xD2, 0x15, 0xE0];
        assert_eq!(from_sql(&raw).expect("decodes"), "-1234.5600");
    }
}
