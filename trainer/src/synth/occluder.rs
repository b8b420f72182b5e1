//! Things in front of a face: the natural occluders of the test sets (sunglasses, scarf, mask,
//! hand, hat) and the paper's black 32x12 window. Each is drawn per photo from its own stream,
//! so the same photo can be made with and without it.

use super::identity::{Identity, linear};
use super::rng::Rng;
use crate::train::Occluder;

/// Which occluder a set of photos carries: also the name of its test folder.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OcclusionKind {
    /// Nothing in front of the face.
    Clean,
    /// Dark glasses over both eyes.
    Sunglasses,
    /// A patterned scarf over mouth, chin and neck.
    Scarf,
    /// A medical mask from the nose down.
    Mask,
    /// A hand held in front of part of the face.
    Hand,
    /// A cap over hair and forehead.
    Hat,
    /// The paper's black 32x12 window at a random place in the 110x110 crop.
    Window,
}

impl OcclusionKind {
    /// Every kind, clean first.
    pub const ALL: [Self; 7] = [
        Self::Clean,
        Self::Sunglasses,
        Self::Scarf,
        Self::Mask,
        Self::Hand,
        Self::Hat,
        Self::Window,
    ];

    /// The natural occluders (not clean, not the window).
    pub const NATURAL: [Self; 5] = [
        Self::Sunglasses,
        Self::Scarf,
        Self::Mask,
        Self::Hand,
        Self::Hat,
    ];

    /// Folder and report name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Sunglasses => "sunglasses",
            Self::Scarf => "scarf",
            Self::Mask => "mask",
            Self::Hand => "hand",
            Self::Hat => "hat",
            Self::Window => "window",
        }
    }
}

/// One photo's occluder with its drawn shape and colours. Lengths are head units.
#[derive(Debug, Clone, PartialEq)]
pub enum Occlusion {
    /// Nothing.
    None,
    /// Lenses centred on the eyes.
    Sunglasses {
        /// Lens half-width and half-height.
        lens: (f32, f32),
        /// Superellipse exponent: 2 round .. 6 rectangular.
        roundness: f32,
        /// Lens colour (linear).
        tint: [f32; 3],
        /// Frame colour (linear).
        frame: [f32; 3],
    },
    /// A scarf whose top edge sits at `top` (head units below the head centre).
    Scarf {
        /// Top edge height.
        top: f32,
        /// Main and pattern colour.
        colours: ([f32; 3], [f32; 3]),
        /// Stripe period (head units) and direction (radians).
        stripes: (f32, f32),
    },
    /// A medical mask from just below the nose bridge to the chin.
    Mask {
        /// Top edge height at the centre.
        top: f32,
        /// Fabric colour.
        colour: [f32; 3],
    },
    /// A hand: palm centre in head units (face frame), rotation, size.
    Hand {
        /// Palm centre.
        centre: (f32, f32),
        /// Rotation of the hand, radians.
        angle: f32,
        /// Palm half-height.
        size: f32,
        /// Skin colour.
        skin: [f32; 3],
    },
    /// A cap whose lower edge sits at `edge`.
    Hat {
        /// Lower edge height (just above the brows).
        edge: f32,
        /// Fabric colour.
        colour: [f32; 3],
    },
    /// The paper's black window in the 110x110 crop frame (the trainer's own occluder).
    Window(Occluder),
}

impl Occlusion {
    /// Draws an occluder of `kind` for a photo of `person`.
    pub fn sample(kind: OcclusionKind, person: &Identity, rng: &mut Rng) -> Self {
        let fabric = |rng: &mut Rng| linear([0.0; 3].map(|_: f32| rng.range(15.0, 240.0)));
        match kind {
            OcclusionKind::Clean => Self::None,
            OcclusionKind::Sunglasses => Self::Sunglasses {
                lens: (
                    person.eye_size.0 * rng.range(1.5, 1.9),
                    rng.range(0.13, 0.19),
                ),
                roundness: rng.range(2.0, 6.0),
                tint: linear([
                    rng.range(5.0, 45.0),
                    rng.range(5.0, 40.0),
                    rng.range(5.0, 50.0),
                ]),
                frame: linear([0.0; 3].map(|_: f32| rng.range(5.0, 120.0))),
            },
            OcclusionKind::Scarf => Self::Scarf {
                top: person.mouth.0 - rng.range(0.05, 0.25),
                colours: (fabric(rng), fabric(rng)),
                stripes: (rng.range(0.12, 0.4), rng.range(0.0, std::f32::consts::PI)),
            },
            OcclusionKind::Mask => Self::Mask {
                top: person.nose.0 - rng.range(0.0, 0.12),
                colour: match rng.below(4) {
                    0 => linear([235.0, 235.0, 235.0]),
                    1 => linear([40.0, 40.0, 45.0]),
                    _ => linear([150.0, 190.0, 220.0]),
                },
            },
            OcclusionKind::Hand => Self::Hand {
                centre: (rng.range(-0.6, 0.6), rng.range(0.0, 0.9)),
                angle: rng.range(-0.8, 0.8),
                size: rng.range(0.38, 0.5),
                skin: person.skin.map(|v| v * rng.range(0.9, 1.1)),
            },
            OcclusionKind::Hat => Self::Hat {
                edge: person.eye_y - person.brow.0 - rng.range(0.08, 0.25),
                colour: fabric(rng),
            },
            OcclusionKind::Window => {
                let (xs, ys) = (Occluder::X_RANGE, Occluder::Y_RANGE);
                let x = xs.start() + rng.below(xs.end() - xs.start() + 1);
                let y = ys.start() + rng.below(ys.end() - ys.start() + 1);
                Self::Window(Occluder::window(x, y))
            }
        }
    }
}

/// Paints the window black into a crop of the template (any size: the window is given in the
/// 110x110 frame and scaled); other occluders are drawn by the renderer.
pub fn paint_window(crop: &mut image::RgbImage, occlusion: &Occlusion) {
    if let Occlusion::Window(window) = occlusion {
        let window = window.scaled_to(crop.width() as usize);
        for (i, j, pixel) in crop.enumerate_pixels_mut() {
            if window.covers(i as usize, j as usize) {
                *pixel = image::Rgb([0, 0, 0]);
            }
        }
    }
}
