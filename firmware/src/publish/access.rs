//! The door decision on `<prefix>/<device>/access`: signed, numbered, expiring.
//!
//! Part of *publish*. An event says what the camera saw; an access message is what a door
//! controller acts on, so it follows the contract's hard rule: never retained, never queued
//! for later (a late "open" is worse than none), and it proves itself. Each message carries a
//! sequence number that only increases (kept on disk, so a restart never reuses one), a random
//! nonce, an expiry a few seconds ahead, and an Ed25519 signature by the device's own key.
//!
//! Wire format (JSON): `{"payload": "<decision JSON text>", "signature": "<128 hex>",
//! "key_id": "<16 hex>"}`. The signature covers the UTF-8 bytes of `payload` exactly as sent,
//! so a consumer verifies before parsing and never has to re-serialise anything. `key_id`
//! only names the key (for rotation); consumers verify with the public key they pinned
//! (published in the retained state and written to `access.pub` beside the key), never with
//! anything taken from the message. [`AccessVerifier`] is that consumer logic, used by the
//! tests and usable by a Rust door controller.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use facegate_contract::fsutil::hex;
use facegate_pipeline::event::PersonRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Version of the decision payload; bumped on any incompatible change.
pub const ACCESS_SCHEMA: u32 = 1;

/// What the door should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Open for `person`.
    Grant,
    /// Stay shut; `reason` says why.
    Deny,
}

/// The signed part of an access message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessDecision {
    /// [`ACCESS_SCHEMA`].
    pub schema: u32,
    /// The device that decided.
    pub device: String,
    /// Increases by one with every access message of this device, across restarts.
    pub seq: u64,
    /// 16 random bytes, hex: two decisions never sign the same bytes.
    pub nonce: String,
    /// When it was decided, Unix seconds.
    pub issued_at: f64,
    /// After this (Unix seconds) the message must be ignored.
    pub expires_at: f64,
    /// Grant or deny.
    pub decision: Verdict,
    /// Who was granted (or the nearest candidate of a denial, when there is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonRef>,
    /// Why a denial (`unknown`, `cooldown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The event (on `.../events`) this decision was taken with.
    pub event_id: String,
}

/// The message as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAccess {
    /// The decision's JSON text; the signature covers exactly these bytes.
    pub payload: String,
    /// Ed25519 signature, hex.
    pub signature: String,
    /// First 8 bytes of the SHA-256 of the public key, hex: which key signed.
    pub key_id: String,
}

/// Why the signing key could not be had.
pub type KeyError = facegate_pipeline::secret::SecretError;

/// The device's signing key.
pub struct AccessSigner {
    key: SigningKey,
}

impl std::fmt::Debug for AccessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessSigner({})", self.key_id())
    }
}

/// The id of a public key: first 8 bytes of its SHA-256, hex.
pub fn key_id(public: &VerifyingKey) -> String {
    hex(&Sha256::digest(public.as_bytes())[..8])
}

impl AccessSigner {
    /// Opens the key (a 32-byte Ed25519 seed) at `path`, creating it (mode 0600) on first run,
    /// and writes the public key as hex beside it (`<path>.pub`, atomically) for technicians to
    /// hand to door controllers.
    ///
    /// Once `<path>.pub` exists, door controllers may have pinned it: a missing key is then an
    /// error, never silently a new key they would refuse.
    pub fn open_or_create(path: &Path) -> Result<Self, KeyError> {
        let public = path.with_extension("pub");
        let creation = if public.exists() {
            facegate_pipeline::secret::Creation::Refused {
                depends: format!(
                    "its public key {} may be pinned by door controllers",
                    public.display()
                ),
                rotate: format!(
                    "Restore the key from a backup; or, to rotate on purpose, delete {} too, \
                     start the device, and pin the new public key in every door controller.",
                    public.display()
                ),
            }
        } else {
            facegate_pipeline::secret::Creation::Allowed
        };
        let seed: [u8; 32] =
            facegate_pipeline::secret::open_or_create(path, "access signing key", creation)?;
        let signer = Self::from_seed(&seed);
        let text = format!("{}\n", signer.public_key_hex());
        if std::fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
            facegate_contract::fsutil::write_atomic(&public, text.as_bytes()).map_err(
                |source| facegate_pipeline::secret::SecretError::Io {
                    what: "access public key",
                    path: public.clone(),
                    source,
                },
            )?;
        }
        Ok(signer)
    }

    /// A signer from a seed (tests, tools).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key consumers pin.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key, hex (64 characters).
    pub fn public_key_hex(&self) -> String {
        hex(self.public_key().as_bytes())
    }

    /// This key's id.
    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }

    /// Signs `decision` into its wire form.
    pub fn sign(&self, decision: &AccessDecision) -> Result<SignedAccess, serde_json::Error> {
        let payload = serde_json::to_string(decision)?;
        let signature = self.key.sign(payload.as_bytes());
        Ok(SignedAccess {
            payload,
            signature: hex(&signature.to_bytes()),
            key_id: self.key_id(),
        })
    }
}

