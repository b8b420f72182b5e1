//! `facegate liveness CONFIG PATH...`: the live scores the door's own check gives a set of
//! photos, and how many the configured threshold would refuse. The networks' authors warn that
//! scores depend on the camera and the scene, so an installer records the residents and a
//! printed photo or a phone held up at the door, and sets `[liveness] threshold` from this.

use crate::liveness::Liveness;
use crate::source::SourceError;
use crate::source::files::read_image;
use facegate_detect::{Detector, Face};
use std::path::{Path, PathBuf};

/// Most photos one survey reads.
pub const MAX_PHOTOS: usize = 100_000;

/// One photo's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Surveyed {
    /// The photo.
    pub path: PathBuf,
    /// The live score of its largest face; `None` when it has no face or does not decode.
    pub score: Option<f32>,
}

/// What a survey found.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Photos read.
    pub photos: usize,
    /// Photos with a face scored.
    pub faces: usize,
    /// Of those, how many the threshold refuses.
    pub refused: usize,
    /// The threshold held against.
    pub threshold: f32,
    /// Scores at the 1st, 5th, 10th, 50th and 90th percentile (nearest rank).
    pub percentiles: [(u8, f32); 5],
}

/// The image files in `paths`: files as given, folders walked (sorted, hidden entries left
/// out), at most `limit`.
pub fn photos_under(paths: &[PathBuf], limit: usize) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(p) = stack.pop() {
        if out.len() >= limit {
            break;
        }
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| SourceError::Io {
                    path: p.clone(),
                    source: e,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    !e.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png", "webp"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Scores the largest face of each photo; `progress(done, total)` is called after each.
pub fn survey(
    detector: &Detector,
    liveness: &Liveness,
    photos: &[PathBuf],
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Surveyed> {
    let area = |f: &Face| (f.bbox.x2 - f.bbox.x1) * (f.bbox.y2 - f.bbox.y1);
    let mut out = Vec::with_capacity(photos.len());
    for (i, path) in photos.iter().enumerate() {
        let score = read_image(path).ok().and_then(|image| {
            let faces = detector.detect(&image).ok()?;
            let face = faces.iter().max_by(|a, b| area(a).total_cmp(&area(b)))?;
            liveness.score(&image, face).ok().map(|s| s.score)
        });
        out.push(Surveyed {
            path: path.clone(),
            score,
        });
        progress(i + 1, photos.len());
    }
    out
}

/// The summary of `scores` against `threshold`; `None` when no photo had a face.
pub fn summarise(scores: &[Surveyed], threshold: f32) -> Option<Summary> {
    let mut s: Vec<f32> = scores.iter().filter_map(|s| s.score).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f32::total_cmp);
    let at = |q: u8| {
        let rank = (usize::from(q) * s.len()).div_ceil(100).max(1);
        (q, s[rank - 1])
    };
    Some(Summary {
        photos: scores.len(),
        faces: s.len(),
        refused: s.iter().filter(|&&v| v < threshold).count(),
        threshold,
        percentiles: [at(1), at(5), at(10), at(50), at(90)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(v: &[Option<f32>]) -> Vec<Surveyed> {
        v.iter()
            .map(|&score| Surveyed {
                path: PathBuf::from("x.jpg"),
                score,
            })
            .collect()
    }

    #[test]
    fn the_summary_counts_refusals_and_reads_percentiles_by_nearest_rank() {
        let mut v: Vec<Option<f32>> = (1..=100).map(|i| Some(i as f32 / 100.0)).collect();
        v.push(None);
        let s = summarise(&scored(&v), 0.5).unwrap();
        assert_eq!((s.photos, s.faces, s.refused), (101, 100, 49));
        assert_eq!(s.percentiles[0], (1, 0.01));
        assert_eq!(s.percentiles[3], (50, 0.5));
        assert_eq!(s.percentiles[4], (90, 0.9));
        assert_eq!(summarise(&scored(&[None]), 0.5), None);
    }

    #[test]
    fn folders_are_walked_in_order_and_only_images_kept() {
        let dir = std::env::temp_dir().join(format!("facegate-survey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        for f in ["b/2.jpg", "b/1.PNG", "a.jpeg", "notes.txt", ".hidden/3.jpg"] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        let got = photos_under(std::slice::from_ref(&dir), 10).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.jpeg", "b/1.PNG", "b/2.jpg"]);
        assert_eq!(
            photos_under(std::slice::from_ref(&dir), 2).unwrap().len(),
            2
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
