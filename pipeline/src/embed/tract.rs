//! The CPU embedder: the model card's ONNX file through tract, loaded and optimised once.

use super::{EmbedError, Embedder, Embedding};
use facegate_contract::card::TensorLayout;
use facegate_contract::similarity::normalize;
use facegate_contract::{AlignedFace, ModelCard};
use std::path::Path;
use tract_onnx::prelude::*;

type Plan = std::sync::Arc<TypedRunnableModel>;

/// The tract-onnx [`Embedder`]: one optimised plan for a single `1 x 3 x H x W` face.
#[derive(Debug)]
pub struct TractEmbedder {
    plan: Plan,
    width: u32,
    height: u32,
    dim: usize,
    maps_len: usize,
}

/// Which implementations of `Elu` and `TopK` the plan uses (the outputs are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The device's single-pass kernels ([`super::kernels`]): what the device runs.
    Fused,
    /// tract's own operators, for `facegate bench` to show the difference.
    Stock,
}

impl TractEmbedder {
    /// Loads the model the card at `card_path` describes, after checking the card, the model's
    /// hash and that the model's outputs have the shapes the card promises; runs on `threads`
    /// threads (1: on the caller's thread only).
    pub fn load(card: &ModelCard, card_path: &Path, threads: usize) -> Result<Self, EmbedError> {
        Self::load_with(card, card_path, Kernels::Fused, threads)
    }

    /// [`TractEmbedder::load`] with a choice of kernels.
    pub fn load_with(
        card: &ModelCard,
        card_path: &Path,
        kernels: Kernels,
        threads: usize,
    ) -> Result<Self, EmbedError> {
        let model_path = super::verified_model(card, card_path)?;
        let fail = |message: String| EmbedError::Model {
            path: model_path.clone(),
            message,
        };
        if card.input.layout != TensorLayout::Nchw || card.outputs.maps.layout != TensorLayout::Nchw
        {
            return Err(fail("only NCHW inputs and maps are supported".into()));
        }
        let (w, h) = (card.input.width, card.input.height);
        let parser = match kernels {
            Kernels::Fused => super::kernels::onnx(),
            Kernels::Stock => tract_onnx::onnx(),
        };
        let plan = parser
            .model_for_path(&model_path)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, h as usize, w as usize]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|mut m| {
                if kernels == Kernels::Fused {
                    super::kernels::select_topk(&mut m);
                }
                // More than one thread: tract splits its matrix products over a private pool.
                let options = RunOptions {
                    executor: (threads > 1).then(|| multithread::Executor::multithread(threads)),
                    ..RunOptions::default()
                };
                m.into_runnable_with_options(&options)
            })
            .map_err(|e| fail(format!("{e:#}")))?;
        let maps = &card.outputs.maps;
        let embedder = Self {
            plan,
            width: w,
            height: h,
            dim: card.outputs.feature.dim as usize,
            maps_len: (maps.channels * maps.height * maps.width) as usize,
        };
        // A model whose outputs differ from its card must fail here, not on the first visitor.
        let probe = AlignedFace {
            width: w,
            height: h,
            data: vec![0.0; (3 * w * h) as usize],
            transform: facegate_contract::SimilarityTransform::from_parts(1.0, 0.0, 0.0, 0.0),
        };
        embedder.embed(&probe).map_err(|e| fail(e.to_string()))?;
        Ok(embedder)
    }
}

impl Embedder for TractEmbedder {
    fn embed(&self, face: &AlignedFace) -> Result<Embedding, EmbedError> {
        super::check_face_size(face, self.width, self.height)?;
        let shape = [1, 3, self.height as usize, self.width as usize];
        let input = Tensor::from_shape(&shape, &face.data)
            .map_err(|e| EmbedError::Run(format!("{e:#}")))?;
        let out = self
            .plan
            .run(tvec![input.into_tvalue()])
            .map_err(|e| EmbedError::Run(format!("{e:#}")))?;
        let values = |i: usize, want: usize, what: &str| -> Result<Vec<f32>, EmbedError> {
            let t = out
                .get(i)
                .ok_or_else(|| EmbedError::Run(format!("the model has no {what} output")))?;
            let view = t
                .to_plain_array_view::<f32>()
                .map_err(|e| EmbedError::Run(format!("{what}: {e:#}")))?;
            let v: Vec<f32> = view.iter().copied().collect();
            if v.len() != want {
                return Err(EmbedError::Run(format!(
                    "{what} output has {} values, the card promises {want}",
                    v.len()
                )));
            }
            Ok(v)
        };
        let mut feature = values(0, self.dim, "feature")?;
        normalize(&mut feature);
        let maps = values(1, self.maps_len, "maps")?;
        Ok(Embedding { feature, maps })
    }

    fn runtime(&self) -> &'static str {
        "tract"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_give_the_outputs_of_one() {
        let card_path = crate::model::default_card();
        let card = ModelCard::load(&card_path).unwrap();
        let one = TractEmbedder::load(&card, &card_path, 1).unwrap();
        let two = TractEmbedder::load(&card, &card_path, 2).unwrap();
        // Split every product, however small, so the threaded path is what runs.
        multithread::set_threading_panel_threshold(0);
        let (w, h) = (card.input.width, card.input.height);
        let face = AlignedFace {
            width: w,
            height: h,
            data: (0..3 * w * h)
                .map(|i| ((i * 7919 % 255) as f32 / 127.5) - 1.0)
                .collect(),
            transform: facegate_contract::SimilarityTransform::from_parts(1.0, 0.0, 0.0, 0.0),
        };
        let (a, b) = (one.embed(&face).unwrap(), two.embed(&face).unwrap());
        let worst = |x: &[f32], y: &[f32]| {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max)
        };
        assert!(worst(&a.feature, &b.feature) < 1e-5);
        assert!(worst(&a.maps, &b.maps) < 1e-4);
        assert!(
            a.feature.iter().any(|v| v.abs() > 1e-3),
            "a non-trivial feature"
        );
    }
}
