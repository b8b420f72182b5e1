//! Interpretability, measured (docs/method.md, "Evaluation and interpretability measures"): where
//! each filter fires on the clean test faces (peak-location map, spreadness d, consistency
//! sigma), heat maps of ten filters (paper Fig. 2), and which features a box over a facial part
//! changes and whether those filters' peaks lie under it (Fig. 4).

use super::embed::{Embedded, run_model};
use crate::data::FaceSet;
use crate::plot::{FONT, PlotError, png_over};
use facegate_contract::ModelCard;
use facegate_contract::card::{FilterPeaks, Peak};
use facegate_contract::peaks::{PeakStats, spreadness};
use plotters::prelude::*;
use std::path::Path;

/// The six box places of Fig. 4: name and top-left corner in the 96x96 frame.
pub const BOXES: [(&str, f32, f32); 6] = [
    ("forehead", 10.0, 10.0),
    ("left eye", 15.0, 35.0),
    ("nose", 30.0, 55.0),
    ("mouth", 30.0, 68.0),
    ("right cheek", 55.0, 55.0),
    ("right eye", 55.0, 35.0),
];
/// Box width and height in the 96x96 frame.
pub const BOX_SIZE: (f32, f32) = (32.0, 12.0);
/// How far a peak may lie outside the box and still count as under it (96x96 frame).
pub const GROW: f32 = 8.0;
/// How many of the most-changed features are checked per box.
pub const TOP: usize = 20;
/// Filters shown in the heat-map figure.
pub const HEAT_FILTERS: usize = 10;
/// The face for the placement measure: the template's landmark hull grown by this many pixels
/// of the 96x96 frame (scaled to the input).
pub const FACE_MARGIN_96: f32 = 16.0;
/// A peak this close to the frame's edge (input pixels) counts as on the border.
pub const BORDER_PX: f32 = 3.0;

/// Where the peaks lie: on the face or on the crop's frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Share of the filters' mean peaks (the card's map, both signs) inside the face.
    pub inside: f64,
    /// Share of them within [`BORDER_PX`] of the frame's edge.
    pub border: f64,
    /// The same two shares over every face's own peaks.
    pub per_face: (f64, f64),
    /// Spreadness d over the inside peaks only (positive, negative).
    pub d_inside: (Option<f64>, Option<f64>),
    /// Share of the mean peaks on the border when the input is a blank grey face: responses
    /// that come from the frame (padding), not from a face.
    pub blank_border: f64,
}

/// One box place's effect.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxEffect {
    /// The place's name.
    pub name: &'static str,
    /// The box in input pixels: x, y, width, height.
    pub rect: [f32; 4],
    /// Per feature dimension, the mean |f/|f| - f^/|f^|| over the faces.
    pub change: Vec<f64>,
    /// The [`TOP`] most-changed dimensions, most first.
    pub top: Vec<usize>,
    /// How many of them have a peak (either sign) under the grown box.
    pub under: usize,
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    /// Faces measured.
    pub faces: usize,
    /// Per filter, measured on these faces.
    pub peaks: Vec<FilterPeaks>,
    /// Spreadness of positive and negative peaks, pixels of the input.
    pub d: (Option<f64>, Option<f64>),
    /// Mean consistency sigma_j of positive and negative peaks, pixels.
    pub sigma: (Option<f64>, Option<f64>),
    /// The Fig. 4 analysis, one entry per box place.
    pub boxes: Vec<BoxEffect>,
    /// Share of all boxes' top features whose peak lies under the box.
    pub share_under: f64,
    /// The filters shown as heat maps (most consistent first).
    pub heat_filters: Vec<usize>,
    /// Face or frame: where the peaks lie.
    pub placement: Placement,
}

fn mean_sigma<'a>(peaks: impl Iterator<Item = &'a Option<Peak>>) -> Option<f64> {
    let s: Vec<f64> = peaks.flatten().map(|p| p.sigma as f64).collect();
    (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64)
}

/// `faces` with every pixel of `rect` (input pixels) set to black (-1).
fn occlude(faces: &FaceSet, rect: [f32; 4]) -> FaceSet {
    let mut out = faces.clone();
    let s = faces.size;
    let (x0, y0) = (rect[0].round() as usize, rect[1].round() as usize);
    let (x1, y1) = (
        ((rect[0] + rect[2]).round() as usize).min(s),
        ((rect[1] + rect[3]).round() as usize).min(s),
    );
    for face in out.pixels.chunks_mut(3 * s * s) {
        for c in 0..3 {
            for y in y0..y1 {
                for x in x0..x1 {
                    face[c * s * s + y * s + x] = -1.0;
                }
            }
        }
    }
    out
}

