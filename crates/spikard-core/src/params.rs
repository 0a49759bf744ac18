//! Parameter plans: what a route reads from the path, the query, the headers and a form body,
//! declared once at registration and executed per request.
//!
//! A [`ParamPlan`] is a list of [`Param`]s (name, [`Source`], [`ParamType`], default). Per
//! request the engine collects the raw strings for every parameter in one pass over each
//! source, converts them to [`Value`]s, and reports every failed field at once.

use crate::error::{Error, FieldError, LocPart, Source};
use crate::upload::UploadFile;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime};
use http::HeaderMap;
use std::borrow::Cow;
use std::sync::Arc;
use uuid::Uuid;

/// A single value's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str,
    Int,
    Float,
    Bool,
    Uuid,
    /// An ISO 8601 calendar date, `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 timestamp, or an ISO 8601 local date-time without offset.
    DateTime,
    /// One of a fixed set of strings.
    Enum(Arc<[String]>),
}

/// The type of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    One(Scalar),
    /// Every occurrence of the key; with `comma_separated` each occurrence is also split on `,`.
    List {
        item: Scalar,
        comma_separated: bool,
    },
    /// An uploaded file of a multipart body.
    File,
}

impl ParamType {
    pub const STR: ParamType = ParamType::One(Scalar::Str);
    pub const INT: ParamType = ParamType::One(Scalar::Int);
    pub const FLOAT: ParamType = ParamType::One(Scalar::Float);
    pub const BOOL: ParamType = ParamType::One(Scalar::Bool);
    pub const UUID: ParamType = ParamType::One(Scalar::Uuid);
    pub const DATE: ParamType = ParamType::One(Scalar::Date);
    pub const DATETIME: ParamType = ParamType::One(Scalar::DateTime);

    /// One of `choices`.
    pub fn one_of<S: Into<String>>(choices: impl IntoIterator<Item = S>) -> Self {
        ParamType::One(Scalar::Enum(choices.into_iter().map(Into::into).collect()))
    }

    /// A comma-separated list (`?tags=a,b`), repeated keys accepted too.
    pub fn csv(item: Scalar) -> Self {
        ParamType::List {
            item,
            comma_separated: true,
        }
    }

    /// A list from repeated keys (`?id=1&id=2`).
    pub fn repeated(item: Scalar) -> Self {
        ParamType::List {
            item,
            comma_separated: false,
        }
    }
}

/// A finished, typed request value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Uuid(Uuid),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    NaiveDateTime(NaiveDateTime),
    List(Vec<Value>),
    File(Box<UploadFile>),
}

/// What a parameter is when it is absent from the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Absent {
    /// A 422 "field required".
    Required,
    /// `null` (an empty list for list parameters).
    Null,
    /// This value.
    Default(Value),
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    /// The key looked up in the source (for headers, the lower-case header name).
    pub key: String,
    pub source: Source,
    pub ty: ParamType,
    pub absent: Absent,
    /// Inclusive bounds of an integer parameter.
    pub range: Option<(i64, i64)>,
}

impl Param {
    pub fn new(name: impl Into<String>, source: Source, ty: ParamType) -> Self {
        let name = name.into();
        let key = match source {
            Source::Header => name.replace('_', "-").to_ascii_lowercase(),
            _ => name.clone(),
        };
        Param {
            name,
            key,
            source,
            ty,
            absent: Absent::Required,
            range: None,
        }
    }

    pub fn path(name: impl Into<String>, ty: ParamType) -> Self {
        Self::new(name, Source::Path, ty)
    }
    pub fn query(name: impl Into<String>, ty: ParamType) -> Self {
        Self::new(name, Source::Query, ty)
    }
    pub fn header(name: impl Into<String>, ty: ParamType) -> Self {
        Self::new(name, Source::Header, ty)
    }
    pub fn form(name: impl Into<String>, ty: ParamType) -> Self {
        Self::new(name, Source::Form, ty)
    }

    /// Absent means `null` (or `[]` for a list).
    pub fn optional(mut self) -> Self {
        self.absent = Absent::Null;
        self
    }

    /// Absent means `value`.
    pub fn default(mut self, value: Value) -> Self {
        self.absent = Absent::Default(value);
        self
    }

    /// Read the value from a differently named key (a header name, an alias).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        if self.source == Source::Header {
            self.key.make_ascii_lowercase();
        }
        self
    }

    /// Accept only integers in `min..=max`.
    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.range = Some((min, max));
        self
    }
}

