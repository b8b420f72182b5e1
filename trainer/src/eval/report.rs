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
    if let Some(folds) = &r.folds {
        let list: Vec<String> = folds.iter().map(u32::to_string).collect();
        c.push_str(&format!(" --folds {}", list.join(",")));
    }
    if let Some(t) = &r.teacher {
        c.push_str(&format!(" --teacher {}", t.display()));
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
    if let Some(lfw) = &e.lfw {
        let _ = writeln!(md, "{}", super::lfw::markdown(lfw));
    }
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
    let _ = writeln!(md, "- Command: `{}`", command(request));
    for set in &e.sets {
        let _ = writeln!(
            md,
            "- Set `{}`: {} faces of {} people from {}.",
            set.name, set.faces, set.identities, set.source
        );
    }
    let _ = writeln!(md);
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
         the threshold is only bounded by the sample (measured FAR 0). Masked thresholds: one per \
         set of regions the occlusion rule found on the probe: on the clean impostor pairs with \
         that set, the lowest masked cosine that accepts no more of them than the full cosine \
         did at the full threshold (and at most the target), only where that leaves at least {} \
         impostors above it.\n\n| comparison | regions | target FAR | threshold | measured FAR | impostor pairs | in the card |\n|---|---|---|---|---|---|---|",
        super::masked::MIN_IMPOSTORS_ABOVE
    );
    let adopted = e.masked_adoption == super::MaskedAdoption::Adopted;
    let left_out = e.masked_candidates.iter().filter(|_| !adopted);
    let rows = e
        .thresholds
        .iter()
        .map(|c| (c, "yes"))
        .chain(left_out.map(|c| (c, "no (see below)")));
    for (c, in_card) in rows {
        let t = &c.threshold;
        let _ = writeln!(
            md,
            "| {:?} | {} | {:.0e} | {:.4} | {:.2e} | {} | {in_card} |",
            t.comparison,
            t.regions.as_deref().unwrap_or("-"),
            t.target_far,
            t.score,
            t.measured_far,
            c.impostors
        );
    }
    masked_section(&mut md, e);
    interpretability(&mut md, e);
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

