//! The face region of the map grid: the cells whose centre lies within a margin of the
//! alignment template's landmark hull (eyes and mouth corners; the nose lies inside) and is
//! more than [`BORDER`] pixels from the frame's edge. The head's maps are zeroed outside it
//! before the top-k, so a filter can only fire on the face: without it, zero padding gives the
//! border cells responses no face cell has, and half the peaks sat on the crop's frame.

use facegate_contract::align::AlignmentTemplate;

/// Cells whose centre lies this close to the frame's edge (input pixels) are never in the region.
pub const BORDER: f32 = 3.0;

/// Distance from `(x, y)` to the template's landmark hull in a `size` x `size` input (0 inside).
pub fn distance_to_face(size: usize, x: f32, y: f32) -> f32 {
    let t = AlignmentTemplate::square(size as u32).points.0;
    // Eyes and mouth corners, clockwise in image coordinates (y down).
    let hull = [t[0], t[1], t[4], t[3]];
    let mut inside = true;
    let mut nearest = f32::MAX;
    for i in 0..4 {
        let (a, b) = (hull[i], hull[(i + 1) % 4]);
        let (ex, ey) = (b.x - a.x, b.y - a.y);
        let (px, py) = (x - a.x, y - a.y);
        // Inside a clockwise (y-down) polygon: every cross product is non-negative.
        if ex * py - ey * px < 0.0 {
            inside = false;
        }
        let t = ((px * ex + py * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0);
        nearest = nearest.min((px - t * ex).hypot(py - t * ey));
    }
    if inside { 0.0 } else { nearest }
}

/// Whether an input pixel lies within `margin` of the face and off the border band.
pub fn in_face(size: usize, margin: f32, x: f32, y: f32) -> bool {
    let far = size as f32 - 1.0 - BORDER;
    (BORDER..=far).contains(&x)
        && (BORDER..=far).contains(&y)
        && distance_to_face(size, x, y) <= margin
}

/// The region as a `map x map` grid of 0/1 (row-major) for a `size` input, cells `size / map`
/// pixels square, each judged by its centre.
pub fn face_mask(size: usize, map: usize, margin: f32) -> Vec<f32> {
    let cell = size as f32 / map as f32;
    (0..map * map)
        .map(|i| {
            let x = ((i % map) as f32 + 0.5) * cell - 0.5;
            let y = ((i / map) as f32 + 0.5) * cell - 0.5;
            f32::from(u8::from(in_face(size, margin, x, y)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_holds_the_face_and_leaves_the_frame() {
        let t = AlignmentTemplate::square(96).points.0;
        assert_eq!(distance_to_face(96, t[2].x, t[2].y), 0.0);
        assert!((distance_to_face(96, t[0].x, t[0].y - 10.0) - 10.0).abs() < 1e-3);
        let mask = face_mask(64, 16, 12.0);
        let kept = mask.iter().filter(|v| **v == 1.0).count();
        assert!((60..160).contains(&kept), "{kept} of 256 cells");
        // No cell of the outer ring (centres 1.5 px from the edge) is kept.
        for i in 0..16 {
            for cell in [i, 15 * 16 + i, i * 16, i * 16 + 15] {
                assert_eq!(mask[cell], 0.0, "cell {cell}");
            }
        }
        // The cell under the nose is.
        let (nx, ny) = (t[2].x * 64.0 / 96.0, t[2].y * 64.0 / 96.0);
        assert_eq!(mask[(ny / 4.0) as usize * 16 + (nx / 4.0) as usize], 1.0);
    }
}