/// The parameters of one route, compiled at registration.
#[derive(Debug, Clone, Default)]
pub struct ParamPlan {
    params: Vec<Param>,
    reads_query: bool,
    reads_headers: bool,
    reads_form: bool,
    reads_files: bool,
    path_keys: Keys,
    query_keys: Keys,
    form_keys: Keys,
}

/// The keys a plan reads from one source, in declaration order, with each parameter's
/// position. Clients usually send keys in the declared order, so a lookup starts right after
/// the previous hit and is then a single comparison.
#[derive(Debug, Clone, Default)]
struct Keys(Vec<(String, usize)>);

impl Keys {
    fn of(params: &[Param], source: Source) -> Self {
        let keys = params.iter().enumerate();
        Keys(
            keys.filter(|(_, p)| p.source == source)
                .map(|(i, p)| (p.key.clone(), i))
                .collect(),
        )
    }

    fn find(&self, key: &str, cursor: &mut usize) -> Option<usize> {
        let start = (*cursor).min(self.0.len());
        let (before, after) = self.0.split_at(start);
        let hit = after
            .iter()
            .position(|(k, _)| same(k, key))
            .map(|j| start + j)
            .or_else(|| before.iter().position(|(k, _)| same(k, key)))?;
        *cursor = hit + 1;
        Some(self.0[hit].1)
    }
}

/// Whether two names are equal. Names are short: comparing them with two overlapping loads
/// inline, rather than calling `memcmp`, halves the cost of the per-field lookups.
#[inline]
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[inline]
fn word4(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[inline]
fn word8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(word)
}

impl ParamPlan {
    pub fn new(params: Vec<Param>) -> Self {
        let has = |source| params.iter().any(|p| p.source == source);
        ParamPlan {
            path_keys: Keys::of(&params, Source::Path),
            query_keys: Keys::of(&params, Source::Query),
            form_keys: Keys::of(&params, Source::Form),
            reads_query: has(Source::Query),
            reads_headers: has(Source::Header),
            reads_form: has(Source::Form),
            reads_files: params.iter().any(|p| p.ty == ParamType::File),
            params,
        }
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }
    pub fn reads_form(&self) -> bool {
        self.reads_form
    }
    pub fn reads_files(&self) -> bool {
        self.reads_files
    }

    /// The position of parameter `name` in the values [`ParamPlan::extract`] returns.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Reads and converts every parameter; on failure lists every failed field.
    ///
    /// Each value is converted as it is read, straight into its slot: a scalar read twice
    /// keeps the last occurrence (and only its error), a list gathers every occurrence.
    /// Errors come out in the plan's order.
    pub fn extract(&self, input: Inputs<'_>) -> Result<Vec<Value>, Error> {
        let mut out = Extraction::new(self);
        let mut cursor = 0;
        for (key, raw) in input.path {
            if let Some(i) = self.path_keys.find(key, &mut cursor) {
                let value =
                    crate::urlencoded::decode_path(raw).map_err(|why| why.error("the path"))?;
                out.read(i, value);
            }
        }
        if self.reads_query {
            if let Some(query) = input.query {
                let mut cursor = 0;
                for pair in crate::urlencoded::pairs(query) {
                    let (key, value) = pair.map_err(|why| why.error("the query string"))?;
                    if let Some(i) = self.query_keys.find(&key, &mut cursor) {
                        out.read(i, value);
                    }
                }
            }
        }
        if self.reads_headers {
            for (i, param) in self.params.iter().enumerate() {
                if param.source != Source::Header {
                    continue;
                }
                for value in input.headers.get_all(param.key.as_str()) {
                    out.read(i, Cow::Borrowed(value.to_str().unwrap_or("\u{FFFD}")));
                }
            }
        }
        match input.form {
            None => {}
            Some(FormData::UrlEncoded(body)) => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| crate::urlencoded::Invalid::Utf8.error("the form body"))?;
                let mut cursor = 0;
                for pair in crate::urlencoded::pairs(text) {
                    let (key, value) = pair.map_err(|why| why.error("the form body"))?;
                    if let Some(i) = self.form_keys.find(&key, &mut cursor) {
                        out.read(i, value);
                    }
                }
            }
            Some(FormData::Multipart {
                fields,
                files: uploads,
            }) => {
                let mut cursor = 0;
                for (key, value) in fields {
                    if let Some(i) = self.form_keys.find(key, &mut cursor) {
                        out.read(i, Cow::Borrowed(value.as_str()));
                    }
                }
                if self.reads_files {
                    for (key, file) in uploads {
                        if let Some(i) = self.form_keys.find(key, &mut cursor) {
                            out.file(i, file);
                        }
                    }
                }
            }
        }
        out.finish()
    }
}

