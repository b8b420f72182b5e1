//! The `facegate` command line.

use clap::{Parser, Subcommand};
use facegate::config::{self, Config, ConfigError, Source};
use facegate::device::Device;
use facegate_pipeline::enrollment::PersonEnrollment;
use facegate_pipeline::gallery::Gallery;
use facegate_pipeline::sink::{ConsoleSink, HeatmapFolder, Sink};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Ends the program after a failed write to standard output.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1)
}

/// facegate: face recognition at the door.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// How log lines on standard error look: `text` for people (colours only at a terminal),
    /// `json` (one object per line) for log collectors.
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The log lines' format.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// One line of text per record.
    Text,
    /// One JSON object per record (`timestamp`, `level`, `fields.message`, `target`).
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file: every field, every path, every enrollment photo; every problem is
    /// reported with its line. Exits 1 when there are problems, 2 when the file cannot be read.
    CheckConfig {
        /// The config file (TOML).
        config: PathBuf,
    },
    /// Enroll the config's people, then run the pipeline on the configured source, printing
    /// every event as a JSON line.
    Run {
        /// The config file (TOML).
        config: PathBuf,
        /// Also write each event's heat map (PNG) into this folder.
        #[arg(long)]
        heatmaps: Option<PathBuf>,
    },
    /// Enroll (or re-enroll) the config's people and print every photo's verdict.
    Enroll {
        /// The config file (TOML).
        config: PathBuf,
    },
    /// Measure the device's targets: embedding latency (against ONNX Runtime with --python),
    /// 1:N search, frame-to-event latency, memory over many frames; prints a table.
    Bench {
        /// The config file (TOML): its model and settings are measured.
        config: PathBuf,
        /// A photo with one face.
        #[arg(long, default_value = "config/demo/enroll/obama.jpg")]
        photo: PathBuf,
        /// Embedding runs for the latency row.
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// Templates in the 1:N index.
        #[arg(long, default_value_t = 100_000)]
        templates: usize,
        /// Frames for the memory row (the target is stated for 10,000).
        #[arg(long, default_value_t = 300)]
        frames: usize,
        /// A Python with numpy and onnxruntime for the reference row.
        #[arg(long)]
        python: Option<PathBuf>,
        /// The embedder to measure instead of the config's: `tensorrt` needs a build with
        /// `--features tensorrt` (the board); tract is measured beside it either way.
        #[arg(long, value_enum)]
        backend: Option<Backend>,
    },
    /// Send a signed command to the running device over MQTT and print its response (JSON);
    /// enrollment verdicts are printed as they come. Reads the device's config for the broker,
    /// topics and command key. Exits 0 when the device accepted and did it, 1 when it answered
    /// no (the response says why), 2 when no answer came.
    Request {
        /// The device's config file (TOML).
        #[arg(long, default_value = "/etc/facegate/facegate.toml")]
        config: PathBuf,
        /// How long to wait for the response, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(subcommand)]
        action: RequestAction,
    },
    /// Look at or change the gallery.
    Gallery {
        #[command(subcommand)]
        action: GalleryAction,
    },
    /// Explain how the device sees one photo: faces, quality, best match per face and the
    /// regions that supported, disagreed or were occluded; writes the heat map PNG.
    Explain {
        /// The config file (TOML).
        config: PathBuf,
        /// The photo.
        photo: PathBuf,
        /// Where to write the heat map of the first face.
        #[arg(long, default_value = "explain.png")]
        out: PathBuf,
    },
    /// Score photos with the door's liveness check, to set `[liveness] threshold` on the
    /// door's own camera: one line per photo (its largest face), then how many the configured
    /// threshold refuses and the scores' percentiles.
    Liveness {
        /// The config file (TOML): its liveness models and threshold.
        config: PathBuf,
        /// Photos, or folders of photos (walked).
        #[arg(required = true)]
        photos: Vec<PathBuf>,
        /// Read at most this many photos.
        #[arg(long, default_value_t = facegate_pipeline::wiring::survey::MAX_PHOTOS)]
        limit: usize,
    },
}

/// An inference runtime, as `facegate bench --backend` names it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Backend {
    /// tract on the CPU.
    Tract,
    /// TensorRT on the GPU (FP16 unless the config says otherwise).
    Tensorrt,
}

