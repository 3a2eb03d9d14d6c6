//! libsodium sealed boxes (`crypto_box_seal`), the encryption GitHub requires for secrets.
//!
//! GitHub hands out a Curve25519 public key per secret scope; a secret is sent as the
//! base64 of `crypto_box_seal(value, public_key)`. Pure: no I/O beyond the system RNG.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;
use crypto_box::aead::rand_core::CryptoRngCore;
use secrecy::{ExposeSecret, SecretString};

/// A scope's public key as GitHub returns it (`GET …/secrets/public-key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeKey {
    pub key_id: String,
    key: crypto_box::PublicKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the public key is not base64 of 32 bytes (key id {0}); GitHub returned something unexpected"
    )]
    BadPublicKey(String),
    #[error("sealing failed")]
    Seal,
}

impl ScopeKey {
    /// Parses the `{key_id, key}` pair, `key` being base64 of a 32-byte Curve25519 key.
    pub fn parse(key_id: &str, key_b64: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(key_b64.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| SealError::BadPublicKey(key_id.to_owned()))?;
        Ok(Self {
            key_id: key_id.to_owned(),
            key: crypto_box::PublicKey::from_bytes(bytes),
        })
    }
}

/// A sealed secret ready for `PUT …/secrets/{name}`: no plaintext inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub encrypted_value: String,
}

/// Seals `value` for `scope` with the system RNG.
pub fn seal(scope: &ScopeKey, value: &SecretString) -> Result<Sealed, SealError> {
    seal_with(scope, value, &mut OsRng)
}

/// Seals with a caller-chosen RNG (the ephemeral key is drawn from it): lets the
/// known-answer test reproduce libsodium's output byte for byte.
pub fn seal_with(
    scope: &ScopeKey,
    value: &SecretString,
    rng: &mut impl CryptoRngCore,
) -> Result<Sealed, SealError> {
    let boxed = scope
        .key
        .seal(rng, value.expose_secret().as_bytes())
        .map_err(|_| SealError::Seal)?;
    Ok(Sealed {
        key_id: scope.key_id.clone(),
        encrypted_value: STANDARD.encode(boxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_box::aead::rand_core::{CryptoRng, RngCore};

    struct Vector {
        public_key: String,
        private_key: [u8; 32],
        key_id: String,
        plaintext: String,
        ephemeral_private_key: [u8; 32],
        sealed: String,
        sealed_random: String,
    }

    fn vector() -> Vector {
        let raw: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/libsodium_sealed_box_vector.json"
        ))
        .unwrap();
        let s = |k: &str| raw[k].as_str().unwrap().to_owned();
        let k32 = |k: &str| <[u8; 32]>::try_from(STANDARD.decode(s(k)).unwrap()).unwrap();
        Vector {
            public_key: s("public_key_b64"),
            private_key: k32("private_key_b64"),
            key_id: s("key_id"),
            plaintext: s("plaintext"),
            ephemeral_private_key: k32("ephemeral_private_key_b64"),
            sealed: s("sealed_b64"),
            sealed_random: s("sealed_random_b64"),
        }
    }

    /// Yields fixed bytes: the ephemeral private key of the vector.
    struct Fixed([u8; 32]);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            unimplemented!()
        }
        fn next_u64(&mut self) -> u64 {
            unimplemented!()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.copy_from_slice(&self.0[..dest.len()]);
        }
        fn try_fill_bytes(
            &mut self,
            dest: &mut [u8],
        ) -> Result<(), crypto_box::aead::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Fixed {}

    #[test]
    fn reproduces_libsodium_known_answer() {
        let v = vector();
        let scope = ScopeKey::parse(&v.key_id, &v.public_key).unwrap();
        let sealed = seal_with(
            &scope,
            &SecretString::from(v.plaintext.clone()),
            &mut Fixed(v.ephemeral_private_key),
        )
        .unwrap();
        assert_eq!(sealed.encrypted_value, v.sealed);
        assert_eq!(sealed.key_id, v.key_id);
    }

    #[test]
    fn libsodium_boxes_open_with_the_private_key() {
        let v = vector();
        let sk = crypto_box::SecretKey::from_bytes(v.private_key);
        for b64 in [&v.sealed, &v.sealed_random] {
            let opened = sk.unseal(&STANDARD.decode(b64).unwrap()).unwrap();
            assert_eq!(String::from_utf8(opened).unwrap(), v.plaintext);
        }
    }

    #[test]
    fn random_seals_differ_and_open() {
        let v = vector();
        let scope = ScopeKey::parse(&v.key_id, &v.public_key).unwrap();
        let value = SecretString::from("s3cr3t".to_owned());
        let a = seal(&scope, &value).unwrap();
        let b = seal(&scope, &value).unwrap();
        assert_ne!(a.encrypted_value, b.encrypted_value);
        let sk = crypto_box::SecretKey::from_bytes(v.private_key);
        let opened = sk
            .unseal(&STANDARD.decode(&a.encrypted_value).unwrap())
            .unwrap();
        assert_eq!(opened, b"s3cr3t");
    }

    #[test]
    fn rejects_a_malformed_public_key() {
        assert_eq!(
            ScopeKey::parse("7", "bm90IDMyIGJ5dGVz"),
            Err(SealError::BadPublicKey("7".into()))
        );
    }
}