/// The values of one extraction as they are read: a slot per parameter, which slots have
/// been read, and the failures with the position of their parameter.
struct Extraction<'p> {
    plan: &'p ParamPlan,
    values: Vec<Value>,
    seen: Seen,
    errors: Vec<(usize, FieldError)>,
}

impl<'p> Extraction<'p> {
    fn new(plan: &'p ParamPlan) -> Self {
        let n = plan.params.len();
        Extraction {
            plan,
            values: (0..n).map(|_| Value::Null).collect(),
            seen: Seen::new(n),
            errors: Vec::new(),
        }
    }

    /// One raw text of parameter `i`.
    fn read(&mut self, i: usize, text: Cow<'_, str>) {
        let param = &self.plan.params[i];
        let first = self.seen.insert(i);
        match &param.ty {
            ParamType::One(scalar) => {
                // A repeated scalar: the last occurrence wins, as in most frameworks.
                if !first {
                    self.errors.retain(|(j, _)| *j != i);
                }
                self.values[i] = scalar_value(param, i, scalar, text, None, &mut self.errors);
            }
            ParamType::List {
                item,
                comma_separated,
            } => {
                if first {
                    self.values[i] = Value::List(Vec::new());
                }
                let Value::List(items) = &mut self.values[i] else {
                    return;
                };
                if *comma_separated {
                    for part in text.split(',').filter(|part| !part.is_empty()) {
                        let index = Some(items.len());
                        let part = Cow::Borrowed(part);
                        items.push(scalar_value(param, i, item, part, index, &mut self.errors));
                    }
                } else {
                    let index = Some(items.len());
                    items.push(scalar_value(param, i, item, text, index, &mut self.errors));
                }
            }
            // A text field where a file is expected counts as absent.
            ParamType::File => {
                if first {
                    self.seen.remove(i);
                }
            }
        }
    }

    /// The first upload of file parameter `i`.
    fn file(&mut self, i: usize, file: &UploadFile) {
        if self.plan.params[i].ty == ParamType::File && self.seen.insert(i) {
            self.values[i] = Value::File(Box::new(file.clone()));
        }
    }

    fn finish(mut self) -> Result<Vec<Value>, Error> {
        for (i, param) in self.plan.params.iter().enumerate() {
            if !self.seen.contains(i) {
                self.values[i] = absent(param, i, &mut self.errors);
            }
        }
        if self.errors.is_empty() {
            return Ok(self.values);
        }
        self.errors.sort_by_key(|(i, _)| *i);
        Err(Error::Validation(
            self.errors.into_iter().map(|(_, e)| e).collect(),
        ))
    }
}

/// A set of parameter positions; plans of up to 128 parameters need no allocation.
enum Seen {
    Small(u128),
    Large(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 128 {
            Seen::Small(0)
        } else {
            Seen::Large(vec![false; n])
        }
    }

    /// Adds `i`; whether it was new.
    fn insert(&mut self, i: usize) -> bool {
        match self {
            Seen::Small(bits) => {
                let new = *bits & (1 << i) == 0;
                *bits |= 1 << i;
                new
            }
            Seen::Large(flags) => !std::mem::replace(&mut flags[i], true),
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Seen::Small(bits) => *bits &= !(1 << i),
            Seen::Large(flags) => flags[i] = false,
        }
    }

    fn contains(&self, i: usize) -> bool {
        match self {
            Seen::Small(bits) => *bits & (1 << i) != 0,
            Seen::Large(flags) => flags[i],
        }
    }
}

/// The raw sources a plan reads.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The path's captures by name, as sent: the plan percent-decodes them.
    pub path: &'a [(&'a str, &'a str)],
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub form: Option<&'a FormData>,
}

/// A form body.
#[derive(Debug, Clone, PartialEq)]
pub enum FormData {
    /// `application/x-www-form-urlencoded`: the raw body, decoded pair by pair when the plan
    /// runs, so values without escapes are never copied twice.
    UrlEncoded(bytes::Bytes),
    /// `multipart/form-data`: text fields and files, in order.
    Multipart {
        fields: Vec<(String, String)>,
        files: Vec<(String, UploadFile)>,
    },
}

fn absent(param: &Param, i: usize, errors: &mut Vec<(usize, FieldError)>) -> Value {
    match &param.absent {
        Absent::Required => {
            errors.push((
                i,
                FieldError::new(param.source, &param.name, "field required"),
            ));
            Value::Null
        }
        Absent::Null => match param.ty {
            ParamType::List { .. } => Value::List(Vec::new()),
            _ => Value::Null,
        },
        Absent::Default(value) => value.clone(),
    }
}

