//! Face alignment: 5 landmarks -> similarity transform -> bilinear warp -> normalised tensor.
//!
//! Pipeline position: between *detect* and *embed* on the device, and in data preparation on the
//! trainer. Both must produce bit-for-bit the same crop from the same landmarks, or the model sees
//! faces at the door unlike those it learnt from; that is why this lives in the contract crate.
//!
//! Coordinate convention (the same as OpenCV's `warpAffine`): pixel `(i, j)` has its centre at
//! `(x, y) = (i, j)`. Landmarks are given in that convention, in source-image pixels.
//!
//! The warp is written here rather than taken from `imageproc` because the device needs the
//! normalised `f32` planes straight from the sampler: warping to `u8` first would quantise.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// A point in pixel coordinates (pixel centres at integer positions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Column, growing to the right.
    pub x: f32,
    /// Row, growing downwards.
    pub y: f32,
}

impl Point {
    /// A point at `(x, y)`.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
}

/// The five landmarks a detector gives, in this fixed order: left eye, right eye, nose tip, left
/// mouth corner, right mouth corner ("left" meaning the image's left, as the camera sees it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Landmarks5(pub [Point; 5]);

impl Landmarks5 {
    /// The same landmarks after `transform` (e.g. in the aligned crop rather than the photo).
    pub fn transformed(&self, transform: &SimilarityTransform) -> Landmarks5 {
        Landmarks5(self.0.map(|p| {
            let (x, y) = transform.apply(p.x as f64, p.y as f64);
            Point::new(x as f32, y as f32)
        }))
    }
}

/// Where the five landmarks should land in the network's input frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignmentTemplate {
    /// Width of the frame the points are given in, in pixels.
    pub width: u32,
    /// Height of the frame the points are given in, in pixels.
    pub height: u32,
    /// Target positions, in the order of [`Landmarks5`].
    pub points: Landmarks5,
}

/// The widely used 5-point template of 112x112 face crops (InsightFace's `arcface_dst`).
const TEMPLATE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

impl AlignmentTemplate {
    /// facegate's template for a square `size` x `size` network input: the 112x112 InsightFace
    /// template scaled to the frame. At 96x96 the eyes sit near y = 44 and the mouth near y = 79,
    /// which puts the paper's six occlusion boxes (docs/method.md) over forehead, eyes, nose and
    /// mouth.
    pub fn square(size: u32) -> Self {
        let s = size as f32 / 112.0;
        let points = TEMPLATE_112.map(|[x, y]| Point::new(x * s, y * s));
        Self {
            width: size,
            height: size,
            points: Landmarks5(points),
        }
    }

    /// The same template placed in the centre of a larger `width` x `height` frame, as used for
    /// the trainer's 110x110 crops whose centre 96x96 is the network input.
    pub fn centred_in(&self, width: u32, height: u32) -> Self {
        let dx = (width as f32 - self.width as f32) / 2.0;
        let dy = (height as f32 - self.height as f32) / 2.0;
        let points = self.points.0.map(|p| Point::new(p.x + dx, p.y + dy));
        Self {
            width,
            height,
            points: Landmarks5(points),
        }
    }

    /// Checks that the frame is non-empty and every point is finite and inside it.
    pub fn check(&self) -> Result<(), AlignError> {
        if self.width == 0 || self.height == 0 {
            return Err(AlignError::EmptyFrame);
        }
        for (i, p) in self.points.0.iter().enumerate() {
            let inside = p.x.is_finite()
                && p.y.is_finite()
                && (0.0..self.width as f32).contains(&p.x)
                && (0.0..self.height as f32).contains(&p.y);
            if !inside {
                return Err(AlignError::PointOutsideFrame { index: i });
            }
        }
        Ok(())
    }
}

/// How `u8` pixel values become network inputs: `(value - mean) / std`, per RGB channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalisation {
    /// Subtracted from each channel (R, G, B).
    pub mean: [f32; 3],
    /// Divides each channel after the mean is removed (R, G, B); never zero.
    pub std: [f32; 3],
}

impl Normalisation {
    /// The method's normalisation: `x / 127.5 - 1`, mapping 0..=255 onto -1..=1.
    pub const SYMMETRIC: Self = Self {
        mean: [127.5; 3],
        std: [127.5; 3],
    };

    /// Normalises one RGB sample.
    pub fn apply(&self, rgb: [f32; 3]) -> [f32; 3] {
        [0, 1, 2].map(|c| (rgb[c] - self.mean[c]) / self.std[c])
    }
}

