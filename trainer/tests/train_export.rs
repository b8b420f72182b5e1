//! The trainer end to end through its command line: a tiny labelled set is generated, trained
//! for a few dozen steps in `full` mode, exported, and the ONNX file is reloaded with tract and
//! run. One test per binary: burn's random generator is process-wide.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_contract::ModelCard;
use std::path::Path;
use std::process::Command;
use tract_onnx::prelude::*;

/// Identity `id`'s face: a fixed pattern of blobs, plus noise that differs per image `n`.
fn face(id: u32, n: u32) -> image::RgbImage {
    let centres = [(12 + id * 3, 14), (28 - id * 2, 14 + id), (20, 26 + id % 3)];
    image::RgbImage::from_fn(40, 40, |x, y| {
        let mut v = 40.0;
        for (k, &(cx, cy)) in centres.iter().enumerate() {
            let d2 = (x as f32 - cx as f32).powi(2) + (y as f32 - cy as f32).powi(2);
            v += (160.0 + 20.0 * k as f32) * (-d2 / (8.0 + id as f32)).exp();
        }
        let noise = ((x * 31 + y * 17 + n * 101 + id * 7) % 23) as f32 - 11.0;
        let g = (v + noise).clamp(0.0, 255.0) as u8;
        image::Rgb([g, (g / 2).saturating_add(id as u8 * 20), 255 - g])
    })
}

/// Writes `manifest.csv` of `per_id` images for each of 4 identities, images `first..`.
fn fixture(dir: &Path, first: u32, per_id: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut lines = String::new();
    for id in 0..4 {
        for n in first..first + per_id {
            let file = format!("p{id}_{n}.png");
            face(id, n).save(dir.join(&file)).unwrap();
            lines.push_str(&format!("{file},person{id}\n"));
        }
    }
    std::fs::write(dir.join("manifest.csv"), lines).unwrap();
}

