//! *quality*: is this face good enough to decide on (or to enroll)?
//!
//! Pipeline position: after *align*, before *embed*. A face that is too small, blurred or too far
//! from frontal is reported as `low_quality` with the reasons, never guessed at: a guess on a
//! poor face is how strangers get in and residents get refused.
//!
//! Measures, all from the detector's landmarks and the aligned crop:
//! - size: the distance between the eyes in the camera frame, in pixels;
//! - yaw: how far the nose sits sideways from the eyes' mid-point, in eye distances (0 = frontal);
//! - pitch: where the nose sits between the eyes and the mouth, 0 = at the eyes, 1 = at the mouth
//!   (about 0.5 when frontal);
//! - roll: the angle of the line through the eyes, in degrees;
//! - sharpness: the variance of the Laplacian of the aligned crop's grey levels.

use facegate_contract::Landmarks5;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The limits a face must meet; every one is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityRules {
    /// Smallest distance between the eyes, in camera pixels.
    pub min_eye_distance: f32,
    /// Largest |yaw| (nose offset in eye distances).
    pub max_yaw: f32,
    /// Accepted range of the pitch ratio.
    pub pitch_range: (f32, f32),
    /// Largest |roll| in degrees.
    pub max_roll_degrees: f32,
    /// Smallest variance of the Laplacian of the aligned crop.
    pub min_sharpness: f32,
}

impl Default for QualityRules {
    fn default() -> Self {
        Self {
            min_eye_distance: 20.0,
            max_yaw: 0.3,
            pitch_range: (0.25, 0.75),
            max_roll_degrees: 25.0,
            min_sharpness: 15.0,
        }
    }
}

/// One reason a face is not good enough.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum QualityProblem {
    /// The face is too small in the frame.
    TooSmall {
        /// Eye distance measured, pixels.
        eye_distance: f32,
    },
    /// The head is turned sideways.
    Turned {
        /// Yaw measured.
        yaw: f32,
    },
    /// The head is tilted up or down.
    Tilted {
        /// Pitch ratio measured.
        pitch: f32,
    },
    /// The head is rotated in the image plane.
    Rotated {
        /// Roll measured, degrees.
        roll_degrees: f32,
    },
    /// The face is blurred.
    Blurred {
        /// Sharpness measured.
        sharpness: f32,
    },
}

impl fmt::Display for QualityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { eye_distance } => {
                write!(f, "too small (eyes {eye_distance:.0} px apart)")
            }
            Self::Turned { yaw } => write!(f, "turned sideways (yaw {yaw:.2})"),
            Self::Tilted { pitch } => write!(f, "tilted up or down (pitch {pitch:.2})"),
            Self::Rotated { roll_degrees } => write!(f, "rotated ({roll_degrees:.0} degrees)"),
            Self::Blurred { sharpness } => write!(f, "blurred (sharpness {sharpness:.1})"),
        }
    }
}

/// The measures of one face and what is wrong with it, if anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Eye distance in camera pixels.
    pub eye_distance: f32,
    /// Yaw (0 = frontal).
    pub yaw: f32,
    /// Pitch ratio (about 0.5 = frontal).
    pub pitch: f32,
    /// Roll in degrees.
    pub roll_degrees: f32,
    /// Variance of the Laplacian of the aligned crop.
    pub sharpness: f32,
    /// Every limit the face fails; empty when it is good enough.
    pub problems: Vec<QualityProblem>,
}

impl Quality {
    /// Whether the face meets every limit.
    pub fn is_good(&self) -> bool {
        self.problems.is_empty()
    }
}

