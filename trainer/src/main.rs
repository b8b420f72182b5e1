//! The `facegate-train` command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// facegate-train: train, measure and export the facegate face model.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verification report (EER, TAR at FAR 1e-2/1e-3/1e-4) from a file of `score,label` lines,
    /// label 1 for same-person pairs and 0 for different-person pairs.
    Scores {
        /// The scores file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
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
