//! The GPU embedder: the model card's ONNX file as a TensorRT engine on the board's GPU
//! (cargo feature `tensorrt`; JetPack 6). The engine is built once and cached on disk under a
//! key of model hash, TensorRT version, GPU name and precision (`facegate_tensorrt::cache`).
//!
//! Not run on the machines facegate is developed on (no NVIDIA GPU, no TensorRT): compiled
//! there only as far as type-checking goes (`FACEGATE_TENSORRT_CHECK_ONLY=1`).

use super::{EmbedError, Embedder, Embedding};
use super::{TensorRtConfig, TrtPrecision};
use facegate_contract::similarity::normalize;
use facegate_contract::{AlignedFace, ModelCard};
use facegate_tensorrt::Precision;
use facegate_tensorrt::cache::{EngineCache, EngineKey};
use facegate_tensorrt::engine::{self, Calibration, Engine};
use std::path::Path;

/// The TensorRT [`Embedder`]: one engine, its buffers reused for every face.
#[derive(Debug)]
pub struct TensorRtEmbedder {
    engine: Engine,
    /// Index among the engine's tensors of the input, the feature and the maps.
    input: usize,
    feature: usize,
    maps: usize,
    width: u32,
    height: u32,
    precision: Precision,
}

impl TensorRtEmbedder {
    /// Loads (or builds and caches) the engine for the model the card at `card_path` describes.
    /// `calibration` holds the INT8 calibration faces, normalised inputs one after another.
    pub fn load(
        card: &ModelCard,
        card_path: &Path,
        settings: &TensorRtConfig,
        calibration: Option<&[f32]>,
    ) -> Result<Self, EmbedError> {
        let model_path = super::verified_model(card, card_path)?;
        let fail = |message: String| EmbedError::Model {
            path: model_path.clone(),
            message,
        };
        let (gpu, capability) = engine::gpu().map_err(|e| fail(e.to_string()))?;
        let asked = match settings.precision {
            TrtPrecision::Fp32 => Precision::Fp32,
            TrtPrecision::Fp16 => Precision::Fp16,
            TrtPrecision::Int8 { .. } => Precision::Int8,
        };
        let precision = asked.supported_on(capability);
        if precision != asked {
            tracing::warn!(
                "{gpu} (compute {}.{}) has no fast {}: building {}",
                capability / 10,
                capability % 10,
                asked.name(),
                precision.name()
            );
        }
        let key = EngineKey {
            model_sha256: card.model_file.sha256.clone(),
            tensorrt_version: engine::tensorrt_version(),
            gpu: gpu.clone(),
            precision,
        };
        let cache = EngineCache::new(&settings.engine_dir);
        let cached = cache.load(&key).map_err(|e| fail(e.to_string()))?;
        let engine = match cached.map(|plan| Engine::load(&plan)) {
            Some(Ok(engine)) => engine,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(
                        "cached engine {} unusable ({e}): rebuilding",
                        cache.path(&key).display()
                    );
                    cache.discard(&key).map_err(|e| fail(e.to_string()))?;
                }
                tracing::info!(
                    "building the TensorRT engine for {gpu}, {} (a few minutes, once)",
                    precision.name()
                );
                let onnx = std::fs::read(&model_path).map_err(|e| fail(e.to_string()))?;
                let input = [3, card.input.height, card.input.width];
                let faces = calibration.unwrap_or(&[]);
                let per_face = (3 * card.input.height * card.input.width) as usize;
                let calib = (precision == Precision::Int8).then_some(Calibration {
                    faces,
                    count: faces.len() / per_face.max(1),
                });
                let plan = engine::build(
                    &onnx,
                    input,
                    precision,
                    calib,
                    settings.workspace_mib as usize * 1024 * 1024,
                )
                .map_err(|e| fail(e.to_string()))?;
                for old in cache.store(&key, &plan).map_err(|e| fail(e.to_string()))? {
                    tracing::info!("removed the stale engine {}", old.display());
                }
                Engine::load(&plan).map_err(|e| fail(e.to_string()))?
            }
        };
        let find = |name: &str, input: bool, want: usize| -> Result<usize, EmbedError> {
            let tensors = engine.tensors();
            let i = tensors
                .iter()
                .position(|t| t.name == name && t.input == input)
                .ok_or_else(|| fail(format!("the engine has no {name} tensor")))?;
            if tensors[i].elements != want {
                return Err(fail(format!(
                    "{name} holds {} values, the card promises {want}",
                    tensors[i].elements
                )));
            }
            Ok(i)
        };
        let (w, h) = (card.input.width, card.input.height);
        let maps = &card.outputs.maps;
        let embedder = Self {
            input: find(&card.input.name, true, (3 * w * h) as usize)?,
            feature: find(
                &card.outputs.feature.name,
                false,
                card.outputs.feature.dim as usize,
            )?,
            maps: find(
                &maps.name,
                false,
                (maps.channels * maps.height * maps.width) as usize,
            )?,
            engine,
            width: w,
            height: h,
            precision,
        };
        tracing::info!(
            "TensorRT {} engine on {gpu}: {}",
            precision.name(),
            cache.path(&key).display()
        );
        Ok(embedder)
    }

    /// The arithmetic the engine was built for.
    pub fn precision(&self) -> Precision {
        self.precision
    }
}

impl Embedder for TensorRtEmbedder {
    fn embed(&self, face: &AlignedFace) -> Result<Embedding, EmbedError> {
        super::check_face_size(face, self.width, self.height)?;
        let mut buffers: Vec<Vec<f32>> = self
            .engine
            .tensors()
            .iter()
            .map(|t| vec![0.0; t.elements])
            .collect();
        if face.data.len() != buffers[self.input].len() {
            return Err(EmbedError::Run(format!(
                "aligned face holds {} values, the model takes {}",
                face.data.len(),
                buffers[self.input].len()
            )));
        }
        buffers[self.input].copy_from_slice(&face.data);
        let mut views: Vec<&mut [f32]> = buffers.iter_mut().map(Vec::as_mut_slice).collect();
        self.engine
            .run(&mut views)
            .map_err(|e| EmbedError::Run(e.to_string()))?;
        let mut feature = std::mem::take(&mut buffers[self.feature]);
        normalize(&mut feature);
        let maps = std::mem::take(&mut buffers[self.maps]);
        Ok(Embedding { feature, maps })
    }

    fn runtime(&self) -> &'static str {
        "tensorrt"
    }
}
