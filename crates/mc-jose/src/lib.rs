//! Keys, JWKs and compact JWS/JWT: the JOSE pieces both the device side (mc-oidc, the
//! runtime) and the development IDP need.
//!
//! What it is for: the device's ES256 key ([`SigningKey`], generated and loaded with ring),
//! RFC 7638 thumbprints, signing a JWT, verifying one against a JWK set ([`verify_jws`]), and
//! the claim checks (`iss`, `aud`, `exp`) that client and server share. IDP tokens may be
//! signed with RS256/384/512, PS256/384/512, ES256/384 or EdDSA (Ed25519), all verified by
//! ring; the caller passes the allowed list. `none`, HS* and any other name are refused before
//! any key is touched, and a key must fit the algorithm (kty, crv, `use`, its own `alg`), which
//! rules out algorithm-confusion attacks. [`JwsSigner`] signs with any of them (dev IDP, tests).
//!
//! What it must not touch: no I/O, no clocks other than [`unix_now`], no logging. Private keys
//! leave a [`SigningKey`] only as [`SecretBytes`] through [`SigningKey::to_pkcs8`].

mod algorithm;
mod signer;

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mc_secret::SecretBytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use algorithm::{parse_jwk_set, verify_jws, Algorithm, MIN_RSA_BITS};
pub use signer::JwsSigner;

/// Why a JOSE operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// The input is not a well-formed key, JWK or compact JWS.
    #[error("malformed JOSE input: {0}")]
    Malformed(String),
    /// The token's `alg` is not one we verify or not in the allowed list (`none`, HS*, ...).
    #[error("algorithm `{0}` is not accepted")]
    UnsupportedAlgorithm(String),
    /// No key in the set matches the token's `kid`: refetch the key set once, then refuse.
    #[error("no matching key for kid {kid:?}")]
    UnknownKey { kid: Option<String> },
    /// The key named by the token cannot verify its algorithm (wrong kty or curve, `use`
    /// other than `sig`, its own `alg` differs, RSA under 2048 bits).
    #[error("the key cannot be used: {0}")]
    KeyUnusable(String),
    /// The token names no `kid` and more than one key fits: the IDP must send a `kid`.
    #[error("no kid and several keys fit")]
    AmbiguousKey,
    /// The header has a `crit` parameter: we understand no JWS extension (RFC 7515 §4.1.11).
    #[error("the JWS header lists critical extensions (crit), which are not understood")]
    CriticalHeader,
    /// The signature does not verify with the matching key.
    #[error("signature does not verify")]
    BadSignature,
    /// ring refused an operation (key generation, signing); not caused by the input.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

/// Base64url without padding, as JOSE uses it.
pub fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| JoseError::Malformed("invalid base64url".into()))
}

fn system_random() -> &'static SystemRandom {
    static RNG: std::sync::OnceLock<SystemRandom> = std::sync::OnceLock::new();
    RNG.get_or_init(SystemRandom::new)
}

/// `bytes` random bytes from the operating system, base64url-encoded: for `jti`, ids and
/// bearer secrets. Returns an empty string only if the OS refuses randomness, which ring
/// treats as unrecoverable elsewhere too; callers that need a guarantee use [`random_bytes`].
pub fn random_token(bytes: usize) -> String {
    random_bytes(bytes)
        .map(|b| b64url_encode(&b))
        .unwrap_or_default()
}

/// `len` random bytes from the operating system.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, JoseError> {
    let mut buf = vec![0u8; len];
    system_random()
        .fill(&mut buf)
        .map_err(|_| JoseError::Crypto("system randomness unavailable".into()))?;
    Ok(buf)
}

