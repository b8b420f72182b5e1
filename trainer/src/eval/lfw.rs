//! LFW View 2 on people the model never trained on (`eval --folds`): the kept folds' pairs,
//! clean and with one photo of each pair occluded (painted sunglasses, a mask, the paper's
//! 32x12 window), measured for the model and, on the very same crops and pairs, for the teacher
//! a user would otherwise run.
//!
//! Accuracy is LFW's: ten-fold cross-validation of the threshold (chosen on nine tenths of the
//! pairs, applied to the tenth), mean and standard deviation. TAR at FAR 1e-3 on a few hundred
//! impostor pairs is a bound, not a measurement: the report says how many there were.

use super::embed::run_model;
use crate::data::{FaceSet, FoldPairs, Manifest, Painted, five_points, push_crop};
use crate::scores::{PairScores, Report};
use crate::synth::occluder::{Occlusion, paint_window};
use crate::teacher::Teacher;
use crate::train::Occluder;
use facegate_contract::metrics::Roc;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// One way of spoiling the second photo of each pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Both photos as they are.
    Clean,
    /// A painted occluder at the landmarks.
    Painted(Painted),
    /// The paper's black 32x12 window at a random place (seeded per photo).
    Window,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 4] = [
        Variant::Clean,
        Variant::Painted(Painted::Sunglasses),
        Variant::Painted(Painted::Mask),
        Variant::Window,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Clean => "clean",
            Variant::Painted(p) => p.name(),
            Variant::Window => "window",
        }
    }
}

/// One row of the LFW table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `facegate` or `teacher`.
    pub model: String,
    /// The variant's name.
    pub variant: &'static str,
    /// Same-person and different-person pairs scored.
    pub pairs: (usize, usize),
    /// Ten-fold accuracy: mean and standard deviation.
    pub accuracy: (f64, f64),
    /// Verification report (EER, TAR at the FAR targets).
    pub report: Report,
}

/// The LFW measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Lfw {
    /// The folds tested.
    pub folds: Vec<u32>,
    /// Pairs measured, and listed pairs dropped because a photo is not in the manifest.
    pub pairs: (usize, usize),
    /// People in the kept pairs.
    pub people: usize,
    /// Rank-1 identification on the test people (first photo enrolled, the rest searched):
    /// model, then teacher.
    pub rank1: (f64, Option<f64>),
    /// The table: model rows, then teacher rows.
    pub rows: Vec<Row>,
}

/// The crop's painted or windowed copy at `source_size`, its centre `size` square pushed as
/// normalised planes. `stored` is the crop as prepared, its landmarks in its own frame.
fn push_variant(
    stored: &image::RgbImage,
    landmarks: Option<&[facegate_contract::Point; 5]>,
    variant: Variant,
    seed: u64,
    source_size: usize,
    size: usize,
    out: &mut Vec<f32>,
) {
    let image = spoil(stored, landmarks, variant, seed);
    let s = source_size as u32;
    let image = if image.width() == s {
        image
    } else {
        image::imageops::resize(&image, s, s, image::imageops::FilterType::Triangle)
    };
    let offset = source_size.saturating_sub(size) / 2;
    push_crop(&image, (offset, offset), size, out);
}

