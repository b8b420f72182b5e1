//! MTCNN (Zhang et al. 2016), as PyPI `mtcnn` 1.0.0 runs it: P-Net over an image pyramid
//! proposes boxes, R-Net refines them on 24x24 patches, O-Net on 48x48 patches scores them
//! finally and places the 5 landmarks.

use crate::boxes::{Candidate, Overlap, nms};
use crate::nets::{Net, NetError};
use facegate_contract::align::{Landmarks5, Point, sample_bilinear};
use image::RgbImage;
use image::imageops::FilterType;
use std::path::Path;

/// The detector's settings; the defaults are MTCNN's published ones.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Smallest face side, in pixels, that the pyramid looks for.
    pub min_face: f32,
    /// Ratio between pyramid levels.
    pub scale_factor: f32,
    /// Face probability a box needs to pass P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// Largest image side accepted; larger images are an error, not a slow surprise.
    pub max_side: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            min_face: 20.0,
            scale_factor: 0.709,
            thresholds: [0.6, 0.7, 0.8],
            max_side: 8192,
        }
    }
}

/// A face found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// The face box, clipped to the image.
    pub bbox: Candidate,
    /// O-Net's face probability.
    pub score: f32,
    /// Eyes, nose tip and mouth corners, in the contract's order.
    pub landmarks: Landmarks5,
}

/// Why detection failed (never "no face": that is an empty list).
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A network could not be loaded or run.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The image is too small or too large for the detector.
    #[error("image of {width}x{height} pixels: {expected}")]
    ImageSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// What was expected.
        expected: String,
    },
}

/// The loaded MTCNN: three networks and the settings. Safe to share between threads.
pub struct Detector {
    pnet: Net,
    rnet: Net,
    onet: Net,
    config: DetectorConfig,
}

const PNET_CELL: f32 = 12.0;
const PNET_STRIDE: f32 = 2.0;
/// Patches per R-Net / O-Net batch.
const CHUNK: usize = 16;

fn normalise(v: f32) -> f32 {
    (v - 127.5) / 128.0
}