#[derive(Subcommand)]
enum RequestAction {
    /// Everyone enrolled, with their photo verdicts.
    List,
    /// Remove every trace of a person.
    Erase {
        /// The person's id.
        person: String,
    },
    /// Re-read and check the config file; a file that fails is refused with its problems and
    /// the running config kept.
    Reload,
    /// Enroll (or re-enroll) a person from photos.
    Enroll {
        /// Stable id (letters, digits, `_` and `-`).
        #[arg(long)]
        person: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A threshold for this person, stricter than the model's.
        #[arg(long)]
        threshold: Option<f32>,
        /// A weekly window when they may come in (`mon-fri 07:00-19:00`); repeat for several.
        #[arg(long)]
        schedule: Vec<String>,
        /// The photos (JPEG or PNG; at most 10).
        #[arg(required = true)]
        photos: Vec<PathBuf>,
    },
    /// Correct a recent decision (an event id from `.../events`, up to 10 minutes old).
    Feedback {
        /// The event id.
        event: String,
        /// "This is X": X's id.
        #[arg(long, required_unless_present = "is_not", conflicts_with = "is_not")]
        is: Option<String>,
        /// "Not this person": the id the event matched.
        #[arg(long)]
        is_not: Option<String>,
    },
}

#[derive(Subcommand)]
enum GalleryAction {
    /// Everyone enrolled, with their templates and photo verdicts (JSON).
    List {
        /// The config file (TOML).
        config: PathBuf,
    },
    /// Remove every trace of a person.
    Remove {
        /// The config file (TOML).
        config: PathBuf,
        /// The person's id.
        id: String,
    },
    /// Write the gallery's people and verdicts (never the templates) as JSON.
    Export {
        /// The config file (TOML).
        config: PathBuf,
        /// The output file.
        #[arg(long)]
        out: PathBuf,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        // Colour codes only for a person at a terminal: under systemd the journal (and
        // anything reading a pipe) would show them as escape sequences.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let result = match cli.command {
        Command::CheckConfig { config: path } => return check_config(&path),
        Command::Run { config, heatmaps } => run(&config, heatmaps.as_deref()),
        Command::Enroll { config } => enroll(&config),
        Command::Gallery { action } => gallery(action),
        Command::Request {
            config,
            timeout,
            action,
        } => return request(&config, timeout, action),
        Command::Bench {
            config,
            photo,
            runs,
            templates,
            frames,
            python,
            backend,
        } => bench(
            &config,
            backend,
            facegate::bench::BenchOptions {
                photo,
                runs,
                templates,
                frames,
                python,
            },
        ),
        Command::Explain { config, photo, out } => explain(&config, &photo, &out),
        Command::Liveness {
            config,
            photos,
            limit,
        } => liveness(&config, &photos, limit),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn check_config(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            print_summary(path, &cfg);
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
    }
}

/// Each person's enrollment and each photo's verdict, a line each.
fn report_lines(enrolled: &[PersonEnrollment]) -> Vec<String> {
    let mut lines = Vec::new();
    for p in enrolled {
        let kept = if p.kept_previous {
            " (no photo accepted: previous enrollment kept)"
        } else {
            ""
        };
        lines.push(format!(
            "enroll {} ({}): {} template(s){kept}",
            p.id, p.name, p.templates
        ));
        for v in &p.photos {
            let detail = if v.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", v.detail)
            };
            lines.push(format!("  {:<10} {}{detail}", v.verdict, v.photo));
        }
    }
    lines
}

fn enroll(config: &Path) -> Res<()> {
    let mut device = Device::open(config)?;
    for line in report_lines(&device.enroll()?) {
        eprintln!("{line}");
    }
    Ok(())
}

/// The process's signals as flags the run loop reads between frames: SIGINT and SIGTERM stop
/// it cleanly (a second one ends the program at once, for a stop that hangs), SIGHUP reloads
/// the config.
fn watch_signals() -> (Arc<AtomicBool>, Arc<AtomicBool>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (stop, reload) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    for signal in [SIGINT, SIGTERM] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(e) = registered {
            tracing::warn!("cannot catch signal {signal} ({e}): a stop will not be clean");
        }
    }
    if let Err(e) = signal_hook::flag::register(SIGHUP, Arc::clone(&reload)) {
        tracing::warn!("cannot catch SIGHUP ({e}): reload over MQTT only");
    }
    (stop, reload)
}

