//! Reading a request from its JSON form, with errors that name the field at fault.
//!
//! The envelope (`type`, `requestId`, `traceContext`) is read first, so an error still carries
//! the request id and the kind of request, and the runtime can answer with the right result
//! type. The fields are then read with `serde_path_to_error`, which yields the path of the field
//! at fault. Serde's own messages quote the offending value; they are rewritten to say only what
//! was expected, so a password sent with the wrong type never reaches a message.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::request::{deserialize_request, Request, RequestKind};
use crate::types::{RequestId, TraceContext, MAX_REQUEST_ID_BYTES};

/// A request that could not be read or is not acceptable. The runtime answers it with
/// INVALID_PARAMETER (see `Event::invalid_request`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InvalidRequest {
    /// The request's id, when it could be read.
    pub request_id: Option<RequestId>,
    /// The request's trace context, when it could be read (boxed to keep the error small).
    pub trace_context: Option<Box<TraceContext>>,
    /// Which request it is, when its `type` could be read.
    pub kind: Option<RequestKind>,
    /// The path of the field at fault (`tenantId`, `userIdentifier.userId`), if one is.
    pub field: Option<String>,
    /// What is wrong and what was expected; never the value itself.
    pub message: String,
}

/// Longest `type` quoted back in an "unknown event type" message.
const MAX_QUOTED_TYPE_CHARS: usize = 64;

impl InvalidRequest {
    fn new(field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            request_id: None,
            trace_context: None,
            kind: None,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("field `{field}`: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The `errorCode` for this failure: `MALFORMED_REQUEST` when not even the kind of request
    /// could be read, `INVALID_PARAMETER` otherwise.
    pub fn error_code(&self) -> u32 {
        match self.kind {
            Some(_) => crate::error_code::INVALID_PARAMETER,
            None => crate::error_code::MALFORMED_REQUEST,
        }
    }
}

/// A field-level failure, before the envelope is attached.
#[derive(Debug)]
pub(crate) struct FieldError {
    field: Option<String>,
    message: String,
}

impl From<FieldError> for InvalidRequest {
    fn from(err: FieldError) -> Self {
        InvalidRequest::new(err.field.as_deref(), err.message)
    }
}

/// Deserializes `T` from a JSON value; on failure names the field and says what was expected.
pub(crate) fn deserialize_fields<T: DeserializeOwned>(value: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let raw = err.into_inner().to_string();
        describe_serde_error(&path, &raw)
    })
}

/// Turns serde's message into one that never quotes the offending value.
fn describe_serde_error(path: &str, raw: &str) -> FieldError {
    let at_root = path == ".";
    if let Some(name) = raw
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let field = if at_root {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return FieldError {
            field: Some(field),
            message: "missing field".to_owned(),
        };
    }
    // Serde writes "<what was found>, expected <what our type wants>"; only the second half
    // comes from our types, the first may quote the host's value.
    let message = match raw.rsplit_once(", expected ") {
        Some((found, expected)) if found.starts_with("unknown variant") => {
            format!("unknown value, expected {expected}")
        }
        Some((_, expected)) => format!("expected {}", friendly_expectation(expected)),
        None => "invalid value".to_owned(),
    };
    FieldError {
        field: (!at_root).then(|| path.to_owned()),
        message,
    }
}

fn friendly_expectation(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" => format!("a non-negative integer ({expected})"),
        "i32" | "i64" => format!("an integer ({expected})"),
        "a sequence" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        other if other.starts_with("struct ") => "an object".to_owned(),
        other => other.to_owned(),
    }
}

/// Checks the request id and trace context that travel with every request.
pub(crate) fn check_envelope(
    request_id: Option<&RequestId>,
    trace_context: Option<&TraceContext>,
) -> Result<(), InvalidRequest> {
    if let Some(id) = request_id {
        if id.as_str().is_empty() {
            return Err(InvalidRequest::new(
                Some("requestId"),
                "must not be empty; leave it out to let the runtime assign one",
            ));
        }
        if id.as_str().len() > MAX_REQUEST_ID_BYTES {
            return Err(InvalidRequest::new(
                Some("requestId"),
                format!("too long: at most {MAX_REQUEST_ID_BYTES} bytes"),
            ));
        }
        if let Some(message) = control_character(id.as_str()) {
            return Err(InvalidRequest::new(Some("requestId"), message));
        }
    }
    if let Some(trace) = trace_context {
        trace.validate().map_err(|(part, message)| {
            InvalidRequest::new(Some(&format!("traceContext.{part}")), message)
        })?;
    }
    Ok(())
}

/// Why `value` is not acceptable as an identifier, if it holds a control character (NUL,
/// newline, tab, DEL, C1): identifiers end up in paths, URLs, log fields and C strings, where
/// such characters truncate or forge. The message says where, never the value.
pub(crate) fn control_character(value: &str) -> Option<String> {
    value
        .char_indices()
        .find(|(_, c)| c.is_control())
        .map(|(at, c)| {
            format!(
                "contains a control character (U+{:04X}) at byte {at}; identifiers are printable text",
                c as u32
            )
        })
}

