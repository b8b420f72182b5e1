//! The on-disk engine cache: building an engine takes minutes on a Jetson, so it is built once
//! per model, TensorRT version, GPU and precision, and found again on the next start. A change
//! in any of them gives another file name, so a stale engine is never loaded; the engines of
//! the same model and precision built for another TensorRT or GPU are removed once a new one is
//! stored (another precision is a choice, not staleness: it is kept).

use crate::{Precision, TrtError};
use std::path::{Path, PathBuf};

/// Everything an engine depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineKey {
    /// The model file's SHA-256 (hex), as its card records it.
    pub model_sha256: String,
    /// TensorRT's version as the library reports it (MAJOR * 10000 + MINOR * 100 + PATCH).
    pub tensorrt_version: u32,
    /// The GPU's name as CUDA reports it.
    pub gpu: String,
    /// The arithmetic.
    pub precision: Precision,
}

impl EngineKey {
    /// `<model hash, 16 hex>-trt<M.m.p>-<gpu>-<precision>.engine`, the GPU's name reduced to
    /// lower-case letters, digits and dashes.
    pub fn file_name(&self) -> String {
        let hash: String = self.model_sha256.chars().take(16).collect();
        let v = self.tensorrt_version;
        let gpu = slug(&self.gpu);
        format!(
            "{hash}-trt{}.{}.{}-{gpu}-{}.engine",
            v / 10000,
            v / 100 % 100,
            v % 100,
            self.precision.name()
        )
    }

    /// Whether `file_name` is an engine of this key's model and precision.
    fn same_model_and_precision(&self, file_name: &str) -> bool {
        let hash: String = self.model_sha256.chars().take(16).collect();
        file_name.starts_with(&format!("{hash}-trt"))
            && file_name.ends_with(&format!("-{}.engine", self.precision.name()))
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "gpu".into() } else { out }
}

/// A folder of serialized engines (on the device: `<storage.dir>/engines`).
#[derive(Debug, Clone)]
pub struct EngineCache {
    dir: PathBuf,
}

impl EngineCache {
    /// The cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where the engine for `key` lives.
    pub fn path(&self, key: &EngineKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// The engine stored for `key`, if any.
    pub fn load(&self, key: &EngineKey) -> Result<Option<Vec<u8>>, TrtError> {
        let path = self.path(key);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TrtError::Cache { path, source }),
        }
    }

    /// Stores `engine` for `key` atomically (a reader sees the old file or the whole new one),
    /// then removes the engines of the same model and precision built for another TensorRT or
    /// GPU. Returns the removed files.
    pub fn store(&self, key: &EngineKey, engine: &[u8]) -> Result<Vec<PathBuf>, TrtError> {
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| TrtError::Cache { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(fail(&self.dir))?;
        let path = self.path(key);
        let tmp = self.dir.join(format!(".{}.tmp", key.file_name()));
        std::fs::write(&tmp, engine).map_err(fail(&tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(fail(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(fail(&path))?;
        let mut removed = Vec::new();
        let keep = key.file_name();
        for entry in std::fs::read_dir(&self.dir).map_err(fail(&self.dir))? {
            let entry = entry.map_err(fail(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if key.same_model_and_precision(&name) && name != keep {
                std::fs::remove_file(entry.path()).map_err(fail(&entry.path()))?;
                removed.push(entry.path());
            }
        }
        Ok(removed)
    }

    /// Forgets the engine for `key` (one TensorRT would not load).
    pub fn discard(&self, key: &EngineKey) -> Result<(), TrtError> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(TrtError::Cache { path, source: e })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(version: u32, gpu: &str, precision: Precision) -> EngineKey {
        EngineKey {
            model_sha256: "0123456789abcdef0123456789abcdef".into(),
            tensorrt_version: version,
            gpu: gpu.into(),
            precision,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("facegate-trt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_file_name_changes_with_every_part_of_the_key() {
        let base = key(100_300, "Orin (nvgpu)", Precision::Fp16);
        assert_eq!(
            base.file_name(),
            "0123456789abcdef-trt10.3.0-orin-nvgpu-fp16.engine"
        );
        let others = [
            EngineKey {
                model_sha256: "ffff".repeat(8),
                ..base.clone()
            },
            key(100_700, "Orin (nvgpu)", Precision::Fp16),
            key(100_300, "Xavier", Precision::Fp16),
            key(100_300, "Orin (nvgpu)", Precision::Int8),
        ];
        for other in others {
            assert_ne!(other.file_name(), base.file_name(), "{other:?}");
        }
        assert_eq!(slug("  "), "gpu");
    }

    #[test]
    fn a_stored_engine_is_found_again_and_replaces_the_stale_ones() {
        let dir = scratch("store");
        let cache = EngineCache::new(&dir);
        let old = key(80_601, "Orin", Precision::Fp16);
        let new = key(100_300, "Orin", Precision::Fp16);
        assert_eq!(cache.load(&new).unwrap(), None);
        cache.store(&old, b"old engine").unwrap();
        // Another model's engine is not this model's business.
        let other_model = EngineKey {
            model_sha256: "f".repeat(64),
            ..old.clone()
        };
        cache.store(&other_model, b"other").unwrap();
        // Nor is another precision of this model: that is a setting, not staleness.
        let fp32 = key(80_601, "Orin", Precision::Fp32);
        cache.store(&fp32, b"fp32").unwrap();
        let removed = cache.store(&new, b"new engine").unwrap();
        assert_eq!(removed, [cache.path(&old)]);
        assert_eq!(cache.load(&fp32).unwrap().unwrap(), b"fp32");
        assert_eq!(cache.load(&new).unwrap().unwrap(), b"new engine");
        assert_eq!(cache.load(&old).unwrap(), None, "a stale key loads nothing");
        assert_eq!(cache.load(&other_model).unwrap().unwrap(), b"other");
        cache.discard(&new).unwrap();
        assert_eq!(cache.load(&new).unwrap(), None);
        cache.discard(&new).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unreadable_cache_is_an_error_naming_the_file() {
        let dir = scratch("unreadable");
        let cache = EngineCache::new(&dir);
        let k = key(100_300, "Orin", Precision::Fp32);
        // A folder where the engine file should be: reading it fails, and says where.
        std::fs::create_dir_all(cache.path(&k)).unwrap();
        let err = cache.load(&k).unwrap_err().to_string();
        assert!(err.contains(&k.file_name()), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
