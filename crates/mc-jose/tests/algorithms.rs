//! Verification per algorithm with real keys, and the hostile variants: alg/key mismatch,
//! `none`, HS256 keyed with the public key, a 1024-bit RSA key, tampering, an ambiguous key
//! choice, a key for encryption, `crit`.

use mc_jose::{
    b64url_decode, b64url_encode, parse_jwk_set, verify_jws, Algorithm, JoseError, JwkSet,
    JwsSigner,
};
use serde_json::{json, Map, Value};

const RSA_2048_PKCS8: &[u8] = include_bytes!("fixtures/rsa2048.pk8.der");

fn signer(alg: Algorithm) -> JwsSigner {
    match alg {
        Algorithm::Es256 | Algorithm::Es384 | Algorithm::EdDsa => JwsSigner::generate(alg),
        _ => JwsSigner::from_pkcs8(alg, RSA_2048_PKCS8),
    }
    .unwrap()
}

fn set(signers: &[&JwsSigner]) -> JwkSet {
    JwkSet {
        keys: signers.iter().map(|s| s.public_jwk()).collect(),
    }
}

fn claims() -> Value {
    json!({"iss": "https://idp.example", "sub": "dev", "exp": 4_102_444_800i64})
}

/// A token with exactly `header`: signed by `signer` when the header's `alg` is the signer's,
/// otherwise carrying the signer's signature over another header.
fn token_with_header(signer: &JwsSigner, header: Value) -> String {
    let header = header.as_object().cloned().unwrap_or_default();
    match header.get("alg").and_then(Value::as_str) {
        Some(alg) if Algorithm::from_name(alg) == Some(signer.alg()) => {
            signer.sign_with_header(header, &claims()).unwrap()
        }
        // an alg the signer cannot produce: a real signature over another header, so only
        // the alg check can refuse it
        _ => {
            let token = signer.sign_jwt("JWT", Map::new(), &claims()).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let header = Value::Object(header).to_string();
            format!(
                "{}.{}.{}",
                b64url_encode(header.as_bytes()),
                parts[1],
                parts[2]
            )
        }
    }
}

#[test]
fn every_algorithm_verifies_with_its_key() {
    for alg in Algorithm::ALL {
        let key = signer(alg);
        let token = key.sign_jwt("at+jwt", Map::new(), &claims()).unwrap();
        let jwt = verify_jws(&token, &set(&[&key]), &Algorithm::ALL)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jwt.alg(), Some(alg.name()));
        assert_eq!(jwt.claim_str("sub"), Some("dev"));
        // the same token is refused when its algorithm is not in the allowed list
        let others: Vec<Algorithm> = Algorithm::ALL.into_iter().filter(|a| *a != alg).collect();
        assert_eq!(
            verify_jws(&token, &set(&[&key]), &others).unwrap_err(),
            JoseError::UnsupportedAlgorithm(alg.name().into()),
            "{alg}"
        );
        // tampered payload
        let parts: Vec<&str> = token.split('.').collect();
        let evil = format!(
            "{}.{}.{}",
            parts[0],
            b64url_encode(br#"{"iss":"https://idp.example","sub":"admin","exp":4102444800}"#),
            parts[2]
        );
        assert_eq!(
            verify_jws(&evil, &set(&[&key]), &Algorithm::ALL).unwrap_err(),
            JoseError::BadSignature,
            "{alg}"
        );
    }
}

#[test]
fn jwk_set_with_several_kinds_picks_by_kid() {
    let rsa = signer(Algorithm::Rs256);
    let ec = signer(Algorithm::Es256);
    let ed = signer(Algorithm::EdDsa);
    let keys = set(&[&rsa, &ec, &ed]);
    for key in [&rsa, &ec, &ed] {
        let token = key.sign_jwt("JWT", Map::new(), &claims()).unwrap();
        assert!(verify_jws(&token, &keys, &Algorithm::ALL).is_ok());
    }
    // the JWK set survives a JSON round trip through the public parser
    let text = serde_json::to_vec(&keys).unwrap();
    assert_eq!(parse_jwk_set(&text).unwrap(), keys);
    for bad in [&b"null"[..], b"{\"keys\":3}", b"", b"\xff\xfe"] {
        assert!(matches!(parse_jwk_set(bad), Err(JoseError::Malformed(_))));
    }
}

