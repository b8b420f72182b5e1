//! The models the device runs: the face detector and the recognition model with its card,
//! loaded once at start-up and shared by every stage that needs them.

use crate::align::Aligner;
use crate::embed::{EmbedError, Embedder, TractEmbedder};
use facegate_contract::ModelCard;
use facegate_contract::occlusion::RegionMap;
use facegate_detect::{DetectError, Detector, DetectorConfig};
use std::path::{Path, PathBuf};

/// Where the shipped models are found when the config names none: `$FACEGATE_MODELS`, else
/// `models/` in the working folder, else `models/` of the checkout the binary was built in.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEGATE_MODELS") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from("models");
    if here.join("default").is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
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
    /// Loads the card at `card_path` (the shipped default when `None`), its model through tract,
    /// and the detector from `models_dir()/detector`.
    pub fn load(card_path: Option<&Path>, detector: DetectorConfig) -> Result<Self, ModelError> {
        let card_path = card_path.map_or_else(default_card, Path::to_owned);
        let card = ModelCard::load(&card_path).map_err(EmbedError::from)?;
        let embedder = TractEmbedder::load(&card, &card_path, 1)?;
        let dir = models_dir().join("detector");
        let detector = Detector::load(&dir, detector)
            .map_err(|source| ModelError::Detector { dir, source })?;
        Ok(Self {
            aligner: Aligner::new(&card),
            regions: RegionMap::from_card(&card),
            embedder: Box::new(embedder),
            detector,
            card,
            card_path,
        })
    }
}
