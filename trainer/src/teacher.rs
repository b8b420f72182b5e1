//! The teacher: a pretrained face embedder (MobileFaceNet by default) run through tract, whose
//! embeddings of the training crops the student learns to reproduce (knowledge distillation).
//!
//! Each crop is warped from its five landmarks to the 112x112 ArcFace template the teacher was
//! trained on and normalised as `(x - 127.5) / 128`. Embeddings are computed once per manifest
//! and cached beside it as `teacher-<sha256 prefix>.bin`, keyed by the teacher file's hash, so
//! a changed teacher never reuses another's numbers.

use crate::data::Manifest;
use facegate_contract::Point;
use facegate_contract::align::{AlignmentTemplate, Landmarks5, SimilarityTransform, warp_rgb};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// The teacher's input side.
pub const SIDE: usize = 112;
const MAGIC: &[u8; 8] = b"FGTEACH1";

/// Why the teacher could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    /// The model file could not be read or hashed.
    #[error("teacher {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// tract could not load or run the model.
    #[error("teacher {path}: {message}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What tract said.
        message: String,
    },
    /// A crop could not be embedded.
    #[error("teacher on {path}: {message}")]
    Crop {
        /// The crop.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The cache could not be written.
    #[error("cannot write the teacher cache {path}: {source}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A loaded teacher.
pub struct Teacher {
    path: PathBuf,
    sha256: String,
    plan: Arc<TypedRunnableModel>,
    dim: usize,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("dim", &self.dim)
            .finish()
    }
}

impl Teacher {
    /// Loads an ONNX embedder taking `1x3x112x112` RGB.
    pub fn load(path: &Path) -> Result<Self, TeacherError> {
        let sha256 =
            facegate_contract::fsutil::sha256_file(path).map_err(|source| TeacherError::Read {
                path: path.to_owned(),
                source,
            })?;
        let model_err = |e: TractError| TeacherError::Model {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(model_err)?
            .with_input_fact(0, f32::fact([1, 3, SIDE, SIDE]).into())
            .map_err(model_err)?
            .into_optimized()
            .map_err(model_err)?
            .into_runnable()
            .map_err(model_err)?;
        let mut teacher = Self {
            path: path.to_owned(),
            sha256,
            plan,
            dim: 0,
        };
        teacher.dim = teacher
            .run(&vec![0.0; 3 * SIDE * SIDE])
            .map_err(|message| TeacherError::Model {
                path: path.to_owned(),
                message,
            })?
            .len();
        Ok(teacher)
    }

    /// The model file's sha256 (hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The embedding's length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn run(&self, planes: &[f32]) -> Result<Vec<f32>, String> {
        let input =
            Tensor::from_shape(&[1, 3, SIDE, SIDE], planes).map_err(|e| format!("{e:#}"))?;
        let out = self
            .plan
            .run(tvec![input.into_tvalue()])
            .map_err(|e| format!("{e:#}"))?;
        let view = out
            .first()
            .ok_or("the teacher has no output")?
            .to_plain_array_view::<f32>()
            .map_err(|e| e.to_string())?;
        Ok(view.iter().copied().collect())
    }

    /// The teacher's unit-length embedding of an aligned crop with its five landmarks (in crop
    /// pixels; `None`: the crop is taken as facegate's template centred in it).
    pub fn embed(
        &self,
        crop: &image::RgbImage,
        landmarks: Option<&[Point; 5]>,
        template_input: u32,
    ) -> Result<Vec<f32>, String> {
        let arcface = AlignmentTemplate::square(SIDE as u32).points;
        let from = match landmarks {
            Some(points) => Landmarks5(*points),
            None => {
                AlignmentTemplate::square(template_input)
                    .centred_in(crop.width(), crop.height())
                    .points
            }
        };
        let transform =
            SimilarityTransform::estimate(&from.0, &arcface.0).map_err(|e| e.to_string())?;
        let warped =
            warp_rgb(crop, &transform, SIDE as u32, SIDE as u32).map_err(|e| e.to_string())?;
        let plane = SIDE * SIDE;
        let mut planes = vec![0.0; 3 * plane];
        for (i, px) in warped.pixels().enumerate() {
            for ch in 0..3 {
                planes[ch * plane + i] = (f32::from(px.0[ch]) - 127.5) / 128.0;
            }
        }
        let mut e = self.run(&planes)?;
        let norm = e.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        e.iter_mut().for_each(|v| *v /= norm);
        Ok(e)
    }
}

