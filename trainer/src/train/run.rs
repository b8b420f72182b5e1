//! The training run: two stages over deterministic batches, metrics lines, checkpoints with
//! exact resume, and a clean stop on request.
//!
//! Stage 1 trains the backbone with softmax (the paper's base CNN). Stage 2 keeps that backbone,
//! starts head and classifier from scratch, and trains with the configured mode's loss. Every
//! random choice is seeded from the run seed and the step, so resuming from a checkpoint
//! reproduces the steps an uninterrupted run would have taken.

use super::checkpoint::{self, Checkpoint, CheckpointError, RunState};
use super::objective::{Batch, LossTerms, ObjectiveError};
use super::step::Stepper;
use super::trained::{self, TrainedModel, TrainingData};
use crate::config::RunConfig;
use crate::data::{
    BatchData, Loader, LoaderConfig, LoaderError, Manifest, ManifestError, Prefetch, TargetTable,
};
use crate::model::{FaceNet, NetConfig};
use crate::teacher::{Targets, Teacher};
use burn::optim::AdamConfig;
use burn::prelude::*;
use facegate_contract::card::TrainingMode;
use serde::Serialize;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How to run, beyond the run config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Folder for checkpoints, metrics and the final model.
    pub out_dir: PathBuf,
    /// Continue from the folder's checkpoint, if it has one.
    pub resume: bool,
    /// Set from outside (Ctrl-C) to stop after the current step with a checkpoint.
    pub stop: Arc<AtomicBool>,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The next step (equal to the total when the run completed).
    pub next_step: u64,
    /// Steps of the whole schedule.
    pub total_steps: u64,
    /// The loss terms of the last step run.
    pub last: Option<LossTerms>,
    /// Whether a stop request ended it early.
    pub stopped: bool,
    /// Distinct images skipped as unusable.
    pub bad_images: usize,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The loader settings are unusable.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The objective could not be computed.
    #[error(transparent)]
    Objective(#[from] ObjectiveError),
    /// The teacher could not be loaded or run.
    #[error(transparent)]
    Teacher(#[from] crate::teacher::TeacherError),
    /// The test pairs file (whose people are left out of training) could not be read.
    #[error("test pairs {path}: {message}")]
    Pairs {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Too many images could not be used.
    #[error(
        "{count} distinct images were unusable (limit data.max_bad_images = {limit}); last: {last}"
    )]
    TooManyBadImages {
        /// How many.
        count: usize,
        /// The configured limit.
        limit: usize,
        /// The last one, with its reason.
        last: String,
    },
    /// A checkpoint belongs to a different network (shape or identity count).
    #[error("checkpoint in {path} does not fit this run's network: {message}")]
    Mismatch {
        /// The run folder.
        path: PathBuf,
        /// The loader's complaint.
        message: String,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize)]
struct MetricsLine {
    step: u64,
    stage: u8,
    mode: &'static str,
    images: usize,
    images_per_s: f64,
    ce: f32,
    masked_ce: f32,
    sad_clean: f32,
    sad_occluded: f32,
    fad: f32,
    filter_diversity: f32,
    distill: f32,
    total: f32,
}

impl MetricsLine {
    /// The line for `step`: how many images, how fast, and each loss term.
    fn new(
        step: u64,
        stage: u8,
        mode: TrainingMode,
        images: usize,
        images_per_s: f64,
        terms: &LossTerms,
    ) -> Self {
        Self {
            step,
            stage,
            mode: mode_name(mode),
            images,
            images_per_s,
            ce: terms.ce,
            masked_ce: terms.masked_ce,
            sad_clean: terms.sad_clean,
            sad_occluded: terms.sad_occluded,
            fad: terms.fad,
            filter_diversity: terms.filter_diversity,
            distill: terms.distill,
            total: terms.total,
        }
    }
}

fn mode_name(mode: TrainingMode) -> &'static str {
    match mode {
        TrainingMode::Base => "base",
        TrainingMode::Sad => "sad",
        TrainingMode::Full => "full",
    }
}

