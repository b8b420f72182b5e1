//! `facegate bench`: the device's speed and memory targets, measured and printed as a table.
//!
//! - embedding latency per face (tract) against ONNX Runtime on the same ONNX file, in the same
//!   run (`--python` runs `firmware/reference/ort_embed.py` with 1 and 2 threads), with the
//!   ratio: target within 1.2x on 2 cores; and tract with its own `Elu`/`TopK` for comparison;
//! - 1:N search over `--templates` random templates on one core (the matcher's whole `find`:
//!   occlusion rule, search, explanation): target under 5 ms at 100,000;
//! - a face in view to its event (detect .. publish, one demo frame): target under 300 ms;
//! - resident memory before and after `--frames` frames: target flat.

use crate::device::Device;
use facegate_contract::AlignedFace;
use facegate_pipeline::embed::tract::Kernels;
use facegate_pipeline::embed::{Embedder, TractEmbedder};
use facegate_pipeline::event::Event;
use facegate_pipeline::gallery::Template;
use facegate_pipeline::matching::{Enrolled, Index, Matcher, Thresholds};
use facegate_pipeline::sink::{PublishError, Sink};
use facegate_pipeline::source::Frame;
use facegate_pipeline::source::files::read_image;
use facegate_pipeline::wiring::Pipeline;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// A photo with one face (the frame for the latency and memory rows).
    pub photo: PathBuf,
    /// Embedding runs.
    pub runs: usize,
    /// Templates in the 1:N index.
    pub templates: usize,
    /// Frames for the memory row.
    pub frames: usize,
    /// A Python with onnxruntime, for the reference row.
    pub python: Option<PathBuf>,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// The measurement.
    pub value: String,
    /// The target and whether it is met.
    pub target: String,
}

struct Discard;