impl QualityRules {
    /// Measures the face with `landmarks` (camera pixels) and aligned `crop` against the rules.
    pub fn assess(&self, landmarks: &Landmarks5, crop: &RgbImage) -> Quality {
        let [le, re, nose, lm, rm] = landmarks.0;
        let (dx, dy) = (re.x - le.x, re.y - le.y);
        let eye_distance = dx.hypot(dy);
        let roll_degrees = dy.atan2(dx).to_degrees();
        // Measure yaw and pitch in the face's own frame (undo the roll first).
        let (c, s) = (dx / eye_distance.max(1e-6), dy / eye_distance.max(1e-6));
        let local = |x: f32, y: f32| {
            let (x, y) = (x - le.x, y - le.y);
            (x * c + y * s, -x * s + y * c)
        };
        let (nx, ny) = local(nose.x, nose.y);
        let mouth_y = (local(lm.x, lm.y).1 + local(rm.x, rm.y).1) / 2.0;
        let yaw = (nx - eye_distance / 2.0) / eye_distance.max(1e-6);
        let pitch = if mouth_y > 1e-6 { ny / mouth_y } else { 0.0 };
        let sharpness = laplacian_variance(crop);
        let mut problems = Vec::new();
        if eye_distance < self.min_eye_distance {
            problems.push(QualityProblem::TooSmall { eye_distance });
        }
        if yaw.abs() > self.max_yaw {
            problems.push(QualityProblem::Turned { yaw });
        }
        if !(self.pitch_range.0..=self.pitch_range.1).contains(&pitch) {
            problems.push(QualityProblem::Tilted { pitch });
        }
        if roll_degrees.abs() > self.max_roll_degrees {
            problems.push(QualityProblem::Rotated { roll_degrees });
        }
        if sharpness < self.min_sharpness {
            problems.push(QualityProblem::Blurred { sharpness });
        }
        Quality {
            eye_distance,
            yaw,
            pitch,
            roll_degrees,
            sharpness,
            problems,
        }
    }
}

/// Variance of the 4-neighbour Laplacian of the grey levels (0..255), over interior pixels.
fn laplacian_variance(img: &RgbImage) -> f32 {
    let (w, h) = img.dimensions();
    if w < 3 || h < 3 {
        return 0.0;
    }
    let grey = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    let (mut sum, mut sum2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let l = grey(x - 1, y) + grey(x + 1, y) + grey(x, y - 1) + grey(x, y + 1)
                - 4.0 * grey(x, y);
            sum += l;
            sum2 += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum2 / n - mean * mean) as f32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use facegate_contract::{AlignmentTemplate, Point};

    fn frontal(scale: f32) -> Landmarks5 {
        let t = AlignmentTemplate::square(112).points;
        Landmarks5(t.0.map(|p| Point::new(p.x * scale + 100.0, p.y * scale + 50.0)))
    }

    fn checkerboard(cell: u32) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| {
            let v = if (x / cell + y / cell).is_multiple_of(2) {
                30
            } else {
                220
            };
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn a_frontal_sharp_face_passes() {
        let q = QualityRules::default().assess(&frontal(1.0), &checkerboard(4));
        assert!(q.is_good(), "{:?}", q.problems);
        assert!(q.yaw.abs() < 0.05 && (q.pitch - 0.5).abs() < 0.05 && q.roll_degrees.abs() < 1.0);
    }

    #[test]
    fn small_turned_rotated_and_flat_faces_are_named() {
        let rules = QualityRules::default();
        let flat = RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
        let q = rules.assess(&frontal(0.3), &flat);
        assert!(matches!(q.problems[0], QualityProblem::TooSmall { .. }));
        assert!(
            q.problems
                .iter()
                .any(|p| matches!(p, QualityProblem::Blurred { .. }))
        );

        let mut turned = frontal(1.0);
        turned.0[2].x += 20.0;
        let q = rules.assess(&turned, &checkerboard(4));
        assert!(matches!(q.problems[..], [QualityProblem::Turned { yaw }] if yaw > 0.5));

        // Rotated 40 degrees about the left eye.
        let (c, s) = (40f32.to_radians().cos(), 40f32.to_radians().sin());
        let f = frontal(1.0);
        let o = f.0[0];
        let rotated = Landmarks5(f.0.map(|p| {
            let (x, y) = (p.x - o.x, p.y - o.y);
            Point::new(o.x + x * c - y * s, o.y + x * s + y * c)
        }));
        let q = rules.assess(&rotated, &checkerboard(4));
        assert!(
            matches!(q.problems[..], [QualityProblem::Rotated { roll_degrees }] if (roll_degrees - 40.0).abs() < 0.5),
            "{:?}",
            q.problems
        );
    }
}
