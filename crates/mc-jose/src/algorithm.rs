//! The JWS algorithms an IDP may sign tokens with, and the verification of a compact JWS
//! against a JWK set restricted to an allowed list of them. Every algorithm is verified by
//! ring; `none`, HS* and anything not listed in [`Algorithm`] are refused by name before any
//! key is looked at, so a public key can never be used as an HMAC secret.

use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED,
    ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384,
    RSA_PKCS1_2048_8192_SHA512, RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384,
    RSA_PSS_2048_8192_SHA512,
};
use serde_json::Value;

use crate::{b64url_decode, decode_object, split_compact, JoseError, Jwk, JwkSet, Jwt};

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A; ring refuses smaller too).
pub const MIN_RSA_BITS: usize = 2048;

/// A JWS signature algorithm this crate verifies (RFC 7518, RFC 8037 for EdDSA/Ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    /// Ed25519 only (the one EdDSA curve ring verifies).
    EdDsa,
}

impl Algorithm {
    /// Every algorithm we verify: the allowed list when an IDP advertises nothing.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named `name` (case-sensitive, as RFC 7515 requires); `None` for `none`,
    /// HS* and anything else we do not verify.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// What to accept from an IDP that advertises `advertised` (for example
    /// `id_token_signing_alg_values_supported`): the ones we support among them, or all we
    /// support when it advertises nothing. An IDP advertising only algorithms we do not
    /// support gets an empty list, so every token of it is refused with a clear error.
    pub fn accepted_from(advertised: &[String]) -> Vec<Algorithm> {
        if advertised.is_empty() {
            return Algorithm::ALL.to_vec();
        }
        Algorithm::ALL
            .into_iter()
            .filter(|alg| advertised.iter().any(|a| a == alg.name()))
            .collect()
    }

    fn kty(self) -> &'static str {
        match self {
            Algorithm::Es256 | Algorithm::Es384 => "EC",
            Algorithm::EdDsa => "OKP",
            _ => "RSA",
        }
    }

    fn crv(self) -> Option<&'static str> {
        match self {
            Algorithm::Es256 => Some("P-256"),
            Algorithm::Es384 => Some("P-384"),
            Algorithm::EdDsa => Some("Ed25519"),
            _ => None,
        }
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Algorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Rs384 => &RSA_PKCS1_2048_8192_SHA384,
            Algorithm::Rs512 => &RSA_PKCS1_2048_8192_SHA512,
            Algorithm::Ps256 => &RSA_PSS_2048_8192_SHA256,
            Algorithm::Ps384 => &RSA_PSS_2048_8192_SHA384,
            Algorithm::Ps512 => &RSA_PSS_2048_8192_SHA512,
            Algorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            Algorithm::Es384 => &ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDsa => &ED25519,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Jwk {
    /// Why this key may not verify an `alg` signature, or `None` when it may: its `kty` (and
    /// `crv`) must be those of `alg`, its `use` absent or `sig`, its own `alg` absent or equal.
    pub fn unfit_for(&self, alg: Algorithm) -> Option<String> {
        if self.kty != alg.kty() {
            return Some(format!("a {} key cannot verify {alg}", short(&self.kty)));
        }
        if let Some(crv) = alg.crv() {
            if self.crv.as_deref() != Some(crv) {
                let found = self.crv.as_deref().unwrap_or("none");
                return Some(format!("curve {} cannot verify {alg}", short(found)));
            }
        }
        if let Some(use_) = self.use_.as_deref() {
            if use_ != "sig" {
                return Some(format!(
                    "key with use `{}` is not for signatures",
                    short(use_)
                ));
            }
        }
        if let Some(own) = self.alg.as_deref() {
            if own != alg.name() {
                return Some(format!(
                    "key is for {} but the token says {alg}",
                    short(own)
                ));
            }
        }
        None
    }

    /// Verifies `signature` over `message` with this key, which must fit `alg`.
    fn verify_signature(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        if let Some(reason) = self.unfit_for(alg) {
            return Err(JoseError::KeyUnusable(reason));
        }
        let verified = match alg.kty() {
            "RSA" => {
                let n = b64url_decode(self.n.as_deref().unwrap_or(""))?;
                let e = b64url_decode(self.e.as_deref().unwrap_or(""))?;
                let n = strip_leading_zeros(&n);
                let e = strip_leading_zeros(&e);
                if n.is_empty() || e.is_empty() {
                    return Err(JoseError::Malformed("RSA jwk without n or e".into()));
                }
                let bits = n.len() * 8 - n[0].leading_zeros() as usize;
                if bits < MIN_RSA_BITS {
                    return Err(JoseError::KeyUnusable(format!(
                        "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
                    )));
                }
                RsaPublicKeyComponents { n, e }.verify(rsa_params(alg), message, signature)
            }
            _ => {
                let public = self.public_bytes(alg)?;
                UnparsedPublicKey::new(alg.verification(), &public).verify(message, signature)
            }
        };
        verified.map_err(|_| JoseError::BadSignature)
    }

    /// The public key bytes ring wants for EC (uncompressed point) and Ed25519 (x).
    fn public_bytes(&self, alg: Algorithm) -> Result<Vec<u8>, JoseError> {
        let x = b64url_decode(self.x.as_deref().unwrap_or(""))?;
        let size = match alg {
            Algorithm::EdDsa => {
                if x.len() != 32 {
                    return Err(JoseError::Malformed("Ed25519 x must be 32 bytes".into()));
                }
                return Ok(x);
            }
            Algorithm::Es384 => 48,
            _ => 32,
        };
        let y = b64url_decode(self.y.as_deref().unwrap_or(""))?;
        if x.len() != size || y.len() != size {
            return Err(JoseError::Malformed(format!(
                "EC coordinates of {alg} must be {size} bytes"
            )));
        }
        let mut point = Vec::with_capacity(1 + 2 * size);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Ok(point)
    }
}

