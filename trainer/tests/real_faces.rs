//! Real faces from end to end on a slice of LFW: prepare (detector + alignment), a short
//! training run distilled from the teacher with augmentation, painted occluders and the face
//! region, export with provenance, and the LFW evaluation of model and teacher on people the
//! run never saw.
//!
//! Needs LFW and the teacher beside the repository (`../shared/data/lfw`,
//! `../shared/models/teachers/mobilefacenet.onnx`, as CI has them; docs/data.md says where to
//! get them); without them it says so and passes, since a clone has no data.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_contract::ModelCard;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn trainer(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_facegate-train"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "facegate-train {args:?}: {text}");
    text
}

/// The first `n` people (in name order) with at least two photos, and everyone a kept pair
/// names, copied with a pairs file of their own.
fn slice(lfw: &Path, dst: &Path) -> usize {
    let pairs = std::fs::read_to_string(lfw.join("pairs.txt")).unwrap();
    let mut people = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    // Fold 1's first six matched and six mismatched pairs whose photos are all here.
    let (mut same, mut different) = (0, 0);
    for line in pairs.lines().skip(1).take(600) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (a, b) = match f.as_slice() {
            [n, i, j] => ((*n, *i), (*n, *j)),
            [n, i, m, j] => ((*n, *i), (*m, *j)),
            _ => continue,
        };
        let photo = |(n, i): (&str, &str)| {
            lfw.join(n)
                .join(format!("{n}_{:04}.jpg", i.parse::<u32>().unwrap()))
        };
        let count = if f.len() == 3 {
            &mut same
        } else {
            &mut different
        };
        if *count < 6 && photo(a).is_file() && photo(b).is_file() {
            *count += 1;
            kept.push(line.to_owned());
            people.insert(a.0.to_owned());
            people.insert(b.0.to_owned());
        }
    }
    // Training people: others with several photos.
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lfw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut extra = 0;
    for d in dirs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        if extra < 10 && !people.contains(&name) && std::fs::read_dir(&d).unwrap().count() >= 3 {
            people.insert(name);
            extra += 1;
        }
    }
    for p in &people {
        let to = dst.join(p);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(lfw.join(p)).unwrap().take(4) {
            let e = e.unwrap().path();
            std::fs::copy(&e, to.join(e.file_name().unwrap())).unwrap();
        }
    }
    // Photos past the fourth were not copied: their pairs are dropped by prepare.
    let text = format!("1\t{}\n{}\n", kept.len(), kept.join("\n"));
    std::fs::write(dst.join("pairs.txt"), text).unwrap();
    people.len()
}

#[test]
fn lfw_slice_prepare_distil_export_and_measure_beside_the_teacher() {
    let shared = root().join("../shared");
    let (lfw, teacher) = (
        shared.join("data/lfw"),
        shared.join("models/teachers/mobilefacenet.onnx"),
    );
    if !lfw.join("pairs.txt").is_file() || !teacher.is_file() {
        eprintln!("skipped: no LFW or teacher in {}", shared.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("facegate-real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("lfw");
    let people = slice(&lfw, &src);
    let data = dir.join("prepared");
    let said = trainer(&[
        "prepare",
        src.to_str().unwrap(),
        "--out",
        data.to_str().unwrap(),
        "--layout",
        "lfw",
        "--pairs",
        src.join("pairs.txt").to_str().unwrap(),
        "--input-size",
        "96",
    ]);
    assert!(said.contains("pairs:"), "{said}");
    let pairs = std::fs::read_to_string(data.join("test/lfw/pairs.csv")).unwrap();
    assert!(pairs.starts_with("a,b,same,fold\n"), "{pairs}");

    // 32x32 network on crops prepared for 96 (scaled on load), fold 1's people left out.
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "seed = 3\n[data]\nmanifest = \"{m}\"\nsource_size = 37\ntest_pairs = \"{p}\"\n\
             test_folds = [1]\npainted_share = 0.5\n[model]\ninput_size = 32\n\
             width_multiplier = 0.125\ntop_k = 4\nface_margin = 6.0\n[train]\nmode = \"full\"\n\
             batch_size = 8\nstage1_steps = 4\nstage2_steps = 4\ncheckpoint_every = 4\n\
             log_every = 1\n[augment]\nenabled = true\n[distill]\nteacher = \"{t}\"\nweight = 5.0\n",
            m = data.join("test/lfw/manifest.csv").display(),
            p = data.join("test/lfw/pairs.csv").display(),
            t = teacher.display(),
        ),
    )
    .unwrap();
    let run = dir.join("run");
    trainer(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let described: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(described["distill_dim"], 128, "{described}");
    assert!(described["teacher"]["sha256"].as_str().unwrap().len() == 64);
    // Only people outside fold 1's pairs were trained on.
    assert!((described["num_classes"].as_u64().unwrap() as usize) < people);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.lines().all(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["distill"].as_f64().unwrap() > 0.0
        }),
        "{metrics}"
    );
    // The teacher's embeddings were cached beside the manifest.
    let cached = std::fs::read_dir(data.join("test/lfw"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("teacher-")
        })
        .count();
    assert_eq!(cached, 1);

    let onnx = dir.join("model/facegate.onnx");
    trainer(&[
        "export",
        run.to_str().unwrap(),
        "--held-out",
        data.join("test/lfw/manifest.csv").to_str().unwrap(),
        "--held-out-folds",
        "1",
        "--out",
        onnx.to_str().unwrap(),
        "--provenance",
        "trainer/configs/lfw-small.provenance.toml",
    ]);
    let card = ModelCard::load(&dir.join("model/facegate.card.json")).unwrap();
    let provenance = card.provenance.as_ref().unwrap();
    assert!(provenance.data.contains("Labeled Faces in the Wild"));
    assert_eq!(
        provenance.teacher.as_ref().unwrap().sha256,
        described["teacher"]["sha256"].as_str().unwrap()
    );

    let report = dir.join("report");
    let said = trainer(&[
        "eval",
        onnx.to_str().unwrap(),
        data.to_str().unwrap(),
        "--folds",
        "1",
        "--teacher",
        teacher.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
        "--update-card",
    ]);
    for row in [
        "facegate clean",
        "teacher  clean",
        "teacher  mask",
        "facegate sunglasses",
    ] {
        assert!(said.contains(&format!("LFW {row}")), "{row}: {said}");
    }
    // The pretrained teacher separates these few pairs far better than chance.
    let teacher_clean = said
        .lines()
        .find(|l| l.starts_with("LFW teacher  clean"))
        .and_then(|l| l.split("accuracy").nth(1))
        .and_then(|r| r.trim().split('%').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap();
    assert!(teacher_clean >= 75.0, "{said}");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("## LFW View 2, folds 1"), "{md}");
    assert!(md.contains("inside the face"), "{md}");
    let card = ModelCard::load(&dir.join("model/facegate.card.json")).unwrap();
    for name in [
        "clean-accuracy",
        "peaks-inside-face-share",
        "peaks-on-border-share",
    ] {
        assert!(card.metrics.iter().any(|m| m.name == name), "{name}");
    }
    // The face region holds: no peak on the crop's border.
    let border = card
        .metrics
        .iter()
        .find(|m| m.name == "peaks-on-border-share")
        .unwrap();
    assert_eq!(border.value, 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}
