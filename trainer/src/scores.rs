//! Verification report from a file of pair scores: the measuring end of evaluation.
//!
//! The file has one pair per line, `score,label`, where label `1` means the two faces are the
//! same person and `0` that they are not. Blank lines and lines starting with `#` are skipped;
//! a first line `score,label` is taken as a header.

use facegate_contract::metrics::{MetricsError, Roc, RocPoint};
use std::path::{Path, PathBuf};

/// The FAR targets every verification report states TAR at.
pub const FAR_TARGETS: [f64; 3] = [1e-2, 1e-3, 1e-4];

/// Why a scores file could not be summarised.
#[derive(Debug, thiserror::Error)]
pub enum ScoresError {
    /// The file could not be read.
    #[error("cannot read scores file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `score,label`.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The scores do not support the metrics (e.g. no impostor pairs).
    #[error("{path}: {source}")]
    Metrics {
        /// The file.
        path: PathBuf,
        /// The metric's complaint.
        source: MetricsError,
    },
}

/// Genuine and impostor scores read from a file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PairScores {
    /// Scores of same-person pairs.
    pub genuine: Vec<f32>,
    /// Scores of different-person pairs.
    pub impostor: Vec<f32>,
}

/// Parses `score,label` lines; `path` names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<PairScores, ScoresError> {
    let mut out = PairScores::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |message: String| ScoresError::Line {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        if line.is_empty() || line.starts_with('#') || (i == 0 && line == "score,label") {
            continue;
        }
        let (score, label) = line
            .split_once(',')
            .ok_or_else(|| err(format!("expected `score,label`, got {line:?}")))?;
        let score: f32 = score
            .trim()
            .parse()
            .ok()
            .filter(|s: &f32| s.is_finite())
            .ok_or_else(|| err(format!("score {:?} is not a finite number", score.trim())))?;
        match label.trim() {
            "1" => out.genuine.push(score),
            "0" => out.impostor.push(score),
            other => return Err(err(format!("label {other:?} must be 1 (same person) or 0"))),
        }
    }
    Ok(out)
}

/// The numbers a verification report states.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Number of genuine pairs.
    pub genuine: usize,
    /// Number of impostor pairs.
    pub impostor: usize,
    /// Equal error rate.
    pub eer: f64,
    /// Threshold at the EER.
    pub eer_threshold: f32,
    /// The operating point nearest each of [`FAR_TARGETS`].
    pub at_far: Vec<(f64, RocPoint)>,
}

/// Computes the report for parsed scores.
pub fn report(scores: &PairScores, path: &Path) -> Result<Report, ScoresError> {
    let roc =
        Roc::new(&scores.genuine, &scores.impostor).map_err(|source| ScoresError::Metrics {
            path: path.to_owned(),
            source,
        })?;
    let eer = roc.eer();
    Ok(Report {
        genuine: scores.genuine.len(),
        impostor: scores.impostor.len(),
        eer: eer.rate,
        eer_threshold: eer.threshold,
        at_far: FAR_TARGETS.iter().map(|&t| (t, roc.at_far(t))).collect(),
    })
}

/// Reads, parses and summarises a scores file.
pub fn report_file(path: &Path) -> Result<Report, ScoresError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScoresError::Read {
        path: path.to_owned(),
        source,
    })?;
    report(&parse(&text, path)?, path)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pairs: {} genuine, {} impostor",
            self.genuine, self.impostor
        )?;
        writeln!(
            f,
            "EER: {:.4} (threshold {:.4})",
            self.eer, self.eer_threshold
        )?;
        writeln!(f, "| target FAR | nearest FAR | TAR | threshold |")?;
        writeln!(f, "|---|---|---|---|")?;
        for (target, p) in &self.at_far {
            writeln!(
                f,
                "| {target:.0e} | {:.2e} | {:.4} | {:.4} |",
                p.far, p.tar, p.threshold
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_a_hand_computed_case() {
        let text =
            "score,label\n# comment\n0.9,1\n0.8,1\n0.7,1\n0.3,1\n0.6,0\n0.4,0\n\n0.2,0\n0.1,0\n";
        let scores = parse(text, Path::new("s.csv")).unwrap();
        assert_eq!(scores.genuine, [0.9, 0.8, 0.7, 0.3]);
        assert_eq!(scores.impostor, [0.6, 0.4, 0.2, 0.1]);
        let r = report(&scores, Path::new("s.csv")).unwrap();
        assert!((r.eer - 0.25).abs() < 1e-12);
        // Nearest FAR to 1e-2 is 0 (4 impostors: steps of 0.25), with TAR 0.75 at threshold 0.7.
        let (_, p) = r.at_far[0];
        assert_eq!((p.far, p.tar, p.threshold), (0.0, 0.75, 0.7));
        assert!(r.to_string().contains("EER: 0.2500"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = parse("0.5,1\n0.4;0\n", Path::new("pairs.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pairs.csv:2: expected `score,label`, got \"0.4;0\""
        );
        let err = parse("0.5,2\n", Path::new("p.csv")).unwrap_err();
        assert!(err.to_string().contains("p.csv:1: label \"2\""), "{err}");
        let err = parse("nan,1\n", Path::new("p.csv")).unwrap_err();
        assert!(err.to_string().contains("not a finite number"), "{err}");
    }

    #[test]
    fn missing_impostors_is_a_clear_error() {
        let scores = parse("0.5,1\n", Path::new("p.csv")).unwrap();
        let err = report(&scores, Path::new("p.csv")).unwrap_err();
        assert!(err.to_string().contains("no impostor scores"), "{err}");
    }
}