/// Why a face could not be aligned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    /// A landmark or template coordinate is NaN or infinite.
    #[error("landmark {index} is not a finite coordinate")]
    NonFiniteLandmark {
        /// Position in the 5-point order.
        index: usize,
    },
    /// All landmarks coincide, so no scale or rotation can be estimated.
    #[error("landmarks are degenerate (all at one point): no transform can be estimated")]
    DegenerateLandmarks,
    /// A frame of zero width or height was asked for.
    #[error("the frame has zero width or height")]
    EmptyFrame,
    /// A template point lies outside its own frame.
    #[error("template point {index} lies outside the template's frame")]
    PointOutsideFrame {
        /// Position in the 5-point order.
        index: usize,
    },
}

/// A 2-D similarity transform (rotation, uniform scale, translation, no reflection):
/// `x' = a x - b y + tx`, `y' = b x + a y + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarityTransform {
    /// `scale * cos(angle)`.
    pub a: f64,
    /// `scale * sin(angle)`.
    pub b: f64,
    /// Horizontal translation.
    pub tx: f64,
    /// Vertical translation.
    pub ty: f64,
}

impl SimilarityTransform {
    /// Builds the transform that scales by `scale`, rotates by `angle` radians (counter-clockwise
    /// in x-right/y-down pixel axes means clockwise on screen) and then translates by `(tx, ty)`.
    pub fn from_parts(scale: f64, angle: f64, tx: f64, ty: f64) -> Self {
        Self {
            a: scale * angle.cos(),
            b: scale * angle.sin(),
            tx,
            ty,
        }
    }

    /// Least-squares fit of the similarity mapping `src[i]` onto `dst[i]` (the closed form of
    /// Umeyama 1991 without reflection; the same objective as scikit-image's
    /// `SimilarityTransform.estimate`).
    pub fn estimate(src: &[Point; 5], dst: &[Point; 5]) -> Result<Self, AlignError> {
        for (i, p) in src.iter().chain(dst.iter()).enumerate() {
            if !(p.x.is_finite() && p.y.is_finite()) {
                return Err(AlignError::NonFiniteLandmark { index: i % 5 });
            }
        }
        let n = src.len() as f64;
        let mean = |pts: &[Point; 5]| {
            let (sx, sy) = pts
                .iter()
                .fold((0.0, 0.0), |(sx, sy), p| (sx + p.x as f64, sy + p.y as f64));
            (sx / n, sy / n)
        };
        let (mx, my) = mean(src);
        let (mu, mv) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (x, y) = (s.x as f64 - mx, s.y as f64 - my);
            let (u, v) = (d.x as f64 - mu, d.y as f64 - mv);
            num_a += x * u + y * v;
            num_b += x * v - y * u;
            den += x * x + y * y;
        }
        if den < 1e-12 {
            return Err(AlignError::DegenerateLandmarks);
        }
        let (a, b) = (num_a / den, num_b / den);
        Ok(Self {
            a,
            b,
            tx: mu - (a * mx - b * my),
            ty: mv - (b * mx + a * my),
        })
    }

    /// Maps a point through the transform.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        )
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// The rotation angle in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// The inverse transform, or `None` when the scale is zero.
    pub fn inverse(&self) -> Option<Self> {
        let s2 = self.a * self.a + self.b * self.b;
        if s2 < 1e-24 {
            return None;
        }
        let (a, b) = (self.a / s2, -self.b / s2);
        Some(Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }
}

/// An aligned face as the network takes it: RGB planes (channel-major, `3 x height x width`),
/// already normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedFace {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `3 * height * width` values, R plane first.
    pub data: Vec<f32>,
    /// The transform from source-image pixels to this face's pixels.
    pub transform: SimilarityTransform,
}

/// Aligns the face with `landmarks` in `image` to `template`, returning the normalised planes.
/// Areas that fall outside the source image are black (as OpenCV's constant border).
pub fn align_face(
    image: &RgbImage,
    landmarks: &Landmarks5,
    template: &AlignmentTemplate,
    norm: &Normalisation,
) -> Result<AlignedFace, AlignError> {
    template.check()?;
    let transform = SimilarityTransform::estimate(&landmarks.0, &template.points.0)?;
    let inverse = transform.inverse().ok_or(AlignError::DegenerateLandmarks)?;
    let (w, h) = (template.width, template.height);
    let plane = (w * h) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for j in 0..h {
        for i in 0..w {
            let (sx, sy) = inverse.apply(i as f64, j as f64);
            let rgb = norm.apply(sample_bilinear(image, sx, sy));
            let at = (j * w + i) as usize;
            for (c, v) in rgb.into_iter().enumerate() {
                data[c * plane + at] = v;
            }
        }
    }
    Ok(AlignedFace {
        width: w,
        height: h,
        data,
        transform,
    })
}