fn trainer(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_facegate-train"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "facegate-train {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn train_export_and_run_with_tract() {
    let root = std::env::temp_dir().join(format!("facegate-e2e-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    fixture(&root.join("train"), 0, 6);
    fixture(&root.join("held-out"), 100, 2);
    let config = root.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "seed = 11\n[data]\nmanifest = \"{}\"\nsource_size = 40\n[model]\ninput_size = 32\nwidth_multiplier = 0.125\ntop_k = 4\n[train]\nmode = \"full\"\nbatch_size = 8\nstage1_steps = 12\nstage2_steps = 36\ncheckpoint_every = 24\nlog_every = 1\n",
            root.join("train/manifest.csv").display()
        ),
    )
    .unwrap();
    let run_dir = root.join("run");
    let said = trainer(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert!(said.contains("finished at step 48/48"), "{said}");

    // The loss falls in both stages: mean of the last six logged steps below the first six.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 48);
    for stage in [1, 2] {
        let totals: Vec<f64> = lines
            .iter()
            .filter(|l| l["stage"] == stage)
            .map(|l| l["total"].as_f64().unwrap())
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (first, last) = (mean(&totals[..6]), mean(&totals[totals.len() - 6..]));
        assert!(last < first, "stage {stage}: {first} -> {last}: {totals:?}");
    }
    assert!(run_dir.join("curves.svg").exists());

    let onnx = root.join("models/tiny.onnx");
    let said = trainer(&[
        "export",
        run_dir.to_str().unwrap(),
        "--held-out",
        root.join("held-out/manifest.csv").to_str().unwrap(),
        "--out",
        onnx.to_str().unwrap(),
        "--synthetic",
    ]);
    assert!(said.contains("tract vs burn on 8 held-out faces"), "{said}");

    // The card describes the file, and its hash matches.
    let card_path = root.join("models/tiny.card.json");
    let card = ModelCard::load(&card_path).unwrap();
    assert_eq!(card.verify_model(&card_path).unwrap(), onnx);
    card.validate().unwrap();
    assert_eq!(card.input.width, 32);
    assert_eq!(card.outputs.feature.dim, 40);
    assert_eq!((card.outputs.maps.width, card.outputs.maps.height), (8, 8));
    assert_eq!(card.filter_peaks.len(), 40);
    assert!(card.data.iter().all(|d| d.synthetic));
    assert_eq!(card.data[0].images, 24);

    // tract loads the file on its own and embeds: 40-d features, 8x8 maps with 3 of 64
    // positions per map left (top-k 4 keeps those above the 4th largest).
    let plan = tract_onnx::onnx()
        .model_for_path(&onnx)
        .unwrap()
        .with_input_fact(0, f32::fact([2, 3, 32, 32]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let pixels: Vec<f32> = (0..2 * 3 * 32 * 32)
        .map(|i| (i % 255) as f32 / 127.5 - 1.0)
        .collect();
    let input = Tensor::from_shape(&[2, 3, 32, 32], &pixels).unwrap();
    let out = plan.run(tvec![input.into_tvalue()]).unwrap();
    let feature = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(feature.shape(), &[2, 40]);
    assert!(feature.iter().all(|v| v.is_finite()));
    assert!(feature.iter().any(|v| *v != 0.0));
    let maps = out[1].to_plain_array_view::<f32>().unwrap();
    assert_eq!(maps.shape(), &[2, 40, 8, 8]);
    let kept = maps.iter().filter(|v| **v != 0.0).count();
    assert_eq!(kept, 2 * 40 * 3, "non-zero map values");

    // A second export to the same place without held-out faces fails and keeps the files.
    std::fs::write(root.join("empty.csv"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facegate-train"))
        .args(["export", run_dir.to_str().unwrap(), "--held-out"])
        .arg(root.join("empty.csv"))
        .arg("--out")
        .arg(&onnx)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty.csv"), "{err}");
    ModelCard::load(&card_path)
        .unwrap()
        .verify_model(&card_path)
        .unwrap();

    // Evaluation on the held-out manifest: the clean set and the same faces with a random
    // window; the card gains thresholds and metrics and still matches the file.
    let report_dir = root.join("report");
    let said = trainer(&[
        "eval",
        onnx.to_str().unwrap(),
        root.join("held-out/manifest.csv").to_str().unwrap(),
        "--out",
        report_dir.to_str().unwrap(),
        "--source-size",
        "40",
        "--update-card",
    ]);
    assert!(said.contains("clean") && said.contains("window"), "{said}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap())
            .unwrap();
    let sets = report["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2);
    for set in sets {
        // 4 people x 2 photos: 4 genuine pairs; clean is symmetric (12 impostor pairs), the
        // window set is probed against the clean gallery (24).
        assert_eq!(set["faces"], 8);
        assert_eq!(
            set["verification"]["genuine"],
            if set["name"] == "clean" { 4 } else { 8 }
        );
        let eer = set["verification"]["eer"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&eer));
    }
    // Interpretability: six box places, 20 features each at most (40-d model), figures drawn.
    let interp = &report["interpretability"];
    assert_eq!(interp["boxes"].as_array().unwrap().len(), 6);
    let share = interp["share_under"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share), "{share}");
    assert!(interp["d_positive"].as_f64().unwrap() > 0.0);
    for picture in ["peaks.png", "heatmaps.png", "occlusion.png"] {
        image::open(report_dir.join(picture)).unwrap();
    }
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(
        md.contains("| window |") && md.contains("--source-size 40"),
        "{md}"
    );
    let roc = image::open(report_dir.join("roc.png")).unwrap();
    assert_eq!((roc.width(), roc.height()), (900, 600));
    let card = ModelCard::load(&card_path).unwrap();
    card.validate().unwrap();
    card.verify_model(&card_path).unwrap();
    assert_eq!(card.thresholds.len(), 2);
    assert!(card.thresholds.iter().all(|t| t.dataset == "eval-clean"));
    assert!(
        card.metrics
            .iter()
            .any(|m| m.dataset == "eval-window" && m.name == "rank-1")
    );
    // Evaluating again replaces, not appends.
    trainer(&[
        "eval",
        onnx.to_str().unwrap(),
        root.join("held-out/manifest.csv").to_str().unwrap(),
        "--out",
        report_dir.to_str().unwrap(),
        "--source-size",
        "40",
        "--update-card",
    ]);
    let again = ModelCard::load(&card_path).unwrap();
    assert_eq!(again.thresholds.len(), 2);
    assert_eq!(again.metrics.len(), card.metrics.len());

    // A pairs file beside the manifest (as `prepare --layout lfw` writes): only listed pairs
    // are scored; a pair naming a photo that is not there is dropped.
    std::fs::write(
        root.join("held-out/pairs.csv"),
        "a,b,same\np0_100.png,p0_101.png,1\np1_100.png,p1_101.png,1\n\
         p0_100.png,p2_100.png,0\np0_100.png,p9_100.png,0\n",
    )
    .unwrap();
    let listed_dir = root.join("report-pairs");
    trainer(&[
        "eval",
        onnx.to_str().unwrap(),
        root.join("held-out/manifest.csv").to_str().unwrap(),
        "--out",
        listed_dir.to_str().unwrap(),
        "--source-size",
        "40",
    ]);
    let listed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(listed_dir.join("report.json")).unwrap())
            .unwrap();
    let clean = &listed["sets"][0];
    assert_eq!(clean["name"], "clean");
    assert_eq!(
        (
            clean["verification"]["genuine"].as_u64(),
            clean["verification"]["impostor"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let md = std::fs::read_to_string(listed_dir.join("report.md")).unwrap();
    assert!(
        md.contains("the 3 listed pairs of") && md.contains("1 dropped"),
        "{md}"
    );

    // Synthetic faces through the command line, evaluated as a synth folder.
    let synth = root.join("synth");
    let said = trainer(&[
        "synth",
        "--out",
        synth.to_str().unwrap(),
        "--train-identities",
        "2",
        "--train-images",
        "1",
        "--test-identities",
        "3",
        "--test-images",
        "2",
        "--sets",
        "clean,mask",
        "--input-size",
        "32",
    ]);
    assert!(said.contains("14 synthetic faces"), "{said}");
    assert!(synth.join("preview.png").exists());
    let said = trainer(&[
        "eval",
        onnx.to_str().unwrap(),
        synth.to_str().unwrap(),
        "--out",
        root.join("report-synth").to_str().unwrap(),
    ]);
    // Clean and mask from the folder, window painted on the clean photos.
    for set in ["clean", "mask", "window"] {
        assert!(said.contains(set), "{said}");
    }
    let md = std::fs::read_to_string(root.join("report-synth/report.md")).unwrap();
    // The two reports side by side: one row each.
    let table_path = root.join("ablation.md");
    let said = trainer(&[
        "compare",
        report_dir.to_str().unwrap(),
        root.join("report-synth").to_str().unwrap(),
        "--out",
        table_path.to_str().unwrap(),
    ]);
    let rows = said.lines().filter(|l| l.starts_with("| tiny-")).count();
    assert_eq!(rows, 2, "{said}");
    assert_eq!(std::fs::read_to_string(&table_path).unwrap(), said);
    assert!(md.contains("**synthetic faces**"), "{md}");
    std::fs::remove_dir_all(&root).unwrap();
}