fn scalar_value(
    param: &Param,
    i: usize,
    scalar: &Scalar,
    text: Cow<'_, str>,
    index: Option<usize>,
    errors: &mut Vec<(usize, FieldError)>,
) -> Value {
    match parse_scalar(scalar, text, param.range) {
        Ok(value) => value,
        Err(msg) => {
            let mut error = FieldError::new(param.source, &param.name, msg);
            if let Some(index) = index {
                error.loc.push(LocPart::Index(index));
            }
            errors.push((i, error));
            Value::Null
        }
    }
}

/// Converts one string to a value of type `scalar`, or says why it can't.
pub fn parse_scalar(
    scalar: &Scalar,
    text: Cow<'_, str>,
    range: Option<(i64, i64)>,
) -> Result<Value, String> {
    let text_ref = text.as_ref();
    match scalar {
        Scalar::Str => Ok(Value::Str(text.into_owned())),
        Scalar::Int => {
            let n: i64 = text_ref
                .parse()
                .map_err(|_| format!("value is not a valid 64-bit integer: {text_ref:?}"))?;
            match range {
                Some((min, max)) if n < min || n > max => {
                    Err(format!("value must be between {min} and {max}, got {n}"))
                }
                _ => Ok(Value::Int(n)),
            }
        }
        Scalar::Float => match text_ref.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Value::Float(x)),
            _ => Err(format!("value is not a valid finite number: {text_ref:?}")),
        },
        Scalar::Bool => match text_ref {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "value is not a valid boolean (true, false, 1 or 0): {text_ref:?}"
            )),
        },
        Scalar::Uuid => Uuid::try_parse(text_ref)
            .map(Value::Uuid)
            .map_err(|_| format!("value is not a valid UUID: {text_ref:?}")),
        Scalar::Date => parse_date(text_ref)
            .map(Value::Date)
            .ok_or_else(|| format!("value is not a valid date (YYYY-MM-DD): {text_ref:?}")),
        Scalar::DateTime => {
            if let Ok(dt) = DateTime::parse_from_rfc3339(text_ref) {
                Ok(Value::DateTime(dt))
            } else if let Ok(dt) = NaiveDateTime::parse_from_str(text_ref, "%Y-%m-%dT%H:%M:%S%.f") {
                Ok(Value::NaiveDateTime(dt))
            } else {
                Err(format!(
                    "value is not a valid date-time (RFC 3339): {text_ref:?}"
                ))
            }
        }
        Scalar::Enum(choices) => {
            if choices.iter().any(|c| c == text_ref) {
                Ok(Value::Str(text.into_owned()))
            } else {
                Err(format!(
                    "value must be one of: {}; got {text_ref:?}",
                    choices.join(", ")
                ))
            }
        }
    }
}

/// A strict ISO 8601 calendar date: exactly `YYYY-MM-DD`, and a day that exists.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        text.get(range.clone())
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let year = digits(0..4)? as i32;
    NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)
}

