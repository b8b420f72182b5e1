//! The `facegate-train` command line.

use clap::{Parser, Subcommand};
use facegate_train::config::RunConfig;
use facegate_train::export::ExportRequest;
use facegate_train::train::{RunOptions, run};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
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
    /// Train a model as a run config says (defaults: method.md's recipe). Writes checkpoints,
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

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Train {
            config,
            out,
            resume,
        } => train(&config, out, resume),
        Command::Export {
            run,
            held_out,
            out,
            model_id,
            synthetic,
        } => export(ExportRequest {
            run_dir: run,
            held_out,
            out,
            model_id,
            synthetic,
        }),
        Command::Curves { run } => match facegate_train::curves::write(&run) {
            Ok(path) => {
                println!("{}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Scores { file } => match facegate_train::scores::report_file(&file) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn export(request: ExportRequest) -> ExitCode {
    match facegate_train::export::export(&request) {
        Ok(r) => {
            for (path, reason) in &r.skipped {
                eprintln!("skipped {}: {reason}", path.display());
            }
            let d = |v: Option<f64>| v.map_or("-".to_owned(), |d| format!("{d:.2} px"));
            println!("wrote {} (sha256 {})", r.onnx.display(), r.sha256);
            println!("wrote {}", r.card.display());
            println!(
                "tract vs burn on {} held-out faces: max |diff| feature {:.2e}, maps {:.2e}",
                r.agreement.faces, r.agreement.feature, r.agreement.maps
            );
            println!(
                "peak map over {} faces: spreadness d positive {}, negative {}",
                r.peaks.faces,
                d(r.peaks.d_positive),
                d(r.peaks.d_negative)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn train(config: &std::path::Path, out: PathBuf, resume: bool) -> ExitCode {
    let cfg = match RunConfig::load(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    match run(&cfg, &opts, &burn::prelude::Device::flex()) {
        Ok(s) => {
            let state = if s.stopped { "stopped" } else { "finished" };
            println!(
                "{state} at step {}/{} ({} unusable images); run folder {}",
                s.next_step,
                s.total_steps,
                s.bad_images,
                opts.out_dir.display()
            );
            if let Some(t) = s.last {
                println!(
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
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
