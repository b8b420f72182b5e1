//! A synthetic person: everything about a face that stays the same from photo to photo.
//!
//! Lengths are in head units: the head is an ellipsoid of half-width 1, `y` grows downwards and
//! `z` towards the camera. Everything is drawn from one seeded generator, so identity `i` of
//! seed `s` is the same person in every run.

use super::rng::Rng;

/// Hair on top of the head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HairStyle {
    /// No hair; the scalp is skin.
    Bald,
    /// Hair down to the hairline and over the sides above the ears.
    Short,
    /// As short, plus hair falling behind the head to the shoulders.
    Long,
}

/// One synthetic person's stable appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Half-height of the head ellipsoid (half-width is 1).
    pub head_height: f32,
    /// Depth of the head ellipsoid.
    pub head_depth: f32,
    /// Width of the jaw at the chin relative to the cheeks (0.3 pointed .. 0.8 square).
    pub jaw: f32,
    /// Skin albedo, linear RGB in [0, 1].
    pub skin: [f32; 3],
    /// Lip colour.
    pub lips: [f32; 3],
    /// Hair (and brow, beard) colour.
    pub hair: [f32; 3],
    /// Iris colour.
    pub iris: [f32; 3],
    /// Hair style.
    pub hair_style: HairStyle,
    /// Hairline height (negative: above the eyes).
    pub hairline: f32,
    /// Amplitude and phase of the hairline's wave (fringe shape).
    pub hairline_wave: (f32, f32),
    /// Eye centre height.
    pub eye_y: f32,
    /// Half the distance between the eye centres.
    pub eye_dx: f32,
    /// Eye half-width and half-height.
    pub eye_size: (f32, f32),
    /// Eye tilt (outer corners up when positive).
    pub eye_tilt: f32,
    /// Iris radius relative to the eye half-height.
    pub iris_size: f32,
    /// Brow gap above the eye centre, thickness, half-length and slant.
    pub brow: (f32, f32, f32, f32),
    /// Nose: tip height, half-width, length (bridge to tip) and how far the tip stands out.
    pub nose: (f32, f32, f32, f32),
    /// Mouth height, half-width, upper and lower lip thickness.
    pub mouth: (f32, f32, f32, f32),
    /// Beard density (0: none).
    pub beard: f32,
    /// Moles: position and radius.
    pub moles: Vec<(f32, f32, f32)>,
    /// Cheek blush strength.
    pub blush: f32,
}

/// Skin tones from light to dark (sRGB 0..255), the range people have.
const SKIN_TONES: [[f32; 3]; 8] = [
    [246.0, 222.0, 204.0],
    [234.0, 192.0, 160.0],
    [224.0, 172.0, 135.0],
    [198.0, 144.0, 108.0],
    [176.0, 120.0, 84.0],
    [141.0, 91.0, 62.0],
    [104.0, 66.0, 45.0],
    [74.0, 48.0, 34.0],
];

/// Natural hair colours (sRGB 0..255).
const HAIR_COLOURS: [[f32; 3]; 7] = [
    [20.0, 16.0, 14.0],
    [55.0, 38.0, 28.0],
    [95.0, 64.0, 40.0],
    [150.0, 110.0, 70.0],
    [210.0, 180.0, 120.0],
    [150.0, 60.0, 30.0],
    [170.0, 170.0, 170.0],
];

/// Iris colours (sRGB 0..255).
const IRIS_COLOURS: [[f32; 3]; 5] = [
    [70.0, 45.0, 25.0],
    [40.0, 25.0, 15.0],
    [70.0, 110.0, 150.0],
    [90.0, 110.0, 60.0],
    [120.0, 100.0, 60.0],
];

/// sRGB 0..255 to linear-ish [0, 1] (gamma 2.2 is close enough for rendering).
pub(super) fn linear(c: [f32; 3]) -> [f32; 3] {
    c.map(|v| (v / 255.0).powf(2.2))
}

fn jitter(rng: &mut Rng, c: [f32; 3], amount: f32) -> [f32; 3] {
    let shade = 1.0 + rng.range(-amount, amount);
    c.map(|v| (v * shade * (1.0 + rng.range(-amount, amount) * 0.5)).clamp(0.0, 255.0))
}

impl Identity {
    /// Draws a person from `rng`.
    pub fn sample(rng: &mut Rng) -> Self {
        let tone = rng.below(SKIN_TONES.len());
        let skin_srgb = jitter(rng, SKIN_TONES[tone], 0.08);
        let lips_srgb = [
            skin_srgb[0] * rng.range(0.75, 0.95),
            skin_srgb[1] * rng.range(0.5, 0.65),
            skin_srgb[2] * rng.range(0.5, 0.7),
        ];
        let hair_pick = HAIR_COLOURS[rng.below(HAIR_COLOURS.len())];
        let hair_srgb = jitter(rng, hair_pick, 0.12);
        let iris_pick = IRIS_COLOURS[rng.below(IRIS_COLOURS.len())];
        let iris_srgb = jitter(rng, iris_pick, 0.15);
        let hair_style = match rng.below(10) {
            0 => HairStyle::Bald,
            1..=5 => HairStyle::Short,
            _ => HairStyle::Long,
        };
        let eye_y = rng.range(-0.2, -0.06);
        let moles = (0..rng.below(4))
            .map(|_| {
                (
                    rng.range(-0.7, 0.7),
                    rng.range(-0.3, 1.0),
                    rng.range(0.015, 0.035),
                )
            })
            .collect();
        Self {
            head_height: rng.range(1.25, 1.5),
            head_depth: rng.range(0.95, 1.15),
            jaw: rng.range(0.3, 0.8),
            skin: linear(skin_srgb),
            lips: linear(lips_srgb),
            hair: linear(hair_srgb),
            iris: linear(iris_srgb),
            hair_style,
            hairline: rng.range(-0.95, -0.6),
            hairline_wave: (rng.range(0.0, 0.12), rng.range(0.0, std::f32::consts::TAU)),
            eye_y,
            eye_dx: rng.range(0.32, 0.42),
            eye_size: (rng.range(0.13, 0.18), rng.range(0.055, 0.085)),
            eye_tilt: rng.range(-0.12, 0.12),
            iris_size: rng.range(0.75, 0.95),
            brow: (
                rng.range(0.13, 0.22),
                rng.range(0.025, 0.065),
                rng.range(0.15, 0.22),
                rng.range(-0.25, 0.25),
            ),
            nose: (
                rng.range(0.25, 0.4),
                rng.range(0.11, 0.19),
                rng.range(0.3, 0.5),
                rng.range(0.18, 0.32),
            ),
            mouth: (
                rng.range(0.6, 0.78),
                rng.range(0.2, 0.32),
                rng.range(0.025, 0.05),
                rng.range(0.03, 0.07),
            ),
            beard: if rng.below(4) == 0 {
                rng.range(0.3, 0.9)
            } else {
                0.0
            },
            moles,
            blush: rng.range(0.0, 0.15),
        }
    }
}
