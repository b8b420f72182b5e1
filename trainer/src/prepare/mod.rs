//! Real photographs to training and test data (`facegate-train prepare`): each photo goes
//! through the device's detector (facegate-detect) and the contract's alignment, and comes out
//! as an aligned crop in the manifest format `train` and `eval` read.
//!
//! Output (`out/`): `<set>/<identity>/<photo>.png` crops, `<set>/manifest.csv` with the 5
//! landmarks in crop pixels, `test/lfw/pairs.csv` for the LFW layout, `skipped.csv` (every
//! photo left out and why: unreadable, no face, bad name) and `prepare.json` (what was done).
//! A photo that fails never stops the run.

pub mod layout;

use facegate_contract::align::{AlignmentTemplate, Landmarks5, SimilarityTransform, warp_rgb};
use facegate_contract::fsutil::{is_foreign_folder, write_atomic_in};
use facegate_detect::{DetectError, Detector, DetectorConfig, Face};
use layout::{Job, Layout, LayoutError, Rejected};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `prepare` does besides the layout.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Folder holding pnet.onnx, rnet.onnx and onet.onnx.
    pub detector: PathBuf,
    /// Smallest face side looked for, in source pixels.
    pub min_face: f32,
    /// The network input the crops are for; crops are [`crate::synth::crop_size`] of it.
    pub input_size: u32,
    /// Show a progress bar.
    pub progress: bool,
}