/// Why a consumer must ignore an access message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejected {
    /// Not the wire format.
    #[error("not an access message: {0}")]
    Malformed(String),
    /// The signature does not verify with the pinned key (unsigned, forged or altered).
    #[error("signature does not verify with the pinned key")]
    BadSignature,
    /// Signed, but for a schema this consumer does not know.
    #[error("access schema {0} is not supported (expected {ACCESS_SCHEMA})")]
    Schema(u32),
    /// From another device than the one this consumer serves.
    #[error("decision of device {0:?}, expected {1:?}")]
    OtherDevice(String, String),
    /// Past its expiry.
    #[error("expired at {expires_at:.3}, now {now:.3}")]
    Expired {
        /// Its `expires_at`.
        expires_at: f64,
        /// The consumer's clock.
        now: f64,
    },
    /// Not newer than the last accepted message: a replay.
    #[error("sequence {seq} is not after {last}: replayed")]
    Replayed {
        /// Its sequence number.
        seq: u64,
        /// The last accepted one.
        last: u64,
    },
}

/// What a door controller runs on every access message: signature, device, expiry, replay.
#[derive(Debug, Clone)]
pub struct AccessVerifier {
    key: VerifyingKey,
    device: String,
    last_seq: Option<u64>,
}

/// Exactly `N` bytes from hex.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    facegate_contract::fsutil::unhex(s)?.try_into().ok()
}

impl AccessVerifier {
    /// A verifier for `device`'s messages, pinned to its public key (64 hex characters).
    pub fn new(public_key_hex: &str, device: &str) -> Result<Self, Rejected> {
        let bytes = unhex::<32>(public_key_hex.trim())
            .ok_or_else(|| Rejected::Malformed("public key: expected 64 hex characters".into()))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| Rejected::Malformed("public key: not an Ed25519 point".into()))?;
        Ok(Self {
            key,
            device: device.to_owned(),
            last_seq: None,
        })
    }

    /// Checks one message received at `now` (Unix seconds); an accepted one raises the
    /// sequence floor, so the same message is refused the second time.
    pub fn check(&mut self, message: &[u8], now: f64) -> Result<AccessDecision, Rejected> {
        let signed: SignedAccess =
            serde_json::from_slice(message).map_err(|e| Rejected::Malformed(e.to_string()))?;
        let signature = unhex::<64>(&signed.signature).ok_or(Rejected::BadSignature)?;
        self.key
            .verify_strict(
                signed.payload.as_bytes(),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| Rejected::BadSignature)?;
        let decision: AccessDecision = serde_json::from_str(&signed.payload)
            .map_err(|e| Rejected::Malformed(format!("payload: {e}")))?;
        if decision.schema != ACCESS_SCHEMA {
            return Err(Rejected::Schema(decision.schema));
        }
        if decision.device != self.device {
            return Err(Rejected::OtherDevice(decision.device, self.device.clone()));
        }
        if now > decision.expires_at {
            return Err(Rejected::Expired {
                expires_at: decision.expires_at,
                now,
            });
        }
        if let Some(last) = self.last_seq
            && decision.seq <= last
        {
            return Err(Rejected::Replayed {
                seq: decision.seq,
                last,
            });
        }
        self.last_seq = Some(decision.seq);
        Ok(decision)
    }
}

