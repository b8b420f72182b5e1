//! The crops the liveness models were trained on: the detector's box grown about its centre,
//! shifted back inside the frame, resized bilinearly, as BGR planes of raw 0..255 values.
//!
//! Follows the authors' `CropImage` (Silent-Face-Anti-Spoofing, `src/generate_patches.py`) and
//! OpenCV's `INTER_LINEAR` resize, so the scores match the ones they publish.

use image::RgbImage;

/// A box in frame pixels: left, top, right, bottom (inclusive, as the authors slice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// Left column.
    pub left: u32,
    /// Top row.
    pub top: u32,
    /// Right column (inclusive).
    pub right: u32,
    /// Bottom row (inclusive).
    pub bottom: u32,
}

/// The face box `(x, y, width, height)` grown `scale` times about its centre (less when the
/// frame is too small for it), shifted back inside a `frame_w` x `frame_h` frame.
pub fn grown_box(frame_w: u32, frame_h: u32, face: [f32; 4], scale: f32) -> CropBox {
    let [x, y, w, h] = face;
    let (fw, fh) = (frame_w as f32, frame_h as f32);
    let (w, h) = (w.max(1.0), h.max(1.0));
    let scale = scale.min((fh - 1.0) / h).min((fw - 1.0) / w).max(0.0);
    let (nw, nh) = (w * scale, h * scale);
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let (mut l, mut t) = (cx - nw / 2.0, cy - nh / 2.0);
    let (mut r, mut b) = (cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > fw - 1.0 {
        l -= r - fw + 1.0;
        r = fw - 1.0;
    }
    if b > fh - 1.0 {
        t -= b - fh + 1.0;
        b = fh - 1.0;
    }
    // Python's int() truncates towards zero; every value is >= 0 here but for rounding.
    let at = |v: f32, hi: u32| (v.max(0.0) as u32).min(hi);
    let (left, top) = (at(l, frame_w - 1), at(t, frame_h - 1));
    CropBox {
        left,
        top,
        right: at(r, frame_w - 1).max(left),
        bottom: at(b, frame_h - 1).max(top),
    }
}

/// The pixels of `area` resized to `size` x `size` as OpenCV's bilinear resize does it
/// (half-pixel centres, edges clamped), as three planes B, G, R of raw 0..255 values.
pub fn bgr_planes(frame: &RgbImage, area: CropBox, size: u32) -> Vec<f32> {
    let src_w = (area.right - area.left + 1) as f32;
    let src_h = (area.bottom - area.top + 1) as f32;
    let n = size as usize;
    let mut out = vec![0.0f32; 3 * n * n];
    let axis = |d: usize, src: f32| {
        let s = ((d as f32 + 0.5) * src / size as f32 - 0.5).max(0.0);
        let i0 = (s.floor() as u32).min(src as u32 - 1);
        let i1 = (i0 + 1).min(src as u32 - 1);
        (i0, i1, s - i0 as f32)
    };
    let xs: Vec<_> = (0..n).map(|d| axis(d, src_w)).collect();
    for dy in 0..n {
        let (y0, y1, fy) = axis(dy, src_h);
        for (dx, &(x0, x1, fx)) in xs.iter().enumerate() {
            let p = |x: u32, y: u32| frame.get_pixel(area.left + x, area.top + y).0;
            let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
            for (plane, channel) in [2usize, 1, 0].into_iter().enumerate() {
                let top = f32::from(a[channel]) * (1.0 - fx) + f32::from(b[channel]) * fx;
                let bottom = f32::from(c[channel]) * (1.0 - fx) + f32::from(d[channel]) * fx;
                out[plane * n * n + dy * n + dx] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_that_fits_grows_about_its_centre() {
        let b = grown_box(640, 480, [300.0, 200.0, 40.0, 40.0], 2.0);
        assert_eq!((b.left, b.top, b.right, b.bottom), (280, 180, 360, 260));
    }

    #[test]
    fn a_box_near_the_edge_is_shifted_back_inside() {
        let b = grown_box(640, 480, [0.0, 0.0, 100.0, 100.0], 4.0);
        assert_eq!((b.left, b.top), (0, 0));
        assert_eq!((b.right, b.bottom), (400, 400));
        let b = grown_box(640, 480, [600.0, 440.0, 40.0, 40.0], 2.7);
        assert_eq!((b.right, b.bottom), (639, 479));
        assert!(b.left < 600 && b.top < 440);
    }

    #[test]
    fn a_box_larger_than_the_frame_is_grown_only_as_far_as_it_fits() {
        let b = grown_box(100, 80, [10.0, 10.0, 60.0, 60.0], 4.0);
        assert_eq!((b.top, b.bottom), (0, 79));
        assert!(b.right <= 99);
    }

    #[test]
    fn resizing_keeps_a_flat_colour_and_swaps_to_bgr() {
        let frame = RgbImage::from_pixel(50, 30, image::Rgb([10, 20, 30]));
        let planes = bgr_planes(&frame, grown_box(50, 30, [10.0, 5.0, 20.0, 20.0], 1.0), 8);
        assert_eq!(planes.len(), 3 * 64);
        assert!(planes[..64].iter().all(|&v| (v - 30.0).abs() < 1e-4));
        assert!(planes[64..128].iter().all(|&v| (v - 20.0).abs() < 1e-4));
        assert!(planes[128..].iter().all(|&v| (v - 10.0).abs() < 1e-4));
    }

    #[test]
    fn resizing_interpolates_between_pixel_centres() {
        // Two columns, 0 and 100: halfway between their centres is 50.
        let mut frame = RgbImage::new(2, 1);
        frame.put_pixel(1, 0, image::Rgb([100, 100, 100]));
        let area = CropBox {
            left: 0,
            top: 0,
            right: 1,
            bottom: 0,
        };
        let planes = bgr_planes(&frame, area, 4);
        // Destination x = 0..4 maps to source 0.25*... : -0.25 (clamped 0), 0.25, 0.75, 1.25.
        let row: Vec<f32> = planes[..4].to_vec();
        assert_eq!(row, vec![0.0, 25.0, 75.0, 100.0]);
    }
}