/// Mixes the run seed with a purpose and a step into an independent seed.
fn seed_for(seed: u64, purpose: u64, step: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.rotate_left(32)
        ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

struct Schedule {
    stage1: u64,
    total: u64,
    mode: TrainingMode,
}

impl Schedule {
    fn new(cfg: &RunConfig) -> Self {
        let t = &cfg.train;
        // Base has no stage 2: it spends the same budget on more softmax steps instead.
        let total = t.stage1_steps + t.stage2_steps;
        Self {
            stage1: if t.mode == TrainingMode::Base {
                total
            } else {
                t.stage1_steps
            },
            total,
            mode: t.mode,
        }
    }

    /// Stage (1 or 2) and loss mode of `step`.
    fn at(&self, step: u64) -> (u8, TrainingMode) {
        if step < self.stage1 {
            (1, TrainingMode::Base)
        } else {
            (2, self.mode)
        }
    }
}

fn to_batch(data: &BatchData, device: &Device) -> Batch {
    let c = data.crop_size;
    let shape = [data.len, 3, c, c];
    let planes = |v: &[f32]| Tensor::<1>::from_floats(v, device).reshape(shape);
    let n = data.len.max(1);
    Batch {
        clean: planes(&data.clean),
        occluded: data.occluded.as_deref().map(planes),
        labels: Tensor::<1, Int>::from_ints(data.labels.as_slice(), device),
        targets: data
            .targets
            .as_deref()
            .map(|t| Tensor::<1>::from_floats(t, device).reshape([data.len, t.len() / n])),
    }
}

/// Removes metrics lines of steps at or after `step`: a run that stopped between a metrics line
/// and its next checkpoint will log those steps again when resumed.
fn drop_metrics_from(path: &Path, step: u64) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(()); // No metrics yet.
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s < step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if kept.len() != text.len() {
        facegate_contract::fsutil::write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}

/// Runs (or resumes) training as `cfg` says, on `device` (made autodiff here).
pub fn run(cfg: &RunConfig, opts: &RunOptions, device: &Device) -> Result<RunSummary, RunError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| RunError::Write { path, source }
    };
    std::fs::create_dir_all(&opts.out_dir).map_err(write_err(&opts.out_dir))?;
    let (manifest, held_out) = training_manifest(cfg)?;
    let manifest = Arc::new(manifest);
    let classes = manifest.num_classes();
    let teacher = load_teacher(cfg, &manifest, opts.progress)?;
    let mut netcfg = cfg.net(classes);
    if let (Some(d), Some((_, targets))) = (&cfg.distill, &teacher)
        && d.kind == crate::loss::DistillKind::Projection
    {
        netcfg.distill_dim = Some(targets.dim);
    }
    let weights = cfg.weights(netcfg.feature_dim());
    let schedule = Schedule::new(cfg);
    let ad = device.clone().autodiff();
    let adam = AdamConfig::new()
        .with_beta_1(cfg.train.beta1)
        .with_beta_2(cfg.train.beta2);
    let stepper_for = |mode| Stepper::new(&adam, cfg.train.lr, mode, weights.clone());
    let begin_stage2 = |net: FaceNet| {
        ad.seed(seed_for(cfg.seed, 3, 0));
        net.with_fresh_head(&netcfg, &ad)
    };

    ad.seed(seed_for(cfg.seed, 0, 0));
    let mut net = netcfg.init(&ad);
    let mut step = 0;
    let mut stepper = stepper_for(schedule.at(0).1);
    let resumed = if opts.resume {
        checkpoint::load(&opts.out_dir)?
    } else {
        None
    };
    if let Some(ckpt) = resumed {
        step = ckpt.state.step;
        let (stage, mode) = schedule.at(step);
        if stage == 2 {
            net = begin_stage2(net);
        }
        net = net
            .try_load_record(ckpt.model)
            .map_err(|e| RunError::Mismatch {
                path: opts.out_dir.clone(),
                message: e.to_string(),
            })?;
        stepper = stepper_for(mode);
        stepper.restore(ckpt.optimizer);
    }

    let loader = loader(cfg, &manifest, schedule.mode, teacher.as_ref())?;
    if held_out > 0 && opts.progress {
        eprintln!(
            "{held_out} people named by the test pairs left out: {} people, {} photos to train on",
            classes,
            manifest.entries.len()
        );
    }
    let loader = Arc::new(loader);
    let metrics_path = opts.out_dir.join("metrics.jsonl");
    drop_metrics_from(&metrics_path, step).map_err(write_err(&metrics_path))?;
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(write_err(&metrics_path))?;
    let bar = progress_bar(opts.progress, schedule.total, step);

    let mut bad: HashSet<PathBuf> = HashSet::new();
    let mut last = None;
    let mut stopped = false;
    let mut window = (Instant::now(), 0usize);
    let save = |net: &FaceNet, stepper: &Stepper, next: u64| {
        checkpoint::save(
            &opts.out_dir,
            Checkpoint {
                model: net.clone().into_record(),
                optimizer: stepper.record(),
                state: RunState { step: next },
            },
        )
    };
    for data in Prefetch::spawn(loader, step, schedule.total, cfg.data.prefetch) {
        let (stage, mode) = schedule.at(data.step);
        if stage == 2 && data.step == schedule.stage1 {
            net = begin_stage2(net);
            stepper = stepper_for(mode);
        }
        count_bad_images(&mut bad, &data.skipped, cfg.data.max_bad_images)?;
        step = data.step + 1;
        if data.len > 0 {
            ad.seed(seed_for(cfg.seed, 4, data.step));
            let (next, terms) = stepper.step(net, &to_batch(&data, &ad))?;
            net = next;
            last = Some(terms);
            window.1 += data.len;
            if data.step % cfg.train.log_every == 0 || step == schedule.total {
                let rate = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                window = (Instant::now(), 0);
                let line = MetricsLine::new(data.step, stage, mode, data.len, rate, &terms);
                let json = serde_json::to_string(&line).unwrap_or_default();
                writeln!(metrics, "{json}").map_err(write_err(&metrics_path))?;
                bar.set_message(format!(
                    "stage {stage} {} loss {:.3} (ce {:.3} sad {:.3} fad {:.3}) {rate:.1} img/s",
                    mode_name(mode),
                    terms.total,
                    terms.ce,
                    terms.sad_clean,
                    terms.fad
                ));
            }
        }
        bar.set_position(step);
        let stop = opts.stop.load(Ordering::Relaxed);
        let boundary = step == schedule.stage1 && schedule.total > schedule.stage1;
        if stop || boundary || step % cfg.train.checkpoint_every == 0 || step == schedule.total {
            save(&net, &stepper, step)?;
        }
        if boundary {
            checkpoint::keep_stage1(&opts.out_dir)?;
        }
        if stop {
            stopped = true;
            break;
        }
    }
    bar.finish_and_clear();
    // The curves are a convenience: a run whose metrics cannot be drawn is still a good run.
    if let Err(e) = crate::curves::write(&opts.out_dir) {
        eprintln!("warning: training curves not drawn: {e}");
    }
    if step == schedule.total {
        let description = describe(cfg, &netcfg, &schedule, teacher.as_ref(), &manifest);
        save_trained(net, &description, &opts.out_dir)?;
    }
    Ok(RunSummary {
        next_step: step,
        total_steps: schedule.total,
        last,
        stopped,
        bad_images: bad.len(),
    })
}

