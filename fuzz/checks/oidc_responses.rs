//! mc-oidc: the decoders of IDP answers (discovery document, JWKS, token answer, registration
//! answer, OAuth error bodies), reached through `mc_oidc::fuzzing`, i.e. the same functions
//! the client runs after an HTTP exchange.
//!
//! Input: byte 0 picks the decoder, byte 1 the HTTP status (from a list of the interesting
//! ones), the rest is the body. A decoded answer must obey what the client relies on.

use mc_oidc::fuzzing;

/// The issuer the discovery seeds are for (the dev IDP's form).
const ISSUER: &str = "http://127.0.0.1:8080/realms/demo";
/// Server time of the token answers.
const NOW: i64 = 1_700_000_000;
const STATUSES: [u16; 12] = [200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 502, 503];

/// One input: must not panic, and must hold what the doc above says.
pub fn check(data: &[u8]) {
    let [decoder, status, body @ ..] = data else {
        return;
    };
    let status = STATUSES[usize::from(*status) % STATUSES.len()];
    match decoder % 6 {
        0 => {
            if let Ok(meta) = fuzzing::decode_discovery(status, body, ISSUER) {
                assert_eq!(meta.issuer, ISSUER, "the issuer is checked byte for byte");
                assert!((200..300).contains(&status));
            }
        }
        1 => {
            let _ = fuzzing::decode_jwks(body);
        }
        2 | 3 => {
            let audience = (decoder % 6 == 3).then_some("api");
            match fuzzing::decode_token_response(status, body, NOW, audience) {
                Ok(tokens) => {
                    assert!(!tokens.access_token.is_empty());
                    assert!(tokens.expires_at >= NOW, "expires_in is never negative");
                }
                Err(error) => assert_secret_not_quoted(&error.to_string(), body, "access_token"),
            }
        }
        4 => match fuzzing::decode_registration_response(status, body) {
            Ok(registration) => {
                assert!(!registration.client_id.is_empty());
                assert!((200..300).contains(&status));
            }
            Err(error) => {
                assert_secret_not_quoted(&error.to_string(), body, "registration_access_token")
            }
        },
        _ => {
            let error = fuzzing::decode_error_response(status, body);
            let _ = (error.to_string(), error.kind());
        }
    }
}

/// An error message never repeats the secret a hostile answer carried in `field` (serde's own
/// messages would quote a value of the wrong type). Checked for secrets no message of ours
/// can contain by chance: a number of 12 digits or more, or a string with a `^` (which no
/// message text and no URL origin holds).
fn assert_secret_not_quoted(message: &str, body: &[u8], field: &str) {
    let Ok(serde_json::Value::Object(answer)) = serde_json::from_slice(body) else {
        return;
    };
    let secret = match answer.get(field) {
        Some(serde_json::Value::String(text)) if text.contains('^') => text.clone(),
        Some(number @ serde_json::Value::Number(_)) if number.to_string().len() >= 12 => {
            number.to_string()
        }
        _ => return,
    };
    {
        assert!(
            !message.contains(&secret),
            "error quotes the {field}: {message}"
        );
    }
}
