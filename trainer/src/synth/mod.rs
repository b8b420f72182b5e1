//! Synthetic faces (`facegate-train synth`): many made-up people, each with a stable face,
//! photographed under changing pose, expression, light, background and camera, with natural
//! occluders and the paper's window. Landmarks are exact, so the photos are aligned with the
//! shared alignment code straight from them; the output is the trainer's manifest format.
//!
//! Layout written under the output folder:
//! `train/manifest.csv` (training people, clean photos unless `train_occluded` > 0),
//! `test/<set>/manifest.csv` for each test set (other people; every set holds the same photos,
//! differing only by the occluder), `synth.json` (the settings that reproduce it all).

pub mod identity;
pub mod occluder;
pub mod render;
pub mod rng;
pub mod shot;

use facegate_contract::Landmarks5;
use facegate_contract::align::{AlignmentTemplate, SimilarityTransform, warp_rgb};
use facegate_contract::fsutil::{is_foreign_folder, write_atomic_in};
pub use identity::Identity;
pub use occluder::{Occlusion, OcclusionKind};
use rayon::prelude::*;
pub use render::{Photo, render};
use rng::{Rng, Stream};
use serde::{Deserialize, Serialize};
pub use shot::{Shot, Variation};
use std::path::{Path, PathBuf};

/// Changes whenever the same settings would render different pictures.
pub const GENERATOR_VERSION: u32 = 1;

/// The paper's network input side; crops are this plus a margin for random crops.
pub const PAPER_INPUT: u32 = 96;

/// Side of the stored crop for network input `input`: the paper's 110 for 96, scaled
/// (73 for 64), so random crops have the same share of margin at every size.
pub fn crop_size(input: u32) -> u32 {
    (input * 110 + PAPER_INPUT / 2) / PAPER_INPUT
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Seed of everything.
    pub seed: u64,
    /// People in the training set.
    pub train_identities: usize,
    /// Photos per training person.
    pub train_images: usize,
    /// People in the test sets (never in the training set).
    pub test_identities: usize,
    /// Photos per test person.
    pub test_images: usize,
    /// Test sets to write.
    pub test_sets: Vec<OcclusionKind>,
    /// Share of training photos that carry a random natural occluder (0 in the paper's recipe,
    /// which sees only its own black window during training).
    pub train_occluded: f32,
    /// Side of the rendered photo before alignment, pixels.
    pub photo_size: u32,
    /// The network input the crops are made for (crops are [`crop_size`] of it).
    pub input_size: u32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            train_identities: 500,
            train_images: 40,
            test_identities: 100,
            test_images: 10,
            test_sets: OcclusionKind::ALL.to_vec(),
            train_occluded: 0.0,
            photo_size: 160,
            input_size: PAPER_INPUT,
        }
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A setting is out of range.
    #[error("synth: {0}")]
    Config(String),
    /// The output folder holds something that is not an earlier synth output.
    #[error(
        "{0}: folder is not empty and has no synth.json; refusing to write generated faces into it"
    )]
    NotOurs(PathBuf),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("cannot encode {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The codec error.
        source: image::ImageError,
    },
    /// Landmarks could not be aligned (a bug in the renderer's geometry).
    #[error("cannot align synthetic face {0}: {1}")]
    Align(String, facegate_contract::align::AlignError),
}

/// One generated face.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The rendered photo, unaligned.
    pub photo: Photo,
    /// The aligned crop (the window, if any, painted on it).
    pub crop: image::RgbImage,
    /// The landmarks in the crop's pixels.
    pub landmarks: Landmarks5,
}

/// The person with index `identity` under `seed`.
pub fn person(seed: u64, identity: u64) -> Identity {
    Identity::sample(&mut Rng::stream(seed, Stream::Identity, identity, 0))
}

/// Photo `image` of person `identity`, with an occluder of `kind` (drawn for this photo),
/// rendered `photo_size` square and aligned to the training template of network input
/// `input` (a [`crop_size`] crop).
pub fn sample(
    seed: u64,
    identity: u64,
    image: u64,
    kind: OcclusionKind,
    variation: Variation,
    (photo_size, input): (u32, u32),
) -> Result<Sample, SynthError> {
    let who = person(seed, identity);
    let mut shot_rng = Rng::stream(seed, Stream::Shot, identity, image);
    let shot = Shot::sample(&mut shot_rng, variation, photo_size);
    let mut occ_rng = Rng::stream(seed, Stream::Occluder, identity, image * 16 + kind as u64);
    let occlusion = Occlusion::sample(kind, &who, &mut occ_rng);
    let photo = render(&who, &shot, &occlusion, photo_size, &mut shot_rng);
    let crop_side = crop_size(input);
    let template = AlignmentTemplate::square(input).centred_in(crop_side, crop_side);
    let name = format!("person {identity} photo {image}");
    let transform = SimilarityTransform::estimate(&photo.landmarks.0, &template.points.0)
        .map_err(|e| SynthError::Align(name.clone(), e))?;
    let mut crop = warp_rgb(&photo.image, &transform, crop_side, crop_side)
        .map_err(|e| SynthError::Align(name, e))?;
    occluder::paint_window(&mut crop, &occlusion);
    let landmarks = photo.landmarks.transformed(&transform);
    Ok(Sample {
        photo,
        crop,
        landmarks,
    })
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// The training manifest.
    pub train: PathBuf,
    /// Each test set's manifest.
    pub tests: Vec<(OcclusionKind, PathBuf)>,
    /// Images written in all.
    pub images: usize,
}

