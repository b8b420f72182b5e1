//! The ablation table (`facegate-train compare REPORT...`): several evaluation reports of
//! models trained on the same data with the same budget, side by side, one row per model.

use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A report could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The report.json.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A report is not what `eval` writes.
    #[error("{path}: not an eval report.json: {source}")]
    Parse {
        /// The report.json.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
}

#[derive(Debug, Deserialize)]
struct AtFar {
    target: f64,
    tar: f64,
}

#[derive(Debug, Deserialize)]
struct Verification {
    eer: f64,
    at_far: Vec<AtFar>,
}

#[derive(Debug, Deserialize)]
struct Set {
    name: String,
    verification: Verification,
    rank1: f64,
}

#[derive(Debug, Deserialize)]
struct Interp {
    d_positive: Option<f64>,
    d_negative: Option<f64>,
    share_under: f64,
}

/// The parts of report.json the table uses.
#[derive(Debug, Deserialize)]
struct Summary {
    model_id: String,
    mode: String,
    input: u32,
    synthetic: bool,
    sets: Vec<Set>,
    interpretability: Interp,
}

fn load(dir: &Path) -> Result<Summary, CompareError> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|source| CompareError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CompareError::Parse { path, source })
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// The markdown table comparing the reports in `dirs` (report folders), in the given order.
pub fn table(dirs: &[PathBuf]) -> Result<String, CompareError> {
    let reports = dirs
        .iter()
        .map(|d| load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| model | mode | clean EER | clean TAR @ FAR 1e-3 | clean rank-1 | occluded EER (mean of {}) | window EER | d+ / d- (px, x96/input) | Fig. 4 share |",
        reports
            .first()
            .map(|r| r
                .sets
                .iter()
                .filter(|s| s.name != "clean" && s.name != "window")
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        let set = |n: &str| r.sets.iter().find(|s| s.name == n);
        let occluded: Vec<f64> = r
            .sets
            .iter()
            .filter(|s| s.name != "clean" && s.name != "window")
            .map(|s| s.verification.eer)
            .collect();
        let mean = occluded.iter().sum::<f64>() / occluded.len().max(1) as f64;
        let clean = set("clean");
        let tar = clean
            .and_then(|s| s.verification.at_far.iter().find(|p| p.target == 1e-3))
            .map_or("-".into(), |p| pct(p.tar));
        let scale = 96.0 / r.input.max(1) as f64;
        let d = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", v * scale));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            r.model_id,
            r.mode,
            clean.map_or("-".into(), |s| pct(s.verification.eer)),
            tar,
            clean.map_or("-".into(), |s| pct(s.rank1)),
            if occluded.is_empty() {
                "-".into()
            } else {
                pct(mean)
            },
            set("window").map_or("-".into(), |s| pct(s.verification.eer)),
            d(r.interpretability.d_positive),
            d(r.interpretability.d_negative),
            pct(r.interpretability.share_under)
        );
    }
    if reports.iter().any(|r| r.synthetic) {
        let _ = writeln!(
            md,
            "\nMeasured on synthetic faces (`facegate-train synth`), not photographs. d is scaled \
             to a 96x96 input for comparison with the paper (6.9 / 17.1 / 18.7)."
        );
    }
    Ok(md)
}
