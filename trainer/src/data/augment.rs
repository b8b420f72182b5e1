//! Augmentation of real photos: horizontal flip, small scale and rotation jitter around the crop
//! window's centre, brightness, contrast and colour, blur and sensor noise, all drawn from the
//! step's seeded generator so a resumed run sees the same pictures.
//!
//! The paper trained without augmentation (on CASIA-WebFace, 494,414 photos); with the ten
//! thousand photos of LFW's training people a network memorises the photos within a few epochs
//! unless each pass shows them a little differently.

use facegate_contract::Normalisation;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::Deserialize;

/// How strongly photos are varied; `enabled = false` (the default) gives the paper's plain
/// random crops.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Whether anything below is applied.
    pub enabled: bool,
    /// Probability of a horizontal flip.
    pub flip: f32,
    /// Largest relative change of brightness (0.2: x0.8 .. x1.2).
    pub brightness: f32,
    /// Largest relative change of contrast around the crop's mean.
    pub contrast: f32,
    /// Largest relative change of each colour channel's gain.
    pub colour: f32,
    /// Largest relative change of scale (0.05: x0.95 .. x1.05).
    pub scale: f32,
    /// Largest rotation, in degrees either way.
    pub rotation_deg: f32,
    /// Probability of a 3x3 box blur.
    pub blur: f32,
    /// Largest standard deviation of Gaussian sensor noise, in 0..255 pixel units.
    pub noise: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            flip: 0.5,
            brightness: 0.25,
            contrast: 0.25,
            colour: 0.1,
            scale: 0.06,
            rotation_deg: 8.0,
            blur: 0.2,
            noise: 6.0,
        }
    }
}

impl AugmentConfig {
    /// Every value out of range, named by its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let strengths = [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("colour", self.colour),
            ("scale", self.scale),
        ];
        for (name, v) in strengths {
            if !(0.0..=0.5).contains(&v) {
                p.push(format!("augment.{name}: {v} must be between 0 and 0.5"));
            }
        }
        for (name, v) in [("flip", self.flip), ("blur", self.blur)] {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!(
                    "augment.{name}: {v} is a probability, between 0 and 1"
                ));
            }
        }
        if !(0.0..=30.0).contains(&self.rotation_deg) {
            p.push(format!(
                "augment.rotation_deg: {} must be between 0 and 30",
                self.rotation_deg
            ));
        }
        if !(0.0..=40.0).contains(&self.noise) {
            p.push(format!(
                "augment.noise: {} must be between 0 and 40",
                self.noise
            ));
        }
        p
    }

    /// One photo's variation; the identity when augmentation is off.
    pub fn draw(&self, rng: &mut StdRng) -> Draw {
        if !self.enabled {
            return Draw::IDENTITY;
        }
        let mut around = |r: f32| 1.0 + rng.random_range(-r..=r);
        let brightness = around(self.brightness);
        let contrast = around(self.contrast);
        let gains = [
            around(self.colour),
            around(self.colour),
            around(self.colour),
        ];
        let scale = around(self.scale);
        let angle = rng
            .random_range(-self.rotation_deg..=self.rotation_deg)
            .to_radians();
        Draw {
            flip: rng.random_bool(f64::from(self.flip)),
            scale,
            angle,
            brightness,
            contrast,
            gains,
            blur: rng.random_bool(f64::from(self.blur)),
            noise: rng.random_range(0.0..=self.noise),
            noise_seed: rng.random(),
        }
    }
}

/// One photo's drawn variation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Mirror left and right.
    pub flip: bool,
    /// Zoom (above 1: the face grows).
    pub scale: f32,
    /// Rotation, radians.
    pub angle: f32,
    /// Brightness factor.
    pub brightness: f32,
    /// Contrast factor around the crop's mean.
    pub contrast: f32,
    /// Per-channel gain.
    pub gains: [f32; 3],
    /// 3x3 box blur.
    pub blur: bool,
    /// Noise standard deviation, 0..255 units.
    pub noise: f32,
    /// Seed of the noise.
    pub noise_seed: u64,
}

impl Draw {
    /// No change: the plain crop.
    pub const IDENTITY: Self = Self {
        flip: false,
        scale: 1.0,
        angle: 0.0,
        brightness: 1.0,
        contrast: 1.0,
        gains: [1.0; 3],
        blur: false,
        noise: 0.0,
        noise_seed: 0,
    };

    /// The source pixel that output pixel `(x, y)` of a `crop`-sided window at `offset` shows.
    fn source_of(&self, x: f32, y: f32, crop: usize, offset: (usize, usize)) -> (f32, f32) {
        let c = (crop as f32 - 1.0) / 2.0;
        let (mut u, v) = (x - c, y - c);
        if self.flip {
            u = -u;
        }
        let (sin, cos) = self.angle.sin_cos();
        let su = (cos * u - sin * v) / self.scale;
        let sv = (sin * u + cos * v) / self.scale;
        (su + c + offset.0 as f32, sv + c + offset.1 as f32)
    }

    /// Where source point `(x, y)` lands in the output window (the inverse of `source_of`).
    pub fn output_of(&self, x: f32, y: f32, crop: usize, offset: (usize, usize)) -> (f32, f32) {
        let c = (crop as f32 - 1.0) / 2.0;
        let (su, sv) = (
            (x - c - offset.0 as f32) * self.scale,
            (y - c - offset.1 as f32) * self.scale,
        );
        let (sin, cos) = self.angle.sin_cos();
        let mut u = cos * su + sin * sv;
        let v = -sin * su + cos * sv;
        if self.flip {
            u = -u;
        }
        (u + c, v + c)
    }

