//! What a handler receives: the request head, the route's parameters as finished values in
//! plan order, and the body.

use crate::body::BodyData;
use crate::error::{from_json_error, Error};
use crate::json;
use crate::params::{ParamPlan, Value};
use crate::upload::UploadFile;
use bytes::Bytes;
use chrono::NaiveDate;
use http::request::Parts;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use uuid::Uuid;

/// A request whose parameters have been read and validated against the route's plan.
pub struct Request {
    pub parts: Parts,
    plan: Arc<ParamPlan>,
    values: Vec<Value>,
    body: BodyData,
    /// Where the next [`Request::param`] looks first: handlers usually read in plan order.
    next: usize,
}

impl Request {
    pub(crate) fn new(
        parts: Parts,
        plan: Arc<ParamPlan>,
        values: Vec<Value>,
        body: BodyData,
    ) -> Self {
        Request {
            parts,
            plan,
            values,
            body,
            next: 0,
        }
    }

    /// The parameter values, in the order of the route's plan.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Moves the parameter values out, in plan order (used by foreign-language handlers).
    pub fn take_values(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.values)
    }

    /// The route's plan.
    pub fn plan(&self) -> &ParamPlan {
        &self.plan
    }

    /// Moves parameter `name` out as a `T`. Asking for an undeclared parameter or the wrong
    /// type is a programming error, answered with a 500.
    pub fn param<T: FromValue>(&mut self, name: &str) -> Result<T, Error> {
        let params = self.plan.params();
        let index = match params.get(self.next) {
            Some(param) if crate::params::same(&param.name, name) => self.next,
            _ => self
                .plan
                .index_of(name)
                .ok_or_else(|| Error::Internal(format!("parameter {name:?} is not declared")))?,
        };
        self.next = index + 1;
        let value = std::mem::replace(&mut self.values[index], Value::Null);
        T::from_value(value)
            .ok_or_else(|| Error::Internal(format!("parameter {name:?} has another type")))
    }

    /// The raw body bytes (JSON and raw-bytes routes).
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            BodyData::Bytes(bytes) => bytes,
            _ => &[],
        }
    }

    /// Takes the body out.
    pub fn take_body(&mut self) -> BodyData {
        std::mem::take(&mut self.body)
    }

    /// Decodes the JSON body into `T`: 400 if it is not JSON, 422 naming the field if its
    /// shape is wrong. Unknown fields are dropped (serde's default).
    ///
    /// A body that decodes pays for nothing else: only a failed decode is decoded again, to
    /// tell a syntax error from a shape error and to find the failing field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let bytes = self.body_bytes();
        // serde_json, not sonic-rs: sonic-rs 0.5 decodes faster but skips unknown fields
        // recursively without a depth limit, so a deeply nested body overflows the stack;
        // serde_json stops at 128 levels.
        match serde_json::from_slice(bytes) {
            Ok(value) => {
                json::check_integers(bytes)?;
                Ok(value)
            }
            Err(_) => json_retry(bytes),
        }
    }
}

/// After a failed decode: the body's one chance under the rules every server follows (a
/// repeated key, which serde's records refuse, keeps its last value), else why it failed.
#[cold]
fn json_retry<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // A shape error in a document that is not JSON at all is a 400, not a 422.
    if let Some(refusal) = json::not_json(bytes) {
        return Err(refusal);
    }
    json::check_integers(bytes)?;
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Ok(decoded) = T::deserialize(value) {
            return Ok(decoded);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(err) => Err(from_json_error(err)),
        Ok(decoded) => Ok(decoded),
    }
}

/// Conversion of a finished [`Value`] into a Rust type.
pub trait FromValue: Sized {
    fn from_value(value: Value) -> Option<Self>;
}

macro_rules! from_value {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl FromValue for $ty {
            fn from_value(value: Value) -> Option<Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}

from_value!(
    String => Str,
    i64 => Int,
    f64 => Float,
    bool => Bool,
    Uuid => Uuid,
    NaiveDate => Date,
);

impl FromValue for Value {
    fn from_value(value: Value) -> Option<Self> {
        Some(value)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::List(items) => items.into_iter().map(T::from_value).collect(),
            _ => None,
        }
    }
}

impl FromValue for UploadFile {
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::File(file) => Some(*file),
            _ => None,
        }
    }
}

impl FromValue for Bytes {
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::File(file) => Some(file.data),
            _ => None,
        }
    }
}
