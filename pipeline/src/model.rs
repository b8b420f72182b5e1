//! The models the device runs: the face detector and the recognition model with its card,
//! loaded once at start-up and shared by every stage that needs them.

use crate::align::Aligner;
use crate::embed::{EmbedError, Embedder, TractEmbedder};
use crate::embed::{EmbedderConfig, TensorRtConfig};
use crate::liveness::{Liveness, LivenessConfig, LivenessError};
use facegate_contract::ModelCard;
use facegate_contract::occlusion::RegionMap;
use facegate_detect::{DetectError, Detector, DetectorConfig};
use std::path::{Path, PathBuf};

/// Where the shipped models are found when the config names none: `$FACEGATE_MODELS`, else
/// `models/` in the working folder, else beside the program: `share/facegate/models` of the
/// prefix it is installed in (`/usr/bin/facegate` -> `/usr/share/facegate/models`) or `models/`
/// of the checkout it was built in (`target/debug/facegate` -> `models/`). Nothing is fixed at
/// build time, so a binary copied to a board never looks for the build machine's folders.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEGATE_MODELS") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from("models");
    if here.join("default").is_dir() {
        return here;
    }
    beside_program().unwrap_or(here)
}

/// The models folder near the running program: up to five folders up (a test binary sits in
/// `target/<target>/debug/deps/`).
fn beside_program() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().skip(1).take(5).find_map(|dir| {
        [dir.join("share/facegate/models"), dir.join("models")]
            .into_iter()
            .find(|candidate| candidate.join("default").is_dir())
    })
}

/// The shipped default model's card.
pub fn default_card() -> PathBuf {
    models_dir().join("default/facegate.card.json")
}

/// Why the models could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The recognition model or its card.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The detector's networks.
    #[error("face detector in {dir}: {source}")]
    Detector {
        /// Folder of the detector's networks.
        dir: PathBuf,
        /// What failed.
        source: DetectError,
    },
    /// The liveness networks.
    #[error(transparent)]
    Liveness(#[from] LivenessError),
}

/// Everything loaded from the model files.
pub struct Models {
    /// The recognition model's card.
    pub card: ModelCard,
    /// Where the card was read from.
    pub card_path: PathBuf,
    /// The face detector.
    pub detector: Detector,
    /// Alignment to the card's template.
    pub aligner: Aligner,
    /// The recognition model.
    pub embedder: Box<dyn Embedder>,
    /// Which filter looks at which facial region.
    pub regions: RegionMap,
    /// The liveness check; `None` when the config turns it off.
    pub liveness: Option<Liveness>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("model_id", &self.card.model_id)
            .field("card_path", &self.card_path)
            .field("runtime", &self.embedder.runtime())
            .finish()
    }
}

impl Models {
    /// Loads the card at `card_path` (the shipped default when `None`), the detector from
    /// `models_dir()/detector`, the model through the runtime `embedder` names, and the
    /// liveness networks when `liveness` is given.
    pub fn load(
        card_path: Option<&Path>,
        detector: DetectorConfig,
        embedder: &EmbedderConfig,
        liveness: Option<&LivenessConfig>,
    ) -> Result<Self, ModelError> {
        let card_path = card_path.map_or_else(default_card, Path::to_owned);
        let card = ModelCard::load(&card_path).map_err(EmbedError::from)?;
        let dir = models_dir().join("detector");
        let detector = Detector::load(&dir, detector)
            .map_err(|source| ModelError::Detector { dir, source })?;
        let aligner = Aligner::new(&card);
        let embedder: Box<dyn Embedder> = match embedder {
            EmbedderConfig::Tract => Box::new(TractEmbedder::load(&card, &card_path, 1)?),
            EmbedderConfig::TensorRt(settings) => {
                gpu_embedder(&card, &card_path, settings, &detector, &aligner)?
            }
        };
        let liveness = liveness.map(Liveness::load).transpose()?;
        Ok(Self {
            aligner,
            liveness,
            regions: RegionMap::from_card(&card),
            embedder,
            detector,
            card,
            card_path,
        })
    }
}

#[cfg(feature = "tensorrt")]
fn gpu_embedder(
    card: &ModelCard,
    card_path: &Path,
    settings: &TensorRtConfig,
    detector: &Detector,
    aligner: &Aligner,
) -> Result<Box<dyn Embedder>, ModelError> {
    let calibration = match &settings.precision {
        crate::embed::TrtPrecision::Int8 { calibration } => {
            Some(calibration_faces(calibration, detector, aligner)?)
        }
        _ => None,
    };
    Ok(Box::new(crate::embed::tensorrt::TensorRtEmbedder::load(
        card,
        card_path,
        settings,
        calibration.as_deref(),
    )?))
}

#[cfg(not(feature = "tensorrt"))]
fn gpu_embedder(
    _: &ModelCard,
    card_path: &Path,
    _: &TensorRtConfig,
    _: &Detector,
    _: &Aligner,
) -> Result<Box<dyn Embedder>, ModelError> {
    Err(ModelError::Embed(EmbedError::Model {
        path: card_path.to_owned(),
        message: "[embedder] runtime = \"tensorrt\" needs a build with `--features tensorrt` \
                  (TensorRT and CUDA from JetPack); this build has tract only"
            .into(),
    }))
}

/// Most faces an INT8 calibration reads.
pub const MAX_CALIBRATION_FACES: usize = 500;

/// The inputs the model will see, from the photos in `dir` (by file name, at most
/// [`MAX_CALIBRATION_FACES`]): each photo's largest face, detected and aligned as at the door.
pub fn calibration_faces(
    dir: &Path,
    detector: &Detector,
    aligner: &Aligner,
) -> Result<Vec<f32>, ModelError> {
    let bad = |message: String| {
        ModelError::Embed(EmbedError::Model {
            path: dir.to_owned(),
            message,
        })
    };
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(format!("calibration folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    photos.sort();
    let mut faces = Vec::new();
    let mut used = 0;
    for photo in photos {
        if used == MAX_CALIBRATION_FACES {
            break;
        }
        let Ok(image) = crate::source::files::read_image(&photo) else {
            tracing::debug!("calibration: {} does not decode, skipped", photo.display());
            continue;
        };
        let found = detector.detect(&image).unwrap_or_default();
        let area = |f: &facegate_detect::Face| (f.bbox.x2 - f.bbox.x1) * (f.bbox.y2 - f.bbox.y1);
        let Some(face) = found.iter().max_by(|a, b| area(a).total_cmp(&area(b))) else {
            continue;
        };
        if let Ok(aligned) = aligner.align(&image, &face.landmarks) {
            faces.extend_from_slice(&aligned.input.data);
            used += 1;
        }
    }
    if used == 0 {
        return Err(bad("calibration folder: no photo with a face".into()));
    }
    tracing::info!("INT8 calibration on {used} faces from {}", dir.display());
    Ok(faces)
}
