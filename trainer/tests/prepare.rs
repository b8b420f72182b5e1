//! `prepare` on real photographs (tests/faces, config/demo) in the three source layouts: crops, manifests
//! the trainer reads, LFW pairs, and the photos it had to leave out.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_contract::align::AlignmentTemplate;
use facegate_train::data::Manifest;
use facegate_train::prepare::layout::Layout;
use facegate_train::prepare::{PrepareError, PrepareOptions, prepare};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn options() -> PrepareOptions {
    PrepareOptions {
        detector: root().join("models/detector"),
        min_face: 40.0,
        input_size: 96,
        progress: false,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facegate-prepare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Puts the photo `face` (a path from the repository root) at `src/rel`, mirrored when asked
/// (a second photo of the person).
fn place(src: &Path, rel: &str, face: &str, mirror: bool) {
    let path = src.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut img = image::open(root().join(face)).unwrap().to_rgb8();
    if mirror {
        img = image::imageops::flip_horizontal(&img);
    }
    img.save(&path).unwrap();
}

#[test]
fn identity_folders_become_a_training_manifest() {
    let dir = scratch("folders");
    let (src, out) = (dir.join("src"), dir.join("out"));
    place(&src, "newton/a.jpg", "tests/faces/newton.jpg", false);
    place(&src, "newton/b.jpg", "tests/faces/newton.jpg", true);
    place(&src, "obama/a.jpg", "config/demo/enroll/obama.jpg", false);
    std::fs::write(src.join("obama/broken.jpg"), b"not a jpeg at all").unwrap();
    image::RgbImage::from_fn(200, 160, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(src.join("newton/wall.png"))
    .unwrap();

    let summary = prepare(&src, &Layout::Folders, &out, &options()).unwrap();
    assert_eq!(summary.skipped, 2);
    let manifest = Manifest::load(&out.join("train/manifest.csv")).unwrap();
    assert_eq!(manifest.identities, vec!["newton", "obama"]);
    assert_eq!(manifest.entries.len(), 3);
    let template = AlignmentTemplate::square(96).centred_in(110, 110);
    for entry in &manifest.entries {
        let crop = image::open(&entry.path).unwrap();
        assert_eq!((crop.width(), crop.height()), (110, 110));
        let marks = entry.landmarks.as_ref().expect("5 landmarks per crop");
        // The eyes land on the template (a similarity fit of 5 points leaves small residuals).
        for (p, t) in marks.iter().zip(&template.points.0).take(2) {
            let d = ((p.x - t.x).powi(2) + (p.y - t.y).powi(2)).sqrt();
            assert!(
                d < 4.0,
                "{}: eye {p:?} vs template {t:?}",
                entry.path.display()
            );
        }
    }
    let skipped = std::fs::read_to_string(out.join("skipped.csv")).unwrap();
    assert!(skipped.contains("broken.jpg,cannot decode"), "{skipped}");
    assert!(skipped.contains("wall.png,no face found"), "{skipped}");

    // A second run into its own folder is fine; a foreign folder is refused.
    prepare(&src, &Layout::Folders, &out, &options()).unwrap();
    let err = prepare(&src, &Layout::Folders, &src, &options()).unwrap_err();
    assert!(matches!(err, PrepareError::NotOurs(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lfw_pairs_follow_the_photos_that_were_kept() {
    let dir = scratch("lfw");
    let (src, out) = (dir.join("src"), dir.join("out"));
    place(
        &src,
        "Isaac_Newton/Isaac_Newton_0001.jpg",
        "tests/faces/newton.jpg",
        false,
    );
    place(
        &src,
        "Isaac_Newton/Isaac_Newton_0002.jpg",
        "tests/faces/newton.jpg",
        true,
    );
    place(
        &src,
        "Barack_Obama/Barack_Obama_0001.jpg",
        "config/demo/enroll/obama.jpg",
        false,
    );
    let pairs = dir.join("pairs.txt");
    std::fs::write(
        &pairs,
        "1\t3\nIsaac_Newton\t1\t2\nIsaac_Newton\t1\tBarack_Obama\t1\nIsaac_Newton\t2\tBarack_Obama\t7\n",
    )
    .unwrap();
    let summary = prepare(&src, &Layout::Lfw { pairs }, &out, &options()).unwrap();
    assert_eq!(summary.pairs, Some((2, 1)));
    let text = std::fs::read_to_string(out.join("test/lfw/pairs.csv")).unwrap();
    assert_eq!(
        text,
        "a,b,same,fold\n\
         Isaac_Newton/Isaac_Newton_0001.png,Isaac_Newton/Isaac_Newton_0002.png,1,1\n\
         Isaac_Newton/Isaac_Newton_0001.png,Barack_Obama/Barack_Obama_0001.png,0,1\n"
    );
    assert_eq!(
        Manifest::load(&out.join("test/lfw/manifest.csv"))
            .unwrap()
            .entries
            .len(),
        3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ar_names_sort_photos_into_occlusion_sets() {
    let dir = scratch("ar");
    let (src, out) = (dir.join("src"), dir.join("out"));
    place(&src, "m-001-01.jpg", "tests/faces/newton.jpg", false);
    place(&src, "w-002-14.jpg", "config/demo/enroll/obama.jpg", false);
    place(&src, "m-001-08.jpg", "tests/faces/newton.jpg", true);
    place(&src, "w-002-24.jpg", "config/demo/enroll/obama.jpg", true);
    place(&src, "m-1-99.jpg", "config/demo/enroll/obama.jpg", false);
    let summary = prepare(&src, &Layout::Ar, &out, &options()).unwrap();
    let counts: Vec<(String, usize)> = summary
        .manifests
        .iter()
        .map(|(p, n)| (p.strip_prefix(&out).unwrap().display().to_string(), *n))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("test/clean/manifest.csv".to_string(), 2),
            ("test/scarf/manifest.csv".to_string(), 1),
            ("test/sunglasses/manifest.csv".to_string(), 1),
        ]
    );
    let clean = Manifest::load(&out.join("test/clean/manifest.csv")).unwrap();
    assert_eq!(clean.identities, vec!["m-001", "w-002"]);
    let skipped = std::fs::read_to_string(out.join("skipped.csv")).unwrap();
    assert!(
        skipped.contains("m-1-99.jpg,not an AR file name"),
        "{skipped}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
