//! Serialising to JSON without a panic path.

use serde::Serialize;
use serde_json::Value;

/// The JSON value of `value`. Our types always serialise (string map keys, no failing custom
/// serialisers); should one ever fail, the result is a `RuntimeErrorEvent` object saying so
/// rather than a panic.
pub(crate) fn to_value_or_error<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(serialisation_failure)
}

/// The JSON text of `value`, with the same fallback as [`to_value_or_error`].
pub(crate) fn to_string_or_error<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| serialisation_failure(err).to_string())
}

fn serialisation_failure(err: serde_json::Error) -> Value {
    serde_json::json!({
        "type": "RuntimeErrorEvent",
        "errorType": "SERIALIZATION",
        "errorDescription": format!("an event could not be serialised: {err}"),
        "errorCode": crate::error_code::INTERNAL_ERROR,
    })
}
