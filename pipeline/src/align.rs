//! *align*: a detected face becomes the model's input, exactly as the model card prescribes.
//!
//! Pipeline position: after *detect*, before *quality* and *embed*. The warp itself is the shared
//! contract's (the trainer made its crops with it); this module binds it to one model's card and
//! also keeps an 8-bit crop for heat maps, snapshots and the sharpness check.

use facegate_contract::align::{AlignError, warp_rgb};
use facegate_contract::{AlignedFace, AlignmentTemplate, Landmarks5, ModelCard, Normalisation};
use image::RgbImage;

/// Aligns faces for one model.
#[derive(Debug, Clone)]
pub struct Aligner {
    template: AlignmentTemplate,
    norm: Normalisation,
}

/// A face aligned to the model's template.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// The network input (normalised planes) and the photo-to-crop transform.
    pub input: AlignedFace,
    /// The same crop as an 8-bit picture.
    pub crop: RgbImage,
}

impl Aligner {
    /// The aligner for the model `card` describes.
    pub fn new(card: &ModelCard) -> Self {
        Self {
            template: card.alignment.clone(),
            norm: card.input.normalisation,
        }
    }

    /// Aligns the face with `landmarks` in `image`.
    pub fn align(&self, image: &RgbImage, landmarks: &Landmarks5) -> Result<Aligned, AlignError> {
        let input =
            facegate_contract::align::align_face(image, landmarks, &self.template, &self.norm)?;
        let crop = warp_rgb(
            image,
            &input.transform,
            self.template.width,
            self.template.height,
        )?;
        Ok(Aligned { input, crop })
    }
}
