//! Access-token verification: the JWKS cache per `jwks_uri` with a rate-limited refetch on an
//! unknown key id, and the signature and claim checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_jose::{ClaimChecks, JoseError, JwkSet, Jwt};
use serde_json::{Map, Value};

use crate::OidcError;

/// The claims of an access token that passed signature, issuer and expiry checks.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub claims: Map<String, Value>,
    /// `exp` of the token, Unix seconds in server time.
    pub expires_at: i64,
    /// `sub`, when present (for a device token: the server-assigned anonymous id).
    pub subject: Option<String>,
}

/// Why signature verification against a key set failed.
pub(crate) enum SignatureFailure {
    /// The token's `kid` is not in the set: worth one refetch.
    UnknownKey,
    Rejected(OidcError),
}

/// Verifies the signature with `keys`, then `iss` and `exp`/`nbf`/`iat` with `leeway` seconds
/// of tolerance at server time `now`.
pub(crate) fn check_token(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<VerifiedToken, SignatureFailure> {
    let jwt = mc_jose::verify_es256(token, keys).map_err(|e| match e {
        JoseError::UnknownKey { .. } => SignatureFailure::UnknownKey,
        JoseError::BadSignature => {
            SignatureFailure::Rejected(OidcError::InvalidToken("signature does not verify".into()))
        }
        JoseError::UnsupportedAlgorithm(alg) => {
            SignatureFailure::Rejected(OidcError::InvalidToken(format!(
                "algorithm `{}` is not accepted, only ES256",
                alg.chars().take(16).collect::<String>()
            )))
        }
        JoseError::Malformed(_) | JoseError::Crypto(_) => SignatureFailure::Rejected(
            OidcError::InvalidToken("not a well-formed ES256 JWT".into()),
        ),
    })?;
    claims_of(jwt, issuer, now, leeway).map_err(SignatureFailure::Rejected)
}

fn claims_of(jwt: Jwt, issuer: &str, now: i64, leeway: i64) -> Result<VerifiedToken, OidcError> {
    jwt.check(&ClaimChecks {
        issuer: Some(issuer),
        audience: None,
        now,
        leeway,
    })
    .map_err(|e| OidcError::InvalidToken(e.to_string()))?;
    let expires_at = jwt
        .claim_i64("exp")
        .ok_or_else(|| OidcError::InvalidToken("claim `exp` is missing".into()))?;
    let subject = jwt.claim_str("sub").map(str::to_string);
    Ok(VerifiedToken {
        claims: jwt.claims,
        expires_at,
        subject,
    })
}

#[derive(Clone)]
pub(crate) struct CachedKeys {
    pub keys: Arc<JwkSet>,
    pub fetched_at: Instant,
}

/// Key sets by `jwks_uri`. Fetches are serialised by `fetch_gate`, so concurrent
/// verifications of tokens with the same unknown `kid` cause one fetch, not one each.
#[derive(Default)]
pub(crate) struct JwksCache {
    entries: Mutex<HashMap<String, CachedKeys>>,
    pub(crate) fetch_gate: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn get(&self, jwks_uri: &str) -> Option<CachedKeys> {
        self.entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(jwks_uri).cloned())
    }

    pub(crate) fn put(&self, jwks_uri: &str, keys: JwkSet) -> CachedKeys {
        let cached = CachedKeys {
            keys: Arc::new(keys),
            fetched_at: Instant::now(),
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(jwks_uri.to_string(), cached.clone());
        }
        cached
    }
}

/// Whether a cached set may be used as is.
pub(crate) fn is_fresh(cached: &CachedKeys, max_age: Duration) -> bool {
    cached.fetched_at.elapsed() < max_age
}

