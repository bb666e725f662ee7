//! The human view of an event: a coloured header line and its fields, one per line.
//!
//! Tokens never appear whole here: a field named like a secret, and any string that looks like
//! a JWT, is cut to its first 12 characters and "…". (The JSON mode prints events whole: a
//! script needs its token.)

use std::io::IsTerminal as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mc_events::{Event, StatusType};
use owo_colors::OwoColorize as _;
use serde_json::{Map, Value};

/// Characters of a token shown before the "…".
const TOKEN_PREFIX_CHARS: usize = 12;
/// Longest HTTP response text shown; the rest is summarised.
const MAX_RESPONSE_CHARS: usize = 2000;
/// Field names whose values are secrets (compared case-insensitively).
const SECRET_FIELDS: &[&str] = &[
    "token",
    "accesstoken",
    "access_token",
    "refreshtoken",
    "refresh_token",
    "idtoken",
    "id_token",
    "password",
    "newpassword",
    "registrationaccesstoken",
    "registration_access_token",
    "clientsecret",
    "client_secret",
    "authorization",
    "cookie",
];

/// How an event (or a demo step) is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// A result with status OK: green.
    Ok,
    /// A failed result, an InvalidStateEvent, a runtime or fatal error: red.
    Error,
    /// An event the runtime pushed on its own: yellow.
    Pushed,
    /// Secondary text (request ids, durations).
    Dim,
}

/// Applies colours, or not (stdout not a terminal, or `NO_COLOR` set).
#[derive(Clone, Copy, Debug)]
pub struct Painter {
    color: bool,
}

impl Painter {
    pub const fn new(color: bool) -> Self {
        Self { color }
    }

    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty (no-color.org).
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::new(!no_color && std::io::stdout().is_terminal())
    }

    pub fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.color {
            return text.to_owned();
        }
        match tone {
            Tone::Ok => text.green().bold().to_string(),
            Tone::Error => text.red().bold().to_string(),
            Tone::Pushed => text.yellow().bold().to_string(),
            Tone::Dim => text.dimmed().to_string(),
        }
    }
}

/// Green for OK, red for failures, yellow for pushed events. An HTTP result whose server
/// answered with a 4xx/5xx counts as a failure although its transport status is success.
pub fn tone_of(event: &Event) -> Tone {
    match event {
        Event::RuntimeErrorEvent(_) | Event::FatalErrorEvent(_) => Tone::Error,
        Event::CreateHttpCommonResultEvent(http)
            if http.http_status.is_some_and(|status| status >= 400) =>
        {
            Tone::Error
        }
        _ if !event.is_result() => Tone::Pushed,
        _ => match event.status() {
            Some(StatusType::Ok) => Tone::Ok,
            _ => Tone::Error,
        },
    }
}

/// The label after the type name: the status of a result, "pushed" otherwise.
fn status_label(event: &Event) -> String {
    match event {
        Event::CreateHttpCommonResultEvent(http) => match http.http_status {
            Some(code) => format!("{} HTTP {code}", http.status),
            None => http.status.to_string(),
        },
        _ => match event.status() {
            Some(status) if event.is_result() => status.to_string(),
            _ => "pushed".to_owned(),
        },
    }
}

/// The event as several lines (no trailing newline): header, then `key: value` lines.
pub fn render(event: &Event, painter: Painter) -> String {
    let tone = tone_of(event);
    let marker = if event.is_result() { "←" } else { "⚑" };
    let mut out = format!(
        "{} {}",
        painter.paint(&format!("{marker} {}", event.type_name()), tone),
        painter.paint(&status_label(event), tone)
    );
    if let Some(id) = event.request_id() {
        out.push_str(&painter.paint(&format!("  [{id}]"), Tone::Dim));
    }
    let Value::Object(fields) = event.to_json_value() else {
        return out;
    };
    let failed = tone == Tone::Error;
    for (name, value) in &fields {
        if is_envelope_field(name, value, failed) {
            continue;
        }
        let value = if name == "response" {
            decode_response(value)
        } else {
            value.clone()
        };
        push_field(&mut out, name, &sanitise(name, value), 1);
    }
    out
}

/// Fields the header already shows, and empty error fields of a successful result.
fn is_envelope_field(name: &str, value: &Value, failed: bool) -> bool {
    match name {
        "type" | "requestId" | "traceContext" | "status" | "hasErrorOccurred" => true,
        "errorCode" => !failed && value.as_u64() == Some(0),
        "errorDescription" => !failed && value.as_str().is_some_and(str::is_empty),
        "response" => value.as_str().is_some_and(str::is_empty),
        _ => false,
    }
}

fn push_field(out: &mut String, name: &str, value: &Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(&format!("\n{indent}{name}:"));
            for (key, inner) in map {
                push_field(out, key, inner, depth + 1);
            }
        }
        Value::String(text) => out.push_str(&format!("\n{indent}{name}: {text}")),
        other => out.push_str(&format!("\n{indent}{name}: {other}")),
    }
}