/// Opens the device with `cfg`; after a reload, a config that cannot be opened (a relay or a
/// model that its check could not try) is reported and the previous one opened again.
fn open_device(path: &Path, cfg: &Config, previous: Option<&Config>) -> Res<Device> {
    let mut device = match (Device::from_config(cfg.clone()), previous) {
        (Ok(d), _) => d,
        (Err(e), Some(previous)) => {
            tracing::error!(
                "the reloaded config {} cannot be opened ({e}); going back to the previous one",
                path.display()
            );
            Device::from_config(previous.clone())?
        }
        (Err(e), None) => return Err(e.into()),
    };
    device.reload_from(path);
    Ok(device)
}

fn run(config: &Path, heatmaps: Option<&Path>) -> Res<()> {
    let (stop, reload) = watch_signals();
    let mut console = ConsoleSink::default();
    let mut folder = heatmaps.map(|dir| HeatmapFolder {
        dir: dir.to_owned(),
    });
    if let Some(f) = &folder {
        std::fs::create_dir_all(&f.dir)
            .map_err(|e| format!("--heatmaps {}: {e}", f.dir.display()))?;
    }
    let mut cfg = config::load(config)?;
    let mut previous = None;
    loop {
        let mut device = open_device(config, &cfg, previous.as_ref())?;
        device.watch(Arc::clone(&stop), Arc::clone(&reload));
        device.hold_storage()?;
        // Through the log: the service's journal (or collector) gets the verdicts too.
        for line in report_lines(&device.enroll_at_start()?) {
            tracing::info!("{}", line.trim_start());
        }
        let mut extra: Vec<&mut dyn Sink> = vec![&mut console];
        if let Some(f) = &mut folder {
            extra.push(f);
        }
        let out = device.run(&mut extra)?;
        let s = out.stats;
        tracing::info!(
            "{} frames ({} unreadable, {} dropped), {} faces, {} events, {} grants",
            s.frames,
            s.bad_frames,
            s.dropped,
            s.faces,
            s.events,
            s.grants
        );
        match out.restart {
            Some(next) if !stop.load(Ordering::Relaxed) => {
                tracing::info!(
                    "starting again with the reloaded config {}",
                    config.display()
                );
                previous = Some(std::mem::replace(&mut cfg, *next));
            }
            _ => return Ok(()),
        }
    }
}

