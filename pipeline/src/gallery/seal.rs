//! Templates sealed at rest: XChaCha20-Poly1305 with a key kept in its own file, outside the
//! database, so a copied database alone reveals no biometric data.
//!
//! Each sealed template is bound (as associated data) to its person, model and photo: a sealed
//! blob moved to another row fails to open rather than matching the wrong person.

use crate::secret::SecretError;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::path::Path;

/// Length of the key file, bytes.
pub const KEY_LEN: usize = 32;

/// Why the key could not be used or a template could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file is missing, unreadable, of the wrong length or readable by others.
    #[error(transparent)]
    Key(#[from] SecretError),
    /// A template failed authentication: wrong key, or the row was tampered with.
    #[error(
        "template of {person} (photo {photo}) does not open with this key: wrong key or tampered data"
    )]
    Open {
        /// The person.
        person: String,
        /// The photo it came from.
        photo: String,
    },
    /// Encryption failed (should not happen).
    #[error("sealing failed")]
    Seal,
}

/// The sealing key, loaded once.
pub struct Seal {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(..)")
    }
}

/// A sealed template: the random nonce and the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// 24-byte nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub data: Vec<u8>,
}

fn aad(person: &str, model: &str, photo: &str) -> Vec<u8> {
    [person.as_bytes(), model.as_bytes(), photo.as_bytes()].join(&0u8)
}

impl Seal {
    /// Opens the key at `path`, creating it (mode 0600, 32 random bytes) when `creation`
    /// allows (no template is sealed with an earlier key).
    pub fn open_or_create(
        path: &Path,
        creation: crate::secret::Creation,
    ) -> Result<Self, SealError> {
        let key: [u8; KEY_LEN] = crate::secret::open_or_create(path, "gallery key", creation)?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// Seals `feature` for `person`'s `photo` under `model`.
    pub fn seal(
        &self,
        feature: &[f32],
        person: &str,
        model: &str,
        photo: &str,
    ) -> Result<Sealed, SealError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let msg: Vec<u8> = feature.iter().flat_map(|v| v.to_le_bytes()).collect();
        let aad = aad(person, model, photo);
        let data = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &msg,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            data,
        })
    }

    /// Opens a template sealed by [`Seal::seal`] with the same person, model and photo.
    pub fn open(
        &self,
        sealed: &Sealed,
        person: &str,
        model: &str,
        photo: &str,
    ) -> Result<Vec<f32>, SealError> {
        let fail = || SealError::Open {
            person: person.to_owned(),
            photo: photo.to_owned(),
        };
        if sealed.nonce.len() != 24 {
            return Err(fail());
        }
        let aad = aad(person, model, photo);
        let bytes = self
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.data,
                    aad: &aad,
                },
            )
            .map_err(|_| fail())?;
        if bytes.len() % 4 != 0 {
            return Err(fail());
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}