/// Whether an unknown `kid` may trigger a refetch: only if the set is older than the minimum
/// interval, so tokens with made-up key ids cannot make us hammer the IDP.
pub(crate) fn may_refetch(cached: &CachedKeys, min_interval: Duration) -> bool {
    cached.fetched_at.elapsed() >= min_interval
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_jose::SigningKey;
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:1/realms/demo";

    fn token(key: &SigningKey, claims: Value) -> String {
        key.sign_jwt("at+jwt", Map::new(), &claims).unwrap()
    }

    fn keys_of(key: &SigningKey) -> JwkSet {
        JwkSet {
            keys: vec![key.public_jwk()],
        }
    }

    fn rejected(result: Result<VerifiedToken, SignatureFailure>) -> OidcError {
        match result {
            Err(SignatureFailure::Rejected(e)) => e,
            Err(SignatureFailure::UnknownKey) => panic!("unexpected unknown key"),
            Ok(_) => panic!("token accepted"),
        }
    }

    #[test]
    fn valid_token_gives_claims() {
        let key = SigningKey::generate().unwrap();
        let t = token(
            &key,
            json!({"iss": ISSUER, "sub": "dev-1", "exp": 1_000, "iat": 900}),
        );
        let Ok(verified) = check_token(&t, &keys_of(&key), ISSUER, 950, 60) else {
            panic!("rejected");
        };
        assert_eq!(verified.expires_at, 1_000);
        assert_eq!(verified.subject.as_deref(), Some("dev-1"));
        assert_eq!(verified.claims.get("sub"), Some(&json!("dev-1")));
    }

    #[test]
    fn expiry_is_checked_with_tolerance() {
        let key = SigningKey::generate().unwrap();
        let keys = keys_of(&key);
        let t = token(&key, json!({"iss": ISSUER, "exp": 1_000}));
        // within tolerance after exp: still accepted
        assert!(check_token(&t, &keys, ISSUER, 1_060, 60).is_ok());
        // one second beyond the tolerance: expired
        let e = rejected(check_token(&t, &keys, ISSUER, 1_061, 60));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("expired")),
            "{e}"
        );
        // zero tolerance is strict
        assert!(check_token(&t, &keys, ISSUER, 1_000, 0).is_ok());
        assert!(matches!(
            rejected(check_token(&t, &keys, ISSUER, 1_001, 0)),
            OidcError::InvalidToken(_)
        ));
    }

    #[test]
    fn token_from_the_future_beyond_tolerance_is_refused() {
        let key = SigningKey::generate().unwrap();
        let t = token(&key, json!({"iss": ISSUER, "exp": 5_000, "iat": 1_100}));
        assert!(check_token(&t, &keys_of(&key), ISSUER, 1_040, 60).is_ok());
        let e = rejected(check_token(&t, &keys_of(&key), ISSUER, 1_039, 60));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("not valid yet")),
            "{e}"
        );
    }

    #[test]
    fn wrong_issuer_missing_exp_and_bad_signature_are_refused() {
        let key = SigningKey::generate().unwrap();
        let keys = keys_of(&key);
        let other_iss = token(
            &key,
            json!({"iss": "http://evil/realms/demo", "exp": 2_000}),
        );
        assert!(matches!(
            rejected(check_token(&other_iss, &keys, ISSUER, 1_000, 60)),
            OidcError::InvalidToken(_)
        ));
        let no_exp = token(&key, json!({"iss": ISSUER}));
        assert!(matches!(
            rejected(check_token(&no_exp, &keys, ISSUER, 1_000, 60)),
            OidcError::InvalidToken(_)
        ));
        // same kid, other key material: the signature must not verify
        let good = token(&key, json!({"iss": ISSUER, "exp": 2_000}));
        let impostor = SigningKey::generate().unwrap();
        let mut impostor_jwk = impostor.public_jwk();
        impostor_jwk.kid = Some(key.kid().to_string());
        let e = rejected(check_token(
            &good,
            &JwkSet {
                keys: vec![impostor_jwk],
            },
            ISSUER,
            1_000,
            60,
        ));
        assert_eq!(
            e,
            OidcError::InvalidToken("signature does not verify".into())
        );
    }

    #[test]
    fn unknown_kid_asks_for_a_refetch() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let t = token(&key, json!({"iss": ISSUER, "exp": 2_000}));
        assert!(matches!(
            check_token(&t, &keys_of(&other), ISSUER, 1_000, 60),
            Err(SignatureFailure::UnknownKey)
        ));
    }

    #[test]
    fn opaque_or_unsigned_tokens_are_refused() {
        let key = SigningKey::generate().unwrap();
        assert!(matches!(
            rejected(check_token("opaque-token", &keys_of(&key), ISSUER, 0, 60)),
            OidcError::InvalidToken(_)
        ));
        let header = mc_jose::b64url_encode(br#"{"alg":"none"}"#);
        let payload = mc_jose::b64url_encode(br#"{"iss":"x","exp":99999999999}"#);
        let none = format!("{header}.{payload}.");
        let e = rejected(check_token(&none, &keys_of(&key), ISSUER, 0, 60));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("none")),
            "{e}"
        );
    }

    #[test]
    fn refetch_is_rate_limited() {
        let cache = JwksCache::default();
        let cached = cache.put("u", JwkSet::default());
        assert!(!may_refetch(&cached, Duration::from_secs(30)));
        assert!(may_refetch(&cached, Duration::ZERO));
        assert!(is_fresh(&cached, Duration::from_secs(600)));
        assert!(!is_fresh(&cached, Duration::ZERO));
        assert!(cache.get("u").is_some());
        assert!(cache.get("other").is_none());
    }
}
