//! DPoP (RFC 9449) on the IDP side: checking a proof, the replay store of proof ids, and the
//! nonce handed out when `Faults::require_dpop_nonce` is on.
//!
//! A proof is accepted when: exactly one `DPoP` header; a compact JWS with `typ: dpop+jwt`,
//! `alg: ES256` and a public P-256 `jwk` in its header that verifies its signature; `htm` and
//! `htu` name this request; `iat` is within [`PROOF_LEEWAY_SECS`] of OUR clock; the `jti` was
//! not seen before from that key; `ath` is the hash of the access token on resource calls;
//! and `nonce` is ours when nonces are required. Errors are fixed texts: no part of a proof or
//! token reaches an answer or a log.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use mc_jose::{random_token, sha256_b64url, verify_es256, Jwk, JwkSet, Jwt};
use serde_json::{Map, Value};

/// Seconds a proof's `iat` may differ from our clock (the client learns our time from `Date`).
pub(crate) const PROOF_LEEWAY_SECS: i64 = 60;
/// A proof larger than this is not read.
const MAX_PROOF_LEN: usize = 8 * 1024;
const MAX_JTI_LEN: usize = 256;

/// What a proof must name: the request it comes with.
pub(crate) struct Expected<'a> {
    pub method: &'a str,
    /// The URL of the request without query and fragment.
    pub htu: &'a str,
    /// On resource calls, the access token the proof must be bound to (`ath`).
    pub access_token: Option<&'a str>,
}

/// Why a proof is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProofError {
    Invalid(&'static str),
    /// No or a stale `nonce` while nonces are required: answer `use_dpop_nonce`.
    NonceRequired,
}

/// Nonce and replay store, one per dev IDP.
pub(crate) struct DpopState {
    nonce: String,
    /// (jkt, jti) → iat of proofs already accepted, forgotten once too old to be accepted.
    used: Mutex<HashMap<(String, String), i64>>,
}

impl DpopState {
    pub(crate) fn new() -> Self {
        Self {
            nonce: random_token(16),
            used: Mutex::new(HashMap::new()),
        }
    }

    /// The nonce a proof must carry while nonces are required.
    pub(crate) fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The thumbprint (`jkt`) of the proof's key when the request carries a valid proof;
    /// `None` when it carries none.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        expected: &Expected<'_>,
        require_nonce: bool,
        now: i64,
    ) -> Result<Option<String>, ProofError> {
        let mut proofs = headers.get_all("dpop").iter();
        let Some(proof) = proofs.next() else {
            return Ok(None);
        };
        if proofs.next().is_some() {
            return Err(ProofError::Invalid("send exactly one DPoP header"));
        }
        let proof = proof
            .to_str()
            .ok()
            .filter(|p| p.len() <= MAX_PROOF_LEN)
            .ok_or(ProofError::Invalid("the DPoP proof is not a compact JWS"))?;
        let (jkt, claims) = verify_proof_signature(proof)?;
        if claims.get("htm").and_then(Value::as_str) != Some(expected.method) {
            return Err(ProofError::Invalid(
                "the DPoP proof's htm is not this request's method",
            ));
        }
        if claims.get("htu").and_then(Value::as_str) != Some(expected.htu) {
            return Err(ProofError::Invalid(
                "the DPoP proof's htu is not this request's URL",
            ));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(ProofError::Invalid("the DPoP proof has no iat"))?;
        if iat.saturating_sub(now).abs() > PROOF_LEEWAY_SECS {
            return Err(ProofError::Invalid(
                "the DPoP proof's iat is too far from the server's time; use the time of the Date header",
            ));
        }
        if let Some(token) = expected.access_token {
            let ath = sha256_b64url(token.as_bytes());
            if claims.get("ath").and_then(Value::as_str) != Some(ath.as_str()) {
                return Err(ProofError::Invalid(
                    "the DPoP proof's ath is not the hash of this access token",
                ));
            }
        }
        if require_nonce && claims.get("nonce").and_then(Value::as_str) != Some(self.nonce()) {
            return Err(ProofError::NonceRequired);
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
            .ok_or(ProofError::Invalid("the DPoP proof has no usable jti"))?;
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        used.retain(|_, seen_iat| seen_iat.saturating_add(2 * PROOF_LEEWAY_SECS) >= now);
        if used.insert((jkt.clone(), jti.to_owned()), iat).is_some() {
            return Err(ProofError::Invalid(
                "the DPoP proof was already used; make a fresh proof per request",
            ));
        }
        Ok(Some(jkt))
    }
}

/// Verifies the proof with the key in its own header; answers that key's thumbprint and the
/// claims.
fn verify_proof_signature(proof: &str) -> Result<(String, Map<String, Value>), ProofError> {
    let malformed = ProofError::Invalid("the DPoP proof is not a compact JWS");
    let unverified = Jwt::decode_unverified(proof).map_err(|_| malformed)?;
    if unverified.header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(ProofError::Invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    if unverified.alg() != Some("ES256") {
        return Err(ProofError::Invalid("the DPoP proof must be signed ES256"));
    }
    let raw_jwk = unverified
        .header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(ProofError::Invalid("the DPoP proof has no jwk header"))?;
    if raw_jwk.contains_key("d") {
        return Err(ProofError::Invalid(
            "the DPoP proof's jwk contains a private key",
        ));
    }
    let mut jwk: Jwk = serde_json::from_value(Value::Object(raw_jwk.clone()))
        .map_err(|_| ProofError::Invalid("the DPoP proof's jwk is not a JWK"))?;
    let jkt = jwk
        .thumbprint()
        .map_err(|_| ProofError::Invalid("the DPoP proof's jwk must be an EC P-256 key"))?;
    // The key is chosen by the header's kid, if any: make the embedded key answer to it.
    jwk.kid = unverified.kid().map(str::to_owned);
    jwk.use_ = None;
    jwk.alg = None;
    let verified = verify_es256(proof, &JwkSet { keys: vec![jwk] })
        .map_err(|_| ProofError::Invalid("the DPoP proof's signature does not verify"))?;
    Ok((jkt, verified.claims))
}

/// The `cnf.jkt` of a token's claims: the thumbprint of the key it is bound to.
pub(crate) fn bound_jkt(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("jkt")?.as_str()
}
