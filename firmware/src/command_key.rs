//! The installer's command key: the shared secret that MQTT requests are signed with
//! (HMAC-SHA256 over topic and request), read from a file the installer provides and never made
//! by the device. A leaf: the config check loads it, the command gate verifies with it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// The shared secret requests are signed with (at least 16 bytes, from a file).
#[derive(Clone)]
pub struct CommandKey(Vec<u8>);

impl std::fmt::Debug for CommandKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandKey(..)")
    }
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CommandKeyError {
    /// Unreadable.
    #[error("command key {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Other users can read it.
    #[error(
        "command key {path}: open to every user (mode {mode:o}); expected 0600, or 0640 with \
         the device's group (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Too short to be a secret.
    #[error("command key {path}: {len} bytes; expected at least 16")]
    Short {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

impl CommandKey {
    /// Reads the key from `path` (its bytes as they are; a trailing newline is ignored).
    pub fn load(path: &Path) -> Result<Self, CommandKeyError> {
        use std::os::unix::fs::PermissionsExt;
        let read = |source| CommandKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(CommandKeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = std::fs::read(path).map_err(read)?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        if bytes.len() < 16 {
            return Err(CommandKeyError::Short {
                path: path.to_owned(),
                len: bytes.len(),
            });
        }
        Ok(Self(bytes))
    }

    /// A key from bytes (tests, tools).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The hex HMAC-SHA256 of `topic` + "\n" + `request`: what a caller puts in `hmac`.
    pub fn sign(&self, topic: &str, request: &str) -> String {
        self.mac(topic, request)
            .map(|m| facegate_contract::fsutil::hex(&m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// The MAC over `topic` + "\n" + `request`; `None` only for a key HMAC refuses (none is:
    /// HMAC takes keys of any length).
    fn mac(&self, topic: &str, request: &str) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(topic.as_bytes());
        mac.update(b"\n");
        mac.update(request.as_bytes());
        Some(mac)
    }

    /// Whether `hmac_hex` is the MAC of `topic` + "\n" + `request` (compared in constant time).
    pub(crate) fn verify(&self, topic: &str, request: &str, hmac_hex: &str) -> bool {
        match (
            facegate_contract::fsutil::unhex(hmac_hex),
            self.mac(topic, request),
        ) {
            (Some(tag), Some(mac)) => mac.verify_slice(&tag).is_ok(),
            _ => false,
        }
    }
}