#[test]
fn key_must_fit_the_algorithm() {
    let rsa = signer(Algorithm::Rs256);
    let p256 = signer(Algorithm::Es256);
    let p384 = signer(Algorithm::Es384);
    // RS256 token, the kid names an EC key
    let mut ec_as_rsa = p256.public_jwk();
    ec_as_rsa.kid = Some(rsa.kid().into());
    ec_as_rsa.alg = None;
    let token = rsa.sign_jwt("JWT", Map::new(), &claims()).unwrap();
    let e = verify_jws(
        &token,
        &JwkSet {
            keys: vec![ec_as_rsa],
        },
        &Algorithm::ALL,
    )
    .unwrap_err();
    assert!(
        matches!(&e, JoseError::KeyUnusable(m) if m.contains("EC key")),
        "{e}"
    );
    // ES256 token, the kid names a P-384 key
    let mut p384_as_p256 = p384.public_jwk();
    p384_as_p256.kid = Some(p256.kid().into());
    p384_as_p256.alg = None;
    let token = p256.sign_jwt("JWT", Map::new(), &claims()).unwrap();
    let e = verify_jws(
        &token,
        &JwkSet {
            keys: vec![p384_as_p256],
        },
        &Algorithm::ALL,
    )
    .unwrap_err();
    assert!(
        matches!(&e, JoseError::KeyUnusable(m) if m.contains("P-384")),
        "{e}"
    );
    // the JWK's own alg differs from the token's (RS256 key, token says PS256)
    let ps = JwsSigner::from_pkcs8(Algorithm::Ps256, RSA_2048_PKCS8).unwrap();
    let mut rs_only = ps.public_jwk();
    rs_only.alg = Some("RS256".into());
    let token = ps.sign_jwt("JWT", Map::new(), &claims()).unwrap();
    let e = verify_jws(
        &token,
        &JwkSet {
            keys: vec![rs_only.clone()],
        },
        &Algorithm::ALL,
    )
    .unwrap_err();
    assert!(
        matches!(&e, JoseError::KeyUnusable(m) if m.contains("RS256")),
        "{e}"
    );
    // without its alg the same key verifies PS256
    rs_only.alg = None;
    assert!(verify_jws(
        &token,
        &JwkSet {
            keys: vec![rs_only]
        },
        &Algorithm::ALL
    )
    .is_ok());
}

#[test]
fn none_and_hmac_are_refused_even_with_the_public_key_as_secret() {
    let rsa = signer(Algorithm::Rs256);
    let keys = set(&[&rsa]);
    let none = token_with_header(&rsa, json!({"alg": "none", "kid": rsa.kid()}));
    let none = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert_eq!(
        verify_jws(&none, &keys, &Algorithm::ALL).unwrap_err(),
        JoseError::UnsupportedAlgorithm("none".into())
    );
    // The classic confusion: HS256 with the RSA public key (its JWK and its modulus) as the
    // HMAC secret. A library that keyed HMAC with "the key" would accept these.
    let header = b64url_encode(
        json!({"alg": "HS256", "kid": rsa.kid()})
            .to_string()
            .as_bytes(),
    );
    let payload = b64url_encode(claims().to_string().as_bytes());
    let input = format!("{header}.{payload}");
    let jwk_text = serde_json::to_string(&rsa.public_jwk()).unwrap();
    let modulus = b64url_decode(rsa.public_jwk().n.as_deref().unwrap()).unwrap();
    for secret in [jwk_text.as_bytes(), &modulus[..]] {
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            input.as_bytes(),
        );
        let forged = format!("{input}.{}", b64url_encode(mac.as_ref()));
        assert_eq!(
            verify_jws(&forged, &keys, &Algorithm::ALL).unwrap_err(),
            JoseError::UnsupportedAlgorithm("HS256".into())
        );
    }
    for alg in ["HS384", "HS512", "RS1", "es256", "ES512", "EdDSA448", ""] {
        let t = token_with_header(&rsa, json!({"alg": alg}));
        assert_eq!(
            verify_jws(&t, &keys, &Algorithm::ALL).unwrap_err(),
            JoseError::UnsupportedAlgorithm(alg.into())
        );
    }
    let no_alg = token_with_header(&rsa, json!({"kid": rsa.kid()}));
    assert!(matches!(
        verify_jws(&no_alg, &keys, &Algorithm::ALL),
        Err(JoseError::Malformed(_))
    ));
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    // Made once with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`; the token
    // carries a real RS256 signature by that key (the private key was not kept).
    let keys = parse_jwk_set(include_bytes!("fixtures/rsa1024.jwks.json")).unwrap();
    let token = include_str!("fixtures/rsa1024.rs256.jwt").trim();
    let e = verify_jws(token, &keys, &Algorithm::ALL).unwrap_err();
    assert_eq!(
        e,
        JoseError::KeyUnusable("RSA key of 1024 bits; at least 2048 are required".into())
    );
}