/// One image to write: who, which photo, which occluder, where.
struct Job {
    identity: u64,
    image: u64,
    kind: OcclusionKind,
    file: PathBuf,
    line: String,
}

impl SynthConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), SynthError> {
        let bad = |m: String| Err(SynthError::Config(m));
        if self.train_identities < 2 || self.train_images < 1 {
            return bad(format!(
                "train_identities = {}, train_images = {}: need at least 2 people and 1 photo each",
                self.train_identities, self.train_images
            ));
        }
        if !self.test_sets.is_empty() && (self.test_identities < 2 || self.test_images < 2) {
            return bad(format!(
                "test_identities = {}, test_images = {}: test sets need at least 2 people with 2 photos",
                self.test_identities, self.test_images
            ));
        }
        if !(0.0..=1.0).contains(&self.train_occluded) {
            return bad(format!(
                "train_occluded = {}: expected a share in [0, 1]",
                self.train_occluded
            ));
        }
        if !(16..=512).contains(&self.input_size) || !self.input_size.is_multiple_of(16) {
            return bad(format!(
                "input_size = {}: expected a multiple of 16 in 16..=512",
                self.input_size
            ));
        }
        if !(64..=1024).contains(&self.photo_size) {
            return bad(format!(
                "photo_size = {}: expected 64..=1024 pixels",
                self.photo_size
            ));
        }
        Ok(())
    }

    fn jobs(&self, out: &Path) -> (Vec<Job>, Vec<(String, Vec<usize>)>) {
        let mut jobs = Vec::new();
        let mut manifests = Vec::new();
        let mut add = |folder: String,
                       ids: std::ops::Range<usize>,
                       images,
                       kind: &dyn Fn(u64, u64) -> OcclusionKind| {
            let mut rows = Vec::new();
            for id in ids {
                for n in 0..images {
                    let rel = format!("id{id:05}/{n:03}.png");
                    rows.push(jobs.len());
                    jobs.push(Job {
                        identity: id as u64,
                        image: n as u64,
                        kind: kind(id as u64, n as u64),
                        file: out.join(&folder).join(&rel),
                        line: format!("{rel},id{id:05}"),
                    });
                }
            }
            manifests.push((folder, rows));
        };
        let (seed, share) = (self.seed, self.train_occluded);
        add(
            "train".into(),
            0..self.train_identities,
            self.train_images,
            &|id, n| {
                let mut rng = Rng::stream(seed, Stream::Occluder, id, n * 16 + 15);
                if share > 0.0 && rng.chance(share) {
                    OcclusionKind::NATURAL[rng.below(OcclusionKind::NATURAL.len())]
                } else {
                    OcclusionKind::Clean
                }
            },
        );
        let test_ids = self.train_identities..self.train_identities + self.test_identities;
        for &set in &self.test_sets {
            add(
                format!("test/{}", set.name()),
                test_ids.clone(),
                self.test_images,
                &|_, _| set,
            );
        }
        (jobs, manifests)
    }
}

