//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never on in a product
//! build): the decoders of IDP answers, reached through the same functions the client calls
//! after an HTTP exchange, without a network. Each takes the status and body of an answer as
//! a hostile server would send them and returns the client's own result; none panics.
//!
//! The transport policy applied to the endpoints of an answer is the default one of
//! [`OidcConfig`] (https, or plain http to a loopback host).

use std::sync::OnceLock;

use reqwest::StatusCode;

use crate::transport::{error_from_answer, Answer, Transport};
use crate::{
    check_exchanged_audience, non_success, parse_token_answer, read_discovery, read_registration,
    token_error, OidcConfig, OidcError, ProviderMetadata, Registration, TokenSet,
    GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE,
};

/// One transport for the whole process: building it reads the OS trust store.
fn transport() -> Result<&'static Transport, OidcError> {
    static TRANSPORT: OnceLock<Result<Transport, OidcError>> = OnceLock::new();
    TRANSPORT
        .get_or_init(|| Transport::new(&OidcConfig::default()))
        .as_ref()
        .map_err(Clone::clone)
}

fn answer(status: u16, body: &[u8]) -> Result<Answer, OidcError> {
    let status = StatusCode::from_u16(status)
        .map_err(|_| OidcError::InvalidResponse(format!("{status} is not an HTTP status")))?;
    Ok(Answer {
        status,
        body: body.to_vec(),
        retry_after_secs: None,
    })
}

/// A discovery answer for `issuer`, as `OidcClient::discover` reads it: a non-success
/// status gives the error `discover` returns for it, a success the checked metadata.
pub fn decode_discovery(
    status: u16,
    body: &[u8],
    issuer: &str,
) -> Result<ProviderMetadata, OidcError> {
    let answer = answer(status, body)?;
    if !answer.status.is_success() {
        return Err(non_success(&answer));
    }
    read_discovery(transport()?, &answer, issuer)
}

/// A JWKS answer body, as the client's key refetch reads it.
pub fn decode_jwks(body: &[u8]) -> Result<mc_jose::JwkSet, OidcError> {
    answer(200, body)?.json("JWKS")
}

/// A token-endpoint answer received at server time `now`. `exchange_audience`: `Some` for a
/// token exchange to that audience (whose JWT answer must name it), `None` for
/// `client_credentials`.
pub fn decode_token_response(
    status: u16,
    body: &[u8],
    now: i64,
    exchange_audience: Option<&str>,
) -> Result<TokenSet, OidcError> {
    let answer = answer(status, body)?;
    let grant_type = match exchange_audience {
        Some(_) => GRANT_TOKEN_EXCHANGE,
        None => GRANT_CLIENT_CREDENTIALS,
    };
    if !answer.status.is_success() {
        return Err(token_error(&answer, &[("grant_type", grant_type)]));
    }
    let tokens = parse_token_answer(&answer, now)?;
    if let Some(audience) = exchange_audience {
        check_exchanged_audience(&tokens, audience)?;
    }
    Ok(tokens)
}

/// A registration answer (RFC 7591), as `OidcClient::register` reads it.
pub fn decode_registration_response(status: u16, body: &[u8]) -> Result<Registration, OidcError> {
    read_registration(transport()?, &answer(status, body)?)
}

/// The error a non-success answer of the token, registration or registration-management
/// endpoints maps to (RFC 6749 section 5.2 error body or none).
pub fn decode_error_response(status: u16, body: &[u8]) -> OidcError {
    match answer(status, body) {
        Ok(answer) => error_from_answer(&answer),
        Err(error) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "http://127.0.0.1:8080/realms/demo";

    fn discovery(issuer: &str, token_endpoint: &str) -> Vec<u8> {
        serde_json::json!({
            "issuer": issuer,
            "token_endpoint": token_endpoint,
            "jwks_uri": format!("{ISSUER}/certs"),
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn discovery_answers_are_checked_as_the_client_checks_them() {
        let good = discovery(ISSUER, &format!("{ISSUER}/token"));
        assert_eq!(decode_discovery(200, &good, ISSUER).unwrap().issuer, ISSUER);
        // another issuer, a token endpoint over plain http to a remote host, an error status,
        // a status that is none
        assert!(matches!(
            decode_discovery(200, &good, "http://127.0.0.1:8080/realms/other"),
            Err(OidcError::IssuerMismatch { .. })
        ));
        let remote = discovery(ISSUER, "http://idp.example/token");
        assert!(matches!(
            decode_discovery(200, &remote, ISSUER),
            Err(OidcError::Config(_))
        ));
        assert!(matches!(
            decode_discovery(503, &good, ISSUER),
            Err(OidcError::Unavailable { status: 503, .. })
        ));
        assert!(decode_discovery(42, &good, ISSUER).is_err());
    }

    #[test]
    fn token_and_registration_answers() {
        let tokens = br#"{"access_token":"t","token_type":"Bearer","expires_in":"60"}"#;
        assert_eq!(
            decode_token_response(200, tokens, 100, None)
                .unwrap()
                .expires_at,
            160
        );
        let negative = br#"{"access_token":"t","token_type":"Bearer","expires_in":-1}"#;
        assert!(decode_token_response(200, negative, 100, None).is_err());
        // Keycloak's unknown audience: 400 invalid_client to an exchange is a refused audience.
        let refused = br#"{"error":"invalid_client"}"#;
        // The IDP's own words ride along (`IdpRefused`); what the caller acts on is the cause.
        assert_eq!(
            decode_token_response(400, refused, 0, Some("api"))
                .unwrap_err()
                .cause(),
            &OidcError::InvalidTarget
        );
        assert_eq!(
            decode_token_response(400, refused, 0, None)
                .unwrap_err()
                .cause(),
            &OidcError::InvalidClient
        );
        assert!(decode_registration_response(201, br#"{"client_id":"c"}"#).is_ok());
        assert!(decode_registration_response(201, br#"{"client_id":""}"#).is_err());
        assert_eq!(
            decode_registration_response(401, b"").unwrap_err().cause(),
            &OidcError::AccessDenied
        );
        assert_eq!(
            decode_error_response(401, b"<html>").cause(),
            &OidcError::InvalidClient
        );
    }
}
