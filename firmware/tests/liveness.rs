//! The liveness networks as the device runs them (tract, the device's detector and crops) on
//! the authors' three sample photos, beside the scores the authors publish for them: a live
//! face 1.00 live, a printed photo 0.75 attack, a tablet screen 0.82 attack.
//!
//! The live face's score is reproduced. The attack scores are not to 0.02, and cannot be with
//! this detector: the authors crop around their own detector's box (a RetinaFace), the device
//! around MTCNN's, and on the printed photo the attack score moves between 0.43 and 0.88 as
//! the box is squared, shifted or scaled by a tenth. What is asserted for them is what the door
//! needs: both are refused, with most of the weight on an attack class. The networks
//! themselves match an independent numpy forward pass of the authors' weights to 1e-7
//! (`scripts/minifasnet-to-onnx.py --check`).
//!
//! The samples are not in this repository: they are read from
//! `../shared/models/liveness/samples` (CI has it; docs/liveness.md says where to get them);
//! without them the test says so and passes.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_detect::{Detector, DetectorConfig};
use facegate_pipeline::liveness::{Liveness, LivenessConfig};
use facegate_pipeline::model::models_dir;
use std::path::Path;

fn liveness() -> Liveness {
    Liveness::load(&LivenessConfig {
        dir: models_dir().join("liveness"),
        threshold: 0.5,
    })
    .unwrap()
}

#[test]
fn the_authors_samples_get_the_authors_scores() {
    let samples =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/liveness/samples");
    if !samples.join("image_T1.jpg").is_file() {
        eprintln!("skipped: no samples in {}", samples.display());
        return;
    }
    let live = liveness();
    let detector =
        Detector::load(&models_dir().join("detector"), DetectorConfig::default()).unwrap();
    // (file, the authors' live score, the authors' attack score).
    let expected = [
        ("image_T1.jpg", Some(1.00), None),
        ("image_F1.jpg", None, Some(0.75)),
        ("image_F2.jpg", None, Some(0.82)),
    ];
    let mut got = Vec::new();
    for (file, _, _) in expected {
        let frame = facegate_pipeline::source::files::read_image(&samples.join(file)).unwrap();
        let faces = detector.detect(&frame).unwrap();
        assert!(!faces.is_empty(), "{file}: no face found");
        let score = live.score(&frame, &faces[0]).unwrap();
        eprintln!(
            "{file}: box {:?} live {:.3} attack {:.3}",
            faces[0].bbox, score.score, score.attack
        );
        got.push(score);
    }
    for ((file, want_live, want_attack), got) in expected.into_iter().zip(got) {
        if let Some(want) = want_live {
            assert!(
                (got.score - want).abs() <= 0.02,
                "{file}: live {got:?}, want {want}"
            );
            assert!(live.is_live(got));
        }
        if let Some(want) = want_attack {
            eprintln!("{file}: attack {:.3} (the authors': {want})", got.attack);
            assert!(!live.is_live(got), "{file}: {got:?}");
            assert!(got.score < 0.3 && got.attack > 0.6, "{file}: {got:?}");
        }
    }
}

