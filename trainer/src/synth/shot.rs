//! One photograph's conditions: pose, expression, light, background and camera. These change
//! from photo to photo of the same person; what the model must learn to ignore.

use super::identity::linear;
use super::rng::Rng;

/// A background: a two-colour gradient with a few blurry shapes in front of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    /// Colour at the top and at the bottom (linear RGB).
    pub gradient: ([f32; 3], [f32; 3]),
    /// Discs: centre (photo fraction), radius (photo fraction), colour.
    pub blobs: Vec<(f32, f32, f32, [f32; 3])>,
}

/// How much the photo varies: a training set varies the most, a gallery photo the least.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variation {
    /// Largest yaw, pitch and roll, in degrees.
    pub pose_deg: (f32, f32, f32),
    /// Scale of expression, light and camera changes (0: studio, 1: full range).
    pub amount: f32,
}

impl Variation {
    /// The range used for training and test photos.
    pub const WILD: Self = Self {
        pose_deg: (30.0, 15.0, 10.0),
        amount: 1.0,
    };
    /// A frontal, neutral, evenly lit photo (tests and enrollment pictures).
    pub const FRONTAL: Self = Self {
        pose_deg: (0.0, 0.0, 0.0),
        amount: 0.0,
    };
}

/// Everything about one photo that is not the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// Head rotation about the vertical, horizontal and viewing axes, radians.
    pub yaw: f32,
    /// Nod (positive: chin down).
    pub pitch: f32,
    /// In-plane tilt.
    pub roll: f32,
    /// Head half-width in photo pixels.
    pub scale: f32,
    /// Head centre offset from the photo centre, pixels.
    pub offset: (f32, f32),
    /// Smile (0..1).
    pub smile: f32,
    /// Open mouth (0..1).
    pub mouth_open: f32,
    /// Eye opening (0 shut .. 1 open).
    pub eyes_open: f32,
    /// Brow raise, head units.
    pub brow_raise: f32,
    /// Unit vector towards the key light (view space, z towards the camera).
    pub light: [f32; 3],
    /// Key light strength and ambient level.
    pub light_levels: (f32, f32),
    /// Colour of the light (multiplies albedo).
    pub tint: [f32; 3],
    /// The background.
    pub background: Background,
    /// Shirt colour.
    pub shirt: [f32; 3],
    /// Gaussian blur sigma in photo pixels (focus, motion).
    pub blur: f32,
    /// Sensor noise standard deviation, 0..255 units.
    pub noise: f32,
    /// Exposure multiplier.
    pub exposure: f32,
}

impl Shot {
    /// Draws a photo's conditions with the given variation, for a photo `size` pixels square.
    pub fn sample(rng: &mut Rng, variation: Variation, size: u32) -> Self {
        let a = variation.amount;
        let (yaw, pitch, roll) = variation.pose_deg;
        let deg = std::f32::consts::PI / 180.0;
        let colour = |rng: &mut Rng| linear([0.0; 3].map(|_: f32| rng.range(20.0, 235.0)));
        let gradient = if a == 0.0 {
            let grey = linear([200.0; 3]);
            (grey, grey)
        } else {
            (colour(rng), colour(rng))
        };
        let blobs = (0..(rng.below(6) as f32 * a) as usize)
            .map(|_| {
                (
                    rng.range(0.0, 1.0),
                    rng.range(0.0, 1.0),
                    rng.range(0.05, 0.3),
                    colour(rng),
                )
            })
            .collect();
        let (lx, ly) = (rng.range(-0.8, 0.8) * a, rng.range(-0.7, 0.4) * a);
        let lz = (1.0 - lx * lx - ly * ly).max(0.05).sqrt();
        let warm = rng.range(-0.12, 0.12) * a;
        let s = size as f32;
        Self {
            yaw: rng.range(-yaw, yaw) * deg,
            pitch: rng.range(-pitch, pitch) * deg,
            roll: rng.range(-roll, roll) * deg,
            scale: s * rng.range(0.22, 0.22 + 0.05 * a.max(0.2)),
            offset: (
                rng.range(-0.05, 0.05) * s * a,
                rng.range(-0.04, 0.04) * s * a,
            ),
            smile: if rng.chance(0.5 * a) {
                rng.range(0.2, 1.0)
            } else {
                0.0
            },
            mouth_open: if rng.chance(0.25 * a) {
                rng.range(0.2, 1.0)
            } else {
                0.0
            },
            eyes_open: if rng.chance(0.08 * a) {
                rng.range(0.0, 0.3)
            } else {
                1.0 - rng.range(0.0, 0.3) * a
            },
            brow_raise: rng.range(-0.03, 0.06) * a,
            light: [lx, ly, lz],
            light_levels: (rng.range(0.55, 0.9), rng.range(0.25, 0.45)),
            tint: [1.0 + warm, 1.0, 1.0 - warm],
            background: Background { gradient, blobs },
            shirt: colour(rng),
            blur: rng.range(0.0, 1.3) * a,
            noise: rng.range(1.0, 8.0) * a,
            exposure: 1.0 + rng.range(-0.25, 0.25) * a,
        }
    }
}