/// The occlusion rule's findings per set and the masked comparison's false accepts.
fn masked_section(md: &mut String, e: &Evaluation) {
    let rule = facegate_contract::occlusion::OcclusionRule::default();
    let _ = writeln!(
        md,
        "\n## Occlusion-aware comparison (the device's rule)\n\nThe occlusion rule of \
         `contract/src/occlusion.rs` with the device's default settings (a filter is displaced \
         beyond {} sigma, at least {} map cells; a region watched by at least {} filters is \
         occluded when {:.0}% of them are displaced), on each face's own maps. Share of faces \
         with each region judged occluded:\n",
        rule.radius_sigmas,
        rule.min_radius_cells,
        rule.min_filters,
        100.0 * rule.displaced_share
    );
    let _ = writeln!(
        md,
        "| set | forehead | left eye | right eye | nose | mouth | chin | any |\n|---|---|---|---|---|---|---|---|"
    );
    for s in &e.sets {
        if let Some(m) = &s.masked {
            let cells: Vec<String> = m
                .region_share
                .iter()
                .map(|(_, v)| format!("{v:.2}"))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} |",
                s.name,
                cells.join(" | "),
                m.any_share
            );
        }
    }
    let _ = writeln!(
        md,
        "\nFalse and true accepts against the clean gallery at the full threshold calibrated at \
         FAR {:.0e}: the full cosine; the masked cosine of occluded probes held against that same \
         full threshold (no calibration); and the device's rule (masked only against a threshold \
         calibrated for exactly that set of regions, else the full cosine). The device's rule \
         must not let more impostors in than the full cosine.\n\n| set | impostor pairs | compared masked | FAR full | FAR masked, uncalibrated | FAR device | TAR full | TAR device |\n|---|---|---|---|---|---|---|---|",
        super::MASKED_OPERATING_FAR
    );
    let verdict = match &e.masked_adoption {
        super::MaskedAdoption::NothingCalibrated => "No set of occluded regions had enough \
            impostor pairs on the clean set for a masked threshold: the card has none and the \
            full cosine always decides."
            .to_owned(),
        super::MaskedAdoption::NotMeasured => "No full threshold at this operating point: the \
            masked comparison was not measured and the card has no masked thresholds."
            .to_owned(),
        super::MaskedAdoption::Adopted => "**Adopted**: on every test set the device's rule let \
            in no more impostors than the full cosine, so the masked thresholds are in the card."
            .to_owned(),
        super::MaskedAdoption::Rejected(worse) => format!(
            "**Not adopted**: with the masked thresholds the device's rule let in more impostors \
             than the full cosine on {}; the card keeps only the full thresholds, so the full \
             cosine decides and the masked score is only reported.",
            worse
                .iter()
                .map(|(set, full, device)| format!("{set} ({full:.2e} -> {device:.2e})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    for s in &e.sets {
        if let Some(m) = &s.masked {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2e} | {:.2e} | {:.2e} | {} | {} |",
                s.name,
                m.impostors,
                m.masked_impostors,
                m.far_full,
                m.far_masked_uncalibrated,
                m.far_device,
                pct(m.tar_full),
                pct(m.tar_device)
            );
        }
    }
    let _ = writeln!(md, "\n{verdict}");
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The interpretability section.
fn interpretability(md: &mut String, e: &Evaluation) {
    let i = &e.interpretation;
    let side = e.card.input.width;
    let _ = writeln!(
        md,
        "\n## Interpretability (clean set, {} faces, {side}x{side} input)\n\n\
         **Definitions** (docs/method.md; the paper does not spell out d, this is ours): for each \
         filter j and face, the positive peak is the argmax of its sparse map (if > 0) and the \
         negative peak the argmin (if < 0), in input pixels (cell centre x {:.0}). c_j is the \
         |peak|-weighted mean location over faces and sigma_j the weighted mean distance of the \
         face peaks from c_j (consistency: small = the filter fires at the same facial place). \
         **Spreadness d** = mean over filters of |c_j - centroid of all c_j|, for positive and \
         negative peaks separately. The paper reports d = 6.9 (base CNN), 17.1 (SAD), 18.7 \
         (full) on 96x96 faces; at another input size multiply by 96/{side} to compare.\n",
        i.faces,
        e.card.cell_size()
    );
    let _ = writeln!(
        md,
        "| measure | positive peaks | negative peaks |\n|---|---|---|\n\
         | spreadness d (px) | {} | {} |\n| mean consistency sigma_j (px) | {} | {} |\n",
        opt(i.d.0),
        opt(i.d.1),
        opt(i.sigma.0),
        opt(i.sigma.1)
    );
    let pl = &i.placement;
    let _ = writeln!(
        md,
        "**Face or frame.** The face is the alignment template's landmark hull (eyes and mouth \
         corners) grown by {:.0} px of the 96x96 frame; the border is the outer {:.0} px.\n\n\
         | where the peaks lie | filters' mean peaks | every face's own peaks |\n|---|---|---|\n\
         | inside the face | {:.1}% | {:.1}% |\n| within {:.0} px of the border | {:.1}% | {:.1}% |\n\n\
         Spreadness over the inside peaks only: d = {} (positive), {} (negative). On a blank \
         grey input, {:.1}% of the mean peaks sit on the border: responses made by the frame \
         (zero padding), not by a face.\n",
        super::interpret::FACE_MARGIN_96,
        super::interpret::BORDER_PX,
        100.0 * pl.inside,
        100.0 * pl.per_face.0,
        super::interpret::BORDER_PX,
        100.0 * pl.border,
        100.0 * pl.per_face.1,
        opt(pl.d_inside.0),
        opt(pl.d_inside.1),
        100.0 * pl.blank_border
    );
    let _ = writeln!(
        md,
        "![peak-location map](peaks.png)\n\nEvery filter's mean positive (red) and negative \
         (blue) peak on the mean clean face (paper Fig. 3).\n\n![heat maps](heatmaps.png)\n\n\
         Heat maps (paper Fig. 2) of the {} most consistent filters (smallest sigma_j of the \
         positive peak) on two photos each of three people: the sparse map upsampled to the \
         face, positive red, negative blue.\n",
        i.heat_filters.len()
    );
    let _ = writeln!(
        md,
        "### Feature change vs occlusion place (paper Fig. 4)\n\nA black 32x12 box (96x96 \
         frame, scaled to the input) at six places on every clean face; per feature dimension the \
         mean |f/|f| - f^/|f^||. For each place, the 20 most-changed features are checked: does \
         their filter's positive or negative peak c_j lie under the box grown by 8 px (96x96 frame, scaled like the box)?\n\n\
         | place | box (x, y, w, h px) | top-20 under the box | largest change | 20th change |\n|---|---|---|---|---|"
    );
    for b in &i.boxes {
        let at = |k: usize| b.top.get(k).map_or(0.0, |&j| b.change[j]);
        let _ = writeln!(
            md,
            "| {} | {:.0}, {:.0}, {:.0}, {:.0} | {}/{} | {:.4} | {:.4} |",
            b.name,
            b.rect[0],
            b.rect[1],
            b.rect[2],
            b.rect[3],
            b.under,
            b.top.len(),
            at(0),
            at(b.top.len().saturating_sub(1))
        );
    }
    let _ = writeln!(
        md,
        "\n**Share of the most-changed features whose peak lies under the box: {:.1}%** \
         (all six places).\n\n![occlusion analysis](occlusion.png)\n",
        100.0 * i.share_under
    );
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
    let calibrated = |c: &super::Calibrated| {
        serde_json::json!({
            "comparison": c.threshold.comparison,
            "regions": c.threshold.regions,
            "target_far": c.threshold.target_far,
            "score": c.threshold.score,
            "measured_far": c.threshold.measured_far,
            "impostors": c.impostors,
        })
    };
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
        "mode": e.card.architecture.mode,
        "input": e.card.input.width,
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
            "masked": s.masked.as_ref().map(|m| serde_json::json!({
                "region_share": m.region_share.iter().map(|(r, v)| (r.name(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
                "any_share": m.any_share,
                "impostors": m.impostors,
                "masked_impostors": m.masked_impostors,
                "far_full": m.far_full,
                "far_masked_uncalibrated": m.far_masked_uncalibrated,
                "far_device": m.far_device,
                "tar_full": m.tar_full,
                "tar_device": m.tar_device,
            })),
        })).collect::<Vec<_>>(),
        "interpretability": {
            "faces": e.interpretation.faces,
            "d_positive": e.interpretation.d.0,
            "d_negative": e.interpretation.d.1,
            "sigma_positive": e.interpretation.sigma.0,
            "sigma_negative": e.interpretation.sigma.1,
            "share_under": e.interpretation.share_under,
            "placement": {
                "inside": e.interpretation.placement.inside,
                "border": e.interpretation.placement.border,
                "per_face_inside": e.interpretation.placement.per_face.0,
                "per_face_border": e.interpretation.placement.per_face.1,
                "d_inside_positive": e.interpretation.placement.d_inside.0,
                "d_inside_negative": e.interpretation.placement.d_inside.1,
                "blank_border": e.interpretation.placement.blank_border,
            },
            "boxes": e.interpretation.boxes.iter().map(|b| serde_json::json!({
                "name": b.name, "rect": b.rect, "under": b.under, "top": b.top,
            })).collect::<Vec<_>>(),
        },
        "masked_adopted": e.masked_adoption == super::MaskedAdoption::Adopted,
        "masked_candidates": e.masked_candidates.iter().map(calibrated).collect::<Vec<_>>(),
        "thresholds": e.thresholds.iter().map(calibrated).collect::<Vec<_>>(),
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