    /// Appends the window of `image` at `offset`, varied as drawn, as three normalised planes
    /// (channel-major, values in [-1, 1]).
    pub fn render(
        &self,
        image: &image::RgbImage,
        offset: (usize, usize),
        crop: usize,
        out: &mut Vec<f32>,
    ) {
        let plane = crop * crop;
        let mut rgb = vec![[0f32; 3]; plane];
        let (w, h) = (image.width() as f32, image.height() as f32);
        for y in 0..crop {
            for x in 0..crop {
                let (sx, sy) = self.source_of(x as f32, y as f32, crop, offset);
                let sx = sx.clamp(0.0, w - 1.0);
                let sy = sy.clamp(0.0, h - 1.0);
                rgb[y * crop + x] = bilinear(image, sx, sy);
            }
        }
        if self.blur {
            rgb = box_blur(&rgb, crop);
        }
        let mean = rgb.iter().flatten().sum::<f32>() / (3 * plane) as f32;
        let mut noise = NoiseStream(self.noise_seed | 1);
        let norm = Normalisation::SYMMETRIC;
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        for (i, px) in rgb.iter().enumerate() {
            let mut v = [0f32; 3];
            for ch in 0..3 {
                let contrasted = (px[ch] - mean) * self.contrast + mean;
                let n = if self.noise > 0.0 {
                    noise.gaussian() * self.noise
                } else {
                    0.0
                };
                v[ch] = (contrasted * self.brightness * self.gains[ch] + n).clamp(0.0, 255.0);
            }
            for (ch, value) in norm.apply(v).into_iter().enumerate() {
                out[start + ch * plane + i] = value;
            }
        }
    }
}

fn bilinear(image: &image::RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let x1 = (x0 + 1).min(image.width() - 1);
    let y1 = (y0 + 1).min(image.height() - 1);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx, yy| image.get_pixel(xx, yy).0.map(f32::from);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    std::array::from_fn(|ch| {
        let top = a[ch] + (b[ch] - a[ch]) * fx;
        let bottom = c[ch] + (d[ch] - c[ch]) * fx;
        top + (bottom - top) * fy
    })
}

fn box_blur(rgb: &[[f32; 3]], side: usize) -> Vec<[f32; 3]> {
    let mut out = vec![[0f32; 3]; rgb.len()];
    for y in 0..side {
        for x in 0..side {
            let mut sum = [0f32; 3];
            let mut n = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(side) {
                for xx in x.saturating_sub(1)..(x + 2).min(side) {
                    for ch in 0..3 {
                        sum[ch] += rgb[yy * side + xx][ch];
                    }
                    n += 1.0;
                }
            }
            out[y * side + x] = sum.map(|s| s / n);
        }
    }
    out
}

/// A small deterministic Gaussian stream (xorshift + Box-Muller): the noise of one photo.
struct NoiseStream(u64);

impl NoiseStream {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gradient() -> image::RgbImage {
        image::RgbImage::from_fn(20, 20, |x, y| {
            image::Rgb([(x * 12) as u8, (y * 12) as u8, 90])
        })
    }

    #[test]
    fn identity_is_the_plain_crop() {
        let image = gradient();
        let mut out = Vec::new();
        Draw::IDENTITY.render(&image, (3, 2), 10, &mut out);
        let norm = Normalisation::SYMMETRIC;
        let expect = norm.apply(image.get_pixel(3 + 4, 2 + 5).0.map(f32::from));
        assert!((out[5 * 10 + 4] - expect[0]).abs() < 1e-6);
        assert!((out[100 + 5 * 10 + 4] - expect[1]).abs() < 1e-6);
    }

    #[test]
    fn flip_mirrors_and_points_follow_the_pixels() {
        let image = gradient();
        let flip = Draw {
            flip: true,
            ..Draw::IDENTITY
        };
        let (mut plain, mut flipped) = (Vec::new(), Vec::new());
        Draw::IDENTITY.render(&image, (0, 0), 10, &mut plain);
        flip.render(&image, (0, 0), 10, &mut flipped);
        assert_eq!(plain[3 * 10 + 2], flipped[3 * 10 + 7]);
        let turned = Draw {
            angle: 0.1,
            scale: 1.05,
            flip: true,
            ..Draw::IDENTITY
        };
        let (x, y) = turned.output_of(6.0, 7.0, 10, (2, 1));
        let back = turned.source_of(x, y, 10, (2, 1));
        assert!((back.0 - 6.0).abs() < 1e-4 && (back.1 - 7.0).abs() < 1e-4);
    }

    #[test]
    fn draws_repeat_with_the_seed_and_stay_in_range() {
        let cfg = AugmentConfig {
            enabled: true,
            ..AugmentConfig::default()
        };
        let a = cfg.draw(&mut StdRng::seed_from_u64(5));
        assert_eq!(a, cfg.draw(&mut StdRng::seed_from_u64(5)));
        let mut out = Vec::new();
        a.render(&gradient(), (1, 1), 16, &mut out);
        assert!(out.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(cfg.problems().is_empty());
        let bad = AugmentConfig {
            rotation_deg: 90.0,
            brightness: 0.9,
            ..cfg
        };
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    }
}
