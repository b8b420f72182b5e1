//! The `facegate-train` command line.

use clap::{Parser, Subcommand};
use facegate_train::backend::Backend;
use facegate_train::bench::BenchConfig;
use facegate_train::config::RunConfig;
use facegate_train::export::ExportRequest;
use facegate_train::train::{RunOptions, run};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `println!` for the command's own output: when standard output is a closed pipe
/// (`facegate check-config FILE | head`) the command ends quietly with success, as Unix tools
/// do, instead of panicking; any other write error is reported and ends it with failure.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            stdout_failed(&e);
        }
    }};
}

/// `print!` with [`outln!`]'s handling of a closed pipe (flushed at once, so the error shows).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            stdout_failed(&e);
        }
    }};
}

/// Ends the program after a failed write to standard output.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1)
}
use std::sync::atomic::{AtomicBool, Ordering};

/// facegate-train: train, measure and export the facegate face model.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model as a run config says (defaults: docs/method.md's recipe). Writes checkpoints,
    /// metrics.jsonl and, when the schedule completes, model.bpk into OUT. Ctrl-C stops after
    /// the current step with a checkpoint; --resume continues from it.
    Train {
        /// The run config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// The run folder.
        #[arg(long)]
        out: PathBuf,
        /// Continue from the run folder's checkpoint.
        #[arg(long)]
        resume: bool,
        /// Where to compute.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// Override the config's train.mode (base, sad or full), e.g. for ablations that start
        /// stage 2 from another run's stage1/ checkpoint.
        #[arg(long, value_parser = parse_mode)]
        mode: Option<facegate_contract::card::TrainingMode>,
    },
    /// Images per second for training (one full-mode step) and inference, on burn and on
    /// tract-onnx, printed as a table; with --python, the PyTorch and ONNX Runtime reference
    /// (same network, same batch) runs in the same invocation and the ratio is shown.
    Bench {
        /// Where burn computes.
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// Faces per batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Input side (96 in the paper).
        #[arg(long, default_value_t = 96)]
        input: usize,
        /// Channel multiplier (1 = the paper's network).
        #[arg(long, default_value_t = 1.0)]
        width: f32,
        /// Classifier outputs (CASIA-WebFace has 10,575 identities).
        #[arg(long, default_value_t = 10575)]
        classes: usize,
        /// Timed repetitions after one warm-up.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// A Python with torch (and onnxruntime) to run the reference with.
        #[arg(long)]
        python: Option<PathBuf>,
        /// Skip the training rows (inference only).
        #[arg(long)]
        no_train: bool,
    },
    /// Export a finished run as an ONNX file (opset 17, BatchNorm folded) with its model card
    /// beside it (`<stem>.card.json`). The file is first run by tract-onnx on held-out faces and
    /// compared with the trained network; nothing is written unless they agree within 1e-4.
    Export {
        /// The finished run folder (holds model.json and model.bpk).
        run: PathBuf,
        /// Manifest of held-out aligned crops, for the peak-location map and the check.
        #[arg(long)]
        held_out: PathBuf,
        /// The ONNX file to write, e.g. models/default/facegate.onnx.
        #[arg(long)]
        out: PathBuf,
        /// The card's model id (default: file stem and hash prefix).
        #[arg(long)]
        model_id: Option<String>,
        /// Record in the card that the faces are generated, not photographed.
        #[arg(long)]
        synthetic: bool,
        /// Use only the held-out manifest's people named by these folds of the pairs.csv
        /// beside it (e.g. `1-3`: the LFW people training left out).
        #[arg(long, value_parser = parse_folds)]
        held_out_folds: Option<Folds>,
        /// The card's provenance: a TOML file naming the data, the teacher and the caveats.
        #[arg(long)]
        provenance: Option<PathBuf>,
    },
    /// Generate synthetic faces: made-up people with stable faces under varied pose,
    /// expression, light, background and camera, aligned 110x110 crops with their true landmarks,
    /// a training manifest and one test manifest per occluder set, plus preview.png.
    Synth {
        /// The output folder (created; an earlier synth output there is overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Seed of everything.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// People in the training set.
        #[arg(long, default_value_t = 500)]
        train_identities: usize,
        /// Photos per training person.
        #[arg(long, default_value_t = 40)]
        train_images: usize,
        /// People in the test sets (never trained on).
        #[arg(long, default_value_t = 100)]
        test_identities: usize,
        /// Photos per test person.
        #[arg(long, default_value_t = 10)]
        test_images: usize,
        /// Test sets to write (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        sets: Option<Vec<facegate_train::synth::OcclusionKind>>,
        /// Share of training photos given a random natural occluder.
        #[arg(long, default_value_t = 0.0)]
        train_occluded: f32,
        /// Network input the crops are for: 96 gives the paper's 110x110 crops, 64 gives 73x73.
        #[arg(long, default_value_t = 96)]
        input_size: u32,
    },
    /// Turn real photos into aligned crops and manifests, through the device's face detector
    /// and alignment: one folder per identity (-> train/), LFW with its pairs file (-> test/lfw/)
    /// or AR file names (-> test/clean, test/sunglasses, test/scarf). Photos that cannot be
    /// used are listed in OUT/skipped.csv, never fatal.
    Prepare {
        /// The photos.
        src: PathBuf,
        /// The output folder (created; an earlier prepare output there is overwritten).
        #[arg(long)]
        out: PathBuf,
        /// How SRC is organised.
        #[arg(long, value_enum, default_value = "folders")]
        layout: LayoutArg,
        /// The LFW pairs file (with --layout lfw).
        #[arg(long, required_if_eq("layout", "lfw"))]
        pairs: Option<PathBuf>,
        /// Network input the crops are for: 96 gives the paper's 110x110 crops.
        #[arg(long, default_value_t = 96)]
        input_size: u32,
        /// Smallest face side to look for, in photo pixels.
        #[arg(long, default_value_t = 40.0)]
        min_face: f32,
        /// Folder with the detector's pnet/rnet/onet.onnx.
        #[arg(long, default_value = "models/detector")]
        detector: PathBuf,
    },
    /// Measure an exported model through tract on a synth folder's test sets (or one manifest):
    /// verification (ROC, EER, TAR at FAR 1e-2/1e-3/1e-4), rank-1/rank-5 identification,
    /// template matching, occluded sets and the 32x12 window; writes report.md, report.json and
    /// roc.png into OUT; --update-card writes calibrated thresholds and metrics into the card.
    Eval {
        /// The exported ONNX file (its `.card.json` beside it).
        model: PathBuf,
        /// A `facegate-train synth` folder, or a manifest of aligned crops.
        data: PathBuf,
        /// The report folder.
        #[arg(long)]
        out: PathBuf,
        /// Side of the stored crops (default: synth's crop size for the model's input, 110 for 96).
        #[arg(long)]
        source_size: Option<usize>,
        /// Faces per inference run.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Write thresholds and metrics into the model card.
        #[arg(long)]
        update_card: bool,
        /// Seed of window places painted on sets without a window set.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// LFW mode (DATA is a `prepare --layout lfw` folder): test on the people of these
        /// View 2 folds only, e.g. `1-3` or `1,4` (those the training config left out).
        #[arg(long, value_parser = parse_folds)]
        folds: Option<Folds>,
        /// A teacher ONNX (112x112 RGB embedder) measured on the same LFW pairs.
        #[arg(long, requires = "folds")]
        teacher: Option<PathBuf>,
    },
    /// The ablation table: evaluation report folders (from `eval`) side by side, one row per
    /// model; written to --out as markdown when given, printed always.
    Compare {
        /// Report folders, one per model.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// The markdown file to write.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Redraw a run folder's training curves (metrics.jsonl -> curves.svg).
    Curves {
        /// The run folder.
        run: PathBuf,
    },
    /// Verification report (EER, TAR at FAR 1e-2/1e-3/1e-4) from a file of `score,label` lines,
    /// label 1 for same-person pairs and 0 for different-person pairs.
    Scores {
        /// The scores file.
        file: PathBuf,
    },
}