fn read_kind(object: &Map<String, Value>) -> Result<RequestKind, InvalidRequest> {
    match object.get("type") {
        None | Some(Value::Null) => Err(InvalidRequest::new(Some("type"), "missing field")),
        Some(Value::String(name)) => RequestKind::from_name(name).ok_or_else(|| {
            let mut quoted: String = name.chars().take(MAX_QUOTED_TYPE_CHARS).collect();
            if quoted.len() < name.len() {
                quoted.push('…');
            }
            InvalidRequest::new(None, format!("unknown event type `{quoted}`"))
        }),
        Some(_) => Err(InvalidRequest::new(Some("type"), "expected a string")),
    }
}

fn read_request_id(object: &mut Map<String, Value>) -> Result<Option<RequestId>, InvalidRequest> {
    match object.remove("requestId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => {
            let id = RequestId::new(id);
            check_envelope(Some(&id), None)?;
            Ok(Some(id))
        }
        Some(_) => Err(InvalidRequest::new(Some("requestId"), "expected a string")),
    }
}

fn read_trace_context(
    object: &mut Map<String, Value>,
) -> Result<Option<TraceContext>, InvalidRequest> {
    match object.remove("traceContext") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let trace: TraceContext = deserialize_fields(value).map_err(|err| {
                let field = match err.field {
                    Some(field) => format!("traceContext.{field}"),
                    None => "traceContext".to_owned(),
                };
                InvalidRequest::new(Some(&field), err.message)
            })?;
            check_envelope(None, Some(&trace))?;
            Ok(Some(trace))
        }
    }
}

/// Longest key quoted back in a "duplicate key" message.
const MAX_QUOTED_KEY_CHARS: usize = 64;

/// Parses JSON text into a value, refusing an object that has the same key twice. The error
/// names the path of the repeated key (`type`, `userIdentifier.userId`, `audiences[0].x`).
pub(crate) fn parse_unique_keys(text: &str) -> Result<Value, InvalidRequest> {
    let duplicate = std::cell::RefCell::new(None);
    let seed = UniqueKeys {
        path: String::new(),
        duplicate: &duplicate,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(path)) => Err(InvalidRequest::new(
            Some(&path),
            "the key appears more than once in its object; send each key once",
        )),
        (Err(err), None) => Err(InvalidRequest::new(None, format!("not valid JSON: {err}"))),
    }
}