/// Why preparing failed as a whole (single photos never fail the run).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The source could not be scanned.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The detector could not be loaded.
    #[error(transparent)]
    Detector(#[from] DetectError),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output folder holds something `prepare` did not write.
    #[error("{0} is not empty and has no prepare.json: refusing to write into it")]
    NotOurs(PathBuf),
    /// No photo could be used.
    #[error("no usable face in {0} ({1} photos left out: see skipped.csv)")]
    NothingUsable(PathBuf, usize),
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareSummary {
    /// Each manifest written, with its number of crops.
    pub manifests: Vec<(PathBuf, usize)>,
    /// Photos left out (listed in skipped.csv).
    pub skipped: usize,
    /// Photos with several faces, of which the largest was kept.
    pub crowded: usize,
    /// LFW pairs written, and pairs dropped because a photo was left out.
    pub pairs: Option<(usize, usize)>,
}

struct Prepared {
    job: Job,
    landmarks: Landmarks5,
    faces: usize,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PrepareError> {
    write_atomic_in(path, bytes).map_err(|source| PrepareError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The face a photo is about: the largest one found.
fn main_face(faces: Vec<Face>) -> Option<Face> {
    let area = |f: &Face| (f.bbox.x2 - f.bbox.x1) * (f.bbox.y2 - f.bbox.y1);
    faces.into_iter().max_by(|a, b| area(a).total_cmp(&area(b)))
}

/// Detects, aligns and writes one photo's crop; the error is the reason it was left out.
fn prepare_one(
    job: Job,
    detector: &Detector,
    template: &AlignmentTemplate,
    out: &Path,
) -> Result<Prepared, Rejected> {
    let reject = |reason: String| Rejected {
        path: job.source.clone(),
        reason,
    };
    let photo = upright(&job.source)
        .map_err(|e| reject(format!("cannot decode: {e}")))?
        .to_rgb8();
    let faces = detector
        .detect(&photo)
        .map_err(|e| reject(format!("detector: {e}")))?;
    let count = faces.len();
    let face = main_face(faces).ok_or_else(|| reject("no face found".into()))?;
    let transform = SimilarityTransform::estimate(&face.landmarks.0, &template.points.0)
        .map_err(|e| reject(format!("alignment: {e}")))?;
    let crop = warp_rgb(&photo, &transform, template.width, template.height)
        .map_err(|e| reject(format!("alignment: {e}")))?;
    let path = out.join(&job.set).join(&job.crop);
    let mut png = Vec::new();
    crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| reject(format!("cannot encode the crop: {e}")))?;
    write(&path, &png).map_err(|e| reject(e.to_string()))?;
    let landmarks = face.landmarks.transformed(&transform);
    Ok(Prepared {
        job,
        landmarks,
        faces: count,
    })
}

fn refuse_foreign(out: &Path) -> Result<(), PrepareError> {
    let foreign = is_foreign_folder(out, "prepare.json").map_err(|source| PrepareError::Write {
        path: out.to_owned(),
        source,
    })?;
    if foreign {
        return Err(PrepareError::NotOurs(out.to_owned()));
    }
    Ok(())
}

/// Prepares every photo of `src` (organised as `layout`) into `out`.
pub fn prepare(
    src: &Path,
    layout: &Layout,
    out: &Path,
    opts: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    refuse_foreign(out)?;
    let scan = layout::scan(src, layout)?;
    let detector = Detector::load(
        &opts.detector,
        DetectorConfig {
            min_face: opts.min_face,
            ..DetectorConfig::default()
        },
    )?;
    let side = crate::synth::crop_size(opts.input_size);
    let template = AlignmentTemplate::square(opts.input_size).centred_in(side, side);
    let bar = if opts.progress {
        indicatif::ProgressBar::new(scan.jobs.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let results: Vec<Result<Prepared, Rejected>> = scan
        .jobs
        .into_par_iter()
        .map(|job| {
            let r = prepare_one(job, &detector, &template, out);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut skipped = scan.rejected;
    let mut sets: BTreeMap<String, Vec<Prepared>> = BTreeMap::new();
    for r in results {
        match r {
            Ok(p) => sets.entry(p.job.set.clone()).or_default().push(p),
            Err(rejected) => skipped.push(rejected),
        }
    }
    let mut text = String::from("path,reason\n");
    for s in &skipped {
        text.push_str(&format!(
            "{},{}\n",
            s.path.display(),
            s.reason.replace([',', '\n'], ";")
        ));
    }
    write(&out.join("skipped.csv"), text.as_bytes())?;
    if sets.is_empty() {
        return Err(PrepareError::NothingUsable(src.to_owned(), skipped.len()));
    }

    let mut summary = PrepareSummary {
        manifests: Vec::new(),
        skipped: skipped.len(),
        crowded: 0,
        pairs: None,
    };
    for (set, rows) in &sets {
        let mut text = format!(
            "path,identity\n# aligned by facegate-train prepare from {}\n",
            src.display()
        );
        for p in rows {
            let coords: Vec<String> = p
                .landmarks
                .0
                .iter()
                .flat_map(|q| [format!("{:.2}", q.x), format!("{:.2}", q.y)])
                .collect();
            text.push_str(&format!(
                "{},{},{}\n",
                p.job.crop,
                p.job.identity,
                coords.join(",")
            ));
            summary.crowded += usize::from(p.faces > 1);
        }
        let path = out.join(set).join("manifest.csv");
        write(&path, text.as_bytes())?;
        summary.manifests.push((path, rows.len()));
    }
    if let Layout::Lfw { .. } = layout {
        let have: std::collections::HashSet<&str> = sets
            .values()
            .flatten()
            .map(|p| p.job.crop.as_str())
            .collect();
        let mut text = String::from("a,b,same,fold\n");
        let mut kept = 0;
        for pair in &scan.pairs {
            if have.contains(pair.a.as_str()) && have.contains(pair.b.as_str()) {
                text.push_str(&format!(
                    "{},{},{},{}\n",
                    pair.a,
                    pair.b,
                    u8::from(pair.same),
                    pair.fold
                ));
                kept += 1;
            }
        }
        write(&out.join("test/lfw/pairs.csv"), text.as_bytes())?;
        summary.pairs = Some((kept, scan.pairs.len() - kept));
    }
    let record = serde_json::json!({
        "what": "photographs aligned by facegate-train prepare",
        "source": src.display().to_string(),
        "layout": format!("{layout:?}"),
        "detector": opts.detector.display().to_string(),
        "min_face": opts.min_face,
        "input_size": opts.input_size,
        "crop_size": side,
        "manifests": summary.manifests.iter().map(|(p, n)| (p.display().to_string(), n)).collect::<Vec<_>>(),
        "skipped": summary.skipped,
    });
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    write(&out.join("prepare.json"), text.as_bytes())?;
    Ok(summary)
}

/// A photo decoded and turned upright as its EXIF orientation says (phones store portrait
/// photos sideways with a tag; the detector finds no sideways face).
fn upright(path: &Path) -> image::ImageResult<image::DynamicImage> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::open(path)?
        .with_guessed_format()?
        .into_decoder()?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut photo = image::DynamicImage::from_decoder(decoder)?;
    photo.apply_orientation(orientation);
    Ok(photo)
}
