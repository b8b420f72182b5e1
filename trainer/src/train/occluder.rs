//! The paper's synthetic occluder: a black 32x12 window placed in the 110x110 template frame,
//! one place per mini-batch so every image in the batch loses the same facial part.

use burn::prelude::*;
use std::ops::RangeInclusive;

/// A black rectangle in template-frame pixels (top-left corner and size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occluder {
    /// Left edge in the 110x110 template frame.
    pub x: usize,
    /// Top edge in the 110x110 template frame.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Occluder {
    /// The paper's window width.
    pub const WIDTH: usize = 32;
    /// The paper's window height.
    pub const HEIGHT: usize = 12;
    /// Where the window's left edge may be, in the 110x110 frame.
    pub const X_RANGE: RangeInclusive<usize> = 11..=67;
    /// Where the window's top edge may be, in the 110x110 frame.
    pub const Y_RANGE: RangeInclusive<usize> = 11..=87;

    /// The template frame the paper's window and ranges are given in.
    pub const FRAME: usize = 110;

    /// This window (given in the 110x110 frame) in the same template stored `frame` pixels
    /// square, as for crops of a smaller network input.
    pub fn scaled_to(&self, frame: usize) -> Self {
        let s = frame as f32 / Self::FRAME as f32;
        let scale = |v: usize| (v as f32 * s).round() as usize;
        Self {
            x: scale(self.x),
            y: scale(self.y),
            width: scale(self.width).max(1),
            height: scale(self.height).max(1),
        }
    }

    /// The paper's 32x12 window with its top-left corner at `(x, y)` in the 110x110 frame.
    pub fn window(x: usize, y: usize) -> Self {
        Self {
            x,
            y,
            width: Self::WIDTH,
            height: Self::HEIGHT,
        }
    }

    /// Whether the window covers template-frame pixel `(x, y)`.
    pub fn covers(&self, x: usize, y: usize) -> bool {
        (self.x..self.x + self.width).contains(&x) && (self.y..self.y + self.height).contains(&y)
    }

    /// Paints the window (value -1, black after normalisation) onto faces `[N, C, H, W]` that
    /// were cropped from the template frame at top-left `offset` (`(7, 7)` for the centre 96x96
    /// crop of a 110x110 face). Parts of the window outside the crop are dropped.
    pub fn apply(&self, faces: Tensor<4>, offset: (usize, usize)) -> Tensor<4> {
        let [_, _, h, w] = faces.dims();
        let keep: Vec<f32> = (0..h * w)
            .map(|i| {
                let covered = self.covers(i % w + offset.0, i / w + offset.1);
                if covered { 0.0 } else { 1.0 }
            })
            .collect();
        let keep = Tensor::<1>::from_floats(keep.as_slice(), &faces.device()).reshape([1, 1, h, w]);
        let shape = faces.dims();
        let keep = keep.expand(shape);
        faces * keep.clone() + keep.add_scalar(-1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_painted_black_at_the_cropped_place() {
        let device = Device::flex();
        let faces = Tensor::<4>::ones([2, 3, 96, 96], &device).mul_scalar(0.5);
        // Template (20, 30) in a crop taken at (7, 7): crop pixels x 13..45, y 23..35.
        let out = Occluder::window(20, 30).apply(faces, (7, 7));
        let v: Vec<f32> = out.into_data().iter::<f32>().collect();
        let at = |b: usize, c: usize, y: usize, x: usize| v[((b * 3 + c) * 96 + y) * 96 + x];
        assert_eq!(at(1, 2, 23, 13), -1.0);
        assert_eq!(at(0, 0, 34, 44), -1.0);
        assert_eq!(at(0, 0, 35, 44), 0.5);
        assert_eq!(at(0, 0, 23, 45), 0.5);
        assert_eq!(at(0, 1, 22, 13), 0.5);
        let black = v.iter().filter(|&&x| x == -1.0).count();
        assert_eq!(black, 2 * 3 * 32 * 12);
    }

    #[test]
    fn window_partly_outside_the_crop_is_clipped() {
        let device = Device::flex();
        let faces = Tensor::<4>::zeros([1, 1, 96, 96], &device);
        // Right-most place (67) from a crop at x offset 0: columns 67..99 -> 67..96.
        let out = Occluder::window(67, 87).apply(faces, (0, 0));
        let black = out.into_data().iter::<f32>().filter(|&x| x == -1.0).count();
        assert_eq!(black, (96 - 67) * (96 - 87));
    }
}