fn rsa_params(alg: Algorithm) -> &'static ring::signature::RsaParameters {
    match alg {
        Algorithm::Rs384 => &RSA_PKCS1_2048_8192_SHA384,
        Algorithm::Rs512 => &RSA_PKCS1_2048_8192_SHA512,
        Algorithm::Ps256 => &RSA_PSS_2048_8192_SHA256,
        Algorithm::Ps384 => &RSA_PSS_2048_8192_SHA384,
        Algorithm::Ps512 => &RSA_PSS_2048_8192_SHA512,
        _ => &RSA_PKCS1_2048_8192_SHA256,
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// At most 32 characters of a value from the input, for error messages.
fn short(text: &str) -> String {
    text.chars().take(32).collect()
}

/// Verifies a compact JWS against `keys`, accepting only the algorithms in `allowed`. Checks
/// no claims: call [`Jwt::check`] next. Never panics on any input (a fuzz entry point).
///
/// - `alg` must name an [`Algorithm`] in `allowed`: `none`, HS* and the rest are refused.
/// - A `crit` header is refused, whatever it lists (RFC 7515 §4.1.11: we understand no
///   extension), and so is a malformed one.
/// - The key: the one whose `kid` equals the header's and that fits `alg`
///   ([`Jwk::unfit_for`]); without a `kid`, the one key of the set that fits. No fitting key
///   with that `kid` is [`JoseError::UnknownKey`] (worth one JWKS refetch); a key with that
///   `kid` that does not fit is [`JoseError::KeyUnusable`]; two that fit are
///   [`JoseError::AmbiguousKey`].
pub fn verify_jws(token: &str, keys: &JwkSet, allowed: &[Algorithm]) -> Result<Jwt, JoseError> {
    let (header_b64, payload_b64, signature_b64) = split_compact(token)?;
    let header = decode_object(header_b64, "JWS header")?;
    if header.contains_key("crit") {
        return Err(JoseError::CriticalHeader);
    }
    let alg_name = match header.get("alg") {
        Some(Value::String(name)) => name.as_str(),
        _ => return Err(JoseError::Malformed("JWS header without alg".into())),
    };
    let alg = Algorithm::from_name(alg_name)
        .filter(|alg| allowed.contains(alg))
        .ok_or_else(|| JoseError::UnsupportedAlgorithm(short(alg_name)))?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JoseError::Malformed("kid is not a string".into())),
    };
    let jwk = choose_key(keys, kid, alg)?;
    let signature = b64url_decode(signature_b64)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .get(..signing_input_len)
        .ok_or_else(|| JoseError::Malformed("truncated JWS".into()))?;
    jwk.verify_signature(alg, signing_input.as_bytes(), &signature)?;
    Ok(Jwt {
        header,
        claims: decode_object(payload_b64, "JWT payload")?,
    })
}

fn choose_key<'k>(
    keys: &'k JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'k Jwk, JoseError> {
    let named: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    let mut fitting = named.iter().copied().filter(|k| k.unfit_for(alg).is_none());
    match (fitting.next(), fitting.next()) {
        (Some(key), None) => Ok(key),
        (Some(_), Some(_)) => Err(JoseError::AmbiguousKey),
        (None, _) => match (kid, named.first()) {
            // The kid is published but for another kind of key: a refetch will not help.
            (Some(_), Some(key)) => Err(JoseError::KeyUnusable(
                key.unfit_for(alg).unwrap_or_default(),
            )),
            _ => Err(JoseError::UnknownKey {
                // a thumbprint kid is 43 characters; longer ones are cut for the message
                kid: kid.map(|kid| kid.chars().take(64).collect()),
            }),
        },
    }
}

/// Parses a JWK set (the body of a `jwks_uri` answer). Unknown members are ignored; keys of
/// kinds we do not verify are kept and simply never fit. Never panics (a fuzz entry point).
pub fn parse_jwk_set(json: &[u8]) -> Result<JwkSet, JoseError> {
    serde_json::from_slice(json).map_err(|_| JoseError::Malformed("not a JWK set".into()))
}