/// An HTTP response body (standard base64 in the event): JSON as a JSON value, UTF-8 text as a
/// string (cut at [`MAX_RESPONSE_CHARS`]), other bytes as their count.
fn decode_response(value: &Value) -> Value {
    let Some(encoded) = value.as_str() else {
        return value.clone();
    };
    let Ok(bytes) = STANDARD.decode(encoded) else {
        return value.clone();
    };
    if let Ok(json) = serde_json::from_slice::<Value>(&bytes) {
        return json;
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            let total = text.chars().count();
            if total > MAX_RESPONSE_CHARS {
                let head: String = text.chars().take(MAX_RESPONSE_CHARS).collect();
                Value::String(format!("{head}… ({total} characters in all)"))
            } else {
                Value::String(text)
            }
        }
        Err(err) => Value::String(format!("<{} bytes, not text>", err.into_bytes().len())),
    }
}

/// Shortens every secret in `value`: whole values of secret-named fields, and JWT-looking strings.
pub fn sanitise(name: &str, value: Value) -> Value {
    let secret_name = SECRET_FIELDS.contains(&name.to_ascii_lowercase().as_str());
    match value {
        Value::String(text) if secret_name || looks_like_jwt(&text) => {
            Value::String(shorten_secret(&text))
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, inner)| {
                    let inner = sanitise(&key, inner);
                    (key, inner)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|item| sanitise(name, item)).collect())
        }
        other => other,
    }
}

/// First 12 characters and "…"; a value too short for that shows at most half of itself.
pub fn shorten_secret(secret: &str) -> String {
    let total = secret.chars().count();
    let shown = TOKEN_PREFIX_CHARS.min(total / 2);
    let head: String = secret.chars().take(shown).collect();
    format!("{head}…")
}

/// A compact JWS: three base64url parts, the header starting `eyJ` (`{"`).
fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && text.starts_with("eyJ")
        && parts.iter().take(2).all(|part| !part.is_empty())
        && parts.iter().all(|part| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_events::{
        CreateHttpCommonResultEvent, ExchangeIamTokenResultEvent, HttpCommonStatus, RequestId,
        ResultInfo, SecretString, StartLoginEvent, StatusResultEvent, UserIdentifier,
    };

    const JWT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJlc2lnbmF0dXJl";

    fn exchange_result() -> Event {
        Event::ExchangeIamTokenResultEvent(ExchangeIamTokenResultEvent {
            info: ResultInfo::ok().with_request(Some(RequestId::new("req-7")), None),
            audience: Some("demo-api".into()),
            token: Some(SecretString::from(JWT.to_owned())),
            expires_at: Some(1_900_000_000),
        })
    }

    #[test]
    fn tokens_are_shortened() {
        let text = render(&exchange_result(), Painter::new(false));
        assert!(!text.contains(JWT), "{text}");
        assert!(text.contains("token: eyJhbGciOiJF…"), "{text}");
        assert!(text.contains("ExchangeIamTokenResultEvent OK"), "{text}");
        assert!(text.contains("[req-7]"), "{text}");
        assert!(text.contains("audience: demo-api"), "{text}");
    }

    #[test]
    fn jwt_inside_an_http_body_is_shortened_and_body_is_decoded() {
        let mut http = CreateHttpCommonResultEvent::from_info(ResultInfo::ok());
        http.status = HttpCommonStatus::Success;
        http.http_status = Some(200);
        http.response = format!(r#"{{"sub":"user-1","echoed":"{JWT}"}}"#).into_bytes();
        let text = render(
            &Event::CreateHttpCommonResultEvent(http),
            Painter::new(false),
        );
        assert!(text.contains("success HTTP 200"), "{text}");
        assert!(text.contains("sub: user-1"), "{text}");
        assert!(!text.contains(JWT), "{text}");
    }

    #[test]
    fn colours_follow_the_outcome_and_can_be_off() {
        let ok = render(&exchange_result(), Painter::new(true));
        assert!(ok.contains("\u{1b}[32m"), "green expected: {ok:?}");
        let failed = Event::StatusResultEvent(StatusResultEvent {
            info: ResultInfo::error(StatusType::NotReachable, 1, "the IDP did not answer"),
            ..Default::default()
        });
        assert_eq!(tone_of(&failed), Tone::Error);
        let failed_text = render(&failed, Painter::new(true));
        assert!(
            failed_text.contains("\u{1b}[31m"),
            "red expected: {failed_text:?}"
        );
        assert!(failed_text.contains("the IDP did not answer"));
        let pushed = Event::StartLoginEvent(StartLoginEvent {
            user_identifier: UserIdentifier::new("demo", "u1"),
            user_list: vec![],
            trace_context: None,
        });
        assert_eq!(tone_of(&pushed), Tone::Pushed);
        assert!(render(&pushed, Painter::new(true)).contains("\u{1b}[33m"));
        assert!(!render(&pushed, Painter::new(false)).contains('\u{1b}'));
    }

    #[test]
    fn http_error_status_is_red() {
        let mut http = CreateHttpCommonResultEvent::from_info(ResultInfo::ok());
        http.http_status = Some(401);
        assert_eq!(
            tone_of(&Event::CreateHttpCommonResultEvent(http)),
            Tone::Error
        );
    }

    #[test]
    fn short_secrets_show_at_most_half() {
        assert_eq!(shorten_secret("abcd"), "ab…");
        assert_eq!(shorten_secret(""), "…");
        assert_eq!(
            shorten_secret(&"x".repeat(40)),
            format!("{}…", "x".repeat(12))
        );
        assert!(looks_like_jwt(JWT));
        assert!(!looks_like_jwt("eyJ.not a jwt.x"));
        assert!(!looks_like_jwt("demo-api"));
    }
}