impl Sink for Discard {
    fn publish(&mut self, _: &Event, _: Option<&[u8]>) -> Result<(), PublishError> {
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// Median milliseconds per face of ONNX Runtime on the device's ONNX file with `threads`
/// threads (`firmware/reference/ort_embed.py` under `python`).
fn onnxruntime_ms(
    model: &Path,
    size: u32,
    python: &Path,
    runs: usize,
    threads: usize,
) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/ort_embed.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(model)
        .args(["--size", &size.to_string()])
        .args(["--runs", &runs.to_string()])
        .args(["--threads", &threads.to_string()])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("reference output: {e}"))?;
    line["median_ms"].as_f64().ok_or_else(|| {
        format!(
            "reference output has no median_ms: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs every measurement on `device`; errors are reported as text (a bench is a tool).
pub fn run(device: &mut Device, opts: &BenchOptions) -> Result<Vec<Row>, String> {
    let image = read_image(&opts.photo).map_err(|e| e.to_string())?;
    let faces = device
        .models
        .detector
        .detect(&image)
        .map_err(|e| e.to_string())?;
    let face = faces
        .first()
        .ok_or_else(|| format!("{}: no face", opts.photo.display()))?;
    let aligned = device
        .models
        .aligner
        .align(&image, &face.landmarks)
        .map_err(|e| e.to_string())?;
    let mut rows = embedding_rows(device, &aligned.input, opts)?;
    if let Some(live) = &device.models.liveness {
        rows.extend(liveness_rows(live, &image, face, opts)?);
    }
    let live = device.matcher().map_err(|e| e.to_string())?;
    rows.push(search_row(device, live.thresholds(), &aligned.input, opts)?);
    rows.extend(pipeline_rows(device, live, &image, opts)?);
    Ok(rows)
}

/// Median milliseconds per face of `embedder` on `input` over `runs` runs, after a warm-up.
fn time_embed(embedder: &dyn Embedder, input: &AlignedFace, runs: usize) -> Result<f64, String> {
    for _ in 0..10 {
        embedder.embed(input).map_err(|e| e.to_string())?;
    }
    let times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let _ = embedder.embed(input);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    Ok(median(times))
}

/// Embedding latency: the device's embedder, tract on one and two threads, tract with its own
/// kernels, and ONNX Runtime on the same file when a Python is given.
fn embedding_rows(
    device: &Device,
    input: &AlignedFace,
    opts: &BenchOptions,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let (card, card_path) = (&device.models.card, &device.models.card_path);
    let embedder = &device.models.embedder;
    let device_ms = time_embed(embedder.as_ref(), input, opts.runs)?;
    let tract_ms = if embedder.runtime() == "tract" {
        device_ms
    } else {
        // The config's GPU embedder, then tract on the CPU for the comparisons below.
        let tract = TractEmbedder::load(card, card_path, 1).map_err(|e| e.to_string())?;
        let tract_ms = time_embed(&tract, input, opts.runs)?;
        rows.push(Row {
            what: format!("embed one face ({}, the board's GPU)", embedder.runtime()),
            value: format!("{device_ms:.2} ms"),
            target: format!("{:.1}x tract's time on one core", device_ms / tract_ms),
        });
        tract_ms
    };
    rows.push(Row {
        what: "embed one face (tract, 1 thread)".into(),
        value: format!("{tract_ms:.2} ms"),
        target: String::new(),
    });
    let stock =
        TractEmbedder::load_with(card, card_path, Kernels::Stock, 1).map_err(|e| e.to_string())?;
    let stock_ms = time_embed(&stock, input, opts.runs)?;
    rows.push(Row {
        what: "embed one face (tract with its own Elu and TopK, 1 thread)".into(),
        value: format!("{stock_ms:.2} ms"),
        target: format!(
            "the device's kernels save {:.0}%",
            100.0 * (1.0 - tract_ms / stock_ms)
        ),
    });
    // tract's own threading: matrix products split over a 2-thread pool, first with tract's
    // default size gate (small products stay on one thread), then with every product split.
    let two =
        TractEmbedder::load_with(card, card_path, Kernels::Fused, 2).map_err(|e| e.to_string())?;
    let mut tract2_ms = f64::INFINITY;
    let gate = tract_onnx::prelude::multithread::current_threading_panel_threshold();
    for (panels, label) in [(gate, "tract's size gate"), (0, "every product split")] {
        tract_onnx::prelude::multithread::set_threading_panel_threshold(panels);
        let ms = time_embed(&two, input, opts.runs)?;
        tract2_ms = tract2_ms.min(ms);
        rows.push(Row {
            what: format!("embed one face (tract, 2 threads, {label})"),
            value: format!("{ms:.2} ms"),
            target: format!("{:.2}x the 1-thread time", ms / tract_ms),
        });
    }
    tract_onnx::prelude::multithread::set_threading_panel_threshold(gate);
    let Some(python) = &opts.python else {
        return Ok(rows);
    };
    for threads in [1, 2] {
        let model = card.model_path(card_path);
        let ort_ms = onnxruntime_ms(&model, card.input.width, python, opts.runs, threads)?;
        let ratio = if threads == 2 {
            tract2_ms.min(tract_ms)
        } else {
            tract_ms
        } / ort_ms;
        let target = if threads == 2 {
            format!(
                "tract / onnxruntime = {ratio:.2} (target <= 1.2 on 2 cores: {})",
                verdict(ratio <= 1.2)
            )
        } else {
            format!("tract / onnxruntime = {ratio:.2} (same thread count)")
        };
        rows.push(Row {
            what: format!(
                "embed one face (onnxruntime, {threads} thread{})",
                if threads == 1 { "" } else { "s" }
            ),
            value: format!("{ort_ms:.2} ms"),
            target,
        });
    }
    Ok(rows)
}

/// 1:N search: random unit templates of the model's dimension, searched with the real probe's
/// feature and maps (the matcher's whole `find`: occlusion rule, search, explanation), at the
/// live gallery's thresholds.
fn search_row(
    device: &Device,
    thresholds: &Thresholds,
    input: &AlignedFace,
    opts: &BenchOptions,
) -> Result<Row, String> {
    let embedding = device
        .models
        .embedder
        .embed(input)
        .map_err(|e| e.to_string())?;
    let dim = embedding.feature.len();
    let people = (opts.templates / 4).max(1);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let templates: Vec<Template> = (0..opts.templates)
        .map(|i| {
            let mut feature: Vec<f32> = (0..dim).map(|_| next()).collect();
            facegate_contract::similarity::normalize(&mut feature);
            Template {
                person_id: format!("p{}", i % people),
                photo: String::new(),
                feature,
            }
        })
        .collect();
    let enrolled = (0..people)
        .map(|p| Enrolled {
            id: format!("p{p}"),
            ..Enrolled::default()
        })
        .collect();
    let index = Index::new(dim, enrolled, &templates).map_err(|e| e.to_string())?;
    let big = Matcher::new(
        index,
        device.models.regions.clone(),
        device.cfg.matching.occlusion,
        thresholds.clone(),
    );
    let times: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            let _ = big.find(&embedding.feature, &embedding.maps);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let search = median(times);
    Ok(Row {
        what: format!(
            "1:N search over {} templates ({dim}-d, 1 core)",
            opts.templates
        ),
        value: format!("{search:.2} ms"),
        target: if opts.templates >= 100_000 {
            format!("< 5 ms at 100,000: {}", verdict(search < 5.0))
        } else {
            "(the target is stated at 100,000 templates)".into()
        },
    })
}

/// A face in view to its event (the whole pipeline on the photo as a frame), and resident
/// memory over many frames.
fn pipeline_rows(
    device: &Device,
    live: Matcher,
    image: &image::RgbImage,
    opts: &BenchOptions,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut pipeline = Pipeline::new(&device.models, device.cfg.pipeline(), live);
    let frame = |seq: u64| Frame {
        seq,
        time: SystemTime::now(),
        origin: "bench".into(),
        image: image.clone(),
    };
    let mut latencies = Vec::new();
    for seq in 0..10u64 {
        let f = frame(seq * 100);
        let t = Instant::now();
        pipeline
            .process(&f, &mut Discard)
            .map_err(|e| e.to_string())?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let latency = median(latencies);
    rows.push(Row {
        what: format!(
            "frame to event ({}x{} frame, detect..publish)",
            image.width(),
            image.height()
        ),
        value: format!("{latency:.0} ms"),
        target: format!("< 300 ms: {}", verdict(latency < 300.0)),
    });
    let before = rss_kib();
    let bar = indicatif::ProgressBar::new(opts.frames as u64);
    for seq in 0..opts.frames as u64 {
        pipeline
            .process(&frame(1000 + seq), &mut Discard)
            .map_err(|e| e.to_string())?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let after = rss_kib();
    if let (Some(b), Some(a)) = (before, after) {
        let growth = a as i64 - b as i64;
        rows.push(Row {
            what: format!("resident memory over {} frames", opts.frames),
            value: format!("{} -> {} MiB", b / 1024, a / 1024),
            target: format!(
                "flat: {} ({growth:+} KiB)",
                verdict(growth.unsigned_abs() < 8 * 1024)
            ),
        });
    }
    Ok(rows)
}

/// The liveness check of one face (both networks, their crops included), on one thread, and
/// ONNX Runtime running the same two files when a Python is given.
fn liveness_rows(
    live: &facegate_pipeline::liveness::Liveness,
    image: &image::RgbImage,
    face: &facegate_detect::Face,
    opts: &BenchOptions,
) -> Result<Vec<Row>, String> {
    for _ in 0..5 {
        live.score(image, face).map_err(|e| e.to_string())?;
    }
    let times: Vec<f64> = (0..opts.runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let _ = live.score(image, face);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let ms = median(times);
    let mut rows = vec![Row {
        what: format!(
            "liveness of one face (tract, {} networks with their crops, 1 thread)",
            live.networks()
        ),
        value: format!("{ms:.2} ms"),
        target: String::new(),
    }];
    if let Some(python) = &opts.python {
        let mut ort_ms = 0.0;
        for (model, size) in live.model_files() {
            ort_ms += onnxruntime_ms(&model, size, python, opts.runs, 1)?;
        }
        rows.push(Row {
            what: "liveness of one face (onnxruntime, the networks only, 1 thread)".into(),
            value: format!("{ort_ms:.2} ms"),
            target: format!("tract / onnxruntime = {:.2}", ms / ort_ms),
        });
    }
    Ok(rows)
}
