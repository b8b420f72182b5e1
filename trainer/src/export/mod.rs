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
    let manifest = Manifest::load(&request.held_out)?;
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