/// The run's training people: the manifest less everyone the test pairs name (LFW's protocol
/// keeps a test pair's people out of training), and how many were left out.
fn training_manifest(cfg: &RunConfig) -> Result<(Manifest, usize), RunError> {
    let manifest = Manifest::load(&cfg.data.manifest)?;
    let Some(pairs) = &cfg.data.test_pairs else {
        return Ok((manifest, 0));
    };
    let people = crate::data::fold_pairs(pairs, &cfg.data.test_folds)
        .map_err(|message| RunError::Pairs {
            path: pairs.clone(),
            message,
        })?
        .people;
    let before = manifest.num_classes();
    let manifest = manifest.without_identities(&people);
    let held_out = before - manifest.num_classes();
    Ok((manifest, held_out))
}

/// The teacher and its embedding of every training photo, when the run distills.
fn load_teacher(
    cfg: &RunConfig,
    manifest: &Manifest,
    progress: bool,
) -> Result<Option<(Teacher, Targets)>, RunError> {
    let Some(d) = &cfg.distill else {
        return Ok(None);
    };
    let teacher = Teacher::load(&d.teacher)?;
    let targets = crate::teacher::targets(
        &teacher,
        &cfg.data.manifest,
        manifest,
        cfg.model.input_size as u32,
        progress,
    )?;
    Ok(Some((teacher, targets)))
}