/// `facegate request`: exit status 0 accepted, 1 refused or failed, 2 no answer.
fn request(config: &Path, timeout: u64, action: RequestAction) -> ExitCode {
    use facegate::command::client;
    use serde_json::Map;
    let cfg = match config::load(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let fields = |pairs: &[(&str, Option<&String>)]| {
        let mut m = Map::new();
        for (k, v) in pairs {
            if let Some(v) = v {
                m.insert((*k).into(), (*v).clone().into());
            }
        }
        m
    };
    let (name, body) = match &action {
        RequestAction::List => ("list", Ok(Map::new())),
        RequestAction::Reload => ("reload", Ok(Map::new())),
        RequestAction::Erase { person } => ("erase", Ok(fields(&[("person", Some(person))]))),
        RequestAction::Feedback { event, is, is_not } => (
            "feedback",
            Ok(fields(&[
                ("event", Some(event)),
                ("is", is.as_ref()),
                ("is_not", is_not.as_ref()),
            ])),
        ),
        RequestAction::Enroll {
            person,
            name,
            threshold,
            schedule,
            photos,
        } => (
            "enroll",
            client::enroll_fields(person, name, photos, *threshold, schedule),
        ),
    };
    let answer = body.and_then(|body| {
        client::request(
            &cfg,
            name,
            body,
            std::time::Duration::from_secs(timeout),
            &mut |m| eprintln!("{}", verdict_line(m)),
        )
    });
    match answer {
        Ok(response) => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&response).unwrap_or_default()
            );
            if response.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
                ExitCode::SUCCESS
            } else {
                if let Some(error) = response.get("error").and_then(|e| e.as_str()) {
                    eprintln!("refused: {error}");
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// One enrollment verdict as a line for the technician.
fn verdict_line(m: &serde_json::Value) -> String {
    let text = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
    let number = |k: &str| m.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let detail = text("detail");
    format!(
        "{} photo {}/{} {}: {}{}",
        text("person"),
        number("index"),
        number("of"),
        text("photo"),
        text("verdict"),
        if detail.is_empty() || detail == "?" {
            String::new()
        } else {
            format!(" ({detail})")
        }
    )
}

fn bench(config: &Path, backend: Option<Backend>, opts: facegate::bench::BenchOptions) -> Res<()> {
    use facegate::config::{EmbedderConfig, TensorRtConfig, TrtPrecision};
    let mut cfg = config::load(config)?;
    match (backend, &cfg.embedder) {
        (Some(Backend::Tract), _) => cfg.embedder = EmbedderConfig::Tract,
        (Some(Backend::Tensorrt), EmbedderConfig::Tract) => {
            cfg.embedder = EmbedderConfig::TensorRt(TensorRtConfig {
                precision: TrtPrecision::Fp16,
                workspace_mib: 256,
                engine_dir: cfg.storage_dir.join("engines"),
            });
        }
        _ => {}
    }
    let mut device = Device::from_config(cfg)?;
    device.enroll()?;
    let rows = facegate::bench::run(&mut device, &opts)?;
    outln!("| measurement | value | target |");
    outln!("|---|---|---|");
    for r in rows {
        outln!("| {} | {} | {} |", r.what, r.value, r.target);
    }
    Ok(())
}

fn open_gallery(config: &Path) -> Res<(Config, Gallery)> {
    let cfg = config::load(config)?;
    let gallery = Gallery::open(
        &cfg.storage_dir.join("gallery.sqlite"),
        &cfg.storage_dir.join("gallery.key"),
    )?;
    Ok((cfg, gallery))
}

/// Everyone in the gallery, with template counts for the configured model.
fn summaries(config: &Path) -> Res<Vec<facegate_pipeline::gallery::PersonSummary>> {
    let (cfg, gallery) = open_gallery(config)?;
    let card_path = cfg
        .model_card
        .clone()
        .unwrap_or_else(facegate_pipeline::model::default_card);
    let card = facegate_contract::ModelCard::load(&card_path)?;
    Ok(gallery.summaries(&card.model_id)?)
}

fn gallery(action: GalleryAction) -> Res<()> {
    match action {
        GalleryAction::List { config } => {
            let people = summaries(&config)?;
            outln!("{}", serde_json::to_string_pretty(&people)?);
        }
        GalleryAction::Remove { config, id } => {
            let (_, mut gallery) = open_gallery(&config)?;
            if gallery.remove_person(&id)? {
                eprintln!("removed {id} and every template and verdict of theirs");
            } else {
                return Err(format!("no person {id:?} in the gallery").into());
            }
        }
        GalleryAction::Export { config, out } => {
            let people = summaries(&config)?;
            let json = serde_json::to_vec_pretty(&people)?;
            facegate_contract::fsutil::write_atomic_in(&out, &json)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            eprintln!("wrote {} people to {}", people.len(), out.display());
        }
    }
    Ok(())
}

fn explain(config: &Path, photo: &Path, out: &Path) -> Res<()> {
    let device = Device::open(config)?;
    let matcher = device.matcher()?;
    let explained = facegate_pipeline::wiring::explain::explain_photo(
        &device.models,
        &device.cfg.pipeline(),
        &matcher,
        photo,
    )?;
    outln!("{}", serde_json::to_string_pretty(&explained.summary)?);
    match explained.heatmap {
        Some(png) => {
            facegate_contract::fsutil::write_atomic_in(out, &png)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            eprintln!("heat map: {}", out.display());
        }
        None => eprintln!("no face: no heat map written"),
    }
    Ok(())
}

fn liveness(config: &Path, photos: &[PathBuf], limit: usize) -> Res<()> {
    use facegate_pipeline::wiring::survey;
    let cfg = config::load(config)?;
    let Some(settings) = cfg.liveness.as_ref() else {
        return Err(format!("{}: [liveness] enabled = false", config.display()).into());
    };
    let check = facegate_pipeline::liveness::Liveness::load(settings)?;
    let detector = facegate_detect::Detector::load(
        &facegate_pipeline::model::models_dir().join("detector"),
        cfg.detection.detector(),
    )?;
    let files = survey::photos_under(photos, limit.min(survey::MAX_PHOTOS))?;
    let scored = survey::survey(&detector, &check, &files, &mut |done, total| {
        if done % 100 == 0 || done == total {
            eprint!("\r{done}/{total} photos");
            if done == total {
                eprintln!();
            }
        }
    });
    for s in &scored {
        match s.score {
            Some(v) => outln!("{v:.4}\t{}", s.path.display()),
            None => outln!("-\t{}\t(no face, or does not decode)", s.path.display()),
        }
    }
    let Some(sum) = survey::summarise(&scored, check.threshold()) else {
        return Err("no photo had a face".into());
    };
    eprintln!(
        "{} photos, {} with a face; threshold {}: {} refused ({:.1}%)",
        sum.photos,
        sum.faces,
        sum.threshold,
        sum.refused,
        100.0 * sum.refused as f64 / sum.faces as f64
    );
    let pct: Vec<String> = sum
        .percentiles
        .iter()
        .map(|(q, v)| format!("p{q} {v:.3}"))
        .collect();
    eprintln!("live scores: {}", pct.join(", "));
    Ok(())
}

fn print_summary(path: &Path, cfg: &Config) {
    outln!("{}: OK", path.display());
    outln!("  device   {} ({})", cfg.device.id, cfg.device.name);
    match &cfg.model_card {
        Some(card) => outln!(
            "  model    {} (card valid, model hash matches)",
            card.display()
        ),
        None => outln!(
            "  model    none set: `facegate run` will use the shipped default model ({})",
            facegate_pipeline::model::default_card().display()
        ),
    }
    let embedder = match &cfg.embedder {
        facegate::config::EmbedderConfig::Tract => "tract (CPU)".to_string(),
        facegate::config::EmbedderConfig::TensorRt(t) => format!(
            "tensorrt (GPU) {:?}, engines in {}",
            t.precision,
            t.engine_dir.display()
        ),
    };
    outln!("  embedder {embedder}");
    match &cfg.liveness {
        Some(l) => outln!(
            "  liveness on: a live score of {} or more, models in {}",
            l.threshold,
            l.dir.display()
        ),
        None => outln!("  liveness OFF: a photo held up to the camera is not refused"),
    }
    let source = match &cfg.source {
        Source::V4l2 {
            device,
            format,
            width,
            height,
            fps,
        } => format!(
            "camera {} {format:?} {width}x{height} @ {fps} fps{}",
            device.display(),
            if device.exists() {
                ""
            } else {
                " (not present now: the device will wait for it)"
            }
        ),
        Source::Folder(p) => format!("image folder {}", p.display()),
        Source::Image(p) => format!("image {}", p.display()),
        Source::Mjpeg(p) => format!("MJPEG file {}", p.display()),
        Source::Y4m(p) => format!("Y4M file {}", p.display()),
        Source::Stream { url, fps } => format!(
            "network camera {} through ffmpeg, {}",
            facegate_pipeline::source::stream::without_credentials(url),
            match fps {
                0 => "every frame".to_owned(),
                n => format!("{n} fps"),
            }
        ),
    };
    outln!("  source   {source}");
    outln!(
        "  mqtt     {}:{} topics {}/{}/... client id {}",
        cfg.mqtt.host,
        cfg.mqtt.port,
        cfg.mqtt.prefix,
        cfg.device.id,
        cfg.mqtt.client_id
    );
    outln!("  storage  {}", cfg.storage_dir.display());
    match &cfg.metrics {
        Some(m) => outln!("  metrics  http://127.0.0.1:{}/metrics", m.port),
        None => outln!("  metrics  off (the retained stats topic only)"),
    }
    let photos: usize = cfg.people.iter().map(|p| p.photos.len()).sum();
    outln!(
        "  people   {} with {photos} photo(s), all decoded",
        cfg.people.len()
    );
    for p in &cfg.people {
        let threshold = p
            .threshold
            .map_or(String::from("card default"), |t| format!("{t}"));
        outln!(
            "    {:<12} {:<24} {} photo(s), threshold {threshold}",
            p.id,
            p.name,
            p.photos.len()
        );
    }
}