/// ISO weekday of `date`, Monday = 1 … Sunday = 7.
pub fn iso_weekday(date: NaiveDate) -> u32 {
    date.weekday().number_from_monday()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plan: &ParamPlan, query: &str) -> Result<Vec<Value>, Error> {
        let headers = HeaderMap::new();
        plan.extract(Inputs {
            path: &[],
            query: Some(query),
            headers: &headers,
            form: None,
        })
    }

    #[test]
    fn names_compare_by_every_byte() {
        let names = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcdefg",
            "abcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for name in names {
            assert!(same(name, name));
            for i in 0..name.len() {
                let mut other = name.as_bytes().to_vec();
                other[i] ^= 1;
                let other = String::from_utf8(other).unwrap_or_default();
                assert!(!same(name, &other), "{name:?} vs {other:?}");
            }
            assert!(!same(name, &format!("{name}x")));
        }
    }

    #[test]
    fn defaults_lists_and_enums() {
        let plan = ParamPlan::new(vec![
            Param::query("q", ParamType::STR),
            Param::query("page", ParamType::INT).default(Value::Int(1)),
            Param::query("tags", ParamType::csv(Scalar::Str)).optional(),
            Param::query("order", ParamType::one_of(["asc", "desc"]))
                .default(Value::Str("asc".into())),
            Param::query("price", ParamType::FLOAT).optional(),
        ]);
        let values = run(&plan, "q=a+b%21&tags=x,y&tags=z&order=desc").unwrap_or_default();
        assert_eq!(
            values,
            vec![
                Value::Str("a b!".into()),
                Value::Int(1),
                Value::List(vec![
                    Value::Str("x".into()),
                    Value::Str("y".into()),
                    Value::Str("z".into())
                ]),
                Value::Str("desc".into()),
                Value::Null,
            ]
        );
    }

    #[test]
    fn errors_keep_the_plans_order_and_a_repeated_scalar_its_last_value() {
        let plan = ParamPlan::new(vec![
            Param::query("page", ParamType::INT),
            Param::query("ids", ParamType::repeated(Scalar::Int)).optional(),
            Param::query("q", ParamType::STR),
        ]);
        // Keys out of the plan's order, a bad list item, a missing field.
        let Err(Error::Validation(errors)) = run(&plan, "ids=1&ids=x&page=y&ids=z") else {
            panic!("expected a validation error");
        };
        let key = |s: &str| LocPart::Key(s.to_owned());
        let locs: Vec<_> = errors.iter().map(|e| e.loc.clone()).collect();
        assert_eq!(
            locs,
            vec![
                vec![key("query"), key("page")],
                vec![key("query"), key("ids"), LocPart::Index(1)],
                vec![key("query"), key("ids"), LocPart::Index(2)],
                vec![key("query"), key("q")],
            ]
        );
        // A scalar read twice: only the last occurrence counts, its error included.
        let values = run(&plan, "page=bad&page=7&q=a").ok();
        assert_eq!(
            values,
            Some(vec![
                Value::Int(7),
                Value::List(vec![]),
                Value::Str("a".into())
            ])
        );
        let Err(Error::Validation(errors)) = run(&plan, "page=7&page=bad&q=a") else {
            panic!("expected a validation error");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].loc, vec![key("query"), key("page")]);
    }

    #[test]
    fn every_failed_field_is_reported() {
        let plan = ParamPlan::new(vec![
            Param::query("q", ParamType::STR),
            Param::query("page", ParamType::INT),
            Param::query("flag", ParamType::BOOL),
            Param::query("ids", ParamType::csv(Scalar::Int)),
        ]);
        let Err(Error::Validation(errors)) = run(&plan, "page=x&flag=yes&ids=1,b") else {
            panic!("expected a validation error");
        };
        let locs: Vec<_> = errors.iter().map(|e| e.loc.clone()).collect();
        let key = |s: &str| LocPart::Key(s.to_owned());
        assert_eq!(
            locs,
            vec![
                vec![key("query"), key("q")],
                vec![key("query"), key("page")],
                vec![key("query"), key("flag")],
                vec![key("query"), key("ids"), LocPart::Index(1)],
            ]
        );
    }

    #[test]
    fn keys_in_any_order_and_repeated() {
        let plan = ParamPlan::new(vec![
            Param::query("a", ParamType::INT),
            Param::query("b", ParamType::INT),
            Param::query("c", ParamType::repeated(Scalar::Int)),
        ]);
        let values = run(&plan, "c=1&b=2&c=3&a=4&zz=5").unwrap_or_default();
        assert_eq!(
            values,
            vec![
                Value::Int(4),
                Value::Int(2),
                Value::List(vec![Value::Int(1), Value::Int(3)])
            ]
        );
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("2024-01-15"),
            NaiveDate::from_ymd_opt(2024, 1, 15)
        );
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("15-01-2024"), None);
        assert_eq!(parse_date("2024-1-15"), None);
        assert_eq!(parse_date("2024-+1-15"), None);
        let monday = parse_date("2024-01-15").map(iso_weekday);
        assert_eq!(monday, Some(1));
        assert_eq!(parse_date("2024-01-21").map(iso_weekday), Some(7));
    }

    #[test]
    fn int_bounds_and_non_finite_floats() {
        let scalar = |s: &Scalar, t: &str, r| parse_scalar(s, Cow::Borrowed(t), r);
        assert!(scalar(&Scalar::Int, "9223372036854775808", None).is_err());
        assert!(scalar(&Scalar::Int, "1.5", None).is_err());
        assert!(scalar(&Scalar::Int, "0", Some((1, 10))).is_err());
        assert!(scalar(&Scalar::Float, "inf", None).is_err());
        assert!(scalar(&Scalar::Float, "NaN", None).is_err());
        assert_eq!(scalar(&Scalar::Float, "100", None), Ok(Value::Float(100.0)));
    }
}
