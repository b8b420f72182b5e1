//! Export: a finished run becomes the ONNX file the device runs, plus its model card.
//!
//! Position: after training. The network is folded (BatchNorm into convs), written as ONNX
//! (`onnx`), run by tract-onnx and compared with burn on held-out faces (`verify`; nothing is
//! written unless both outputs agree within 1e-4), measured for its peak-location map, and
//! described by its card (`card`). Files are written atomically, the ONNX file first.

pub mod card;
pub mod onnx;
pub mod verify;

use crate::data::{FaceSet, Manifest, ManifestError};
use crate::measure::{PeakMap, peak_map};
use crate::train::{TrainedError, TrainedModel};
use burn::prelude::*;
use facegate_contract::CardError;
use facegate_contract::fsutil::{sha256_bytes, write_atomic};
use std::path::{Path, PathBuf};
pub use verify::{Agreement, TOLERANCE};

/// Faces compared between burn and tract before anything is written.
const VERIFY_FACES: usize = 16;
/// Faces per forward pass while measuring the peak map.
const MEASURE_BATCH: usize = 32;

/// What to export and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// A finished run folder (`model.json`, `model.bpk`).
    pub run_dir: PathBuf,
    /// Manifest of held-out aligned crops (not trained on) for the peak map and the check.
    pub held_out: PathBuf,
    /// The ONNX file to write; the card goes beside it as `<stem>.card.json`.
    pub out: PathBuf,
    /// The card's model id; by default the file stem and the first 12 hex digits of its hash.
    pub model_id: Option<String>,
    /// Whether the training and held-out faces are generated (recorded in the card).
    pub synthetic: bool,
    /// Keep only the held-out manifest's people named by these folds of the `pairs.csv`
    /// beside it (LFW: the people training left out).
    pub held_out_folds: Option<Vec<u32>>,
    /// A TOML file with the card's provenance (data, teacher name/licence/training data,
    /// caveats); the teacher's hash comes from the run.
    pub provenance: Option<PathBuf>,
}

/// The provenance file as written by hand.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceFile {
    data: String,
    #[serde(default)]
    caveats: Vec<String>,
    teacher: Option<TeacherFile>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TeacherFile {
    name: String,
    licence: String,
    training_data: String,
}

