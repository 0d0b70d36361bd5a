//! Envelope encryption primitives: 256-bit keys that zeroise on drop and never print, and
//! XChaCha20-Poly1305 sealing with associated data (the 24-byte random nonce is stored in
//! front of the ciphertext). Data keys are sealed by the master key, secrets by their
//! organisation's data key; the associated data binds each ciphertext to where it belongs
//! (org, credential, version), so ciphertexts cannot be swapped between records.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The known plaintext of key check values.
const CHECK_PLAINTEXT: &[u8] = b"portcullis vault key check v1";

/// Why sealing or opening failed. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The operating system gave no randomness.
    #[error("no randomness available: {0}")]
    Random(String),
    /// Authentication failed: wrong key, wrong associated data or tampered ciphertext.
    #[error("decryption failed (wrong key or tampered data)")]
    Decrypt,
    /// Not a key (wrong length or encoding).
    #[error("{0}")]
    BadKey(String),
}

/// A 256-bit symmetric key; zeroised on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

fn random_bytes(buf: &mut [u8]) -> Result<(), EnvelopeError> {
    getrandom::fill(buf).map_err(|e| EnvelopeError::Random(e.to_string()))
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode standard base64.
pub fn unb64(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| EnvelopeError::BadKey("not valid base64".into()))
}

impl Key {
    /// A fresh random key.
    pub fn generate() -> Result<Key, EnvelopeError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(k.as_mut())?;
        Ok(Key(k))
    }

    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, EnvelopeError> {
        if bytes.len() != KEY_LEN {
            return Err(EnvelopeError::BadKey(format!(
                "a key is {KEY_LEN} bytes; got {}",
                bytes.len()
            )));
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(bytes);
        Ok(Key(k))
    }

    /// A key from its base64 text form (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Key, EnvelopeError> {
        let raw = Zeroizing::new(unb64(text).map_err(|_| {
            EnvelopeError::BadKey(
                "the key is not valid base64 (expected 32 random bytes, base64-encoded)".into(),
            )
        })?);
        Key::from_bytes(&raw)
    }

    /// The base64 text form (for key files only).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(b64(self.0.as_ref()))
    }

    /// A public identifier of this key (a derived digest; reveals nothing usable).
    pub fn id(&self) -> String {
        let d = blake3::derive_key("portcullis vault key id v1", self.0.as_ref());
        format!("mk_{}", hex::encode(&d[..8]))
    }

    /// A key derived from this one for `purpose` (e.g. credential fingerprints).
    pub fn derive(&self, purpose: &str) -> Key {
        let context = format!("portcullis vault derived key v1: {purpose}");
        Key(Zeroizing::new(blake3::derive_key(
            &context,
            self.0.as_ref(),
        )))
    }

    /// Keyed BLAKE3 of `data`, hex (for fingerprints).
    pub fn keyed_hash(&self, data: &[u8]) -> String {
        blake3::keyed_hash(&self.0, data).to_hex().to_string()
    }

    /// Encrypt `plaintext` bound to `aad`: `nonce || ciphertext+tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| EnvelopeError::Decrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypt what [`Key::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(EnvelopeError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| EnvelopeError::Decrypt)
    }

    /// Seal another key (a data key under the master key).
    pub fn wrap(&self, aad: &[u8], key: &Key) -> Result<String, EnvelopeError> {
        Ok(b64(&self.seal(aad, key.0.as_ref())?))
    }

    /// Open a key sealed by [`Key::wrap`].
    pub fn unwrap_key(&self, aad: &[u8], wrapped: &str) -> Result<Key, EnvelopeError> {
        let raw = self.open(aad, &unb64(wrapped).map_err(|_| EnvelopeError::Decrypt)?)?;
        Key::from_bytes(&raw)
    }

    /// A key check value: a known token sealed by this key for `context`.
    pub fn check_value(&self, context: &str) -> Result<String, EnvelopeError> {
        Ok(b64(&self.seal(context.as_bytes(), CHECK_PLAINTEXT)?))
    }

    /// Whether `check` is this key's check value for `context`.
    pub fn verify_check(&self, context: &str, check: &str) -> bool {
        unb64(check)
            .ok()
            .and_then(|raw| self.open(context.as_bytes(), &raw).ok())
            .is_some_and(|p| p.as_slice() == CHECK_PLAINTEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = Key::generate().unwrap();
        let sealed = k.seal(b"org/a/1", b"hello").unwrap();
        assert_eq!(k.open(b"org/a/1", &sealed).unwrap().as_slice(), b"hello");
        assert!(k.open(b"org/a/2", &sealed).is_err(), "other aad");
        let other = Key::generate().unwrap();
        assert!(other.open(b"org/a/1", &sealed).is_err(), "other key");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open(b"org/a/1", &tampered).is_err());
    }

    #[test]
    fn wrap_check_and_ids() {
        let master = Key::generate().unwrap();
        let data = Key::generate().unwrap();
        let w = master.wrap(b"dk", &data).unwrap();
        assert_eq!(master.unwrap_key(b"dk", &w).unwrap().id(), data.id());
        let c = master.check_value("ctx").unwrap();
        assert!(master.verify_check("ctx", &c));
        assert!(!data.verify_check("ctx", &c));
        assert!(!master.verify_check("other", &c));
        assert_ne!(master.id(), data.id());
        assert!(format!("{master:?}").contains("redacted"));
        let again = Key::from_base64(&master.to_base64()).unwrap();
        assert_eq!(again.id(), master.id());
        assert!(Key::from_base64("c2hvcnQ=").is_err());
    }
}
