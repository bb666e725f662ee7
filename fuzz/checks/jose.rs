//! mc-jose: JWK and JWKS parsing, RFC 7638 thumbprints, compact JWS parsing and verification
//! against a JWK set, and the claim checks.
//!
//! Input: `<JWKS JSON> 0xFF <compact JWS>` (0xFF never occurs in UTF-8, so it cannot clash
//! with either part); without a 0xFF the whole input is tried as both. The seeds hold a real
//! JWKS and a JWS signed by its key, so mutations reach the signature check.

use mc_jose::{Algorithm, ClaimChecks, JoseError, Jwk, JwkSet, Jwt};

/// One input: must not panic, and must hold what the doc above says.
pub fn check(data: &[u8]) {
    let (jwks_bytes, token_bytes) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };

    // A single JWK, as a registration or a DPoP header carries one.
    if let Ok(jwk) = serde_json::from_slice::<Jwk>(jwks_bytes) {
        check_jwk(&jwk);
    }
    // The runtime's own entry (jwks_uri bodies) must agree with plain serde.
    assert_eq!(
        mc_jose::parse_jwk_set(jwks_bytes).ok(),
        serde_json::from_slice::<JwkSet>(jwks_bytes).ok()
    );
    let keys = match serde_json::from_slice::<JwkSet>(jwks_bytes) {
        Ok(keys) => {
            let again: JwkSet =
                serde_json::from_slice(&serde_json::to_vec(&keys).expect("a JwkSet encodes"))
                    .expect("an encoded JwkSet decodes");
            assert_eq!(again, keys, "a JWKS must survive a round trip");
            keys.keys.iter().for_each(check_jwk);
            keys
        }
        Err(_) => JwkSet::default(),
    };

    let Ok(token) = std::str::from_utf8(token_bytes) else {
        return;
    };
    let unverified = Jwt::decode_unverified(token);
    // Every algorithm an IDP may sign with (RS/PS 256-512, ES256/384, EdDSA), as the runtime
    // accepts them from an IDP that advertises nothing.
    let verified: Result<Jwt, JoseError> = mc_jose::verify_jws(token, &keys, &Algorithm::ALL);
    if let Ok(jwt) = &verified {
        // A verified token is one decode_unverified reads the same way, names an algorithm we
        // verify, has no `crit`, and was checked with a key of the set that fits it.
        assert_eq!(unverified.as_ref().ok(), Some(jwt));
        let alg = jwt.alg().and_then(Algorithm::from_name);
        assert!(alg.is_some(), "verified with an algorithm we do not verify");
        assert!(!jwt.header.contains_key("crit"));
        assert!(!keys.keys.is_empty());
    }
    // The device-side call (ES256 only) must never accept what the general one refuses.
    if mc_jose::verify_es256(token, &keys).is_ok() {
        assert!(verified.is_ok());
        assert_eq!(
            unverified.as_ref().ok().and_then(|j| j.alg()),
            Some("ES256")
        );
    }
    if let Ok(jwt) = unverified.as_ref() {
        for now in [0, 1_700_000_000, i64::MAX, i64::MIN] {
            let _ = jwt.check(&ClaimChecks {
                issuer: jwt.claim_str("iss"),
                audience: Some("api"),
                now,
                leeway: 60,
            });
        }
        let _ = (jwt.kid(), jwt.claim_i64("exp"));
    }
}

fn check_jwk(jwk: &Jwk) {
    let again: Jwk = serde_json::from_slice(&serde_json::to_vec(jwk).expect("a Jwk encodes"))
        .expect("an encoded Jwk decodes");
    assert_eq!(&again, jwk, "a JWK must survive a round trip");
    if let Ok(thumbprint) = jwk.thumbprint() {
        // RFC 7638: the thumbprint ignores the optional members.
        let bare = Jwk {
            kid: None,
            use_: None,
            alg: None,
            ..jwk.clone()
        };
        assert_eq!(bare.thumbprint().as_ref(), Ok(&thumbprint));
        assert_eq!(thumbprint.len(), 43, "base64url of 32 bytes");
    }
}