/// Base64url SHA-256 of `data` (RFC 7638 thumbprints, DPoP `ath`).
pub fn sha256_b64url(data: &[u8]) -> String {
    b64url_encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Seconds since the Unix epoch by the local clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A public JSON Web Key: EC (P-256, P-384), RSA or OKP (Ed25519); other kinds parse but never
/// fit an algorithm.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

impl Jwk {
    /// RFC 7638 thumbprint (SHA-256, base64url): the required members of the key type in
    /// lexicographic order, no white space (RFC 8037 §2 for OKP).
    pub fn thumbprint(&self) -> Result<String, JoseError> {
        let member = |value: &Option<String>, name: &str| {
            value
                .clone()
                .ok_or_else(|| JoseError::Malformed(format!("{} jwk without {name}", self.kty)))
        };
        let canonical = match self.kty.as_str() {
            "EC" => serde_json::json!({
                "crv": member(&self.crv, "crv")?, "kty": "EC",
                "x": member(&self.x, "x")?, "y": member(&self.y, "y")?,
            }),
            "RSA" => serde_json::json!({
                "e": member(&self.e, "e")?, "kty": "RSA", "n": member(&self.n, "n")?,
            }),
            "OKP" => serde_json::json!({
                "crv": member(&self.crv, "crv")?, "kty": "OKP", "x": member(&self.x, "x")?,
            }),
            other => {
                return Err(JoseError::UnsupportedAlgorithm(format!(
                    "kty {}",
                    other.chars().take(16).collect::<String>()
                )))
            }
        };
        // serde_json's Map is a BTreeMap here (no preserve_order feature), so keys come out sorted.
        let text = serde_json::to_string(&canonical)
            .map_err(|e| JoseError::Malformed(format!("jwk: {e}")))?;
        Ok(sha256_b64url(text.as_bytes()))
    }
}

/// A JWK set as served at a `jwks_uri` or sent in a registration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JwkSet {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

/// An ES256 signing key held by ring. `Debug` shows the key id only.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: SecretBytes,
    public: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh P-256 key from the OS random source.
    pub fn generate() -> Result<SigningKey, JoseError> {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, system_random())
            .map_err(|_| JoseError::Crypto("P-256 key generation failed".into()))?;
        Self::from_pkcs8(&SecretBytes::new(doc.as_ref()))
    }

    /// Loads a key persisted with [`SigningKey::to_pkcs8`].
    pub fn from_pkcs8(pkcs8: &SecretBytes) -> Result<SigningKey, JoseError> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.expose(),
            system_random(),
        )
        .map_err(|_| JoseError::Malformed("not a P-256 PKCS#8 private key".into()))?;
        let point = pair.public_key().as_ref();
        // ring gives the uncompressed point: 0x04 || x (32) || y (32)
        let (x, y) = match (point.get(1..33), point.get(33..65)) {
            (Some(x), Some(y)) if point.len() == 65 => (x, y),
            _ => return Err(JoseError::Crypto("unexpected public key encoding".into())),
        };
        let mut public = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(b64url_encode(x)),
            y: Some(b64url_encode(y)),
            use_: Some("sig".into()),
            alg: Some("ES256".into()),
            ..Jwk::default()
        };
        public.kid = Some(public.thumbprint()?);
        Ok(SigningKey {
            pair,
            pkcs8: pkcs8.clone(),
            public,
        })
    }

    /// The private key as PKCS#8, for the encrypted store. Never log or write it in clear.
    pub fn to_pkcs8(&self) -> SecretBytes {
        self.pkcs8.clone()
    }

    /// The RFC 7638 thumbprint of the public key, used as `kid` (and as `jkt` for DPoP).
    pub fn kid(&self) -> &str {
        self.public.kid.as_deref().unwrap_or_default()
    }

    /// The public JWK: kty EC, crv P-256, x, y, kid, use sig, alg ES256.
    pub fn public_jwk(&self) -> Jwk {
        self.public.clone()
    }

    /// A compact JWS with header {"alg":"ES256","typ":typ,"kid":kid} plus `extra_header`
    /// (for example DPoP puts `jwk` there), over the JSON of `claims`.
    pub fn sign_jwt(
        &self,
        typ: &str,
        extra_header: Map<String, Value>,
        claims: &Value,
    ) -> Result<String, JoseError> {
        let mut header = Map::new();
        header.insert("alg".into(), "ES256".into());
        header.insert("typ".into(), typ.into());
        header.insert("kid".into(), self.kid().into());
        header.extend(extra_header);
        let header = serde_json::to_vec(&header)
            .map_err(|e| JoseError::Malformed(format!("header: {e}")))?;
        let claims =
            serde_json::to_vec(claims).map_err(|e| JoseError::Malformed(format!("claims: {e}")))?;
        let signing_input = format!("{}.{}", b64url_encode(&header), b64url_encode(&claims));
        let signature = self
            .pair
            .sign(system_random(), signing_input.as_bytes())
            .map_err(|_| JoseError::Crypto("ES256 signing failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            b64url_encode(signature.as_ref())
        ))
    }
}

