//! Training curves: `metrics.jsonl` drawn as an SVG (loss terms, and images/s, against step).
//!
//! Position: after (and during) a run; `facegate-train curves RUN` redraws them at any time.
//! Text is laid out with the trainer's built-in font (`plot`), so the picture is the same on
//! every machine.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// The loss terms drawn, as named in `metrics.jsonl`.
const TERMS: [&str; 7] = [
    "total",
    "ce",
    "masked_ce",
    "sad_clean",
    "sad_occluded",
    "fad",
    "filter_diversity",
];

/// Why curves could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum CurvesError {
    /// The metrics file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A metrics line is not the JSON the run writes.
    #[error("{path}:{line}: not a metrics line: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's complaint.
        message: String,
    },
    /// There is nothing to draw.
    #[error("{path} holds no metrics lines yet")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Drawing failed.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The picture.
        path: PathBuf,
        /// The drawing error.
        message: String,
    },
}

struct Series {
    name: &'static str,
    points: Vec<(f64, f64)>,
}

/// The loss series and the images/s series of a metrics file.
type Curves = (Vec<Series>, Vec<(f64, f64)>);

fn read(path: &Path) -> Result<Curves, CurvesError> {
    let text = std::fs::read_to_string(path).map_err(|source| CurvesError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut series: Vec<Series> = TERMS
        .iter()
        .map(|&name| Series {
            name,
            points: Vec::new(),
        })
        .collect();
    let mut rate = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |message: String| CurvesError::Line {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let step = v["step"]
            .as_f64()
            .ok_or_else(|| bad("no numeric `step`".into()))?;
        for s in &mut series {
            if let Some(y) = v[s.name].as_f64() {
                s.points.push((step, y));
            }
        }
        if let Some(r) = v["images_per_s"].as_f64() {
            rate.push((step, r));
        }
    }
    series.retain(|s| s.points.iter().any(|&(_, y)| y != 0.0));
    if series.is_empty() {
        return Err(CurvesError::Empty {
            path: path.to_owned(),
        });
    }
    Ok((series, rate))
}

/// Draws `run_dir/metrics.jsonl` into `run_dir/curves.svg` and returns the picture's path.
pub fn write(run_dir: &Path) -> Result<PathBuf, CurvesError> {
    let metrics = run_dir.join("metrics.jsonl");
    let (series, rate) = read(&metrics)?;
    let out = run_dir.join("curves.svg");
    draw(&out, &series, &rate).map_err(|message| CurvesError::Draw {
        path: out.clone(),
        message,
    })?;
    Ok(out)
}

fn range(points: impl Iterator<Item = (f64, f64)>) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for (x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    (x0, x1, y0, y1 * 1.05)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart against step on `area`, scaled to `points`, with its mesh drawn.
fn step_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    caption_size: u32,
    points: impl Iterator<Item = (f64, f64)>,
) -> Result<Chart<'a, 'b>, String> {
    let (x0, x1, y0, y1) = range(points);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", caption_size))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

fn draw(out: &Path, series: &[Series], rate: &[(f64, f64)]) -> Result<(), String> {
    crate::plot::register_font();
    let root = SVGBackend::new(out, (900, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(440);
    let points = series.iter().flat_map(|s| s.points.iter().copied());
    let mut chart = step_chart(&top, "training loss terms (weighted)", 20, points)?;
    for (k, s) in series.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    if !rate.is_empty() {
        let mut chart = step_chart(&bottom, "throughput (images/s)", 16, rate.iter().copied())?;
        chart
            .draw_series(LineSeries::new(rate.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("facegate-curves-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn draws_every_nonzero_term() {
        let dir = scratch("draw");
        let lines: String = (0..5)
            .map(|s| {
                format!(
                    "{{\"step\":{s},\"images_per_s\":{},\"total\":{},\"ce\":{},\"sad_clean\":0.1,\"fad\":0.0}}\n",
                    50 + s,
                    3.0 - s as f64 * 0.2,
                    2.0 - s as f64 * 0.2
                )
            })
            .collect();
        std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
        let svg = std::fs::read_to_string(write(&dir).unwrap()).unwrap();
        for name in ["total", "ce", "sad_clean"] {
            assert!(
                svg.contains(&format!(">\n{name}\n<")),
                "legend {name} missing"
            );
        }
        assert!(svg.contains("throughput"));
        // A term that stayed zero (fad here) is not drawn.
        assert!(!svg.contains(">\nfad\n<"), "fad drawn");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_or_missing_metrics_are_clear_errors() {
        let dir = scratch("bad");
        let err = write(&dir).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl"), "{err}");
        std::fs::write(
            dir.join("metrics.jsonl"),
            "{\"step\":1,\"total\":2}\nnot json\n",
        )
        .unwrap();
        let err = write(&dir).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl:2:"), "{err}");
        std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
        assert!(matches!(write(&dir), Err(CurvesError::Empty { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
