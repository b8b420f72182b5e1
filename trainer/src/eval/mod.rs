//! Evaluation (`facegate-train eval MODEL DATA`): the exported model measured through tract on
//! clean and occluded test sets: verification, closed-set identification and template matching,
//! written as a report folder (markdown + ROC PNG), with the card's thresholds calibrated.
//!
//! Position: after `export`; its numbers feed the README and the card the device reads.

pub mod compare;
pub mod embed;
pub mod interpret;
pub mod lfw;
pub mod masked;
pub mod protocols;
pub mod report;

use crate::data::{FaceSet, Manifest, ManifestError};
use crate::export::card_path;
use crate::scores::{FAR_TARGETS, PairScores, Report};
use crate::synth::OcclusionKind;
use embed::Embedded;
use facegate_contract::card::{Comparison, DatasetRef, DatasetRole, Metric, Threshold};
use facegate_contract::metrics::{MetricsError, Roc};
use facegate_contract::occlusion::{OcclusionRule, RegionMap};
use facegate_contract::thresholds::Thresholds;
use facegate_contract::{CardError, ModelCard};
use std::path::{Path, PathBuf};

/// Prefix of the card entries eval owns (replaced on every run).
pub const CARD_PREFIX: &str = "eval-";

/// The false accept rates the card's thresholds are calibrated at: a door never lets a
/// stranger in, so only strict points are offered.
pub const CALIBRATED_FARS: [f64; 2] = [1e-3, 1e-4];

/// What to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// The exported ONNX file (its card beside it).
    pub model: PathBuf,
    /// A synth output folder (`test/<set>/manifest.csv`) or one manifest of aligned crops.
    pub data: PathBuf,
    /// The report folder.
    pub out: PathBuf,
    /// Side of the stored crops (the network sees their centre); default: the synth crop size
    /// for the model's input (110 for 96).
    pub source_size: Option<usize>,
    /// Faces per inference run.
    pub batch: usize,
    /// Write calibrated thresholds and the metrics into the model card.
    pub update_card: bool,
    /// Seed of the window places painted on sets that lack a window set.
    pub seed: u64,
    /// LFW View 2 folds to test on (the data is a `prepare --layout lfw` folder): only the
    /// people those folds' pairs name are measured.
    pub folds: Option<Vec<u32>>,
    /// The teacher measured beside the model on the same LFW pairs.
    pub teacher: Option<PathBuf>,
}

/// Why evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model card is missing, malformed or does not match the model file.
    #[error(transparent)]
    Card(#[from] CardError),
    /// A test manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The data path holds no usable test set.
    #[error("{path}: {message}")]
    Data {
        /// The data path.
        path: PathBuf,
        /// What is missing and what was expected.
        message: String,
    },
    /// The model could not be run.
    #[error("cannot run {path} with tract: {message}")]
    Model {
        /// The ONNX file.
        path: PathBuf,
        /// tract's complaint.
        message: String,
    },
    /// A protocol had too little data.
    #[error("set {set}, {protocol}: {source}")]
    Protocol {
        /// The test set.
        set: String,
        /// The protocol.
        protocol: &'static str,
        /// The metric's complaint.
        source: MetricsError,
    },
    /// The report could not be written.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// The updated card is invalid (a bug).
    #[error("updated card is invalid: {0:?}")]
    InvalidCard(Vec<String>),
}

/// One test set's results.
#[derive(Debug, Clone)]
pub struct SetResult {
    /// Set name (`clean`, `sunglasses`, ..., `window`).
    pub name: String,
    /// Where its faces came from.
    pub source: String,
    /// Faces embedded.
    pub faces: usize,
    /// People.
    pub identities: usize,
    /// Images that could not be used.
    pub skipped: Vec<(PathBuf, String)>,
    /// Verification against the clean gallery.
    pub verification: Report,
    /// (FAR, TAR) points for the ROC picture, thinned.
    pub roc: Vec<(f64, f64)>,
    /// Closed-set rank-1 and rank-5.
    pub rank: (f64, f64),
    /// Template matching.
    pub templates: Report,
    /// The occlusion rule's findings and the masked comparison against the clean gallery, at
    /// the operating point of [`MASKED_OPERATING_FAR`] (none without a calibrated full
    /// threshold there).
    pub masked: Option<masked::MaskedResult>,
}