/// The card's provenance from `path`, checked against the run's teacher.
fn provenance(
    path: &Path,
    trained: &TrainedModel,
) -> Result<facegate_contract::card::Provenance, ExportError> {
    use facegate_contract::card::{Provenance, TeacherProvenance};
    let bad = |message: String| ExportError::Provenance {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let file: ProvenanceFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let teacher = match (file.teacher, &trained.teacher) {
        (Some(t), Some(run)) => Some(TeacherProvenance {
            name: t.name,
            sha256: run.sha256.clone(),
            licence: t.licence,
            training_data: t.training_data,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(bad(
                "names a teacher, but the run distilled from none".into()
            ));
        }
        (None, Some(run)) => {
            return Err(bad(format!(
                "the run distilled from {} ({}): add a [teacher] section",
                run.path.display(),
                run.sha256
            )));
        }
    };
    Ok(Provenance {
        data: file.data,
        teacher,
        caveats: file.caveats,
    })
}

/// What an export wrote and measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The ONNX file.
    pub onnx: PathBuf,
    /// The model card.
    pub card: PathBuf,
    /// SHA-256 of the ONNX file.
    pub sha256: String,
    /// burn vs tract on held-out faces.
    pub agreement: Agreement,
    /// The measured peak-location map.
    pub peaks: PeakMap,
    /// Held-out images that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The run folder holds no usable trained network.
    #[error(transparent)]
    Trained(#[from] TrainedError),
    /// The held-out manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The provenance file is unusable.
    #[error("provenance {path}: {message}")]
    Provenance {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No held-out face could be used.
    #[error("held-out manifest {path}: no usable face ({skipped} skipped)")]
    NoFaces {
        /// The manifest.
        path: PathBuf,
        /// Images skipped.
        skipped: usize,
    },
    /// The output path is not a `.onnx` file name.
    #[error("--out {path}: expected a file name ending in .onnx")]
    OutPath {
        /// The path given.
        path: PathBuf,
    },
    /// tract could not load or run the written graph.
    #[error("tract-onnx could not run the exported graph: {0}")]
    Tract(String),
    /// The graph computes something else than the network.
    #[error(
        "the exported graph disagrees with the network on {} faces: max |diff| feature {:e}, maps {:e} (tolerance {TOLERANCE:e}); nothing written",
        .0.faces, .0.feature, .0.maps
    )]
    Disagree(Agreement),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The card came out inconsistent (a bug, reported rather than shipped).
    #[error("the model card is inconsistent: {}", .0.join("; "))]
    Card(Vec<String>),
    /// The card could not be saved.
    #[error(transparent)]
    SaveCard(#[from] CardError),
}

/// Where the card of the ONNX file `onnx` goes.
pub fn card_path(onnx: &Path) -> PathBuf {
    let stem = onnx.file_stem().unwrap_or_default().to_string_lossy();
    onnx.with_file_name(format!("{stem}.card.json"))
}

/// Exports the run as `request` says.
pub fn export(request: &ExportRequest) -> Result<ExportReport, ExportError> {
    let out = &request.out;
    let file_name = match (out.extension(), out.file_name()) {
        (Some(ext), Some(name)) if ext == "onnx" => name.to_string_lossy().into_owned(),
        _ => return Err(ExportError::OutPath { path: out.clone() }),
    };
    let device = Device::flex();
    let (trained, net) = TrainedModel::load(&request.run_dir, &device)?;
    let mut manifest = Manifest::load(&request.held_out)?;
    if let Some(folds) = &request.held_out_folds {
        let pairs = request.held_out.with_file_name("pairs.csv");
        let kept =
            crate::data::fold_pairs(&pairs, folds).map_err(|message| ExportError::Provenance {
                path: pairs.clone(),
                message,
            })?;
        manifest = manifest.only_identities(&kept.people);
    }
    let provenance = match &request.provenance {
        Some(path) => Some(provenance(path, &trained)?),
        None => None,
    };
    let faces = FaceSet::centre_crops(&manifest, trained.data.source_size, trained.input_size);
    if faces.is_empty() {
        return Err(ExportError::NoFaces {
            path: request.held_out.clone(),
            skipped: faces.skipped.len(),
        });
    }

    let folded = net.folded(trained.mode);
    let doc = format!(
        "facegate face model ({:?} mode, width x{}, {}x{} input); card: {}",
        trained.mode,
        trained.width_multiplier,
        trained.input_size,
        trained.input_size,
        card_path(Path::new(&file_name)).display()
    );
    let bytes = onnx::to_bytes(&folded, &doc);
    let agreement = verify::compare(&bytes, &net, trained.mode, &faces, VERIFY_FACES)
        .map_err(ExportError::Tract)?;
    if !agreement.holds() {
        return Err(ExportError::Disagree(agreement));
    }

    let s = faces.size;
    let batches = faces
        .batches(MEASURE_BATCH)
        .map(|(n, pixels)| Tensor::<1>::from_floats(pixels, &device).reshape([n, 3, s, s]));
    let peaks = peak_map(&net, trained.mode, batches);

    let sha256 = sha256_bytes(&bytes);
    let model_id = request.model_id.clone().unwrap_or_else(|| {
        let stem = out.file_stem().unwrap_or_default().to_string_lossy();
        format!("{stem}-{}", &sha256[..12])
    });
    let facts = card::DataFacts {
        synthetic: request.synthetic,
        held_out_identities: manifest.num_classes() as u64,
        held_out_images: faces.len() as u64,
        held_out_description: format!(
            "manifest {}: centre {s}x{s} of each crop",
            request.held_out.display()
        ),
        provenance,
    };
    let model_card = card::build(
        &model_id, &file_name, &sha256, &trained, &folded, &peaks, &facts,
    );
    model_card.validate().map_err(ExportError::Card)?;

    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    write_atomic(out, &bytes).map_err(|source| ExportError::Write {
        path: out.clone(),
        source,
    })?;
    let card = card_path(out);
    model_card.save(&card)?;
    Ok(ExportReport {
        onnx: out.clone(),
        card,
        sha256,
        agreement,
        peaks,
        skipped: faces.skipped,
    })
}
