//! Access-token verification: the JWKS cache per `jwks_uri` with a rate-limited refetch on an
//! unknown key id, the signature and claim checks, and the checks that a device token is this
//! device's (client, `typ`). The rules are listed in `docs/protocol.md`, "Token verification".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_jose::{Algorithm, ClaimChecks, JoseError, JwkSet, Jwt};
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
    /// Where the claims come from.
    pub source: ClaimsSource,
}

/// Where the claims of a [`VerifiedToken`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimsSource {
    /// The token is a JWT verified against the IDP's JWKS.
    Jwt,
    /// The token is opaque; the IDP's introspection endpoint (RFC 7662) answered for it.
    Introspection,
    /// The token is opaque and the IDP offers no introspection: it is usable for exchange and
    /// resource calls, but there are no claims to show.
    Unavailable,
}

/// Why signature verification against a key set failed.
pub(crate) enum SignatureFailure {
    /// The token's `kid` is not in the set: worth one refetch.
    UnknownKey,
    Rejected(OidcError),
}

/// Verifies the signature with `keys` for one of the `allowed` algorithms, then `iss` and
/// `exp`/`nbf`/`iat` with `leeway` seconds of tolerance at server time `now`.
#[cfg(test)] // the runtime path is `OidcClient::verify_access_token`: check_signature + claims_of
pub(crate) fn check_token(
    token: &str,
    keys: &JwkSet,
    allowed: &[Algorithm],
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<VerifiedToken, SignatureFailure> {
    let jwt = check_signature(token, keys, allowed)?;
    claims_of(jwt, issuer, now, leeway).map_err(SignatureFailure::Rejected)
}

/// Verifies only the signature with `keys` for one of the `allowed` algorithms; the caller
/// checks the claims (an access token's or an ID token's rules).
pub(crate) fn check_signature(
    token: &str,
    keys: &JwkSet,
    allowed: &[Algorithm],
) -> Result<Jwt, SignatureFailure> {
    let refused = |m: String| SignatureFailure::Rejected(OidcError::InvalidToken(m));
    let jwt = mc_jose::verify_jws(token, keys, allowed).map_err(|e| match e {
        JoseError::UnknownKey { .. } => SignatureFailure::UnknownKey,
        JoseError::BadSignature => refused("signature does not verify".into()),
        JoseError::UnsupportedAlgorithm(alg) => refused(format!(
            "algorithm `{}` is not accepted (accepted: {})",
            alg.chars().take(16).collect::<String>(),
            names(allowed)
        )),
        JoseError::KeyUnusable(why) => refused(format!("the IDP's key cannot be used: {why}")),
        JoseError::AmbiguousKey => {
            refused("the token names no kid and several IDP keys fit".into())
        }
        JoseError::CriticalHeader => refused(
            "the token's header lists critical extensions (crit) we do not understand".into(),
        ),
        JoseError::Malformed(_) | JoseError::Crypto(_) => {
            refused("not a well-formed signed JWT".into())
        }
    })?;
    Ok(jwt)
}

fn names(allowed: &[Algorithm]) -> String {
    if allowed.is_empty() {
        return "none in common with the IDP".into();
    }
    allowed
        .iter()
        .map(|alg| alg.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `token` is a JWT (three parts, a JSON header naming an `alg`) rather than an
/// opaque token: a JWT must verify; an opaque one goes to introspection.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    Jwt::decode_unverified(token).is_ok_and(|jwt| jwt.alg().is_some())
}

/// The `typ` header values of an access token we accept (RFC 9068 §2.1, case-insensitive):
/// `at+jwt` and its media-type form, and plain `JWT` (Keycloak's default). No `typ` is fine;
/// any other (`dpop+jwt`, `id_token`, `logout+jwt`, ...) names another kind of token.
pub(crate) fn check_access_token_typ(header: &Map<String, Value>) -> Result<(), OidcError> {
    match header.get("typ") {
        None => Ok(()),
        Some(Value::String(typ))
            if ["at+jwt", "application/at+jwt", "jwt"]
                .iter()
                .any(|ok| typ.eq_ignore_ascii_case(ok)) =>
        {
            Ok(())
        }
        Some(other) => Err(OidcError::InvalidToken(format!(
            "the token's typ {} is not an access token's",
            other.to_string().chars().take(32).collect::<String>()
        ))),
    }
}

/// The device token must be issued to this device's client: `client_id` or `azp` equal to
/// `client_id` when either is present; when neither is, `sub` must be.
pub(crate) fn check_issued_to(
    claims: &Map<String, Value>,
    client_id: &str,
) -> Result<(), OidcError> {
    let named: Vec<&Value> = ["client_id", "azp"]
        .iter()
        .filter_map(|name| claims.get(*name))
        .collect();
    let ours = if named.is_empty() {
        claims.get("sub").and_then(Value::as_str) == Some(client_id)
    } else {
        named.iter().any(|v| v.as_str() == Some(client_id))
    };
    if ours {
        Ok(())
    } else {
        Err(OidcError::InvalidToken(
            "the token was issued to another client (client_id/azp/sub differ from this device's registration); log in again".into(),
        ))
    }
}

pub(crate) fn claims_of(
    jwt: Jwt,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<VerifiedToken, OidcError> {
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
    check_access_token_typ(&jwt.header)?;
    let subject = jwt.claim_str("sub").map(str::to_string);
    Ok(VerifiedToken {
        claims: jwt.claims,
        expires_at,
        subject,
        source: ClaimsSource::Jwt,
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
        let Ok(verified) = check_token(&t, &keys_of(&key), &Algorithm::ALL, ISSUER, 950, 60) else {
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
        assert!(check_token(&t, &keys, &Algorithm::ALL, ISSUER, 1_060, 60).is_ok());
        // one second beyond the tolerance: expired
        let e = rejected(check_token(&t, &keys, &Algorithm::ALL, ISSUER, 1_061, 60));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("expired")),
            "{e}"
        );
        // zero tolerance is strict
        assert!(check_token(&t, &keys, &Algorithm::ALL, ISSUER, 1_000, 0).is_ok());
        assert!(matches!(
            rejected(check_token(&t, &keys, &Algorithm::ALL, ISSUER, 1_001, 0)),
            OidcError::InvalidToken(_)
        ));
    }

    #[test]
    fn token_from_the_future_beyond_tolerance_is_refused() {
        let key = SigningKey::generate().unwrap();
        let t = token(&key, json!({"iss": ISSUER, "exp": 5_000, "iat": 1_100}));
        assert!(check_token(&t, &keys_of(&key), &Algorithm::ALL, ISSUER, 1_040, 60).is_ok());
        let e = rejected(check_token(
            &t,
            &keys_of(&key),
            &Algorithm::ALL,
            ISSUER,
            1_039,
            60,
        ));
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
            rejected(check_token(
                &other_iss,
                &keys,
                &Algorithm::ALL,
                ISSUER,
                1_000,
                60
            )),
            OidcError::InvalidToken(_)
        ));
        let no_exp = token(&key, json!({"iss": ISSUER}));
        assert!(matches!(
            rejected(check_token(
                &no_exp,
                &keys,
                &Algorithm::ALL,
                ISSUER,
                1_000,
                60
            )),
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
            &Algorithm::ALL,
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
            check_token(&t, &keys_of(&other), &Algorithm::ALL, ISSUER, 1_000, 60),
            Err(SignatureFailure::UnknownKey)
        ));
    }

    #[test]
    fn opaque_or_unsigned_tokens_are_refused() {
        let key = SigningKey::generate().unwrap();
        assert!(matches!(
            rejected(check_token(
                "opaque-token",
                &keys_of(&key),
                &Algorithm::ALL,
                ISSUER,
                0,
                60
            )),
            OidcError::InvalidToken(_)
        ));
        let header = mc_jose::b64url_encode(br#"{"alg":"none"}"#);
        let payload = mc_jose::b64url_encode(br#"{"iss":"x","exp":99999999999}"#);
        let none = format!("{header}.{payload}.");
        let e = rejected(check_token(
            &none,
            &keys_of(&key),
            &Algorithm::ALL,
            ISSUER,
            0,
            60,
        ));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("none")),
            "{e}"
        );
    }

    #[test]
    fn access_token_typ_rule() {
        let key = SigningKey::generate().unwrap();
        let claims = json!({"iss": ISSUER, "exp": 2_000});
        for (typ, accepted) in [
            ("at+jwt", true),
            ("AT+JWT", true),
            ("application/at+jwt", true),
            ("JWT", true),
            ("dpop+jwt", false),
            ("id_token", false),
            ("logout+jwt", false),
            ("", false),
        ] {
            let t = key.sign_jwt(typ, Map::new(), &claims).unwrap();
            let result = check_token(&t, &keys_of(&key), &Algorithm::ALL, ISSUER, 1_000, 60);
            assert_eq!(result.is_ok(), accepted, "typ {typ:?}");
        }
        // typ must be a string when present
        let mut header = Map::new();
        header.insert("typ".into(), json!(7));
        let t = key.sign_jwt("x", header, &claims).unwrap();
        assert!(check_token(&t, &keys_of(&key), &Algorithm::ALL, ISSUER, 1_000, 60).is_err());
    }

    #[test]
    fn crit_and_algorithms_outside_the_allowed_list_are_refused() {
        let key = SigningKey::generate().unwrap();
        let mut header = Map::new();
        header.insert("crit".into(), json!(["exp"]));
        let t = key
            .sign_jwt("at+jwt", header, &json!({"iss": ISSUER, "exp": 2_000}))
            .unwrap();
        let e = rejected(check_token(
            &t,
            &keys_of(&key),
            &Algorithm::ALL,
            ISSUER,
            1_000,
            60,
        ));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("crit")),
            "{e}"
        );
        let t = token(&key, json!({"iss": ISSUER, "exp": 2_000}));
        let e = rejected(check_token(
            &t,
            &keys_of(&key),
            &[Algorithm::Rs256],
            ISSUER,
            1_000,
            60,
        ));
        assert!(
            matches!(&e, OidcError::InvalidToken(m) if m.contains("ES256") && m.contains("RS256")),
            "{e}"
        );
    }

    #[test]
    fn device_token_must_be_issued_to_this_client() {
        let claims = |v: Value| v.as_object().cloned().unwrap();
        for (c, accepted) in [
            (json!({"client_id": "me", "azp": "me", "sub": "x"}), true),
            (json!({"azp": "me", "sub": "x"}), true),
            (json!({"client_id": "me"}), true),
            (json!({"sub": "me"}), true),
            (json!({"client_id": "other", "sub": "me"}), false),
            (json!({"azp": "other", "sub": "me"}), false),
            (json!({"sub": "other"}), false),
            (json!({"client_id": 1, "sub": "me"}), false),
            (json!({}), false),
        ] {
            assert_eq!(
                check_issued_to(&claims(c.clone()), "me").is_ok(),
                accepted,
                "{c}"
            );
        }
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