/// A JSON value whose objects are checked for repeated keys; `path` is where it sits.
struct UniqueKeys<'a> {
    path: String,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl UniqueKeys<'_> {
    fn child(&self, step: &str) -> Self {
        let path = match (self.path.is_empty(), step.starts_with('[')) {
            (true, _) | (false, true) => format!("{}{step}", self.path),
            (false, false) => format!("{}.{step}", self.path),
        };
        UniqueKeys {
            path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(&format!("[{}]", items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(&quoted_key(&key));
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(child.path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(child)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A key as it appears in an error path: at most [`MAX_QUOTED_KEY_CHARS`] characters, control
/// characters replaced.
fn quoted_key(key: &str) -> String {
    let mut quoted: String = key
        .chars()
        .take(MAX_QUOTED_KEY_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if key.chars().count() > MAX_QUOTED_KEY_CHARS {
        quoted.push('…');
    }
    quoted
}

impl Request {
    /// Reads a request from its JSON text and validates it (see [`RequestEvent::validate`]).
    /// Unknown fields are ignored. The error names the field at fault and keeps the request id
    /// and kind whenever they could be read.
    ///
    /// [`RequestEvent::validate`]: crate::RequestEvent::validate
    /// A key that appears twice in one object (at any depth) refuses the whole request: serde
    /// would keep the last one, so `"type"` twice would run the second.
    pub fn from_json(text: &str) -> Result<Request, InvalidRequest> {
        let value = parse_unique_keys(text)?;
        Request::from_json_value(value)
    }

    /// As [`Request::from_json`], from an already parsed JSON value.
    pub fn from_json_value(value: Value) -> Result<Request, InvalidRequest> {
        let Value::Object(mut object) = value else {
            return Err(InvalidRequest::new(None, "not a JSON object"));
        };
        let kind = read_kind(&object);
        let request_id = read_request_id(&mut object);
        let trace_context = read_trace_context(&mut object);

        // Attach whatever of the envelope is known to any error.
        let known_kind = kind.as_ref().ok().copied();
        let known_id = request_id.as_ref().ok().cloned().flatten();
        let known_trace = trace_context.as_ref().ok().cloned().flatten().map(Box::new);
        let attach = |mut err: InvalidRequest| {
            err.kind = known_kind;
            err.request_id = known_id.clone();
            err.trace_context = known_trace.clone();
            err
        };

        let kind = kind.map_err(&attach)?;
        let request_id = request_id.map_err(&attach)?;
        let trace_context = trace_context.map_err(&attach)?;
        object.remove("type");
        let event =
            deserialize_request(kind, Value::Object(object)).map_err(|err| attach(err.into()))?;
        event.validate().map_err(&attach)?;
        Ok(Request {
            request_id,
            trace_context,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> InvalidRequest {
        Request::from_json(text).expect_err("refused")
    }

    #[test]
    fn a_key_twice_refuses_the_request_at_any_depth() {
        let twice = refused(r#"{"type":"GetStateEvent","type":"DeleteUserEvent"}"#);
        assert_eq!(twice.field.as_deref(), Some("type"));
        assert!(
            twice.message.contains("more than once"),
            "{}",
            twice.message
        );
        assert_eq!(twice.error_code(), crate::error_code::MALFORMED_REQUEST);

        let nested = refused(
            r#"{"type":"DeleteUserEvent","userIdentifier":{"tenantId":"a","userId":"b","userId":"c"}}"#,
        );
        assert_eq!(nested.field.as_deref(), Some("userIdentifier.userId"));

        let in_array = refused(
            r#"{"type":"StartEvent","configuration":{"k":"v"},"x":[{"a":1},{"a":1,"a":2}]}"#,
        );
        assert_eq!(in_array.field.as_deref(), Some("x[1].a"));

        let id_twice = refused(r#"{"type":"GetStateEvent","requestId":"a","requestId":"b"}"#);
        assert_eq!(id_twice.field.as_deref(), Some("requestId"));

        // The same keys once each, and equal keys in different objects, are fine.
        Request::from_json(
            r#"{"type":"DeleteUserEvent","userIdentifier":{"tenantId":"a","userId":"b"},"x":{"type":1}}"#,
        )
        .expect("no key repeated within one object");
        // Not JSON is still "not valid JSON".
        assert!(refused(r#"{"type":"#).message.starts_with("not valid JSON"));
        assert!(refused(r#"{"type":"GetStateEvent"} x"#)
            .message
            .starts_with("not valid JSON"));
    }

    #[test]
    fn control_characters_are_refused_in_identifiers_naming_the_field() {
        for (text, field) in [
            (
                "{\"type\":\"EnrollAnonymousUserEvent\",\"tenantId\":\"de\\u0000mo\",\"authenticationMode\":\"NO\",\"clientId\":\"c\"}",
                "tenantId",
            ),
            (
                "{\"type\":\"EnrollAnonymousUserEvent\",\"tenantId\":\"demo\",\"authenticationMode\":\"NO\",\"clientId\":\"c\\n\"}",
                "clientId",
            ),
            (
                "{\"type\":\"ExchangeIamTokenEvent\",\"audience\":\"a\\u007fb\"}",
                "audience",
            ),
            (
                "{\"type\":\"GetStateEvent\",\"requestId\":\"r\\u0000\"}",
                "requestId",
            ),
            (
                "{\"type\":\"DeleteUserEvent\",\"userIdentifier\":{\"tenantId\":\"t\",\"userId\":\"u\\t\"}}",
                "userIdentifier.userId",
            ),
            (
                "{\"type\":\"DeleteIamTokenByAudienceEvent\",\"audiences\":[\"ok\",\"b\\u0085\"]}",
                "audiences[1]",
            ),
            (
                "{\"type\":\"StartEvent\",\"appName\":\"app\\u0000\"}",
                "appName",
            ),
        ] {
            let err = refused(text);
            assert_eq!(err.field.as_deref(), Some(field), "{text}");
            assert!(err.message.contains("control character"), "{}", err.message);
            assert_eq!(err.error_code(), crate::error_code::INVALID_PARAMETER);
        }
        // Printable non-ASCII is fine.
        Request::from_json(r#"{"type":"ExchangeIamTokenEvent","audience":"café-api"}"#)
            .expect("printable text is accepted");
    }

    #[test]
    fn serde_messages_lose_the_quoted_value() {
        let err = describe_serde_error(
            "password",
            "invalid type: integer `12345`, expected a string",
        );
        assert_eq!(err.field.as_deref(), Some("password"));
        assert_eq!(err.message, "expected a string");

        let err = describe_serde_error(
            "authenticationMode",
            "unknown variant `FOO, expected haha`, expected one of `NO`, `PASSWORD`, `BIOMETRIC`",
        );
        assert_eq!(
            err.message,
            "unknown value, expected one of `NO`, `PASSWORD`, `BIOMETRIC`"
        );

        let err = describe_serde_error("userIdentifier", "missing field `userId`");
        assert_eq!(err.field.as_deref(), Some("userIdentifier.userId"));

        let err = describe_serde_error(".", "something odd \"secret\"");
        assert_eq!(err.field, None);
        assert_eq!(err.message, "invalid value");
    }
}