/// What a subcommand failed with; printed once, as `error: ...`.
type CliResult = Result<(), Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    match execute(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand.
fn execute(command: Command) -> CliResult {
    match command {
        Command::Train {
            config,
            out,
            resume,
            backend,
            mode,
        } => train(&config, out, resume, backend, mode),
        Command::Bench {
            backend,
            batch,
            input,
            width,
            classes,
            repeats,
            python,
            no_train,
        } => {
            let cfg = BenchConfig {
                batch,
                input_size: input,
                width_multiplier: width,
                num_classes: classes,
                repeats,
            };
            let table = bench(&cfg, backend, python.as_deref(), !no_train)?;
            out!("{table}");
            Ok(())
        }
        Command::Export {
            run,
            held_out,
            out,
            model_id,
            synthetic,
            held_out_folds,
            provenance,
        } => export(ExportRequest {
            run_dir: run,
            held_out,
            out,
            model_id,
            synthetic,
            held_out_folds: held_out_folds.map(|f| f.0),
            provenance,
        }),
        Command::Synth {
            out,
            seed,
            train_identities,
            train_images,
            test_identities,
            test_images,
            sets,
            train_occluded,
            input_size,
        } => {
            let config = facegate_train::synth::SynthConfig {
                seed,
                train_identities,
                train_images,
                test_identities,
                test_images,
                test_sets: sets
                    .unwrap_or_else(|| facegate_train::synth::OcclusionKind::ALL.to_vec()),
                train_occluded,
                input_size,
                ..Default::default()
            };
            synth(&config, &out)
        }
        Command::Prepare {
            src,
            out,
            layout,
            pairs,
            input_size,
            min_face,
            detector,
        } => {
            use facegate_train::prepare::layout::Layout;
            let layout = match (layout, pairs) {
                (LayoutArg::Folders, _) => Layout::Folders,
                (LayoutArg::Ar, _) => Layout::Ar,
                (LayoutArg::Lfw, Some(pairs)) => Layout::Lfw { pairs },
                (LayoutArg::Lfw, None) => return Err("--layout lfw needs --pairs FILE".into()),
            };
            let opts = facegate_train::prepare::PrepareOptions {
                detector,
                min_face,
                input_size,
                progress: true,
            };
            let summary = facegate_train::prepare::prepare(&src, &layout, &out, &opts)?;
            for (path, n) in &summary.manifests {
                outln!("{}: {n} crops", path.display());
            }
            if let Some((kept, dropped)) = summary.pairs {
                outln!("pairs: {kept} kept, {dropped} dropped (a photo was left out)");
            }
            outln!(
                "{} photos left out (see {}), {} with several faces (the largest kept)",
                summary.skipped,
                out.join("skipped.csv").display(),
                summary.crowded
            );
            Ok(())
        }
        Command::Eval {
            model,
            data,
            out,
            source_size,
            batch,
            update_card,
            seed,
            folds,
            teacher,
        } => {
            let request = facegate_train::eval::EvalRequest {
                model,
                data,
                out,
                source_size,
                batch,
                update_card,
                seed,
                folds: folds.map(|f| f.0),
                teacher,
            };
            eval(&request)
        }
        Command::Compare { reports, out } => {
            let table = facegate_train::eval::compare::table(&reports)?;
            out!("{table}");
            if let Some(path) = out {
                facegate_contract::fsutil::write_atomic(&path, table.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            Ok(())
        }
        Command::Curves { run } => {
            let path = facegate_train::curves::write(&run)?;
            outln!("{}", path.display());
            Ok(())
        }
        Command::Scores { file } => {
            let report = facegate_train::scores::report_file(&file)?;
            out!("{report}");
            Ok(())
        }
    }
}

fn eval(request: &facegate_train::eval::EvalRequest) -> CliResult {
    let (evaluation, report) = facegate_train::eval::run(request, std::io::stderr().is_terminal())?;
    for s in &evaluation.sets {
        outln!(
            "{:<11} EER {:6.2}%  rank-1 {:6.2}%  TAR@FAR~1e-3 {:6.2}%",
            s.name,
            100.0 * s.verification.eer,
            100.0 * s.rank.0,
            100.0 * s.verification.at_far.get(1).map_or(0.0, |p| p.1.tar)
        );
    }
    if let Some(lfw) = &evaluation.lfw {
        for r in &lfw.rows {
            outln!(
                "LFW {:<8} {:<10} accuracy {:6.2}%  TAR@FAR=1e-3 {:.3}",
                r.model,
                r.variant,
                100.0 * r.accuracy.0,
                r.report.at_far.get(1).map_or(0.0, |p| p.1.tar)
            );
        }
    }
    outln!("report: {}", report.display());
    if request.update_card {
        outln!("card updated: {}", evaluation.card_path.display());
    }
    Ok(())
}

fn synth(config: &facegate_train::synth::SynthConfig, out: &std::path::Path) -> CliResult {
    let progress = std::io::stderr().is_terminal();
    let summary = facegate_train::synth::generate(config, out, progress)?;
    outln!("{} synthetic faces in {}", summary.images, out.display());
    outln!("train: {}", summary.train.display());
    for (kind, path) in &summary.tests {
        outln!("test {}: {}", kind.name(), path.display());
    }
    match facegate_train::synth::preview(config, &out.join("preview.png")) {
        Ok(()) => outln!("preview: {}", out.join("preview.png").display()),
        Err(e) => eprintln!("warning: no preview: {e}"),
    }
    Ok(())
}

fn export(request: ExportRequest) -> CliResult {
    let r = facegate_train::export::export(&request)?;
    for (path, reason) in &r.skipped {
        eprintln!("skipped {}: {reason}", path.display());
    }
    let d = |v: Option<f64>| v.map_or("-".to_owned(), |d| format!("{d:.2} px"));
    outln!("wrote {} (sha256 {})", r.onnx.display(), r.sha256);
    outln!("wrote {}", r.card.display());
    outln!(
        "tract vs burn on {} held-out faces: max |diff| feature {:.2e}, maps {:.2e}",
        r.agreement.faces,
        r.agreement.feature,
        r.agreement.maps
    );
    outln!(
        "peak map over {} faces: spreadness d positive {}, negative {}",
        r.peaks.faces,
        d(r.peaks.d_positive),
        d(r.peaks.d_negative)
    );
    Ok(())
}

fn bench(
    cfg: &BenchConfig,
    backend: Backend,
    python: Option<&std::path::Path>,
    with_training: bool,
) -> Result<String, String> {
    let device = backend.device().map_err(|e| e.to_string())?;
    let name = format!("burn/{}", backend.name());
    eprintln!(
        "bench: batch {}, {}x{} input, width x{}, {} classes, {} repeats after a warm-up",
        cfg.batch,
        cfg.input_size,
        cfg.input_size,
        cfg.width_multiplier,
        cfg.num_classes,
        cfg.repeats
    );
    if cfg.input_size == 0 || !cfg.input_size.is_multiple_of(16) || cfg.batch == 0 {
        return Err("--input must be a positive multiple of 16 and --batch positive".into());
    }
    eprintln!(
        "bench: burn's network has {} parameters (BatchNorm running statistics included)",
        burn::module::Module::num_params(&cfg.net().init(&burn::prelude::Device::flex()))
    );
    let mut rows = Vec::new();
    if with_training {
        rows.push(facegate_train::bench::train(cfg, &device, &name).map_err(|e| e.to_string())?);
    }
    let (inference, onnx) =
        facegate_train::bench::inference(cfg, &device, &name).map_err(|e| e.to_string())?;
    rows.extend(inference);
    if let Some(python) = python {
        let torch_device = match backend {
            Backend::Flex => "cpu",
            Backend::Cuda => "cuda",
        };
        let mut reference = facegate_train::bench::reference(cfg, python, &onnx, torch_device)
            .map_err(|e| e.to_string())?;
        if !with_training {
            reference.retain(|r| r.workload != "train-full");
        }
        rows.extend(reference);
    }
    rows.sort_by(|a, b| b.workload.cmp(&a.workload));
    Ok(facegate_train::bench::table(&rows))
}

/// The source layouts of `prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LayoutArg {
    /// One sub-folder per identity.
    Folders,
    /// LFW: per-person folders and a pairs file.
    Lfw,
    /// The AR database's file names.
    Ar,
}

fn parse_mode(text: &str) -> Result<facegate_contract::card::TrainingMode, String> {
    use facegate_contract::card::TrainingMode;
    match text {
        "base" => Ok(TrainingMode::Base),
        "sad" => Ok(TrainingMode::Sad),
        "full" => Ok(TrainingMode::Full),
        other => Err(format!("{other:?}: expected base, sad or full")),
    }
}

fn train(
    config: &std::path::Path,
    out: PathBuf,
    resume: bool,
    backend: Backend,
    mode: Option<facegate_contract::card::TrainingMode>,
) -> CliResult {
    let device = backend.device()?;
    let mut cfg = RunConfig::load(config)?;
    if let Some(mode) = mode {
        cfg.train.mode = mode;
        cfg.validate().map_err(|problems| {
            format!("{} with --mode: {}", config.display(), problems.join("; "))
        })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        eprintln!("warning: Ctrl-C will not save a checkpoint: {e}");
    }
    let opts = RunOptions {
        out_dir: out,
        resume,
        stop,
        progress: std::io::stderr().is_terminal(),
    };
    let s = run(&cfg, &opts, &device)?;
    let state = if s.stopped { "stopped" } else { "finished" };
    outln!(
        "{state} at step {}/{} ({} unusable images); run folder {}",
        s.next_step,
        s.total_steps,
        s.bad_images,
        opts.out_dir.display()
    );
    if let Some(t) = s.last {
        outln!(
            "last loss {:.4} (ce {:.4}, masked ce {:.4}, sad {:.4}/{:.4}, fad {:.4}, div {:.4})",
            t.total,
            t.ce,
            t.masked_ce,
            t.sad_clean,
            t.sad_occluded,
            t.fad,
            t.filter_diversity
        );
    }
    Ok(())
}

/// LFW View 2 fold numbers.
#[derive(Debug, Clone)]
struct Folds(Vec<u32>);

/// `1-3`, `2` or `1,4,7` to fold numbers.
fn parse_folds(text: &str) -> Result<Folds, String> {
    let mut folds = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let bad = || format!("{part:?}: expected a fold number or a range like 1-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                folds.extend(a..=b);
            }
            None => folds.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(Folds(folds))
}