/// Generates the data set `config` describes into `out`, with a progress bar when `progress`.
pub fn generate(
    config: &SynthConfig,
    out: &Path,
    progress: bool,
) -> Result<SynthSummary, SynthError> {
    config.check()?;
    let stamp = out.join("synth.json");
    let foreign = is_foreign_folder(out, "synth.json").map_err(|source| SynthError::Write {
        path: out.to_owned(),
        source,
    })?;
    if foreign {
        return Err(SynthError::NotOurs(out.to_owned()));
    }
    let (jobs, manifests) = config.jobs(out);
    let bar = if progress {
        indicatif::ProgressBar::new(jobs.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} faces {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let lines: Vec<String> = jobs
        .par_iter()
        .map(|job| {
            let face = sample(
                config.seed,
                job.identity,
                job.image,
                job.kind,
                Variation::WILD,
                (config.photo_size, config.input_size),
            )?;
            write_png(&job.file, &face.crop)?;
            bar.inc(1);
            let coords: Vec<String> = face
                .landmarks
                .0
                .iter()
                .flat_map(|p| [format!("{:.2}", p.x), format!("{:.2}", p.y)])
                .collect();
            Ok(format!("{},{}", job.line, coords.join(",")))
        })
        .collect::<Result<_, SynthError>>()?;
    bar.finish_and_clear();
    let mut summary = SynthSummary {
        train: PathBuf::new(),
        tests: Vec::new(),
        images: jobs.len(),
    };
    for (folder, rows) in manifests {
        let mut text = format!(
            "path,identity\n# synthetic faces: facegate-train synth, seed {}, generator {GENERATOR_VERSION}\n",
            config.seed
        );
        for r in rows {
            text.push_str(&lines[r]);
            text.push('\n');
        }
        let path = out.join(&folder).join("manifest.csv");
        write(&path, text.as_bytes())?;
        match folder.strip_prefix("test/") {
            None => summary.train = path,
            Some(name) => {
                if let Some(kind) = OcclusionKind::ALL.into_iter().find(|k| k.name() == name) {
                    summary.tests.push((kind, path));
                }
            }
        }
    }
    let record = serde_json::json!({
        "generator": GENERATOR_VERSION,
        "what": "synthetic faces rendered by facegate-train synth; not photographs of people",
        "config": config,
        "images": jobs.len(),
    });
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    write(&stamp, text.as_bytes())?;
    Ok(summary)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    write_atomic_in(path, bytes).map_err(|source| SynthError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_png(path: &Path, image: &image::RgbImage) -> Result<(), SynthError> {
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|source| SynthError::Encode {
            path: path.to_owned(),
            source,
        })?;
    write(path, &bytes)
}

/// Draws a contact sheet to `path`: one row per test person (up to 6), one column per set
/// (clean first), photo 0 of each, so a reader can see what the sets look like.
pub fn preview(config: &SynthConfig, path: &Path) -> Result<(), SynthError> {
    let mut sets = vec![OcclusionKind::Clean];
    sets.extend(
        config
            .test_sets
            .iter()
            .filter(|k| **k != OcclusionKind::Clean),
    );
    let rows = config.test_identities.clamp(1, 6);
    let first = config.train_identities as u64;
    let side = crop_size(config.input_size);
    let cell = side + 4;
    let mut sheet = image::RgbImage::from_pixel(
        cell * sets.len() as u32,
        cell * rows as u32,
        image::Rgb([255; 3]),
    );
    for r in 0..rows {
        for (c, &kind) in sets.iter().enumerate() {
            let face = sample(
                config.seed,
                first + r as u64,
                0,
                kind,
                Variation::WILD,
                (config.photo_size, config.input_size),
            )?;
            image::imageops::replace(
                &mut sheet,
                &face.crop,
                (c as u32 * cell + 2) as i64,
                (r as u32 * cell + 2) as i64,
            );
        }
    }
    write_png(path, &sheet)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn face(id: u64, n: u64, kind: OcclusionKind) -> Sample {
        sample(3, id, n, kind, Variation::WILD, (160, 96)).unwrap()
    }

    /// Rows of the crop where `a` and `b` differ by more than a little.
    fn changed_rows(a: &image::RgbImage, b: &image::RgbImage) -> Vec<u32> {
        (0..a.height())
            .filter(|&y| {
                (0..a.width()).any(|x| {
                    let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
                    (0..3).any(|c| p[c].abs_diff(q[c]) > 12)
                })
            })
            .collect()
    }

    #[test]
    fn same_settings_same_pixels_other_photo_other_pixels() {
        let (a, b) = (
            face(5, 2, OcclusionKind::Clean),
            face(5, 2, OcclusionKind::Clean),
        );
        assert_eq!(a.crop, b.crop);
        assert_eq!(a.landmarks, b.landmarks);
        assert_ne!(face(5, 3, OcclusionKind::Clean).crop, a.crop);
    }

    #[test]
    fn landmarks_are_true() {
        // A large frontal photo: every eye landmark sits on a pupil (near black).
        for id in 0..6 {
            let s = sample(
                9,
                id,
                0,
                OcclusionKind::Clean,
                Variation::FRONTAL,
                (480, 96),
            )
            .unwrap();
            for eye in &s.photo.landmarks.0[..2] {
                let p = s.photo.image.get_pixel(eye.x as u32, eye.y as u32).0;
                let lum = p.iter().map(|&v| v as u32).sum::<u32>() / 3;
                assert!(lum < 50, "person {id}: eye landmark on {p:?}");
            }
        }
        // After alignment the landmarks are near the template (only pose moves them).
        let template = AlignmentTemplate::square(96).centred_in(110, 110);
        for n in 0..10 {
            let s = face(1, n, OcclusionKind::Clean);
            for (p, t) in s.landmarks.0.iter().zip(&template.points.0) {
                let d = ((p.x - t.x).powi(2) + (p.y - t.y).powi(2)).sqrt();
                assert!(d < 8.0, "photo {n}: landmark {p:?} is {d} px from {t:?}");
            }
        }
    }

    #[test]
    fn occluders_cover_their_part_of_the_face_only() {
        // Template rows (110x110 crop): eyes near 51, mouth near 86.
        for n in 0..4 {
            let clean = face(7, n, OcclusionKind::Clean).crop;
            let rows = |kind| changed_rows(&clean, &face(7, n, kind).crop);
            let glasses = rows(OcclusionKind::Sunglasses);
            assert!(
                glasses.iter().any(|r| (45..58).contains(r)),
                "photo {n}: {glasses:?}"
            );
            assert!(
                glasses.iter().all(|r| (25..75).contains(r)),
                "photo {n}: {glasses:?}"
            );
            let mask = rows(OcclusionKind::Mask);
            assert!(
                mask.iter().any(|r| (80..92).contains(r)),
                "photo {n}: {mask:?}"
            );
            assert!(mask.iter().all(|r| *r > 55), "photo {n}: {mask:?}");
            let scarf = rows(OcclusionKind::Scarf);
            assert!(scarf.iter().all(|r| *r > 60), "photo {n}: {scarf:?}");
            let hat = rows(OcclusionKind::Hat);
            assert!(
                !hat.is_empty() && hat.iter().all(|r| *r < 50),
                "photo {n}: {hat:?}"
            );
            let window = face(7, n, OcclusionKind::Window).crop;
            let black = window.pixels().filter(|p| p.0 == [0, 0, 0]).count();
            assert!(black >= 32 * 12, "photo {n}: {black} black pixels");
            let w = rows(OcclusionKind::Window);
            assert!(
                w.len() <= 12 && w.iter().all(|r| (11..99).contains(r)),
                "{w:?}"
            );
            assert!(!rows(OcclusionKind::Hand).is_empty());
        }
    }

    #[test]
    fn a_person_looks_more_like_themself_than_like_others() {
        let diff = |a: &image::RgbImage, b: &image::RgbImage| -> f64 {
            let sum: u64 = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(x, y)| x.abs_diff(*y) as u64)
                .sum();
            sum as f64 / a.as_raw().len() as f64
        };
        let frontal = |id, n| {
            sample(
                4,
                id,
                n,
                OcclusionKind::Clean,
                Variation::FRONTAL,
                (160, 96),
            )
            .unwrap()
            .crop
        };
        for id in 0..5u64 {
            let same = diff(&frontal(id, 0), &frontal(id, 1));
            let other = diff(&frontal(id, 0), &frontal(id + 10, 0));
            assert!(
                same * 2.0 < other,
                "person {id}: same {same}, other {other}"
            );
        }
    }

    #[test]
    fn generate_writes_manifests_the_trainer_reads() {
        let dir = std::env::temp_dir().join(format!("facegate-synth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = SynthConfig {
            train_identities: 3,
            train_images: 2,
            test_identities: 2,
            test_images: 2,
            test_sets: vec![OcclusionKind::Clean, OcclusionKind::Mask],
            train_occluded: 0.5,
            input_size: 64,
            ..Default::default()
        };
        let summary = generate(&config, &dir, false).unwrap();
        assert_eq!(summary.images, 3 * 2 + 2 * 2 * 2);
        let train = crate::data::Manifest::load(&summary.train).unwrap();
        assert_eq!(train.identities.len(), 3);
        assert_eq!(train.entries.len(), 6);
        assert!(
            train
                .entries
                .iter()
                .all(|e| e.landmarks.as_ref().unwrap().len() == 5)
        );
        let decoded = image::open(&train.entries[0].path).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (73, 73));
        assert_eq!(summary.tests.len(), 2);
        let mask = crate::data::Manifest::load(&summary.tests[1].1).unwrap();
        assert_eq!(mask.identities, vec!["id00003", "id00004"]);
        // Running again over its own output is fine; over someone else's folder is not.
        generate(&config, &dir, false).unwrap();
        let foreign = dir.join("train");
        let err = generate(&config, &foreign, false).unwrap_err();
        assert!(err.to_string().contains("no synth.json"), "{err}");
        let bad = SynthConfig {
            train_occluded: 2.0,
            ..config
        };
        assert!(
            generate(&bad, &dir, false)
                .unwrap_err()
                .to_string()
                .contains("train_occluded")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