/// Unix seconds now, to the millisecond.
pub fn unix_now() -> f64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (secs * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(seq: u64, now: f64) -> AccessDecision {
        AccessDecision {
            schema: ACCESS_SCHEMA,
            device: "door".into(),
            seq,
            nonce: hex(&facegate_pipeline::secret::random::<16>()),
            issued_at: now,
            expires_at: now + 5.0,
            decision: Verdict::Grant,
            person: Some(PersonRef {
                id: "ada".into(),
                name: None,
            }),
            reason: None,
            event_id: "e1".into(),
        }
    }

    #[test]
    fn a_consumer_accepts_a_fresh_signed_decision_once() {
        let signer = AccessSigner::from_seed(&[7; 32]);
        let mut v = AccessVerifier::new(&signer.public_key_hex(), "door").unwrap();
        let now = 1_000_000.0;
        let wire = serde_json::to_vec(&signer.sign(&decision(1, now)).unwrap()).unwrap();
        let got = v.check(&wire, now + 1.0).unwrap();
        assert_eq!(got.decision, Verdict::Grant);
        assert_eq!(
            v.check(&wire, now + 1.0),
            Err(Rejected::Replayed { seq: 1, last: 1 })
        );
        let next = serde_json::to_vec(&signer.sign(&decision(2, now)).unwrap()).unwrap();
        assert_eq!(v.check(&next, now + 2.0).unwrap().seq, 2);
    }

    #[test]
    fn stale_altered_foreign_and_unsigned_messages_are_refused() {
        let signer = AccessSigner::from_seed(&[7; 32]);
        let now = 1_000_000.0;
        let fresh = || AccessVerifier::new(&signer.public_key_hex(), "door").unwrap();
        let signed = signer.sign(&decision(1, now)).unwrap();

        let wire = serde_json::to_vec(&signed).unwrap();
        assert!(matches!(
            fresh().check(&wire, now + 5.5),
            Err(Rejected::Expired { .. })
        ));

        // A deny turned into a grant, or a later expiry, breaks the signature.
        let mut altered = signed.clone();
        altered.payload = altered.payload.replace("\"seq\":1", "\"seq\":9");
        let wire = serde_json::to_vec(&altered).unwrap();
        assert_eq!(fresh().check(&wire, now), Err(Rejected::BadSignature));

        // Signed by another key (another device, or an attacker's).
        let other = AccessSigner::from_seed(&[8; 32])
            .sign(&decision(1, now))
            .unwrap();
        let wire = serde_json::to_vec(&other).unwrap();
        assert_eq!(fresh().check(&wire, now), Err(Rejected::BadSignature));

        // No signature at all, or the bare decision without the envelope.
        let mut unsigned = signed.clone();
        unsigned.signature.clear();
        let wire = serde_json::to_vec(&unsigned).unwrap();
        assert_eq!(fresh().check(&wire, now), Err(Rejected::BadSignature));
        assert!(matches!(
            fresh().check(signed.payload.as_bytes(), now),
            Err(Rejected::Malformed(_))
        ));

        // The right key, but this consumer serves another door.
        let mut v = AccessVerifier::new(&signer.public_key_hex(), "back-door").unwrap();
        let wire = serde_json::to_vec(&signed).unwrap();
        assert!(matches!(
            v.check(&wire, now),
            Err(Rejected::OtherDevice(..))
        ));
    }

    #[test]
    fn the_key_is_made_once_and_its_public_half_written_beside_it() {
        let dir = std::env::temp_dir().join(format!("facegate-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.key");
        let a = AccessSigner::open_or_create(&path).unwrap();
        let b = AccessSigner::open_or_create(&path).unwrap();
        assert_eq!(a.public_key_hex(), b.public_key_hex());
        let public = std::fs::read_to_string(dir.join("access.pub")).unwrap();
        assert_eq!(public.trim(), a.public_key_hex());
        assert_eq!(a.key_id().len(), 16);
        // The key removed while its public half is out there: refused, not made again.
        std::fs::remove_file(&path).unwrap();
        let err = AccessSigner::open_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("pinned"), "{err}");
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
