//! Secret key files the device makes for itself: the gallery's sealing key and the key that
//! signs access decisions. Each is created on first run (random bytes, mode 0600, written
//! with `create_new` so two starts never make two keys) and refused later if other users can
//! read it or its length is wrong. A key is never made again silently once something depends
//! on it (sealed templates, a published public key): its caller says whether it may be made.
//! Also the private state folder (0700). Not a pipeline stage: the gallery, and in the device
//! crate the access signer and the config check, use it.

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read or created.
    #[error("{what} {path}: {source}")]
    Io {
        /// Which key (`gallery key`, `access signing key`).
        what: &'static str,
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists but is not a key of the right length.
    #[error("{what} {path}: expected exactly {expected} bytes, found {len}")]
    Length {
        /// Which key.
        what: &'static str,
        /// The key file.
        path: PathBuf,
        /// The length a key has.
        expected: usize,
        /// The file's length.
        len: usize,
    },
    /// The key is gone while something still depends on it.
    #[error(
        "{what} {path} is missing, but {depends}; refusing to make a new key silently. {rotate}"
    )]
    Missing {
        /// Which key.
        what: &'static str,
        /// The key file.
        path: PathBuf,
        /// What depends on the old key.
        depends: String,
        /// How to rotate on purpose.
        rotate: String,
    },
    /// Other users can read the file.
    #[error("{what} {path}: readable by other users (mode {mode:o}); expected 0600")]
    Permissions {
        /// Which key.
        what: &'static str,
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Whether a missing key may be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// Nothing depends on the key yet: make it.
    Allowed,
    /// Something depends on the old key: a missing key is an error.
    Refused {
        /// What depends on it ("the gallery holds 12 sealed templates").
        depends: String,
        /// How to rotate on purpose.
        rotate: String,
    },
}

/// Reads the `N`-byte key at `path`, creating it from the system's random source on first run
/// when `creation` allows.
pub fn open_or_create<const N: usize>(
    path: &Path,
    what: &'static str,
    creation: Creation,
) -> Result<[u8; N], SecretError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| SecretError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    if let Creation::Refused { depends, rotate } = creation
        && !path.exists()
    {
        return Err(SecretError::Missing {
            what,
            path: path.to_owned(),
            depends,
            rotate,
        });
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let mut key = [0u8; N];
            OsRng.fill_bytes(&mut key);
            file.write_all(&key).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok(key);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| SecretError::Length {
        what,
        path: path.to_owned(),
        expected: N,
        len: bytes.len(),
    })
}

/// Creates the folder `dir` (and its parents) private to the device's user (0700), or makes an
/// existing one private: the state folder holds the gallery, its key and the event queue.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{}: mode {mode:o} lets other users in; made private (0700)",
            dir.display()
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Makes the file at `path` private (0600): databases SQLite creates with the umask's mode
/// (their journal and WAL files take the database's mode).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o600))?;
    }
    Ok(())
}

/// `N` random bytes from the system's source (nonces).
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_is_made_once_kept_private_and_checked_on_reopening() {
        let dir = std::env::temp_dir().join(format!("facegate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let _ = std::fs::remove_file(&path);
        let a: [u8; 32] = open_or_create(&path, "test key", Creation::Allowed).unwrap();
        let b: [u8; 32] = open_or_create(&path, "test key", Creation::Allowed).unwrap();
        assert_eq!(a, b, "the second open reads the first key");
        assert_ne!(a, [0u8; 32]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = open_or_create::<16>(&path, "test key", Creation::Allowed).unwrap_err();
        assert!(matches!(err, SecretError::Length { len: 32, .. }), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = open_or_create::<32>(&path, "test key", Creation::Allowed).unwrap_err();
        assert!(err.to_string().contains("0600"), "{err}");
        // Removed while something depends on it: an error naming what and how to rotate.
        std::fs::remove_file(&path).unwrap();
        let refused = Creation::Refused {
            depends: "3 things use it".into(),
            rotate: "Remove them first.".into(),
        };
        let err = open_or_create::<32>(&path, "test key", refused).unwrap_err();
        assert!(matches!(err, SecretError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("3 things use it"), "{err}");
        assert!(!path.exists(), "no key is made");
        // A folder made private, an existing one tightened.
        let state = dir.join("state/inner");
        private_dir(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