/// Whether the masked thresholds calibrated on the clean set go into the card. They do only
/// when, on every test set, the device's rule with them let in no more impostors than the full
/// comparison: a threshold fitted on one set can be optimistic on another, and a door must not
/// trade a stranger for convenience.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskedAdoption {
    /// No set of occluded regions had enough impostor pairs to calibrate a threshold.
    NothingCalibrated,
    /// No full threshold at [`MASKED_OPERATING_FAR`] to measure against.
    NotMeasured,
    /// In the card: no test set saw more false accepts than with the full comparison.
    Adopted,
    /// Left out of the card: these test sets saw more false accepts (set, full FAR, device FAR).
    Rejected(Vec<(String, f64, f64)>),
}

/// The operating point the masked comparison is measured at (the device's default).
pub const MASKED_OPERATING_FAR: f64 = 1e-3;

/// A calibrated threshold with its sample size.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrated {
    /// The threshold as the card stores it.
    pub threshold: Threshold,
    /// Impostor pairs it was calibrated on.
    pub impostors: usize,
}

/// Everything an evaluation measured.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The model's card (as read, before any update).
    pub card: ModelCard,
    /// The card's path.
    pub card_path: PathBuf,
    /// Whether the data is generated (a synth folder).
    pub synthetic: bool,
    /// Per set, clean first.
    pub sets: Vec<SetResult>,
    /// Thresholds calibrated on the clean set: full, then masked per set of occluded regions
    /// when [`Evaluation::masked_adoption`] adopted them (these go into the card).
    pub thresholds: Vec<Calibrated>,
    /// The masked thresholds calibrated on the clean set, adopted or not.
    pub masked_candidates: Vec<Calibrated>,
    /// Whether the masked thresholds went into the card, and why.
    pub masked_adoption: MaskedAdoption,
    /// Peak locations, spreadness and the occlusion analysis on the clean set.
    pub interpretation: interpret::Interpretation,
    /// LFW View 2 on the kept folds, model and teacher, when asked for.
    pub lfw: Option<lfw::Lfw>,
}

/// A test set to load: name, manifest, whether to paint windows on it, and its listed
/// verification pairs (LFW's pairs.csv as `prepare` writes it), if any.
struct SetSource {
    name: String,
    manifest: PathBuf,
    paint_window: bool,
    pairs: Option<PathBuf>,
}

/// Reads a `a,b,same[,fold]` pairs file (crop paths relative to its folder), every fold.
fn load_pairs(path: &Path) -> Result<Vec<(PathBuf, PathBuf, bool)>, EvalError> {
    crate::data::fold_pairs(path, &[])
        .map(|kept| kept.pairs)
        .map_err(|message| EvalError::Data {
            path: path.to_owned(),
            message,
        })
}

fn discover(data: &Path) -> Result<(Vec<SetSource>, bool), EvalError> {
    let set = |name: &str, manifest: PathBuf, paint_window: bool| SetSource {
        name: name.to_owned(),
        pairs: Some(manifest.with_file_name("pairs.csv")).filter(|p| !paint_window && p.is_file()),
        manifest,
        paint_window,
    };
    if data.is_file() {
        return Ok((
            vec![
                set("clean", data.to_owned(), false),
                set("window", data.to_owned(), true),
            ],
            false,
        ));
    }
    let synthetic = data.join("synth.json").is_file();
    let mut sets = Vec::new();
    for kind in OcclusionKind::ALL {
        for dir in [data.join("test").join(kind.name()), data.join(kind.name())] {
            let manifest = dir.join("manifest.csv");
            if manifest.is_file() {
                sets.push(set(kind.name(), manifest, false));
                break;
            }
        }
    }
    // LFW as `prepare --layout lfw` writes it is an unoccluded set: it serves as the clean one.
    let lfw = data.join("test").join("lfw").join("manifest.csv");
    if sets.first().is_none_or(|s| s.name != "clean") && lfw.is_file() {
        sets.insert(0, set("clean", lfw, false));
    }
    let Some(clean) = sets.first().filter(|s| s.name == "clean") else {
        return Err(EvalError::Data {
            path: data.to_owned(),
            message: "no clean set: expected test/clean/manifest.csv (as `facegate-train synth` \
                      and `prepare --layout ar` write), test/lfw/manifest.csv (`prepare --layout \
                      lfw`) or a manifest file"
                .into(),
        });
    };
    if !sets.iter().any(|s| s.name == "window") {
        let manifest = clean.manifest.clone();
        sets.push(set("window", manifest, true));
    }
    Ok((sets, synthetic))
}

