//! The shipped default model (models/default): its card matches the file, tract loads it with
//! the card's input, and a real face found by the device's detector and aligned by the card's
//! template embeds to a finite feature of the card's size. Its report, calibrated thresholds,
//! provenance and LFW numbers are there.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_contract::ModelCard;
use facegate_contract::align::align_face;
use facegate_detect::{Detector, DetectorConfig};
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn shipped_model_loads_and_embeds_a_real_face() {
    let dir = root().join("models/default");
    let card_path = dir.join("facegate.card.json");
    let card = ModelCard::load(&card_path).unwrap();
    card.verify_model(&card_path).unwrap();
    assert!(
        card.thresholds.iter().any(|t| t.target_far <= 1e-3),
        "calibrated thresholds: {:?}",
        card.thresholds
    );
    assert!(
        card.data.iter().all(|d| !d.synthetic),
        "the default model is trained and measured on real faces"
    );
    // It says whose photos and whose weights it learned from.
    let provenance = card.provenance.as_ref().unwrap();
    assert!(provenance.data.contains("Labeled Faces in the Wild"));
    assert_eq!(provenance.teacher.as_ref().unwrap().sha256.len(), 64);
    assert!(!provenance.caveats.is_empty());
    // Measured on LFW people it never trained on, and its filters fire on the face.
    let metric = |name: &str| {
        card.metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name} in the card"))
            .value
    };
    assert!(metric("clean-accuracy") > 0.5);
    assert!(metric("peaks-on-border-share") <= 0.05);
    for file in [
        "report.md",
        "report.json",
        "roc.png",
        "peaks.png",
        "heatmaps.png",
        "occlusion.png",
    ] {
        assert!(dir.join("report").join(file).is_file(), "report/{file}");
    }

    let photo = image::open(root().join("tests/faces/newton.jpg"))
        .unwrap()
        .to_rgb8();
    let detector =
        Detector::load(&root().join("models/detector"), DetectorConfig::default()).unwrap();
    let face = detector.detect(&photo).unwrap().remove(0);
    let aligned = align_face(
        &photo,
        &face.landmarks,
        &card.alignment,
        &card.input.normalisation,
    )
    .unwrap();
    let (w, h) = (card.input.width as usize, card.input.height as usize);
    assert_eq!((aligned.width as usize, aligned.height as usize), (w, h));

    let plan = tract_onnx::onnx()
        .model_for_path(dir.join(&card.model_file.path))
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[1, 3, h, w], &aligned.data).unwrap();
    let outputs = plan.run(tvec![input.into_tvalue()]).unwrap();
    let feature = outputs[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(feature.len(), card.outputs.feature.dim as usize);
    assert!(feature.iter().all(|v| v.is_finite()));
    assert!(feature.iter().any(|v| v.abs() > 1e-6), "a feature of zeros");
}
