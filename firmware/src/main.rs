//! The `facegate` command line.

use clap::{Parser, Subcommand};
use facegate::config::{self, Config, ConfigError, Source};
use std::path::PathBuf;
use std::process::ExitCode;

/// facegate: face recognition at the door.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file: every field, every path, every enrollment photo; every problem is
    /// reported with its line. Exits 1 when there are problems, 2 when the file cannot be read.
    CheckConfig {
        /// The config file (TOML).
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config: path } => match config::load(&path) {
            Ok(cfg) => {
                print_summary(&path, &cfg);
                ExitCode::SUCCESS
            }
            Err(e @ ConfigError::Invalid { .. }) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
            Err(e @ ConfigError::Read { .. }) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

fn print_summary(path: &std::path::Path, cfg: &Config) {
    println!("{}: OK", path.display());
    println!("  device   {} ({})", cfg.device.id, cfg.device.name);
    match &cfg.model_card {
        Some(card) => println!(
            "  model    {} (card valid, model hash matches)",
            card.display()
        ),
        None => println!(
            "  model    none set: `facegate run` will use the shipped default model \
             (models/default/facegate.card.json)"
        ),
    }
    let source = match &cfg.source {
        Source::V4l2 {
            device,
            format,
            width,
            height,
            fps,
        } => format!(
            "camera {} {format:?} {width}x{height} @ {fps} fps",
            device.display()
        ),
        Source::Folder(p) => format!("image folder {}", p.display()),
        Source::Image(p) => format!("image {}", p.display()),
        Source::Mjpeg(p) => format!("MJPEG file {}", p.display()),
        Source::Y4m(p) => format!("Y4M file {}", p.display()),
    };
    println!("  source   {source}");
    println!(
        "  mqtt     {}:{} topics {}/{}/... client id {}",
        cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.prefix, cfg.device.id, cfg.mqtt.client_id
    );
    let photos: usize = cfg.people.iter().map(|p| p.photos.len()).sum();
    println!(
        "  people   {} with {photos} photo(s), all decoded",
        cfg.people.len()
    );
    for p in &cfg.people {
        let threshold = p
            .threshold
            .map_or(String::from("card default"), |t| format!("{t}"));
        println!(
            "    {:<12} {:<24} {} photo(s), threshold {threshold}",
            p.id,
            p.name,
            p.photos.len()
        );
    }
}