#[test]
fn kid_may_be_absent_only_when_one_key_fits() {
    let rsa = signer(Algorithm::Rs256);
    let ec = signer(Algorithm::Es256);
    let other_ec = signer(Algorithm::Es256);
    let token = token_with_header(&ec, json!({"alg": "ES256", "typ": "JWT"}));
    // one EC key and one RSA key: the EC key is the only one that fits
    assert!(verify_jws(&token, &set(&[&rsa, &ec]), &Algorithm::ALL).is_ok());
    // two EC keys fit: refused, whichever would verify
    assert_eq!(
        verify_jws(&token, &set(&[&ec, &other_ec]), &Algorithm::ALL).unwrap_err(),
        JoseError::AmbiguousKey
    );
    // none fits: unknown key (worth a refetch)
    assert_eq!(
        verify_jws(&token, &set(&[&rsa]), &Algorithm::ALL).unwrap_err(),
        JoseError::UnknownKey { kid: None }
    );
}

#[test]
fn encryption_keys_are_not_used_for_signatures() {
    let rsa = signer(Algorithm::Rs256);
    let token = rsa.sign_jwt("JWT", Map::new(), &claims()).unwrap();
    let mut enc = rsa.public_jwk();
    enc.use_ = Some("enc".into());
    let e = verify_jws(
        &token,
        &JwkSet {
            keys: vec![enc.clone()],
        },
        &Algorithm::ALL,
    )
    .unwrap_err();
    assert!(
        matches!(&e, JoseError::KeyUnusable(m) if m.contains("enc")),
        "{e}"
    );
    // Keycloak publishes its RSA-OAEP key next to the signing key: the signing key is chosen
    enc.kid = Some("enc-key".into());
    let keys = JwkSet {
        keys: vec![enc, rsa.public_jwk()],
    };
    let no_kid = token_with_header(&rsa, json!({"alg": "RS256"}));
    assert!(verify_jws(&no_kid, &keys, &Algorithm::ALL).is_ok());
}

#[test]
fn critical_header_parameters_are_refused() {
    let ec = signer(Algorithm::Es256);
    for crit in [json!(["exp"]), json!([]), json!("b64"), json!(null)] {
        let mut header = Map::new();
        header.insert("crit".into(), crit.clone());
        let token = ec.sign_jwt("JWT", header, &claims()).unwrap();
        assert_eq!(
            verify_jws(&token, &set(&[&ec]), &Algorithm::ALL).unwrap_err(),
            JoseError::CriticalHeader,
            "crit {crit}"
        );
    }
}

#[test]
fn advertised_algorithms_are_intersected_with_ours() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(Algorithm::accepted_from(&[]), Algorithm::ALL.to_vec());
    assert_eq!(
        Algorithm::accepted_from(&names(&["RS256", "HS256", "none", "ES256"])),
        vec![Algorithm::Rs256, Algorithm::Es256]
    );
    assert!(Algorithm::accepted_from(&names(&["HS256"])).is_empty());
}

#[test]
fn garbage_never_panics() {
    let ec = signer(Algorithm::Es256);
    let keys = set(&[&ec]);
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "!!.!!.!!",
        "e30.e30.",
        "e30.e30.e30",
        "eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
    ] {
        assert!(verify_jws(bad, &keys, &Algorithm::ALL).is_err(), "{bad}");
    }
    // a JWK with garbage members
    let keys = parse_jwk_set(br#"{"keys":[{"kty":"RSA","n":"!!","e":""},{"kty":"OKP","crv":"Ed25519","x":"AA"},{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#).unwrap();
    for alg in ["RS256", "EdDSA", "ES384"] {
        let t = format!(
            "{}.e30.AAAA",
            b64url_encode(json!({"alg": alg}).to_string().as_bytes())
        );
        assert!(verify_jws(&t, &keys, &Algorithm::ALL).is_err(), "{alg}");
    }
}