/// The stored crop with the variant's occluder on it.
fn spoil(
    stored: &image::RgbImage,
    landmarks: Option<&[facegate_contract::Point; 5]>,
    variant: Variant,
    seed: u64,
) -> image::RgbImage {
    let mut image = stored.clone();
    match variant {
        Variant::Clean => {}
        Variant::Painted(kind) => {
            if let Some(points) = landmarks {
                kind.paint_image(points, &mut image);
            }
        }
        Variant::Window => {
            let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = |n: usize| {
                z ^= z << 13;
                z ^= z >> 7;
                z ^= z << 17;
                (z % n as u64) as usize
            };
            let (xs, ys) = (Occluder::X_RANGE, Occluder::Y_RANGE);
            let x = xs.start() + next(xs.end() - xs.start() + 1);
            let y = ys.start() + next(ys.end() - ys.start() + 1);
            paint_window(&mut image, &Occlusion::Window(Occluder::window(x, y)));
        }
    }
    image
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// LFW's accuracy: for each of ten interleaved tenths, the threshold that is best on the other
/// nine, applied to it; mean and standard deviation over the ten.
pub fn ten_fold_accuracy(scored: &[(f32, bool)]) -> (f64, f64) {
    let accuracy = |pairs: &[&(f32, bool)], t: f32| {
        let right = pairs.iter().filter(|(s, same)| (*s >= t) == *same).count();
        right as f64 / pairs.len().max(1) as f64
    };
    let mut per_fold = Vec::new();
    for k in 0..10 {
        let (test, train): (Vec<_>, Vec<_>) =
            scored.iter().enumerate().partition(|(i, _)| i % 10 == k);
        let test: Vec<&(f32, bool)> = test.into_iter().map(|(_, p)| p).collect();
        let train: Vec<&(f32, bool)> = train.into_iter().map(|(_, p)| p).collect();
        if test.is_empty() || train.is_empty() {
            continue;
        }
        let mut candidates: Vec<f32> = train.iter().map(|(s, _)| *s).collect();
        candidates.sort_by(f32::total_cmp);
        candidates.dedup();
        let best = candidates
            .iter()
            .map(|&t| (accuracy(&train, t), t))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(0.0, |(_, t)| t);
        per_fold.push(accuracy(&test, best));
    }
    let n = per_fold.len().max(1) as f64;
    let mean = per_fold.iter().sum::<f64>() / n;
    let var = per_fold.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn row(model: &str, variant: Variant, scored: &[(f32, bool)]) -> Result<Row, String> {
    let mut scores = PairScores::default();
    for &(s, same) in scored {
        if same {
            scores.genuine.push(s);
        } else {
            scores.impostor.push(s);
        }
    }
    let roc = Roc::new(&scores.genuine, &scores.impostor).map_err(|e| e.to_string())?;
    let eer = roc.eer();
    Ok(Row {
        model: model.to_owned(),
        variant: variant.name(),
        pairs: (scores.genuine.len(), scores.impostor.len()),
        accuracy: ten_fold_accuracy(scored),
        report: Report {
            genuine: scores.genuine.len(),
            impostor: scores.impostor.len(),
            eer: eer.rate,
            eer_threshold: eer.threshold,
            at_far: [1e-2, 1e-3].iter().map(|&t| (t, roc.at_far(t))).collect(),
        },
    })
}

/// Rank-1: each person's first photo is enrolled, every later photo searched among them.
fn rank1(features: &[Vec<f32>], people: &[&str]) -> f64 {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        first.entry(p).or_insert(i);
    }
    let gallery: Vec<(&str, usize)> = first.iter().map(|(p, i)| (*p, *i)).collect();
    let probes: Vec<usize> = (0..people.len())
        .filter(|i| first.get(people[*i]) != Some(i))
        .collect();
    if probes.is_empty() {
        return 0.0;
    }
    let right = probes
        .par_iter()
        .filter(|&&i| {
            gallery
                .iter()
                .max_by(|a, b| {
                    dot(&features[i], &features[a.1]).total_cmp(&dot(&features[i], &features[b.1]))
                })
                .is_some_and(|(p, _)| *p == people[i])
        })
        .count();
    right as f64 / probes.len() as f64
}

/// Measures the model (`onnx`, input `size`, crops resized to `source_size`) and the teacher
/// on the kept pairs of `pairs_file`, whose crops `manifest` lists.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    onnx: &[u8],
    size: usize,
    source_size: usize,
    manifest: &Manifest,
    kept: &FoldPairs,
    folds: &[u32],
    teacher: Option<&Teacher>,
    batch: usize,
    progress: bool,
) -> Result<Lfw, String> {
    let index: HashMap<&Path, usize> = manifest
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_path(), i))
        .collect();
    let mut pairs = Vec::new();
    let mut missing = 0;
    for (a, b, same) in &kept.pairs {
        match (index.get(a.as_path()), index.get(b.as_path())) {
            (Some(&i), Some(&j)) => pairs.push((i, j, *same)),
            _ => missing += 1,
        }
    }
    // Every test person's photos, in manifest order: the pairs' and rank-1's faces.
    let faces: Vec<usize> = (0..manifest.entries.len())
        .filter(|&i| {
            let e = &manifest.entries[i];
            kept.people
                .contains(manifest.identities[e.label as usize].as_str())
        })
        .collect();
    let bar = if progress {
        indicatif::ProgressBar::new((faces.len() * (1 + Variant::ALL.len())) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message("LFW pairs");
    let stored: Vec<Option<image::RgbImage>> = faces
        .par_iter()
        .map(|&i| {
            image::open(&manifest.entries[i].path)
                .ok()
                .map(|im| im.into_rgb8())
        })
        .collect();
    let position: HashMap<usize, usize> = faces.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let landmarks = |i: usize| {
        manifest.entries[i]
            .landmarks
            .as_deref()
            .and_then(five_points)
    };
    let model_embed = |variant: Variant| -> Result<Vec<Vec<f32>>, String> {
        let mut set = FaceSet {
            size,
            pixels: Vec::new(),
            labels: Vec::new(),
            entries: Vec::new(),
            skipped: Vec::new(),
        };
        let blank = image::RgbImage::new(source_size as u32, source_size as u32);
        for (k, &i) in faces.iter().enumerate() {
            let img = stored[k].as_ref().unwrap_or(&blank);
            push_variant(
                img,
                landmarks(i).as_ref(),
                variant,
                i as u64,
                source_size,
                size,
                &mut set.pixels,
            );
            set.labels.push(manifest.entries[i].label);
            set.entries.push(i);
        }
        let (dim, features) = run_model(onnx, &set, batch, &mut |_, _| {})?;
        bar.inc(faces.len() as u64);
        Ok(features.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
    };
    let teacher_embed = |t: &Teacher, variant: Variant| -> Vec<Vec<f32>> {
        let out = faces
            .par_iter()
            .enumerate()
            .map(|(k, &i)| {
                let Some(img) = stored[k].as_ref() else {
                    return vec![0.0; t.dim()];
                };
                let points = landmarks(i);
                let spoiled = spoil(img, points.as_ref(), variant, i as u64);
                t.embed(&spoiled, points.as_ref(), size as u32)
                    .unwrap_or_else(|_| vec![0.0; t.dim()])
            })
            .collect();
        bar.inc((faces.len() / 2) as u64);
        out
    };
    let score = |clean: &[Vec<f32>], spoiled: &[Vec<f32>]| -> Vec<(f32, bool)> {
        pairs
            .iter()
            .map(|&(i, j, same)| (dot(&clean[position[&i]], &spoiled[position[&j]]), same))
            .collect()
    };
    let people: Vec<&str> = faces
        .iter()
        .map(|&i| manifest.identities[manifest.entries[i].label as usize].as_str())
        .collect();

    let mut rows = Vec::new();
    let clean = model_embed(Variant::Clean)?;
    let model_rank = rank1(&clean, &people);
    for variant in Variant::ALL {
        let spoiled = if variant == Variant::Clean {
            clean.clone()
        } else {
            model_embed(variant)?
        };
        rows.push(row("facegate", variant, &score(&clean, &spoiled))?);
    }
    let mut teacher_rank = None;
    if let Some(t) = teacher {
        let clean = teacher_embed(t, Variant::Clean);
        teacher_rank = Some(rank1(&clean, &people));
        for variant in Variant::ALL {
            let spoiled = if variant == Variant::Clean {
                clean.clone()
            } else {
                teacher_embed(t, variant)
            };
            rows.push(row("teacher", variant, &score(&clean, &spoiled))?);
        }
    }
    bar.finish_and_clear();
    Ok(Lfw {
        folds: folds.to_vec(),
        pairs: (pairs.len(), missing),
        people: kept.people.len(),
        rank1: (model_rank, teacher_rank),
        rows,
    })
}

/// The markdown section of the report.
pub fn markdown(l: &Lfw) -> String {
    let folds: Vec<String> = l.folds.iter().map(u32::to_string).collect();
    let mut s = format!(
        "## LFW View 2, folds {} (people never trained on)\n\n{} pairs of {} people, of the \
         {} pairs LFW's View 2 lists in these folds (the others name a photo that is not in \
         the data or that `prepare` could not use). The second photo of each pair is occluded in the \
         occluded rows; accuracy is LFW's ten-fold threshold cross-validation. TAR at FAR 1e-3 \
         rests on the listed impostor pairs only (a bound when they are fewer than 1,000).\n\n\
         | model | pairs | accuracy | TAR@FAR=1e-2 | TAR@FAR=1e-3 | EER |\n|---|---|---|---|---|---|\n",
        folds.join(", "),
        l.pairs.0,
        l.people,
        600 * l.folds.len()
    );
    for r in &l.rows {
        let tar = |t: f64| {
            r.report
                .at_far
                .iter()
                .find(|(x, _)| (*x - t).abs() < 1e-12)
                .map_or(f64::NAN, |(_, p)| p.tar)
        };
        s.push_str(&format!(
            "| {} {} | {}+{} | {:.2}% ± {:.2} | {:.3} | {:.3} | {:.2}% |\n",
            r.model,
            r.variant,
            r.pairs.0,
            r.pairs.1,
            100.0 * r.accuracy.0,
            100.0 * r.accuracy.1,
            tar(1e-2),
            tar(1e-3),
            100.0 * r.report.eer
        ));
    }
    s.push_str(&format!(
        "\nRank-1 on the test people (first photo enrolled, later photos searched): facegate {:.2}%{}\n",
        100.0 * l.rank1.0,
        l.rank1
            .1
            .map_or(String::new(), |t| format!(", teacher {:.2}%", 100.0 * t))
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_fold_accuracy_of_separable_and_of_random_scores() {
        let separable: Vec<(f32, bool)> = (0..200)
            .map(|i| {
                if i % 2 == 0 {
                    (0.8, true)
                } else {
                    (0.1, false)
                }
            })
            .collect();
        assert_eq!(ten_fold_accuracy(&separable), (1.0, 0.0));
        // Scores unrelated to the labels (a multiplicative hash of the index).
        let coin: Vec<(f32, bool)> = (0u64..400)
            .map(|i| {
                (
                    ((i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 1000) as f32,
                    (i / 3) % 2 == 0,
                )
            })
            .collect();
        let (acc, _) = ten_fold_accuracy(&coin);
        assert!((0.3..0.7).contains(&acc), "{acc}");
    }
}