/// A decoded compact JWS: its protected header and its claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// The three parts of a compact JWS, split without allocation.
fn split_compact(token: &str) -> Result<(&str, &str, &str), JoseError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok((h, p, s)),
        _ => Err(JoseError::Malformed(
            "a compact JWS has three dot-separated parts".into(),
        )),
    }
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, JoseError> {
    let bytes = b64url_decode(part)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JoseError::Malformed(format!("{what} is not a JSON object"))),
    }
}

impl Jwt {
    /// Parses without verifying: only for reading `kid`/`iss` before verification, or for
    /// showing claims of a token already verified.
    pub fn decode_unverified(token: &str) -> Result<Jwt, JoseError> {
        let (header, payload, _) = split_compact(token)?;
        Ok(Jwt {
            header: decode_object(header, "JWS header")?,
            claims: decode_object(payload, "JWT payload")?,
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Checks `iss`, `aud` (a string or an array), `exp` (required), `nbf` and `iat` against
    /// `checks.now`, allowing `checks.leeway` seconds of clock difference.
    pub fn check(&self, checks: &ClaimChecks<'_>) -> Result<(), ClaimError> {
        if let Some(issuer) = checks.issuer {
            match self.claim_str("iss") {
                None => return Err(ClaimError::Missing("iss")),
                Some(iss) if iss != issuer => return Err(ClaimError::WrongIssuer),
                Some(_) => {}
            }
        }
        if let Some(audience) = checks.audience {
            let matches = match self.claims.get("aud") {
                None => return Err(ClaimError::Missing("aud")),
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
                Some(_) => false,
            };
            if !matches {
                return Err(ClaimError::WrongAudience);
            }
        }
        let exp = self.claim_i64("exp").ok_or(ClaimError::Missing("exp"))?;
        if checks.now > exp.saturating_add(checks.leeway) {
            return Err(ClaimError::Expired);
        }
        for name in ["nbf", "iat"] {
            if let Some(t) = self.claim_i64(name) {
                if t > checks.now.saturating_add(checks.leeway) {
                    return Err(ClaimError::NotYetValid);
                }
            }
        }
        Ok(())
    }
}

/// Verifies an ES256 compact JWS against `keys` (device keys, DPoP proofs, client
/// assertions): [`verify_jws`] with ES256 as the only allowed algorithm.
pub fn verify_es256(token: &str, keys: &JwkSet) -> Result<Jwt, JoseError> {
    verify_jws(token, keys, &[Algorithm::Es256])
}

/// The claim checks that client and server share. Times are Unix seconds.
#[derive(Clone, Copy, Debug)]
pub struct ClaimChecks<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
}

/// Why a verified token's claims are not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("claim `{0}` is missing")]
    Missing(&'static str),
    #[error("token issued by another issuer")]
    WrongIssuer,
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (check the device clock)")]
    NotYetValid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_of(key: &SigningKey) -> JwkSet {
        JwkSet {
            keys: vec![key.public_jwk()],
        }
    }

    #[test]
    fn sign_then_verify_round_trip() {
        let key = SigningKey::generate().unwrap();
        let token = key
            .sign_jwt("JWT", Map::new(), &json!({"iss": "me", "exp": 10}))
            .unwrap();
        let jwt = verify_es256(&token, &set_of(&key)).unwrap();
        assert_eq!(jwt.claim_str("iss"), Some("me"));
        assert_eq!(jwt.kid(), Some(key.kid()));
        assert_eq!(jwt.alg(), Some("ES256"));
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(&key.to_pkcs8()).unwrap();
        assert_eq!(key.public_jwk(), again.public_jwk());
        assert!(SigningKey::from_pkcs8(&SecretBytes::new(vec![1, 2, 3])).is_err());
    }

    #[test]
    fn debug_shows_no_private_material() {
        let key = SigningKey::generate().unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains(key.kid()));
        assert!(!printed.contains("pkcs8"), "{printed}");
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 section 3.1 uses an RSA key; this EC vector is from RFC 8037's style of
        // computing: we check the canonical form by recomputing it by hand.
        let jwk = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into()),
            y: Some("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into()),
            kid: Some("ignored".into()),
            use_: Some("sig".into()),
            ..Jwk::default()
        };
        let canonical = r#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        assert_eq!(
            jwk.thumbprint().unwrap(),
            sha256_b64url(canonical.as_bytes())
        );
    }

    #[test]
    fn refuses_other_keys_algorithms_and_tampering() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let token = key
            .sign_jwt("JWT", Map::new(), &json!({"sub": "a"}))
            .unwrap();
        assert_eq!(
            verify_es256(&token, &set_of(&other)),
            Err(JoseError::UnknownKey {
                kid: Some(key.kid().to_string())
            })
        );
        // same kid, different key: signature must fail
        let mut forged = other.public_jwk();
        forged.kid = Some(key.kid().to_string());
        assert_eq!(
            verify_es256(&token, &JwkSet { keys: vec![forged] }),
            Err(JoseError::BadSignature)
        );
        // payload swapped
        let parts: Vec<&str> = token.split('.').collect();
        let evil = format!(
            "{}.{}.{}",
            parts[0],
            b64url_encode(br#"{"sub":"b"}"#),
            parts[2]
        );
        assert_eq!(
            verify_es256(&evil, &set_of(&key)),
            Err(JoseError::BadSignature)
        );
        // alg none
        let none = format!(
            "{}.{}.",
            b64url_encode(br#"{"alg":"none"}"#),
            b64url_encode(br#"{"sub":"b"}"#)
        );
        assert_eq!(
            verify_es256(&none, &set_of(&key)),
            Err(JoseError::UnsupportedAlgorithm("none".into()))
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(matches!(
                verify_es256(bad, &set_of(&key)),
                Err(JoseError::Malformed(_))
            ));
        }
    }

    #[test]
    fn claim_checks() {
        let jwt = Jwt {
            header: Map::new(),
            claims: json!({"iss": "i", "aud": ["x", "y"], "exp": 100, "iat": 50})
                .as_object()
                .unwrap()
                .clone(),
        };
        let base = ClaimChecks {
            issuer: Some("i"),
            audience: Some("y"),
            now: 90,
            leeway: 5,
        };
        assert_eq!(jwt.check(&base), Ok(()));
        assert_eq!(jwt.check(&ClaimChecks { now: 104, ..base }), Ok(()));
        assert_eq!(
            jwt.check(&ClaimChecks { now: 106, ..base }),
            Err(ClaimError::Expired)
        );
        assert_eq!(
            jwt.check(&ClaimChecks { now: 40, ..base }),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(
            jwt.check(&ClaimChecks {
                issuer: Some("j"),
                ..base
            }),
            Err(ClaimError::WrongIssuer)
        );
        assert_eq!(
            jwt.check(&ClaimChecks {
                audience: Some("z"),
                ..base
            }),
            Err(ClaimError::WrongAudience)
        );
        let no_exp = Jwt {
            header: Map::new(),
            claims: Map::new(),
        };
        assert_eq!(
            no_exp.check(&ClaimChecks {
                issuer: None,
                audience: None,
                ..base
            }),
            Err(ClaimError::Missing("exp"))
        );
    }
}
