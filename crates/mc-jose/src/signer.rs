//! [`JwsSigner`]: an IDP-side signing key of any [`Algorithm`], for the development IDP and
//! tests. The device's own key stays the ES256 [`crate::SigningKey`].

use std::fmt;

use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, RSA_PKCS1_SHA256,
    RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512,
};
use serde_json::{Map, Value};

use crate::{b64url_encode, system_random, Algorithm, JoseError, Jwk};

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs JWTs with one [`Algorithm`]. `Debug` shows alg and kid only.
pub struct JwsSigner {
    alg: Algorithm,
    pair: Pair,
    public: Jwk,
}

impl fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwsSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl JwsSigner {
    /// A fresh key for `alg`. ring cannot generate RSA keys: for RS*/PS* load a PKCS#8 key
    /// with [`JwsSigner::from_pkcs8`].
    pub fn generate(alg: Algorithm) -> Result<JwsSigner, JoseError> {
        let rng = system_random();
        let doc = match alg {
            Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng),
            Algorithm::Es384 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, rng),
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(rng),
            _ => {
                return Err(JoseError::Crypto(
                    "ring cannot generate RSA keys; load a PKCS#8 key".into(),
                ))
            }
        }
        .map_err(|_| JoseError::Crypto(format!("{alg} key generation failed")))?;
        Self::from_pkcs8(alg, doc.as_ref())
    }

    /// Loads a PKCS#8 (DER) private key that signs with `alg`.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<JwsSigner, JoseError> {
        let refused = |e: ring::error::KeyRejected| {
            JoseError::Malformed(format!("not a PKCS#8 private key for {alg}: {e}"))
        };
        let (pair, mut public) = match alg {
            Algorithm::Es256 | Algorithm::Es384 => {
                let (signing, crv, size) = if alg == Algorithm::Es256 {
                    (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let pair =
                    EcdsaKeyPair::from_pkcs8(signing, der, system_random()).map_err(refused)?;
                let point = pair.public_key().as_ref();
                let (x, y) = match (point.get(1..1 + size), point.get(1 + size..)) {
                    (Some(x), Some(y)) if y.len() == size => (x, y),
                    _ => return Err(JoseError::Crypto("unexpected EC point".into())),
                };
                let public = Jwk {
                    kty: "EC".into(),
                    crv: Some(crv.into()),
                    x: Some(b64url_encode(x)),
                    y: Some(b64url_encode(y)),
                    ..Jwk::default()
                };
                (Pair::Ecdsa(pair), public)
            }
            Algorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(refused)?;
                let public = Jwk {
                    kty: "OKP".into(),
                    crv: Some("Ed25519".into()),
                    x: Some(b64url_encode(pair.public_key().as_ref())),
                    ..Jwk::default()
                };
                (Pair::Ed25519(pair), public)
            }
            _ => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(refused)?;
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let public = Jwk {
                    kty: "RSA".into(),
                    n: Some(b64url_encode(&components.n)),
                    e: Some(b64url_encode(&components.e)),
                    ..Jwk::default()
                };
                (Pair::Rsa(pair), public)
            }
        };
        public.use_ = Some("sig".into());
        public.alg = Some(alg.name().into());
        public.kid = Some(public.thumbprint()?);
        Ok(JwsSigner { alg, pair, public })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 thumbprint of the public key, used as `kid`.
    pub fn kid(&self) -> &str {
        self.public.kid.as_deref().unwrap_or_default()
    }

    /// The public JWK with kid, `use` sig and `alg`.
    pub fn public_jwk(&self) -> Jwk {
        self.public.clone()
    }

    /// A compact JWS with header {"alg", "typ", "kid"} plus `extra_header`, over `claims`.
    pub fn sign_jwt(
        &self,
        typ: &str,
        extra_header: Map<String, Value>,
        claims: &Value,
    ) -> Result<String, JoseError> {
        let mut header = Map::new();
        header.insert("typ".into(), typ.into());
        header.insert("kid".into(), self.kid().into());
        header.extend(extra_header);
        self.sign_with_header(header, claims)
    }

    /// A compact JWS with exactly `header` (plus `alg`, always this key's), over `claims`:
    /// for tokens without `kid` or with odd headers in tests and dev IDP faults.
    pub fn sign_with_header(
        &self,
        mut header: Map<String, Value>,
        claims: &Value,
    ) -> Result<String, JoseError> {
        header.insert("alg".into(), self.alg.name().into());
        let header = serde_json::to_vec(&header)
            .map_err(|e| JoseError::Malformed(format!("header: {e}")))?;
        let claims =
            serde_json::to_vec(claims).map_err(|e| JoseError::Malformed(format!("claims: {e}")))?;
        let signing_input = format!("{}.{}", b64url_encode(&header), b64url_encode(&claims));
        let signature = self.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64url_encode(&signature)))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let failed = || JoseError::Crypto(format!("{} signing failed", self.alg));
        match &self.pair {
            Pair::Ecdsa(pair) => pair
                .sign(system_random(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Rsa(pair) => {
                let padding: &'static dyn ring::signature::RsaEncoding = match self.alg {
                    Algorithm::Rs384 => &RSA_PKCS1_SHA384,
                    Algorithm::Rs512 => &RSA_PKCS1_SHA512,
                    Algorithm::Ps256 => &RSA_PSS_SHA256,
                    Algorithm::Ps384 => &RSA_PSS_SHA384,
                    Algorithm::Ps512 => &RSA_PSS_SHA512,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(padding, system_random(), message, &mut signature)
                    .map_err(|_| failed())?;
                Ok(signature)
            }
        }
    }
}