/// The seeded batch loader over `manifest` (with the teacher's targets when distilling).
fn loader(
    cfg: &RunConfig,
    manifest: &Arc<Manifest>,
    mode: TrainingMode,
    teacher: Option<&(Teacher, Targets)>,
) -> Result<Loader, RunError> {
    let loader = Loader::new(
        manifest.clone(),
        LoaderConfig {
            batch_size: cfg.train.batch_size,
            source_size: cfg.data.source_size,
            crop_size: cfg.model.input_size,
            seed: cfg.seed,
            occlude: mode == TrainingMode::Full,
            painted_share: cfg.data.painted_share,
            augment: cfg.augment.clone(),
        },
    )?;
    Ok(match teacher {
        Some((_, targets)) => loader.with_targets(Arc::new(TargetTable {
            dim: targets.dim,
            rows: targets.rows.clone(),
        }))?,
        None => loader,
    })
}

/// Adds a batch's unreadable photos to `bad`; more than `limit` different ones stop the run.
fn count_bad_images(
    bad: &mut HashSet<PathBuf>,
    skipped: &[(PathBuf, String)],
    limit: usize,
) -> Result<(), RunError> {
    for (path, reason) in skipped {
        if bad.insert(path.clone()) && bad.len() > limit {
            return Err(RunError::TooManyBadImages {
                count: bad.len(),
                limit,
                last: format!("{} {reason}", path.display()),
            });
        }
    }
    Ok(())
}

/// The progress bar on standard error (hidden unless asked for), at `step` of `total`.
fn progress_bar(show: bool, total: u64, step: u64) -> indicatif::ProgressBar {
    let bar = if show {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(step);
    bar
}

/// What a finished run trained, for export: the network's shape, the teacher, the data.
fn describe(
    cfg: &RunConfig,
    netcfg: &NetConfig,
    schedule: &Schedule,
    teacher: Option<&(Teacher, Targets)>,
    manifest: &Manifest,
) -> TrainedModel {
    let classes = manifest.num_classes();
    TrainedModel {
        input_size: netcfg.input_size,
        width_multiplier: netcfg.width_multiplier,
        top_k: netcfg.top_k,
        dropout: netcfg.dropout,
        num_classes: classes,
        mode: schedule.mode,
        face_margin: netcfg.face_margin,
        distill_dim: netcfg.distill_dim,
        teacher: cfg
            .distill
            .as_ref()
            .zip(teacher)
            .map(|(d, (t, _))| trained::TeacherRecord {
                path: d.teacher.clone(),
                sha256: t.sha256().to_owned(),
                kind: format!("{:?}", d.kind).to_lowercase(),
                weight: d.weight,
            }),
        steps: schedule.total,
        seed: cfg.seed,
        data: TrainingData {
            manifest: cfg.data.manifest.clone(),
            identities: classes as u64,
            images: manifest.entries.len() as u64,
            source_size: cfg.data.source_size,
        },
    }
}

/// Writes the finished network's weights and its description into `out_dir`.
fn save_trained(net: FaceNet, description: &TrainedModel, out_dir: &Path) -> Result<(), RunError> {
    let path = out_dir.join(trained::WEIGHTS);
    net.into_record().save(&path).map_err(|e| RunError::Write {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    description.save(out_dir).map_err(|source| RunError::Write {
        path: out_dir.join(trained::DESCRIPTION),
        source,
    })
}