fn thin_roc(roc: &Roc) -> Vec<(f64, f64)> {
    let points = roc.points();
    let stride = (points.len() / 4000).max(1);
    points
        .iter()
        .step_by(stride)
        .chain(points.last())
        .map(|p| (p.far, p.tar))
        .collect()
}

fn summarise(
    scores: &PairScores,
    set: &str,
    protocol: &'static str,
) -> Result<(Report, Roc), EvalError> {
    let fail = |source| EvalError::Protocol {
        set: set.to_owned(),
        protocol,
        source,
    };
    let roc = Roc::new(&scores.genuine, &scores.impostor).map_err(fail)?;
    let eer = roc.eer();
    let report = Report {
        genuine: scores.genuine.len(),
        impostor: scores.impostor.len(),
        eer: eer.rate,
        eer_threshold: eer.threshold,
        at_far: FAR_TARGETS.iter().map(|&t| (t, roc.at_far(t))).collect(),
    };
    Ok((report, roc))
}

/// Measures the model on the data, as `request` says; the interpretability figures are drawn
/// into the report folder on the way.
pub fn evaluate(request: &EvalRequest, progress: bool) -> Result<Evaluation, EvalError> {
    let card_path = card_path(&request.model);
    let card = ModelCard::load(&card_path)?;
    let model_path = card.verify_model(&card_path)?;
    let onnx = std::fs::read(&model_path).map_err(|source| CardError::Read {
        path: model_path.clone(),
        source,
    })?;
    let model = Model {
        onnx: &onnx,
        path: &model_path,
        regions: RegionMap::from_card(&card),
        size: card.input.width as usize,
    };
    let source_size = request
        .source_size
        .unwrap_or(crate::synth::crop_size(card.input.width) as usize);
    let (sources, synthetic) = discover(&request.data)?;
    let bar = if progress {
        indicatif::ProgressBar::new(sources.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} sets {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut embedded: Vec<(SetSource, Manifest, Embedded)> = Vec::new();
    let mut clean_faces = None;
    for source in sources {
        bar.set_message(source.name.clone());
        let (manifest, faces, e) = embed_set(&model, &source, source_size, request)?;
        if clean_faces.is_none() {
            clean_faces = Some(faces);
        }
        embedded.push((source, manifest, e));
        bar.inc(1);
    }
    bar.set_message("interpretability");
    let gallery = embedded[0].2.clone();
    let clean_faces = clean_faces.ok_or_else(|| EvalError::Data {
        path: request.data.clone(),
        message: "no clean set".into(),
    })?;
    let interpretation = interpret::interpret(
        &onnx,
        &card,
        &clean_faces,
        &gallery,
        request.batch,
        &request.out,
    )
    .map_err(|message| EvalError::Model {
        path: model_path.clone(),
        message,
    })?;
    bar.finish_and_clear();

    let mut sets = Vec::new();
    let mut thresholds = Vec::new();
    for (source, manifest, probe) in &embedded {
        let (set, calibrated) = measure_set(source, manifest, probe, &gallery)?;
        sets.push(set);
        thresholds.extend(calibrated);
    }
    let (masked_candidates, masked_adoption) = adopt_masked(
        &card,
        &thresholds,
        &gallery,
        &model.regions,
        &embedded,
        &mut sets,
    );
    if masked_adoption == MaskedAdoption::Adopted {
        thresholds.extend(masked_candidates.iter().cloned());
    }
    Ok(Evaluation {
        card,
        card_path,
        synthetic,
        sets,
        thresholds,
        masked_candidates,
        masked_adoption,
        interpretation,
        lfw: None,
    })
}

/// The model under evaluation: its ONNX bytes and file, where its filters look, its input size.
struct Model<'a> {
    onnx: &'a [u8],
    path: &'a Path,
    regions: RegionMap,
    size: usize,
}

/// One set's faces (centre crops, windows painted when the set asks) and their embeddings; a
/// set with no usable face is an error naming its manifest.
fn embed_set(
    model: &Model,
    source: &SetSource,
    source_size: usize,
    request: &EvalRequest,
) -> Result<(Manifest, FaceSet, Embedded), EvalError> {
    let manifest = Manifest::load(&source.manifest)?;
    let mut faces = FaceSet::centre_crops(&manifest, source_size, model.size);
    if source.paint_window {
        embed::paint_windows(&mut faces, source_size, request.seed);
    }
    let rule = OcclusionRule::default();
    let e = embed::embed(
        model.onnx,
        (&model.regions, &rule),
        &manifest,
        &faces,
        request.batch,
    )
    .map_err(|message| EvalError::Model {
        path: model.path.to_owned(),
        message,
    })?;
    if e.is_empty() {
        return Err(EvalError::Data {
            path: source.manifest.clone(),
            message: format!(
                "no usable face ({} skipped; first: {})",
                e.skipped.len(),
                e.skipped
                    .first()
                    .map_or(String::new(), |(p, why)| format!("{} {why}", p.display()))
            ),
        });
    }
    Ok((manifest, faces, e))
}

/// One set measured against the gallery: verification (on its listed pairs when it has a pairs
/// file), rank-k identification and templates; for the clean set also the full-comparison
/// thresholds calibrated on all of its impostor pairs.
fn measure_set(
    source: &SetSource,
    manifest: &Manifest,
    probe: &Embedded,
    gallery: &Embedded,
) -> Result<(SetResult, Vec<Calibrated>), EvalError> {
    let name = source.name.as_str();
    let symmetric = name == "clean";
    let mut listed = None;
    let pairs = match &source.pairs {
        Some(file) => {
            let (pairs, dropped) = protocols::listed_pairs(probe, &load_pairs(file)?);
            listed = Some((file, pairs.genuine.len() + pairs.impostor.len(), dropped));
            pairs
        }
        None => protocols::verification(gallery, probe, symmetric),
    };
    let (verification, roc) = summarise(&pairs, name, "verification")?;
    let mut thresholds = Vec::new();
    if symmetric {
        // Thresholds rest on every impostor pair of the set, not only listed ones: LFW's
        // few hundred listed impostors cannot place a 1e-3 threshold.
        let all = match listed {
            Some(_) => protocols::verification(gallery, probe, true),
            None => pairs.clone(),
        };
        for target in CALIBRATED_FARS {
            if let Some((score, measured)) = protocols::threshold_at_far(&all.impostor, target) {
                thresholds.push(Calibrated {
                    threshold: Threshold {
                        comparison: Comparison::Full,
                        score,
                        target_far: target,
                        measured_far: measured,
                        dataset: format!("{CARD_PREFIX}clean"),
                        regions: None,
                    },
                    impostors: all.impostor.len(),
                });
            }
        }
    }
    let rank = protocols::identification(gallery, probe).map_err(|source| EvalError::Protocol {
        set: name.to_owned(),
        protocol: "identification",
        source,
    })?;
    let template_pairs =
        protocols::templates(gallery, probe).map_err(|source| EvalError::Protocol {
            set: name.to_owned(),
            protocol: "templates",
            source,
        })?;
    let (templates, _) = summarise(&template_pairs, name, "templates")?;
    let set = SetResult {
        name: name.to_owned(),
        source: match (source.paint_window, listed) {
            (true, _) => format!(
                "{} with a random 32x12 window per face",
                source.manifest.display()
            ),
            (false, Some((file, used, dropped))) => format!(
                "{}, verification on the {used} listed pairs of {} ({dropped} dropped: a \
                 photo was left out)",
                source.manifest.display(),
                file.display()
            ),
            (false, None) => source.manifest.display().to_string(),
        },
        faces: probe.len(),
        identities: manifest.num_classes(),
        skipped: probe.skipped.clone(),
        verification,
        roc: thin_roc(&roc),
        rank,
        templates,
        masked: None,
    };
    Ok((set, thresholds))
}

/// Masked thresholds calibrated on the clean set's pairs, then every set measured at one
/// operating point with the thresholds the device would pick from the card so updated: the
/// candidates are adopted only if no set's false accepts rise with them.
fn adopt_masked(
    card: &ModelCard,
    thresholds: &[Calibrated],
    gallery: &Embedded,
    regions: &RegionMap,
    embedded: &[(SetSource, Manifest, Embedded)],
    sets: &mut [SetResult],
) -> (Vec<Calibrated>, MaskedAdoption) {
    let clean_pairs = masked::scored_pairs(gallery, gallery, regions, true);
    let full: Vec<(f64, f32)> = thresholds
        .iter()
        .map(|c| (c.threshold.target_far, c.threshold.score))
        .collect();
    let candidates: Vec<Calibrated> =
        masked::calibrate(clean_pairs, &full, &format!("{CARD_PREFIX}clean"))
            .into_iter()
            .map(|(threshold, impostors)| Calibrated {
                threshold,
                impostors,
            })
            .collect();
    let mut calibrated = card.clone();
    calibrated.thresholds = thresholds
        .iter()
        .chain(&candidates)
        .map(|c| c.threshold.clone())
        .collect();
    let mut adoption = MaskedAdoption::NotMeasured;
    if let Some(operating) = Thresholds::from_card(&calibrated, MASKED_OPERATING_FAR) {
        for ((source, _, probe), set) in embedded.iter().zip(sets.iter_mut()) {
            let pairs = masked::scored_pairs(gallery, probe, regions, source.name == "clean");
            set.masked = Some(masked::measure(probe, pairs, &operating));
        }
        let worse: Vec<(String, f64, f64)> = sets
            .iter()
            .filter(|s| s.name != "clean")
            .filter_map(|s| {
                let m = s.masked.as_ref()?;
                (m.far_device > m.far_full).then(|| (s.name.clone(), m.far_full, m.far_device))
            })
            .collect();
        adoption = if worse.is_empty() {
            MaskedAdoption::Adopted
        } else {
            MaskedAdoption::Rejected(worse)
        };
    }
    if candidates.is_empty() {
        adoption = MaskedAdoption::NothingCalibrated;
    }
    (candidates, adoption)
}

/// LFW mode: the kept folds' people become the test set (a manifest and pairs file written
/// into the report folder), measured as any set is, then the LFW table of model and teacher.
fn evaluate_lfw(
    request: &EvalRequest,
    folds: &[u32],
    progress: bool,
) -> Result<Evaluation, EvalError> {
    let dir = request.data.join("test").join("lfw");
    let (manifest_path, pairs_path) = (dir.join("manifest.csv"), dir.join("pairs.csv"));
    let data_err = |path: &Path, message: String| EvalError::Data {
        path: path.to_owned(),
        message,
    };
    let kept = crate::data::fold_pairs(&pairs_path, folds).map_err(|m| data_err(&pairs_path, m))?;
    let manifest = Manifest::load(&manifest_path)?;
    let test = manifest.only_identities(&kept.people);
    let subset = request.out.join("lfw-test");
    let write = |path: PathBuf, text: String| {
        std::fs::create_dir_all(&subset)
            .and_then(|()| facegate_contract::fsutil::write_atomic(&path, text.as_bytes()))
            .map_err(|e| data_err(&path, format!("cannot write: {e}")))
    };
    let mut m = format!(
        "path,identity\n# the people of LFW View 2 folds {folds:?} in {}\n",
        manifest_path.display()
    );
    for e in &test.entries {
        let path = std::path::absolute(&e.path).unwrap_or_else(|_| e.path.clone());
        m.push_str(&format!(
            "{},{}",
            path.display(),
            test.identities[e.label as usize]
        ));
        for p in e.landmarks.iter().flatten() {
            m.push_str(&format!(",{:.2},{:.2}", p.x, p.y));
        }
        m.push('\n');
    }
    write(subset.join("manifest.csv"), m)?;
    let mut p = String::from("a,b,same\n");
    for (a, b, same) in &kept.pairs {
        let abs = |x: &Path| std::path::absolute(x).unwrap_or_else(|_| x.to_owned());
        p.push_str(&format!(
            "{},{},{}\n",
            abs(a).display(),
            abs(b).display(),
            u8::from(*same)
        ));
    }
    write(subset.join("pairs.csv"), p)?;
    let subset_request = EvalRequest {
        data: subset.join("manifest.csv"),
        ..request.clone()
    };
    let evaluation = evaluate(&subset_request, progress);
    // The subset lists paths of this machine's data: it is scaffolding, not part of the report.
    let _ = std::fs::remove_dir_all(&subset);
    let mut evaluation = evaluation?;
    let card = &evaluation.card;
    let model_path = card.verify_model(&evaluation.card_path)?;
    let onnx = std::fs::read(&model_path).map_err(|source| CardError::Read {
        path: model_path.clone(),
        source,
    })?;
    let teacher = match &request.teacher {
        Some(path) => Some(
            crate::teacher::Teacher::load(path).map_err(|e| EvalError::Model {
                path: path.clone(),
                message: e.to_string(),
            })?,
        ),
        None => None,
    };
    let size = card.input.width as usize;
    let source_size = request
        .source_size
        .unwrap_or(crate::synth::crop_size(card.input.width) as usize);
    let measured = lfw::measure(
        &onnx,
        size,
        source_size,
        &test,
        &kept,
        folds,
        teacher.as_ref(),
        request.batch,
        progress,
    )
    .map_err(|message| EvalError::Model {
        path: model_path,
        message,
    })?;
    evaluation.lfw = Some(measured);
    Ok(evaluation)
}

impl Evaluation {
    /// The card with this evaluation's data, metrics and thresholds in place of any earlier
    /// evaluation's (entries named `eval-*`); everything else is kept.
    pub fn updated_card(&self) -> Result<ModelCard, EvalError> {
        let mut card = self.card.clone();
        card.data.retain(|d| !d.name.starts_with(CARD_PREFIX));
        card.metrics.retain(|m| !m.dataset.starts_with(CARD_PREFIX));
        card.thresholds
            .retain(|t| !t.dataset.starts_with(CARD_PREFIX));
        for set in &self.sets {
            let dataset = format!("{CARD_PREFIX}{}", set.name);
            card.data.push(DatasetRef {
                name: dataset.clone(),
                role: if set.name == "clean" {
                    DatasetRole::Calibration
                } else {
                    DatasetRole::Test
                },
                synthetic: self.synthetic,
                identities: set.identities as u64,
                images: set.faces as u64,
                description: set.source.clone(),
            });
            let metric = |protocol: &str, name: String, value: f64| Metric {
                dataset: dataset.clone(),
                protocol: protocol.to_owned(),
                name,
                value,
            };
            card.metrics
                .push(metric("verification", "eer".into(), set.verification.eer));
            for (target, point) in &set.verification.at_far {
                card.metrics.push(metric(
                    "verification",
                    format!("tar@far={target:e}"),
                    point.tar,
                ));
            }
            card.metrics
                .push(metric("identification", "rank-1".into(), set.rank.0));
            card.metrics
                .push(metric("identification", "rank-5".into(), set.rank.1));
            card.metrics
                .push(metric("templates", "eer".into(), set.templates.eer));
        }
        let i = &self.interpretation;
        let clean = format!("{CARD_PREFIX}clean");
        let mut add = |name: &str, value: Option<f64>| {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                card.metrics.push(Metric {
                    dataset: clean.clone(),
                    protocol: "interpretability".into(),
                    name: name.into(),
                    value,
                });
            }
        };
        add("spreadness-d-positive-px", i.d.0);
        add("spreadness-d-negative-px", i.d.1);
        add("consistency-sigma-positive-px", i.sigma.0);
        add("consistency-sigma-negative-px", i.sigma.1);
        add("occlusion-top20-share-under-box", Some(i.share_under));
        add("peaks-inside-face-share", Some(i.placement.inside));
        add("peaks-on-border-share", Some(i.placement.border));
        add(
            "peaks-inside-face-share-per-face",
            Some(i.placement.per_face.0),
        );
        add(
            "peaks-on-border-share-per-face",
            Some(i.placement.per_face.1),
        );
        add("spreadness-d-inside-positive-px", i.placement.d_inside.0);
        add("spreadness-d-inside-negative-px", i.placement.d_inside.1);
        add(
            "blank-input-peaks-on-border-share",
            Some(i.placement.blank_border),
        );
        if let Some(l) = &self.lfw {
            for r in l.rows.iter().filter(|r| r.model == "facegate") {
                card.metrics.push(Metric {
                    dataset: clean.clone(),
                    protocol: "lfw-view2".into(),
                    name: format!("{}-accuracy", r.variant),
                    value: r.accuracy.0,
                });
                for (target, point) in &r.report.at_far {
                    card.metrics.push(Metric {
                        dataset: clean.clone(),
                        protocol: "lfw-view2".into(),
                        name: format!("{}-tar@far={target:e}", r.variant),
                        value: point.tar,
                    });
                }
            }
        }
        card.thresholds
            .extend(self.thresholds.iter().map(|c| c.threshold.clone()));
        card.validate().map_err(EvalError::InvalidCard)?;
        Ok(card)
    }
}

/// Evaluates, writes the report folder and, when asked, the updated card. Returns the
/// evaluation and the report's path.
pub fn run(request: &EvalRequest, progress: bool) -> Result<(Evaluation, PathBuf), EvalError> {
    let evaluation = match &request.folds {
        Some(folds) => evaluate_lfw(request, folds, progress)?,
        None => evaluate(request, progress)?,
    };
    let report = report::write(&evaluation, request)?;
    if request.update_card {
        evaluation.updated_card()?.save(&evaluation.card_path)?;
    }
    Ok((evaluation, report))
}