/// The teacher's embedding of every manifest entry, in entry order.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// Embedding length.
    pub dim: usize,
    /// One unit vector per entry (`None`: the crop could not be embedded).
    pub rows: Vec<Option<Vec<f32>>>,
}

/// The cache file for `manifest` and a teacher with this hash.
pub fn cache_path(manifest: &Path, sha256: &str) -> PathBuf {
    let prefix = sha256.get(..16).unwrap_or(sha256);
    manifest.with_file_name(format!("teacher-{prefix}.bin"))
}

fn read_cache(path: &Path) -> HashMap<String, Vec<f32>> {
    let mut out = HashMap::new();
    let Ok(bytes) = std::fs::read(path) else {
        return out;
    };
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return out;
    };
    let Some((dim, mut rest)) = rest.split_first_chunk::<4>() else {
        return out;
    };
    let dim = u32::from_le_bytes(*dim) as usize;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len));
        if tail.len() < len + 4 * dim {
            break;
        }
        let (name, tail) = tail.split_at(len);
        let (values, tail) = tail.split_at(4 * dim);
        let v = values
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(String::from_utf8_lossy(name).into_owned(), v);
        rest = tail;
    }
    out
}

/// The teacher's embeddings of `manifest`'s crops (stored `source_size` square, made for a
/// `input_size` network), from the cache where it has them; the others are computed (with a
/// progress bar when `progress`) and the cache rewritten atomically.
pub fn targets(
    teacher: &Teacher,
    manifest_path: &Path,
    manifest: &Manifest,
    input_size: u32,
    progress: bool,
) -> Result<Targets, TeacherError> {
    let cache = cache_path(manifest_path, teacher.sha256());
    let base = manifest_path.parent().unwrap_or_else(|| Path::new(""));
    let key = |p: &Path| {
        p.strip_prefix(base)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut known = read_cache(&cache);
    known.retain(|_, v| v.len() == teacher.dim());
    let missing: Vec<usize> = (0..manifest.entries.len())
        .filter(|&i| !known.contains_key(&key(&manifest.entries[i].path)))
        .collect();
    if !missing.is_empty() {
        let bar = if progress {
            indicatif::ProgressBar::new(missing.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_message("teacher embeddings");
        let computed: Vec<(String, Option<Vec<f32>>)> = missing
            .par_iter()
            .map(|&i| {
                let entry = &manifest.entries[i];
                let e = image::open(&entry.path).ok().and_then(|img| {
                    let img = img.into_rgb8();
                    let points = entry
                        .landmarks
                        .as_deref()
                        .and_then(crate::data::five_points);
                    teacher.embed(&img, points.as_ref(), input_size).ok()
                });
                bar.inc(1);
                (key(&entry.path), e)
            })
            .collect();
        bar.finish_and_clear();
        for (name, e) in computed {
            if let Some(e) = e {
                known.insert(name, e);
            }
        }
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(teacher.dim() as u32).to_le_bytes());
        let mut names: Vec<&String> = known.keys().collect();
        names.sort();
        for name in names {
            let Ok(len) = u16::try_from(name.len()) else {
                continue;
            };
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            for v in &known[name] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        facegate_contract::fsutil::write_atomic(&cache, &bytes).map_err(|source| {
            TeacherError::Cache {
                path: cache.clone(),
                source,
            }
        })?;
    }
    Ok(Targets {
        dim: teacher.dim(),
        rows: manifest
            .entries
            .iter()
            .map(|e| known.get(&key(&e.path)).cloned())
            .collect(),
    })
}
