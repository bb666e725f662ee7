//! AES-256-GCM sealing with ring, and the stored form of a sealed value.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::keys::KEY_LEN;

/// The cipher of a sealed value. Named in every record so another one can be added without
/// guessing what old records use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Algorithm {
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
}

/// A value encrypted and authenticated under some key, with the additional data agreed by
/// the caller. `ciphertext` includes the 16-byte tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sealed {
    pub algorithm: Algorithm,
    #[serde(with = "hex")]
    pub nonce: Vec<u8>,
    #[serde(with = "hex")]
    pub ciphertext: Vec<u8>,
}

/// Why a sealed value could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The record is malformed (wrong nonce length, too short): it cannot even be tried.
    Malformed,
    /// Authentication failed: wrong key, wrong additional data, or tampered bytes.
    Rejected,
}

fn aes_key(key: &[u8]) -> Result<LessSafeKey, StoreError> {
    if key.len() != KEY_LEN {
        return Err(StoreError::KeyUnavailable {
            reason: format!("key must be {KEY_LEN} bytes, got {}", key.len()),
        });
    }
    let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| StoreError::KeyUnavailable {
        reason: "key rejected by AES-256-GCM".to_string(),
    })?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `plaintext` under `key` with a fresh random 96-bit nonce. Random nonces are safe
/// here: each data key seals one value, and the wrapping key seals one data key per write,
/// far below the 2^32 messages per key that random GCM nonces allow.
pub(crate) fn seal(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Sealed, StoreError> {
    let key = aes_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| StoreError::KeyUnavailable {
            reason: "the system random generator failed".to_string(),
        })?;
    let mut in_out = Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len());
    in_out.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut in_out,
    )
    .map_err(|_| StoreError::Backend("AES-256-GCM seal failed".to_string()))?;
    Ok(Sealed {
        algorithm: Algorithm::Aes256Gcm,
        nonce: nonce.to_vec(),
        ciphertext: in_out,
    })
}

/// Decrypts and authenticates `sealed`; the plaintext is wiped when dropped.
pub(crate) fn open(
    key: &[u8],
    aad: &[u8],
    sealed: &Sealed,
) -> Result<Result<Zeroizing<Vec<u8>>, OpenError>, StoreError> {
    let key = aes_key(key)?;
    let Algorithm::Aes256Gcm = sealed.algorithm;
    let Ok(nonce) = Nonce::try_assume_unique_for_key(&sealed.nonce) else {
        return Ok(Err(OpenError::Malformed));
    };
    if sealed.ciphertext.len() < AES_256_GCM.tag_len() {
        return Ok(Err(OpenError::Malformed));
    }
    let mut in_out = Zeroizing::new(sealed.ciphertext.clone());
    let plaintext_len = match key.open_in_place(nonce, Aad::from(aad), &mut in_out) {
        Ok(plaintext) => plaintext.len(),
        Err(_) => return Ok(Err(OpenError::Rejected)),
    };
    in_out.truncate(plaintext_len);
    Ok(Ok(in_out))
}

/// Bytes as lowercase hex in JSON: readable in a dump, and no extra dependency.
pub(crate) mod hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        decode(&text).map_err(D::Error::custom)
    }

    pub(crate) fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }

    pub(crate) fn decode(text: &str) -> Result<Vec<u8>, &'static str> {
        let pairs = text.as_bytes().chunks_exact(2);
        if !pairs.remainder().is_empty() {
            return Err("odd number of hex digits");
        }
        pairs
            .map(|pair| match pair {
                [high, low] => match (digit(*high), digit(*low)) {
                    (Some(high), Some(low)) => Ok(high << 4 | low),
                    _ => Err("invalid hex digit"),
                },
                _ => Err("odd number of hex digits"),
            })
            .collect()
    }

    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9u8; 32];

    #[test]
    fn seal_then_open_round_trips_and_uses_fresh_nonces() {
        let a = seal(&KEY, b"aad", b"plain").unwrap();
        let b = seal(&KEY, b"aad", b"plain").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(a.nonce.len(), 12);
        assert_eq!(
            open(&KEY, b"aad", &a).unwrap().unwrap().as_slice(),
            b"plain"
        );
    }

    #[test]
    fn wrong_key_aad_or_any_flipped_bit_is_rejected() {
        let sealed = seal(&KEY, b"aad", b"plain").unwrap();
        assert_eq!(
            open(&[8u8; 32], b"aad", &sealed).unwrap(),
            Err(OpenError::Rejected)
        );
        assert_eq!(
            open(&KEY, b"other", &sealed).unwrap(),
            Err(OpenError::Rejected)
        );
        for index in 0..sealed.ciphertext.len() {
            let mut tampered = sealed.clone();
            tampered.ciphertext[index] ^= 0x01;
            assert_eq!(
                open(&KEY, b"aad", &tampered).unwrap(),
                Err(OpenError::Rejected)
            );
        }
        for index in 0..sealed.nonce.len() {
            let mut tampered = sealed.clone();
            tampered.nonce[index] ^= 0x80;
            assert_eq!(
                open(&KEY, b"aad", &tampered).unwrap(),
                Err(OpenError::Rejected)
            );
        }
    }

    #[test]
    fn malformed_records_do_not_panic() {
        let sealed = seal(&KEY, b"aad", b"plain").unwrap();
        let mut short_nonce = sealed.clone();
        short_nonce.nonce.pop();
        assert_eq!(
            open(&KEY, b"aad", &short_nonce).unwrap(),
            Err(OpenError::Malformed)
        );
        let mut short = sealed.clone();
        short.ciphertext.truncate(3);
        assert_eq!(
            open(&KEY, b"aad", &short).unwrap(),
            Err(OpenError::Malformed)
        );
        assert!(matches!(
            open(&[1u8; 16], b"aad", &sealed),
            Err(StoreError::KeyUnavailable { .. })
        ));
    }

    #[test]
    fn hex_form_round_trips_and_refuses_bad_digits() {
        let sealed = seal(&KEY, b"", &[0x00, 0xff, 0x10]).unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(json.contains("\"algorithm\":\"AES-256-GCM\""), "{json}");
        let back: Sealed = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sealed);
        let bad = r#"{"algorithm":"AES-256-GCM","nonce":"zz","ciphertext":""}"#;
        assert!(serde_json::from_str::<Sealed>(bad).is_err());
        let odd = r#"{"algorithm":"AES-256-GCM","nonce":"abc","ciphertext":""}"#;
        assert!(serde_json::from_str::<Sealed>(odd).is_err());
        let unknown = r#"{"algorithm":"ROT13","nonce":"","ciphertext":""}"#;
        assert!(serde_json::from_str::<Sealed>(unknown).is_err());
    }
}
