//! Occluders painted onto real aligned crops at their landmarks: dark glasses over the eyes and
//! a medical mask from the nose down. Used for the occluded branch in training (one kind per
//! batch, so the whole batch loses the same facial part, as FAD assumes) and for the occluded
//! LFW pairs in `eval`. Shapes are given in units of the eye distance, so they fit any crop size.

use facegate_contract::Point;

/// A real-photo occluder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Painted {
    /// Two dark lenses and a bridge over the eyes.
    Sunglasses,
    /// A light medical mask from just below the nose bridge to under the chin.
    Mask,
}

impl Painted {
    /// Both kinds, in report order.
    pub const ALL: [Painted; 2] = [Painted::Sunglasses, Painted::Mask];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Painted::Sunglasses => "sunglasses",
            Painted::Mask => "mask",
        }
    }

    /// Whether output pixel `(x, y)` is covered, for a face with these five landmarks (eyes,
    /// nose, mouth corners, in the same frame).
    pub fn covers(self, landmarks: &[Point; 5], x: f32, y: f32) -> bool {
        let [le, re, nose, lm, rm] = *landmarks;
        let d = ((re.x - le.x).powi(2) + (re.y - le.y).powi(2))
            .sqrt()
            .max(1.0);
        let inside = |c: Point, rx: f32, ry: f32| {
            let (u, v) = ((x - c.x) / rx, (y - c.y) / ry);
            u * u + v * v <= 1.0
        };
        match self {
            Painted::Sunglasses => {
                let lens = |e: Point| inside(e, 0.42 * d, 0.28 * d);
                let mid = Point::new((le.x + re.x) / 2.0, (le.y + re.y) / 2.0);
                let bridge = (x - mid.x).abs() <= 0.2 * d && (y - mid.y).abs() <= 0.06 * d;
                lens(le) || lens(re) || bridge
            }
            Painted::Mask => {
                let top = nose.y - 0.12 * d;
                let mouth_y = (lm.y + rm.y) / 2.0;
                let bottom = mouth_y + 0.75 * d;
                if y < top || y > bottom {
                    return false;
                }
                let cx = (le.x + re.x + lm.x + rm.x) / 4.0;
                // Full width down to the mouth, then narrowing towards the chin.
                let full = 0.95 * d;
                let t = ((y - mouth_y) / (bottom - mouth_y)).clamp(0.0, 1.0);
                let half = if y <= mouth_y {
                    full
                } else {
                    full * (1.0 - 0.45 * t * t)
                };
                (x - cx).abs() <= half
            }
        }
    }

    /// The colour painted, in normalised [-1, 1] units, per channel.
    fn colour(self) -> [f32; 3] {
        match self {
            Painted::Sunglasses => [-0.9, -0.9, -0.85],
            Painted::Mask => [0.55, 0.7, 0.85],
        }
    }

    /// Paints over one face's three `side` x `side` planes (channel-major, normalised).
    pub fn paint_planes(self, landmarks: &[Point; 5], side: usize, planes: &mut [f32]) {
        let plane = side * side;
        let colour = self.colour();
        for y in 0..side {
            for x in 0..side {
                if self.covers(landmarks, x as f32, y as f32) {
                    for (ch, c) in colour.iter().enumerate() {
                        planes[ch * plane + y * side + x] = *c;
                    }
                }
            }
        }
    }

    /// Paints onto an 8-bit crop.
    pub fn paint_image(self, landmarks: &[Point; 5], image: &mut image::RgbImage) {
        let rgb = self
            .colour()
            .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8);
        for (x, y, pixel) in image.enumerate_pixels_mut() {
            if self.covers(landmarks, x as f32, y as f32) {
                *pixel = image::Rgb(rgb);
            }
        }
    }
}

/// The first five points of a manifest entry's landmarks (68-point sets are reduced to the
/// eye centres, nose tip and mouth corners).
pub fn five_points(points: &[Point]) -> Option<[Point; 5]> {
    match points.len() {
        5 => Some([points[0], points[1], points[2], points[3], points[4]]),
        68 => {
            let mean = |r: std::ops::Range<usize>| {
                let n = r.len() as f32;
                let (sx, sy) = points[r]
                    .iter()
                    .fold((0.0, 0.0), |(a, b), p| (a + p.x, b + p.y));
                Point::new(sx / n, sy / n)
            };
            Some([
                mean(36..42),
                mean(42..48),
                points[30],
                points[48],
                points[54],
            ])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_contract::align::AlignmentTemplate;

    #[test]
    fn glasses_cover_the_eyes_and_the_mask_the_mouth_not_the_other() {
        let t = AlignmentTemplate::square(96).points.0;
        let (le, lm) = (t[0], t[3]);
        assert!(Painted::Sunglasses.covers(&t, le.x, le.y));
        assert!(!Painted::Sunglasses.covers(&t, lm.x, lm.y));
        assert!(Painted::Mask.covers(&t, lm.x, lm.y));
        assert!(Painted::Mask.covers(&t, t[2].x, t[2].y + 2.0));
        assert!(!Painted::Mask.covers(&t, le.x, le.y));
        let mut planes = vec![0.0; 3 * 96 * 96];
        Painted::Mask.paint_planes(&t, 96, &mut planes);
        let covered = planes[..96 * 96].iter().filter(|v| **v != 0.0).count();
        // About a quarter to a third of the frame, not all of it.
        assert!((96 * 96 / 8..96 * 96 / 2).contains(&covered), "{covered}");
    }
}