/// Under the box grown by [`GROW`] (scaled to the input)?
fn under(peak: &Option<Peak>, rect: [f32; 4], grow: f32) -> bool {
    peak.is_some_and(|p| {
        p.x >= rect[0] - grow
            && p.x <= rect[0] + rect[2] + grow
            && p.y >= rect[1] - grow
            && p.y <= rect[1] + rect[3] + grow
    })
}

/// Faces (index into `clean`) for the heat-map figure: photos 0 and 1 of the first three people.
fn heat_faces(clean: &Embedded) -> Vec<usize> {
    clean
        .by_identity()
        .values()
        .take(3)
        .flat_map(|photos| photos.values().take(2).copied().collect::<Vec<_>>())
        .collect()
}

/// Measures the model `onnx` (described by `card`) on the clean faces and writes the figures
/// (`peaks.png`, `heatmaps.png`, `occlusion.png`) into `out`.
pub fn interpret(
    onnx: &[u8],
    card: &ModelCard,
    faces: &FaceSet,
    clean: &Embedded,
    batch: usize,
    out: &Path,
) -> Result<Interpretation, String> {
    let maps = &card.outputs.maps;
    let (mh, mw) = (maps.height as usize, maps.width as usize);
    let cell = card.cell_size();
    let mut stats = PeakStats::new(maps.channels as usize, mh, mw, cell);
    let shown = heat_faces(clean);
    let mut kept: Vec<(usize, Vec<f32>)> = Vec::new();
    run_model(onnx, faces, batch, &mut |i, m| {
        stats.add_face(m);
        if shown.contains(&i) {
            kept.push((i, m.to_vec()));
        }
    })?;
    let peaks = stats.summarise();
    let d = spreadness(&peaks);
    let size = faces.size;
    let margin = FACE_MARGIN_96 * size as f32 / 96.0;
    let inside = |x: f32, y: f32| crate::model::region::distance_to_face(size, x, y) <= margin;
    let far = size as f32 - 1.0 - BORDER_PX;
    let border = |x: f32, y: f32| x < BORDER_PX || y < BORDER_PX || x > far || y > far;
    let mean_peaks: Vec<Peak> = peaks
        .iter()
        .flat_map(|f| [f.positive, f.negative])
        .flatten()
        .collect();
    let share = |pred: &dyn Fn(f32, f32) -> bool, list: &[Peak]| {
        list.iter().filter(|p| pred(p.x, p.y)).count() as f64 / list.len().max(1) as f64
    };
    let inside_only: Vec<FilterPeaks> = peaks
        .iter()
        .map(|f| FilterPeaks {
            positive: f.positive.filter(|p| inside(p.x, p.y)),
            negative: f.negative.filter(|p| inside(p.x, p.y)),
        })
        .collect();
    let blank = FaceSet {
        size,
        pixels: vec![0.0; 3 * size * size],
        labels: vec![0],
        entries: vec![0],
        skipped: Vec::new(),
    };
    let mut blank_stats = PeakStats::new(maps.channels as usize, mh, mw, cell);
    run_model(onnx, &blank, 1, &mut |_, m| blank_stats.add_face(m))?;
    let blank_peaks: Vec<Peak> = blank_stats
        .summarise()
        .iter()
        .flat_map(|f| [f.positive, f.negative])
        .flatten()
        .collect();
    let placement = Placement {
        inside: share(&inside, &mean_peaks),
        border: share(&border, &mean_peaks),
        per_face: (
            stats.share_where(inside).unwrap_or(0.0),
            stats.share_where(border).unwrap_or(0.0),
        ),
        d_inside: spreadness(&inside_only),
        blank_border: share(&border, &blank_peaks),
    };
    let sigma = (
        mean_sigma(peaks.iter().map(|p| &p.positive)),
        mean_sigma(peaks.iter().map(|p| &p.negative)),
    );

    let scale = faces.size as f32 / 96.0;
    let dim = clean.dim;
    let mut boxes = Vec::new();
    for (name, x, y) in BOXES {
        let rect = [x * scale, y * scale, BOX_SIZE.0 * scale, BOX_SIZE.1 * scale];
        let (_, occluded) = run_model(onnx, &occlude(faces, rect), batch, &mut |_, _| {})?;
        let mut change = vec![0.0f64; dim];
        for (a, b) in clean.features.chunks(dim).zip(occluded.chunks(dim)) {
            for k in 0..dim {
                change[k] += (a[k] - b[k]).abs() as f64;
            }
        }
        let n = faces.len().max(1) as f64;
        change.iter_mut().for_each(|c| *c /= n);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| change[b].total_cmp(&change[a]));
        order.truncate(TOP.min(dim));
        let under_count = order
            .iter()
            .filter(|&&j| {
                under(&peaks[j].positive, rect, GROW * scale)
                    || under(&peaks[j].negative, rect, GROW * scale)
            })
            .count();
        boxes.push(BoxEffect {
            name,
            rect,
            change,
            top: order,
            under: under_count,
        });
    }
    let checked: usize = boxes.iter().map(|b| b.top.len()).sum();
    let share_under = boxes.iter().map(|b| b.under).sum::<usize>() as f64 / checked.max(1) as f64;

    let mut heat_filters: Vec<usize> = (0..peaks.len())
        .filter(|&j| peaks[j].positive.is_some())
        .collect();
    heat_filters.sort_by(|&a, &b| {
        let s = |j: usize| peaks[j].positive.map_or(f32::MAX, |p| p.sigma);
        s(a).total_cmp(&s(b))
    });
    heat_filters.truncate(HEAT_FILTERS);

    let result = Interpretation {
        faces: faces.len(),
        peaks,
        d,
        sigma,
        boxes,
        share_under,
        heat_filters,
        placement,
    };
    let mean = mean_face(faces);
    draw_peaks(&result, &mean, &out.join("peaks.png")).map_err(|e| e.to_string())?;
    draw_boxes(&result, &mean, &out.join("occlusion.png")).map_err(|e| e.to_string())?;
    kept.sort_by_key(|(i, _)| *i);
    draw_heatmaps(&result, faces, &kept, (mh, mw), &out.join("heatmaps.png"))
        .map_err(|e| e.to_string())?;
    Ok(result)
}