#[test]
fn a_changed_model_file_is_refused_with_its_name() {
    let dir = std::env::temp_dir().join(format!("facegate-liveness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = models_dir().join("liveness");
    for f in [
        "liveness.json",
        "minifasnet-v2.onnx",
        "minifasnet-v1se.onnx",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut bytes = std::fs::read(dir.join("minifasnet-v1se.onnx")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.join("minifasnet-v1se.onnx"), bytes).unwrap();
    let config = LivenessConfig {
        dir: dir.clone(),
        threshold: 0.5,
    };
    let err = Liveness::load(&config).unwrap_err().to_string();
    assert!(
        err.contains("minifasnet-v1se.onnx") && err.contains("SHA-256"),
        "{err}"
    );
    std::fs::remove_file(dir.join("minifasnet-v2.onnx")).unwrap();
    let err = Liveness::load(&config).unwrap_err().to_string();
    assert!(
        err.contains("minifasnet-v2.onnx") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(dir.join("liveness.json"), "{\"models\": 3}").unwrap();
    let err = Liveness::load(&config).unwrap_err().to_string();
    assert!(
        err.contains("liveness.json") && err.contains("not a liveness manifest"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each sample's person enrolled from the sample itself (the person on the print and on the
/// tablet too), then the sample shown for four frames: through detection, liveness, matching and
/// the decision, the live face is let in and the two attacks are refused as attacks.
#[test]
fn through_the_pipeline_the_live_sample_is_let_in_and_the_attacks_are_not() {
    use facegate_pipeline::decide::Access;
    use facegate_pipeline::event::{Event, Outcome};
    use facegate_pipeline::sink::{PublishError, Sink};

    #[derive(Default)]
    struct Collect(Vec<Event>);
    impl Sink for Collect {
        fn publish(&mut self, event: &Event, _: Option<&[u8]>) -> Result<(), PublishError> {
            self.0.push(event.clone());
            Ok(())
        }
    }

    let samples =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/liveness/samples");
    if !samples.join("image_T1.jpg").is_file() {
        eprintln!("skipped: no samples in {}", samples.display());
        return;
    }
    for (file, live) in [
        ("image_T1.jpg", true),
        ("image_F1.jpg", false),
        ("image_F2.jpg", false),
    ] {
        let dir = std::env::temp_dir().join(format!(
            "facegate-liveness-run-{}-{file}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let photo = samples.join(file);
        std::fs::write(
            dir.join("facegate.toml"),
            format!(
                // The printed photo is held a little turned (yaw 0.32): allowed here, so that
                // the face is matched and the liveness check is what refuses it.
                "[device]\nid = \"door\"\n[source]\nkind = \"image\"\npath = \"{p}\"\n\
                 [storage]\ndir = \"state\"\n[quality]\nmax_yaw = 0.4\n\
                 [[people]]\nid = \"sample\"\nname = \"Sample\"\nphotos = [\"{p}\"]\n",
                p = photo.display()
            ),
        )
        .unwrap();
        let cfg = facegate::config::load(&dir.join("facegate.toml")).unwrap();
        let models = facegate_pipeline::model::Models::load(
            None,
            cfg.detection.detector(),
            &cfg.embedder,
            cfg.liveness.as_ref(),
        )
        .unwrap();
        std::fs::create_dir_all(&cfg.storage_dir).unwrap();
        let mut gallery = facegate_pipeline::gallery::Gallery::open(
            &cfg.storage_dir.join("gallery.sqlite"),
            &cfg.storage_dir.join("gallery.key"),
        )
        .unwrap();
        let enrolled = facegate_pipeline::wiring::sync_config(
            &models,
            &cfg.pipeline(),
            &mut gallery,
            "2026-12-02T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            enrolled[0].photos[0].verdict, "accepted",
            "{file}: {enrolled:?}"
        );
        let matcher =
            facegate_pipeline::wiring::matcher(&models, &gallery, &cfg.pipeline()).unwrap();
        let mut pipeline =
            facegate_pipeline::wiring::Pipeline::new(&models, cfg.pipeline(), matcher);
        let image = facegate_pipeline::source::files::read_image(&photo).unwrap();
        let mut got = Collect::default();
        for seq in 0..4 {
            let frame = facegate_pipeline::source::Frame {
                seq,
                time: std::time::SystemTime::now(),
                origin: file.into(),
                image: image.clone(),
            };
            pipeline.process(&frame, &mut got).unwrap();
        }
        let decisions: Vec<&Access> = got.0.iter().filter_map(|e| e.access.as_ref()).collect();
        if live {
            assert!(
                matches!(decisions[..], [Access::Grant { .. }]),
                "{file}: {decisions:?}"
            );
        } else {
            assert!(
                matches!(&decisions[..], [Access::Deny { reason }] if reason == "presentation_attack"),
                "{file}: {decisions:?}"
            );
            assert!(got.0.iter().all(|e| e.result != Outcome::Match), "{file}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
