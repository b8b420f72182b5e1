//! The detector on real photographs (tests/faces and the demo portraits, public domain)
//! against known landmarks.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_detect::{DetectError, Detector, DetectorConfig, NetError};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn detector() -> Detector {
    Detector::load(&root().join("models/detector"), DetectorConfig::default()).unwrap()
}

/// A photo by its path from the repository root.
fn photo(rel: &str) -> image::RgbImage {
    image::open(root().join(rel)).unwrap().to_rgb8()
}

#[test]
fn finds_newtons_face_and_landmarks() {
    let faces = detector().detect(&photo("tests/faces/newton.jpg")).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let face = &faces[0];
    assert!(face.score > 0.95, "score {}", face.score);
    // SCRFD's landmarks for this portrait (scrfd 0.3.0, tests/truth_faces.py).
    let truth = [
        (371.0, 143.0),
        (419.0, 145.0),
        (399.0, 177.0),
        (371.0, 197.0),
        (409.0, 199.0),
    ];
    for (p, (tx, ty)) in face.landmarks.0.iter().zip(truth) {
        let d = ((p.x - tx).powi(2) + (p.y - ty).powi(2)).sqrt();
        assert!(d < 6.0, "landmark {p:?} is {d:.1} px from ({tx}, {ty})");
    }
    let b = face.bbox;
    assert!(
        b.x1 < 371.0 && b.x2 > 419.0 && b.y1 < 143.0 && b.y2 > 199.0,
        "{b:?}"
    );
}

#[test]
fn one_upright_face_per_portrait() {
    let detector = detector();
    for name in [
        "config/demo/enroll/obama.jpg",
        "config/demo/enroll/biden.jpg",
        "config/demo/originals/obama2.jpg",
    ] {
        let faces = detector.detect(&photo(name)).unwrap();
        let confident: Vec<_> = faces.iter().filter(|f| f.score > 0.95).collect();
        assert_eq!(confident.len(), 1, "{name}: {faces:?}");
        let [le, re, nose, lm, rm] = confident[0].landmarks.0;
        assert!(
            le.x < nose.x && nose.x < re.x,
            "{name}: eyes around the nose"
        );
        assert!(
            le.y < nose.y && re.y < nose.y,
            "{name}: eyes above the nose"
        );
        assert!(
            lm.y > nose.y && rm.y > nose.y && lm.x < rm.x,
            "{name}: mouth below the nose"
        );
    }
}

#[test]
fn no_face_in_a_faceless_picture() {
    let picture = image::RgbImage::from_fn(320, 240, |x, y| {
        let v = ((x * 7 + y * 13) % 256) as u8;
        image::Rgb([v, (x % 256) as u8, (y % 256) as u8])
    });
    assert!(detector().detect(&picture).unwrap().is_empty());
}

#[test]
fn bad_inputs_are_named() {
    let err = Detector::load(Path::new("/nonexistent"), DetectorConfig::default())
        .err()
        .unwrap();
    assert!(matches!(err, DetectError::Net(NetError::Read { .. })));
    assert!(err.to_string().contains("/nonexistent/pnet.onnx"), "{err}");
    let tiny = image::RgbImage::new(8, 8);
    let err = detector().detect(&tiny).unwrap_err();
    assert!(
        matches!(
            err,
            DetectError::ImageSize {
                width: 8,
                height: 8,
                ..
            }
        ),
        "{err}"
    );
}
