//! TensorRT against tract on the same aligned faces (feature `tensorrt`, on a machine with an
//! NVIDIA GPU and TensorRT: the board). Each face's feature must agree to cosine >= 0.999.
//! Compiled in every build, run only with the feature: `cargo test -p facegate --features
//! tensorrt --test tensorrt` on the board (where facegate is developed there is no GPU).
#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate::config::{Detection, EmbedderConfig, TensorRtConfig, TrtPrecision};
use facegate_contract::similarity::cosine;
use facegate_pipeline::embed::{Embedder, TractEmbedder};
use facegate_pipeline::model::Models;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
#[cfg_attr(
    not(feature = "tensorrt"),
    ignore = "needs `--features tensorrt`, TensorRT and an NVIDIA GPU (the board)"
)]
fn tensorrt_and_tract_agree_on_every_demo_face() {
    let engines = std::env::temp_dir().join(format!("facegate-engines-{}", std::process::id()));
    for precision in [TrtPrecision::Fp32, TrtPrecision::Fp16] {
        let gpu = Models::load(
            None,
            Detection::default().detector(),
            &EmbedderConfig::TensorRt(TensorRtConfig {
                precision: precision.clone(),
                workspace_mib: 256,
                engine_dir: engines.clone(),
            }),
            None,
        )
        .unwrap();
        assert_eq!(gpu.embedder.runtime(), "tensorrt");
        let cpu = TractEmbedder::load(&gpu.card, &gpu.card_path, 1).unwrap();
        let mut faces = 0;
        for dir in ["config/demo/enroll", "config/demo/frames"] {
            for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let Ok(image) = facegate_pipeline::source::files::read_image(&path) else {
                    continue;
                };
                for face in gpu.detector.detect(&image).unwrap() {
                    let aligned = gpu.aligner.align(&image, &face.landmarks).unwrap();
                    let a = cpu.embed(&aligned.input).unwrap();
                    let b = gpu.embedder.embed(&aligned.input).unwrap();
                    let c = cosine(&a.feature, &b.feature).unwrap();
                    assert!(c >= 0.999, "{precision:?} {}: cosine {c}", path.display());
                    faces += 1;
                }
            }
        }
        assert!(faces >= 3, "{faces} faces compared");
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&engines)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "one engine per precision: {files:?}");
    // Loading again finds the engines in the cache instead of building them anew.
    let built: Vec<_> = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .collect();
    Models::load(
        None,
        Detection::default().detector(),
        &EmbedderConfig::TensorRt(TensorRtConfig {
            precision: TrtPrecision::Fp16,
            workspace_mib: 256,
            engine_dir: engines.clone(),
        }),
        None,
    )
    .unwrap();
    for (f, t) in files.iter().zip(built) {
        assert_eq!(
            std::fs::metadata(f).unwrap().modified().unwrap(),
            t,
            "{f:?} rebuilt"
        );
    }
    std::fs::remove_dir_all(engines).unwrap();
}