impl Detector {
    /// Loads pnet.onnx, rnet.onnx and onet.onnx from `dir` (models/detector in the repository).
    pub fn load(dir: &Path, config: DetectorConfig) -> Result<Self, DetectError> {
        Ok(Self {
            pnet: Net::load(dir, "pnet", 2)?,
            rnet: Net::load(dir, "rnet", 2)?,
            onet: Net::load(dir, "onet", 3)?,
            config,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Every face in `image`, best first.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        let (w, h) = image.dimensions();
        let min_side = self.config.min_face.max(PNET_CELL);
        if (w as f32) < min_side || (h as f32) < min_side || w.max(h) > self.config.max_side {
            return Err(DetectError::ImageSize {
                width: w,
                height: h,
                expected: format!(
                    "sides between {min_side} and {} pixels",
                    self.config.max_side
                ),
            });
        }
        let proposals = self.propose(image)?;
        let refined = self.refine(image, &proposals)?;
        self.output(image, &refined)
    }

    /// Stage 1: P-Net over the pyramid.
    fn propose(&self, image: &RgbImage) -> Result<Vec<Candidate>, DetectError> {
        let (w, h) = image.dimensions();
        let mut all = Vec::new();
        let mut scale = PNET_CELL / self.config.min_face;
        while w.min(h) as f32 * scale >= PNET_CELL {
            let (sw, sh) = (
                (w as f32 * scale).ceil() as u32,
                (h as f32 * scale).ceil() as u32,
            );
            let scaled = image::imageops::resize(image, sw, sh, FilterType::Triangle);
            let plane = (sw * sh) as usize;
            let mut input = vec![0.0f32; 3 * plane];
            for (i, p) in scaled.pixels().enumerate() {
                for c in 0..3 {
                    input[c * plane + i] = normalise(p.0[c] as f32);
                }
            }
            let out = self.pnet.run([1, 3, sh as usize, sw as usize], input)?;
            let (reg, prob) = (&out[0].data, &out[1].data);
            let mw = out[1].shape[3];
            let mplane = prob.len() / 2;
            let mut level = Vec::new();
            for i in 0..mplane {
                let score = prob[mplane + i];
                if score <= self.config.thresholds[0] {
                    continue;
                }
                let (mx, my) = ((i % mw) as f32, (i / mw) as f32);
                let (ux, uy) = (mx * PNET_STRIDE + 1.0, my * PNET_STRIDE + 1.0);
                let (bx, by) = (mx * PNET_STRIDE + PNET_CELL, my * PNET_STRIDE + PNET_CELL);
                let side = PNET_CELL - 1.0;
                let r = |k: usize| reg[k * mplane + i];
                level.push(Candidate {
                    x1: (ux + r(0) * side) / scale,
                    y1: (uy + r(1) * side) / scale,
                    x2: (bx + r(2) * side) / scale,
                    y2: (by + r(3) * side) / scale,
                    score,
                });
            }
            all.extend(
                nms(&level, 0.5, Overlap::Union)
                    .into_iter()
                    .map(|k| level[k]),
            );
            scale *= self.config.scale_factor;
        }
        Ok(nms(&all, 0.7, Overlap::Union)
            .into_iter()
            .map(|k| all[k].squared())
            .collect())
    }

    /// Stage 2: R-Net on 24x24 patches.
    fn refine(&self, image: &RgbImage, boxes: &[Candidate]) -> Result<Vec<Candidate>, DetectError> {
        let mut kept = Vec::new();
        for chunk in boxes.chunks(CHUNK) {
            let out = self
                .rnet
                .run([chunk.len(), 3, 24, 24], patches(image, chunk, 24))?;
            for (k, b) in chunk.iter().enumerate() {
                let score = out[1].data[2 * k + 1];
                if score > self.config.thresholds[1] {
                    let reg = [0, 1, 2, 3].map(|j| out[0].data[4 * k + j]);
                    kept.push(Candidate { score, ..*b }.regressed(reg));
                }
            }
        }
        Ok(nms(&kept, 0.7, Overlap::Union)
            .into_iter()
            .map(|k| kept[k].squared())
            .collect())
    }

    /// Stage 3: O-Net on 48x48 patches: final score, box and landmarks.
    fn output(&self, image: &RgbImage, boxes: &[Candidate]) -> Result<Vec<Face>, DetectError> {
        let mut faces = Vec::new();
        for chunk in boxes.chunks(CHUNK) {
            let out = self
                .onet
                .run([chunk.len(), 3, 48, 48], patches(image, chunk, 48))?;
            for (k, b) in chunk.iter().enumerate() {
                let score = out[2].data[2 * k + 1];
                if score <= self.config.thresholds[2] {
                    continue;
                }
                let (bw, bh) = (b.x2 - b.x1 + 1.0, b.y2 - b.y1 + 1.0);
                let marks = &out[1].data[10 * k..10 * k + 10];
                let landmarks = Landmarks5(std::array::from_fn(|j| {
                    Point::new(bw * marks[j] + b.x1 - 1.0, bh * marks[5 + j] + b.y1 - 1.0)
                }));
                let reg = [0, 1, 2, 3].map(|j| out[0].data[4 * k + j]);
                faces.push(Face {
                    bbox: Candidate { score, ..*b }.regressed(reg),
                    score,
                    landmarks,
                });
            }
        }
        let boxes: Vec<Candidate> = faces.iter().map(|f| f.bbox).collect();
        let (w, h) = (image.width() as f32 - 1.0, image.height() as f32 - 1.0);
        Ok(nms(&boxes, 0.7, Overlap::Min)
            .into_iter()
            .map(|k| {
                let mut face = faces[k].clone();
                let b = &mut face.bbox;
                (b.x1, b.x2) = (b.x1.clamp(0.0, w), b.x2.clamp(0.0, w));
                (b.y1, b.y2) = (b.y1.clamp(0.0, h), b.y2.clamp(0.0, h));
                face
            })
            .collect())
    }
}

/// The boxes' contents resampled to `size` x `size`, normalised, NCHW.
fn patches(image: &RgbImage, boxes: &[Candidate], size: usize) -> Vec<f32> {
    let plane = size * size;
    let mut data = vec![0.0f32; boxes.len() * 3 * plane];
    let step = |a: f32, b: f32| (b - a) as f64 / (size - 1) as f64;
    for (n, b) in boxes.iter().enumerate() {
        let (sx, sy) = (step(b.x1, b.x2), step(b.y1, b.y2));
        for j in 0..size {
            for i in 0..size {
                let rgb = sample_bilinear(
                    image,
                    b.x1 as f64 + i as f64 * sx,
                    b.y1 as f64 + j as f64 * sy,
                );
                for (c, v) in rgb.into_iter().enumerate() {
                    data[(n * 3 + c) * plane + j * size + i] = normalise(v);
                }
            }
        }
    }
    data
}
