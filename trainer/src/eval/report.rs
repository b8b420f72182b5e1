//! The evaluation report folder: `report.md` (every table), `roc.png` (verification ROC of
//! each set against the clean gallery) and `report.json` (the same numbers for tools).

use super::{EvalError, EvalRequest, Evaluation};
use crate::plot::{FONT, PlotError, png};
use crate::scores::Report;
use facegate_contract::fsutil::write_atomic;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `0.1234` as `12.34%`.
fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// TAR at the operating point nearest `target`, with that point's FAR.
fn tar_cell(report: &Report, i: usize) -> String {
    match report.at_far.get(i) {
        Some((_, p)) => format!("{} (FAR {:.1e})", pct(p.tar), p.far),
        None => "-".into(),
    }
}

/// The command line that reproduces the report.
pub fn command(r: &EvalRequest) -> String {
    let mut c = format!(
        "facegate-train eval {} {} --out {}",
        r.model.display(),
        r.data.display(),
        r.out.display()
    );
    if let Some(size) = r.source_size {
        c.push_str(&format!(" --source-size {size}"));
    }
    if r.batch != 32 {
        c.push_str(&format!(" --batch {}", r.batch));
    }
    if r.seed != 1 {
        c.push_str(&format!(" --seed {}", r.seed));
    }
    if r.update_card {
        c.push_str(" --update-card");
    }
    c
}

/// The report as markdown.
pub fn markdown(e: &Evaluation, request: &EvalRequest) -> String {
    let mut md = String::new();
    let card = &e.card;
    let _ = writeln!(md, "# Evaluation of `{}`\n", card.model_id);
    let _ = writeln!(
        md,
        "- Model: `{}` (sha256 `{}`), {}x{} input, {}-d feature, measured through tract-onnx.",
        request.model.display(),
        &card.model_file.sha256[..16.min(card.model_file.sha256.len())],
        card.input.width,
        card.input.height,
        card.outputs.feature.dim
    );
    let _ = writeln!(
        md,
        "- Data: `{}`{}.",
        request.data.display(),
        if e.synthetic {
            " — **synthetic faces** (`facegate-train synth`), not photographs of people"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "- Command: `{}`\n", command(request));
    let _ = writeln!(
        md,
        "Gallery: the clean set. Probes: each set, whose photos are the clean set's photos with \
         the set's occluder added (so differences between rows are due to the occluder alone). \
         All pairs are scored (no sampling); a photo is never paired with itself. TAR is given \
         at the ROC point nearest each target FAR, with that point's FAR.\n"
    );
    let _ = writeln!(
        md,
        "## Verification (cosine of the {}-d feature)\n",
        card.outputs.feature.dim
    );
    let _ = writeln!(
        md,
        "| set | faces | genuine pairs | impostor pairs | EER | TAR @ FAR 1e-2 | TAR @ FAR 1e-3 | TAR @ FAR 1e-4 |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for s in &e.sets {
        let v = &s.verification;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.faces,
            v.genuine,
            v.impostor,
            pct(v.eer),
            tar_cell(v, 0),
            tar_cell(v, 1),
            tar_cell(v, 2)
        );
    }
    let _ = writeln!(md, "\n![ROC](roc.png)\n");
    let _ = writeln!(
        md,
        "## Closed-set identification\n\nGallery: each person's first clean photo. Probes: \
         every other photo of the set.\n\n| set | people | rank-1 | rank-5 |\n|---|---|---|---|"
    );
    for s in &e.sets {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            s.name,
            s.identities,
            pct(s.rank.0),
            pct(s.rank.1)
        );
    }
    let _ = writeln!(
        md,
        "\n## Template matching\n\nPer person, the first half of the clean photos against the \
         second half of the set's photos; set distance = (sum of row minima + sum of column \
         minima) / (n1 + n2) of the pairwise cosine distances.\n\n| set | genuine | impostor | EER | TAR @ FAR 1e-2 |\n|---|---|---|---|---|"
    );
    for s in &e.sets {
        let t = &s.templates;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            s.name,
            t.genuine,
            t.impostor,
            pct(t.eer),
            tar_cell(t, 0)
        );
    }
    let _ = writeln!(
        md,
        "\n## Calibrated thresholds (clean set)\n\nThe lowest cosine whose false accept rate on \
         the clean impostor pairs is at most the target. With fewer than 1/target impostor pairs \
         the threshold is only bounded by the sample (measured FAR 0).\n\n| comparison | target FAR | threshold | measured FAR | impostor pairs |\n|---|---|---|---|---|"
    );
    for c in &e.thresholds {
        let t = &c.threshold;
        let _ = writeln!(
            md,
            "| {:?} | {:.0e} | {:.4} | {:.2e} | {} |",
            t.comparison, t.target_far, t.score, t.measured_far, c.impostors
        );
    }
    let skipped: usize = e.sets.iter().map(|s| s.skipped.len()).sum();
    if skipped > 0 {
        let _ = writeln!(md, "\n## Skipped images\n");
        for s in &e.sets {
            for (path, why) in &s.skipped {
                let _ = writeln!(md, "- {} ({}): {why}", path.display(), s.name);
            }
        }
    }
    md
}

/// The ROC of every set on a log FAR axis.
pub fn roc_png(e: &Evaluation, path: &Path) -> Result<(), PlotError> {
    png(path, 900, 600, |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("ROC: {}", e.card.model_id), (FONT, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((1e-5f64..1.0).log_scale(), 0.0f64..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("false accept rate")
            .y_desc("true accept rate")
            .label_style((FONT, 14))
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in e.sets.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let points = s.roc.iter().map(|&(far, tar)| (far.max(1e-5), tar));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(format!("{} (EER {})", s.name, pct(s.verification.eer)))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())
    })
}

/// The numbers as JSON, one object per set.
fn json(e: &Evaluation) -> serde_json::Value {
    let report = |r: &Report| {
        serde_json::json!({
            "genuine": r.genuine,
            "impostor": r.impostor,
            "eer": r.eer,
            "at_far": r.at_far.iter().map(|(t, p)| serde_json::json!({
                "target": t, "far": p.far, "tar": p.tar, "threshold": p.threshold
            })).collect::<Vec<_>>(),
        })
    };
    serde_json::json!({
        "model_id": e.card.model_id,
        "synthetic": e.synthetic,
        "sets": e.sets.iter().map(|s| serde_json::json!({
            "name": s.name,
            "faces": s.faces,
            "identities": s.identities,
            "skipped": s.skipped.len(),
            "verification": report(&s.verification),
            "rank1": s.rank.0,
            "rank5": s.rank.1,
            "templates": report(&s.templates),
        })).collect::<Vec<_>>(),
        "thresholds": e.thresholds.iter().map(|c| serde_json::json!({
            "target_far": c.threshold.target_far,
            "score": c.threshold.score,
            "measured_far": c.threshold.measured_far,
            "impostors": c.impostors,
        })).collect::<Vec<_>>(),
    })
}

/// Writes the report folder; returns the markdown's path.
pub fn write(e: &Evaluation, request: &EvalRequest) -> Result<PathBuf, EvalError> {
    let out = &request.out;
    roc_png(e, &out.join("roc.png"))?;
    let write = |name: &str, text: String| -> Result<PathBuf, EvalError> {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes()).map_err(|source| {
            EvalError::Plot(PlotError::Write {
                path: path.clone(),
                source,
            })
        })?;
        Ok(path)
    };
    write(
        "report.json",
        serde_json::to_string_pretty(&json(e)).unwrap_or_default(),
    )?;
    write("report.md", markdown(e, request))
}
