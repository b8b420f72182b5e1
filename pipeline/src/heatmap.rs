//! The explanation as a picture (`<prefix>/<device>/image/heatmap`, `facegate explain`): the
//! aligned face, enlarged, with where the filters fired tinted by their region's part in the
//! match: green where the face supported it, red where it disagreed; occluded regions are
//! cross-hatched in grey.

use crate::matching::{RegionExplanation, RegionVerdict};
use facegate_contract::occlusion::{Region, RegionMap};
use image::{Rgb, RgbImage};
use std::io::Cursor;

/// Side of the picture in pixels.
pub const SIDE: u32 = 192;

/// Inputs of one heat map.
#[derive(Debug, Clone, Copy)]
pub struct HeatmapInput<'a> {
    /// The aligned face (the model's input frame, 8-bit).
    pub crop: &'a RgbImage,
    /// The probe's maps, `filters x map_h x map_w`.
    pub maps: &'a [f32],
    /// `(map_h, map_w)`.
    pub map_size: (usize, usize),
    /// Per filter, its share of the score (probe x template); empty without a candidate.
    pub contributions: &'a [f32],
    /// Per region verdicts (empty without a candidate: every region counts as supporting).
    pub regions: &'a [RegionExplanation],
}

/// Draws the heat map.
pub fn render(map: &RegionMap, input: &HeatmapInput) -> RgbImage {
    let (mh, mw) = input.map_size;
    let plane = mh * mw;
    let verdict = |r: Region| {
        input
            .regions
            .iter()
            .find(|e| e.region == r)
            .map_or(RegionVerdict::Support, |e| e.verdict)
    };
    // Accumulate supporting (green) and disagreeing (red) heat per map cell.
    let mut green = vec![0.0f32; plane];
    let mut red = vec![0.0f32; plane];
    for j in 0..map.filters() {
        let Some(region) = map.region_of(j) else {
            continue;
        };
        let Some(m) = input.maps.get(j * plane..(j + 1) * plane) else {
            continue;
        };
        let w = input.contributions.get(j).map_or(1.0, |c| c.abs());
        let target = match verdict(region) {
            RegionVerdict::Support => &mut green,
            RegionVerdict::Disagree => &mut red,
            RegionVerdict::Occluded | RegionVerdict::Unseen => continue,
        };
        for (t, v) in target.iter_mut().zip(m) {
            *t += w * v.max(0.0);
        }
    }
    let peak = green.iter().chain(&red).fold(1e-12f32, |a, &v| a.max(v));
    let (cw, ch) = input.crop.dimensions();
    let occluded: Vec<(f32, f32, f32)> = Region::ALL
        .into_iter()
        .filter(|r| verdict(*r) == RegionVerdict::Occluded)
        .map(|r| {
            let c = map.centre(r);
            (c.x, c.y, cw as f32 * 0.16)
        })
        .collect();
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (fx, fy) = (
            (x as f32 + 0.5) * cw as f32 / SIDE as f32 - 0.5,
            (y as f32 + 0.5) * ch as f32 / SIDE as f32 - 0.5,
        );
        let p = input
            .crop
            .get_pixel(
                (fx.round().max(0.0) as u32).min(cw - 1),
                (fy.round().max(0.0) as u32).min(ch - 1),
            )
            .0;
        let grey = (p[0] as f32 + p[1] as f32 + p[2] as f32) / 3.0 * 0.85;
        let cell = ((fy / ch as f32 * mh as f32) as usize).min(mh - 1) * mw
            + ((fx / cw as f32 * mw as f32) as usize).min(mw - 1);
        let (g, r) = (green[cell] / peak, red[cell] / peak);
        let mut out = [grey; 3];
        for (c, tint) in [(1usize, g), (0usize, r)] {
            let a = tint.min(1.0) * 0.8;
            for (k, o) in out.iter_mut().enumerate() {
                let target = if k == c { 255.0 } else { 40.0 };
                *o = *o * (1.0 - a) + target * a;
            }
        }
        let hatched = occluded
            .iter()
            .any(|&(ox, oy, rad)| (fx - ox).hypot(fy - oy) < rad && ((x + y) / 4) % 2 == 0);
        if hatched {
            out = [150.0; 3];
        }
        Rgb(out.map(|v| v.clamp(0.0, 255.0) as u8))
    })
}

/// The heat map as PNG bytes.
pub fn png(image: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}
