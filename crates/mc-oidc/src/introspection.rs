//! Token introspection (RFC 7662) for an opaque device token: the IDP tells whether the token
//! is active and what its claims are. The request is authenticated like a token request
//! (`private_key_jwt`, `aud` = issuer); the answer must say the token is active, issued to this
//! device's client, not expired and, when DPoP is used, bound to the device key.

use mc_jose::SigningKey;
use serde_json::{Map, Value};

use crate::retry::Repeatable;
use crate::transport::{error_from_answer, Endpoint};
use crate::verify::{check_issued_to, ClaimsSource, VerifiedToken};
use crate::{dpop, OidcClient, OidcError, ProviderMetadata, TokenSet, CLIENT_ASSERTION_TYPE};

/// Members of an introspection answer that describe the answer, not the token's subject.
const NOT_CLAIMS: [&str; 2] = ["active", "token_type"];

impl OidcClient {
    /// Introspects `tokens` at `endpoint` and checks the answer (see the module doc).
    pub(crate) async fn introspect_device_token(
        &self,
        meta: &ProviderMetadata,
        endpoint: &str,
        tokens: &TokenSet,
        key: &SigningKey,
        client_id: &str,
    ) -> Result<VerifiedToken, OidcError> {
        let transport = &self.inner.transport;
        let url = &transport.endpoint_url(endpoint, "introspection_endpoint")?;
        // Reading the token's state changes nothing at the IDP: safe to repeat. It shares the
        // token endpoint's retry and reachability bookkeeping (same client authentication).
        let answer = self
            .with_retries(Endpoint::Token, Repeatable::Always, move || async move {
                let assertion = self.client_assertion(meta, client_id, key)?;
                let form = [
                    ("token", tokens.access_token.expose()),
                    ("token_type_hint", "access_token"),
                    ("client_id", client_id),
                    ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                    ("client_assertion", assertion.expose()),
                ];
                let request = transport.http().post(url.clone()).form(&form);
                let answer = transport.send(Endpoint::Token, url, request).await?;
                if answer.status.is_success() {
                    Ok(answer)
                } else {
                    Err(error_from_answer(&answer))
                }
            })
            .await?;
        let Value::Object(claims) = answer.json::<Value>("introspection answer")? else {
            return Err(OidcError::InvalidResponse(
                "introspection answer is not a JSON object".into(),
            ));
        };
        check_introspection(
            claims,
            &meta.issuer,
            client_id,
            tokens,
            key,
            self.now(),
            self.inner.config.clock_tolerance_secs,
        )
    }
}

/// The checks on an introspection answer, apart from the HTTP exchange.
pub(crate) fn check_introspection(
    mut claims: Map<String, Value>,
    issuer: &str,
    client_id: &str,
    tokens: &TokenSet,
    key: &SigningKey,
    now: i64,
    leeway: i64,
) -> Result<VerifiedToken, OidcError> {
    if claims.get("active") != Some(&Value::Bool(true)) {
        return Err(OidcError::InvalidToken(
            "the IDP says the token is not active (revoked, expired or unknown); log in again"
                .into(),
        ));
    }
    if let Some(iss) = claims.get("iss") {
        if iss.as_str() != Some(issuer) {
            return Err(OidcError::InvalidToken(
                "the introspection answer names another issuer".into(),
            ));
        }
    }
    check_issued_to(&claims, client_id)?;
    let expires_at = match claims.get("exp") {
        None => tokens.expires_at,
        Some(exp) => {
            let exp = exp.as_i64().ok_or_else(|| {
                OidcError::InvalidResponse("introspection answer has an invalid exp".into())
            })?;
            if now > exp.saturating_add(leeway) {
                return Err(OidcError::InvalidToken("token has expired".into()));
            }
            exp.min(tokens.expires_at)
        }
    };
    dpop::check_binding(&tokens.token_type, &claims, key)?;
    for name in NOT_CLAIMS {
        claims.remove(name);
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(VerifiedToken {
        claims,
        expires_at,
        subject,
        source: ClaimsSource::Introspection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:1";

    fn answer(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn bearer() -> TokenSet {
        TokenSet {
            access_token: "opaque".into(),
            token_type: "Bearer".into(),
            expires_at: 2_000,
            refresh_token: None,
            scope: None,
        }
    }

    #[test]
    fn active_answer_for_this_client_gives_claims() {
        let key = SigningKey::generate().unwrap();
        let verified = check_introspection(
            answer(
                json!({"active": true, "client_id": "c1", "sub": "c1", "exp": 1_500,
                "iss": ISSUER, "scope": "a", "token_type": "Bearer"}),
            ),
            ISSUER,
            "c1",
            &bearer(),
            &key,
            1_000,
            60,
        )
        .unwrap();
        assert_eq!(verified.expires_at, 1_500);
        assert_eq!(verified.source, ClaimsSource::Introspection);
        assert!(!verified.claims.contains_key("active"));
        assert!(!verified.claims.contains_key("token_type"));
        assert_eq!(verified.claims.get("scope"), Some(&json!("a")));
    }

    #[test]
    fn hostile_answers_are_refused() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let check = |v: Value, tokens: &TokenSet| {
            check_introspection(answer(v), ISSUER, "c1", tokens, &key, 1_000, 60)
        };
        for refused in [
            json!({"active": false}),
            json!({"active": "true", "client_id": "c1"}),
            json!({"client_id": "c1"}),
            json!({"active": true, "client_id": "someone-else", "sub": "c1"}),
            json!({"active": true, "sub": "someone-else"}),
            json!({"active": true, "client_id": "c1", "exp": 900}),
            json!({"active": true, "client_id": "c1", "iss": "http://evil"}),
            json!({"active": true, "client_id": "c1", "cnf": {"jkt": other.kid()}}),
        ] {
            assert!(
                matches!(
                    check(refused.clone(), &bearer()),
                    Err(OidcError::InvalidToken(_))
                ),
                "{refused}"
            );
        }
        // a DPoP token whose introspection has no binding
        let dpop = TokenSet {
            token_type: "DPoP".into(),
            ..bearer()
        };
        assert!(check(json!({"active": true, "client_id": "c1"}), &dpop).is_err());
        assert!(check(
            json!({"active": true, "client_id": "c1", "cnf": {"jkt": key.kid()}}),
            &dpop
        )
        .is_ok());
        assert!(matches!(
            check(
                json!({"active": true, "client_id": "c1", "exp": "soon"}),
                &bearer()
            ),
            Err(OidcError::InvalidResponse(_))
        ));
    }
}