/// Pixel `(x, y)` of face `i` as RGB bytes.
fn face_pixel(faces: &FaceSet, i: usize, x: usize, y: usize) -> [u8; 3] {
    let s = faces.size;
    let base = i * 3 * s * s;
    [0, 1, 2].map(|c| {
        let v = faces.pixels[base + c * s * s + y * s + x];
        ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
    })
}

/// The average of all faces, as a picture.
fn mean_face(faces: &FaceSet) -> image::RgbImage {
    let s = faces.size;
    let n = faces.len().max(1) as f32;
    image::RgbImage::from_fn(s as u32, s as u32, |x, y| {
        let mut acc = [0.0f32; 3];
        for i in 0..faces.len() {
            let p = face_pixel(faces, i, x as usize, y as usize);
            (0..3).for_each(|c| acc[c] += p[c] as f32);
        }
        image::Rgb(acc.map(|v| (v / n).round() as u8))
    })
}

fn enlarge(img: &image::RgbImage, side: u32) -> image::RgbImage {
    image::imageops::resize(img, side, side, image::imageops::FilterType::Triangle)
}

const POSITIVE: RGBColor = RGBColor(220, 30, 30);
const NEGATIVE: RGBColor = RGBColor(30, 80, 230);

/// Fig. 3: every filter's mean positive (red) and negative (blue) peak on the mean face.
fn draw_peaks(r: &Interpretation, mean: &image::RgbImage, path: &Path) -> Result<(), PlotError> {
    let side = 480u32;
    let k = side as f32 / mean.width() as f32;
    png_over(path, enlarge(mean, side), |area| {
        for p in &r.peaks {
            for (peak, colour) in [(p.positive, POSITIVE), (p.negative, NEGATIVE)] {
                if let Some(q) = peak {
                    let at = ((q.x * k) as i32, (q.y * k) as i32);
                    area.draw(&Circle::new(at, 4, colour.filled()))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let label = format!(
            "d+ {:.1} px, d- {:.1} px ({} faces)",
            r.d.0.unwrap_or(f64::NAN),
            r.d.1.unwrap_or(f64::NAN),
            r.faces
        );
        area.draw(&Text::new(
            label,
            (8, 8),
            (FONT, 18).into_font().color(&WHITE),
        ))
        .map_err(|e| e.to_string())
    })
}

/// Fig. 4: each box on the mean face with its 20 most-changed filters' peaks (green: under the
/// grown box, orange: elsewhere).
fn draw_boxes(r: &Interpretation, mean: &image::RgbImage, path: &Path) -> Result<(), PlotError> {
    let panel = 300u32;
    let k = panel as f32 / mean.width() as f32;
    let big = enlarge(mean, panel);
    let mut sheet = image::RgbImage::from_pixel(panel * 3, panel * 2, image::Rgb([255; 3]));
    for i in 0..r.boxes.len() {
        let (px, py) = ((i as u32 % 3) * panel, (i as u32 / 3) * panel);
        image::imageops::replace(&mut sheet, &big, px as i64, py as i64);
    }
    png_over(path, sheet, |area| {
        for (i, b) in r.boxes.iter().enumerate() {
            let (ox, oy) = (
                ((i % 3) as u32 * panel) as f32,
                ((i / 3) as u32 * panel) as f32,
            );
            let at = |x: f32, y: f32| ((ox + x * k) as i32, (oy + y * k) as i32);
            let [x, y, w, h] = b.rect;
            area.draw(&Rectangle::new(
                [at(x, y), at(x + w, y + h)],
                BLACK.mix(0.8).filled(),
            ))
            .map_err(|e| e.to_string())?;
            for &j in &b.top {
                let p = &r.peaks[j];
                let hit = under(&p.positive, b.rect, GROW * r.faces_scale())
                    || under(&p.negative, b.rect, GROW * r.faces_scale());
                let colour = if hit {
                    RGBColor(0, 200, 0)
                } else {
                    RGBColor(255, 150, 0)
                };
                for q in [p.positive, p.negative].into_iter().flatten() {
                    area.draw(&Circle::new(at(q.x, q.y), 4, colour.filled()))
                        .map_err(|e| e.to_string())?;
                }
            }
            let label = format!("{}: {}/{} under", b.name, b.under, b.top.len());
            area.draw(&Text::new(
                label,
                (ox as i32 + 6, oy as i32 + 6),
                (FONT, 18).into_font().color(&WHITE),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

impl Interpretation {
    /// Input side over 96 (the frame the box places are given in), from the first box.
    fn faces_scale(&self) -> f32 {
        self.boxes.first().map_or(1.0, |b| b.rect[2] / BOX_SIZE.0)
    }
}

/// Fig. 2: rows of faces, the face then one column per shown filter: its sparse map (nearest
/// upsampling) over the face in grey, positive red, negative blue.
fn draw_heatmaps(
    r: &Interpretation,
    faces: &FaceSet,
    kept: &[(usize, Vec<f32>)],
    (mh, mw): (usize, usize),
    path: &Path,
) -> Result<(), PlotError> {
    let cell = 128u32;
    let s = faces.size;
    let cols = 1 + r.heat_filters.len() as u32;
    let top = 24u32;
    let mut sheet = image::RgbImage::from_pixel(
        cols * cell,
        top + kept.len() as u32 * cell,
        image::Rgb([255; 3]),
    );
    let k = s as f32 / cell as f32;
    for (row, (i, maps)) in kept.iter().enumerate() {
        let y0 = top + row as u32 * cell;
        for col in 0..cols {
            let filter = (col > 0).then(|| r.heat_filters[col as usize - 1]);
            let plane = filter.map(|j| &maps[j * mh * mw..(j + 1) * mh * mw]);
            let peak = plane.map_or(1.0, |m| m.iter().fold(1e-12f32, |a, v| a.max(v.abs())));
            for y in 0..cell {
                for x in 0..cell {
                    let (fx, fy) = (
                        ((x as f32 * k) as usize).min(s - 1),
                        ((y as f32 * k) as usize).min(s - 1),
                    );
                    let rgb = face_pixel(faces, *i, fx, fy);
                    let mut out = rgb.map(|v| v as f32);
                    if let Some(m) = plane {
                        let grey = (rgb[0] as f32 + rgb[1] as f32 + rgb[2] as f32) / 3.0;
                        let (cx, cy) = (fx * mw / s, fy * mh / s);
                        let v = m[cy * mw + cx];
                        let a = (v.abs() / peak).min(1.0) * 0.85;
                        let tint = if v >= 0.0 {
                            [230.0, 30.0, 30.0]
                        } else {
                            [30.0, 80.0, 240.0]
                        };
                        out = [0, 1, 2].map(|c| grey * 0.8 * (1.0 - a) + tint[c] * a);
                    }
                    sheet.put_pixel(col * cell + x, y0 + y, image::Rgb(out.map(|v| v as u8)));
                }
            }
        }
    }
    png_over(path, sheet, |area| {
        area.draw(&Text::new("face", (6, 4), (FONT, 16)))
            .map_err(|e| e.to_string())?;
        for (c, j) in r.heat_filters.iter().enumerate() {
            let x = ((c as u32 + 1) * cell + 6) as i32;
            area.draw(&Text::new(format!("filter {j}"), (x, 4), (FONT, 16)))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