/// Warps `image` into a `width` x `height` picture through `src_to_dst`, for crops that are
/// stored (training data, heat-map backgrounds) rather than fed to the network.
pub fn warp_rgb(
    image: &RgbImage,
    src_to_dst: &SimilarityTransform,
    width: u32,
    height: u32,
) -> Result<RgbImage, AlignError> {
    if width == 0 || height == 0 {
        return Err(AlignError::EmptyFrame);
    }
    let inverse = src_to_dst
        .inverse()
        .ok_or(AlignError::DegenerateLandmarks)?;
    Ok(RgbImage::from_fn(width, height, |i, j| {
        let (sx, sy) = inverse.apply(i as f64, j as f64);
        image::Rgb(sample_bilinear(image, sx, sy).map(|v| v.round().clamp(0.0, 255.0) as u8))
    }))
}

/// Bilinear sample at `(x, y)`; neighbours outside the image count as black.
/// The colour of `image` at `(x, y)` (bilinear; outside the image counts as black), as 0..255
/// values. Shared with the detector's patch sampling, so both see the same pixels.
pub fn sample_bilinear(image: &RgbImage, x: f64, y: f64) -> [f32; 3] {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let mut out = [0.0f64; 3];
    for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
        for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
            let (px, py) = (x0 + dx, y0 + dy);
            let weight = wx * wy;
            if weight == 0.0
                || px < 0.0
                || py < 0.0
                || px >= image.width() as f64
                || py >= image.height() as f64
            {
                continue;
            }
            let p = image.get_pixel(px as u32, py as u32).0;
            for c in 0..3 {
                out[c] += weight * p[c] as f64;
            }
        }
    }
    out.map(|v| v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Landmarks that a known transform maps exactly onto the 96x96 template.
    fn landmarks_for(t: &SimilarityTransform, template: &AlignmentTemplate) -> Landmarks5 {
        let inv = t.inverse().unwrap();
        Landmarks5(template.points.0.map(|p| {
            let (x, y) = inv.apply(p.x as f64, p.y as f64);
            Point::new(x as f32, y as f32)
        }))
    }

    #[test]
    fn estimate_recovers_a_known_transform() {
        let template = AlignmentTemplate::square(96);
        let truth = SimilarityTransform::from_parts(0.4, 30f64.to_radians(), 12.0, -7.5);
        let lm = landmarks_for(&truth, &template);
        let got = SimilarityTransform::estimate(&lm.0, &template.points.0).unwrap();
        assert!(close(got.scale(), 0.4, 1e-5), "scale {}", got.scale());
        assert!(close(got.angle().to_degrees(), 30.0, 1e-3));
        assert!(
            close(got.tx, 12.0, 1e-3) && close(got.ty, -7.5, 1e-3),
            "{got:?}"
        );
    }

    #[test]
    fn estimate_is_least_squares_under_symmetric_noise() {
        // Identity plus noise that cancels in every moment the estimate uses: the fit is identity.
        let src = [
            Point::new(10.0, 10.0),
            Point::new(30.0, 10.0),
            Point::new(20.0, 20.0),
            Point::new(12.0, 30.0),
            Point::new(28.0, 30.0),
        ];
        let mut dst = src;
        dst[0].x += 0.5;
        dst[1].x -= 0.5;
        let t = SimilarityTransform::estimate(&src, &dst).unwrap();
        // By hand: both centroids are (20, 20); centred source points are (-10,-10), (10,-10),
        // (0,0), (-8,10), (8,10), so sum(x'^2 + y'^2) = 728. The noise e = (+0.5, -0.5) on the
        // first two x values gives num_a = 728 + (-10)(0.5) + (10)(-0.5) = 718 and
        // num_b = -sum(y' e) = -((-10)(0.5) + (-10)(-0.5)) = 0.
        assert!(close(t.a, 718.0 / 728.0, 1e-9), "a {}", t.a);
        assert!(close(t.b, 0.0, 1e-9), "b {}", t.b);
        assert!(close(t.tx, 20.0 - 20.0 * 718.0 / 728.0, 1e-9));
    }

    #[test]
    fn inverse_round_trips() {
        let t = SimilarityTransform::from_parts(2.5, -1.2, 3.0, 4.0);
        let inv = t.inverse().unwrap();
        let (x, y) = t.apply(17.0, -5.0);
        let (bx, by) = inv.apply(x, y);
        assert!(close(bx, 17.0, 1e-9) && close(by, -5.0, 1e-9));
    }

    #[test]
    fn degenerate_and_non_finite_landmarks_are_refused() {
        let template = AlignmentTemplate::square(96);
        let same = [Point::new(5.0, 5.0); 5];
        assert_eq!(
            SimilarityTransform::estimate(&same, &template.points.0),
            Err(AlignError::DegenerateLandmarks)
        );
        let mut bad = template.points.0;
        bad[3].y = f32::NAN;
        assert_eq!(
            SimilarityTransform::estimate(&bad, &template.points.0),
            Err(AlignError::NonFiniteLandmark { index: 3 })
        );
    }

    #[test]
    fn warp_of_an_affine_image_matches_the_known_transform() {
        // Bilinear interpolation reproduces an affine function of (x, y) exactly, so with
        // R = x, G = y, B = 255 - x every output pixel must hold the source coordinates that the
        // known (not the estimated) transform sends it to.
        let image = RgbImage::from_fn(200, 200, |x, y| {
            image::Rgb([x as u8, y as u8, 255 - x as u8])
        });
        let template = AlignmentTemplate::square(96);
        let truth = SimilarityTransform::from_parts(0.8, 10f64.to_radians(), -40.0, -50.0);
        let lm = landmarks_for(&truth, &template);
        let norm = Normalisation::SYMMETRIC;
        let face = align_face(&image, &lm, &template, &norm).unwrap();
        let inv = truth.inverse().unwrap();
        let plane = 96 * 96;
        let mut worst: f64 = 0.0;
        for j in 0..96u32 {
            for i in 0..96u32 {
                let (sx, sy) = inv.apply(i as f64, j as f64);
                assert!((0.0..198.0).contains(&sx) && (0.0..198.0).contains(&sy));
                let want = norm.apply([sx as f32, sy as f32, 255.0 - sx as f32]);
                for (c, w) in want.iter().enumerate() {
                    let got = face.data[c * plane + (j * 96 + i) as usize];
                    worst = worst.max((got - w).abs() as f64);
                }
            }
        }
        // 1e-4 in normalised units is 0.013 grey levels.
        assert!(worst < 1e-4, "worst {worst}");
        assert!(close(face.transform.scale(), 0.8, 1e-5));
    }

    #[test]
    fn bilinear_sampler_is_exact_on_an_affine_image() {
        let image = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 7]));
        let v = sample_bilinear(&image, 10.25, 20.75);
        assert!((v[0] - 20.5).abs() < 1e-5, "{v:?}");
        assert!((v[1] - 62.25).abs() < 1e-5, "{v:?}");
        assert!((v[2] - 7.0).abs() < 1e-5, "{v:?}");
        // Half a pixel outside the left edge: half the weight is black.
        let edge = sample_bilinear(&image, -0.5, 0.0);
        assert!((edge[2] - 3.5).abs() < 1e-5, "{edge:?}");
    }

    #[test]
    fn aligned_landmarks_land_on_the_template() {
        // A bright dot at each landmark must appear at the template position after alignment.
        let template = AlignmentTemplate::square(96);
        let truth = SimilarityTransform::from_parts(0.5, -20f64.to_radians(), 5.0, 8.0);
        let lm = landmarks_for(&truth, &template);
        let mut image = RgbImage::new(260, 260);
        let k = 0usize; // left eye
        let p = lm.0[k];
        for dy in -3i32..=3 {
            for dx in -3i32..=3 {
                let (x, y) = (p.x.round() as i32 + dx, p.y.round() as i32 + dy);
                image.put_pixel(x as u32, y as u32, image::Rgb([255, 255, 255]));
            }
        }
        let out = warp_rgb(&image, &truth, 96, 96).unwrap();
        let t = template.points.0[k];
        let centre = out.get_pixel(t.x.round() as u32, t.y.round() as u32).0;
        assert!(centre[0] > 200, "template point not bright: {centre:?}");
        let far = out.get_pixel((t.x as u32 + 20).min(95), t.y as u32).0;
        assert_eq!(far, [0, 0, 0]);
    }

    #[test]
    fn normalisation_maps_bytes_onto_minus_one_to_one() {
        let n = Normalisation::SYMMETRIC;
        assert_eq!(n.apply([0.0, 127.5, 255.0]), [-1.0, 0.0, 1.0]);
    }

    #[test]
    fn template_is_scaled_and_centred() {
        let t96 = AlignmentTemplate::square(96);
        assert!(close(
            t96.points.0[0].x as f64,
            38.2946 * 96.0 / 112.0,
            1e-4
        ));
        t96.check().unwrap();
        let t110 = t96.centred_in(110, 110);
        assert!(close(
            (t110.points.0[2].y - t96.points.0[2].y) as f64,
            7.0,
            1e-5
        ));
        let mut bad = t96.clone();
        bad.points.0[1].x = 200.0;
        assert_eq!(bad.check(), Err(AlignError::PointOutsideFrame { index: 1 }));
    }
}
