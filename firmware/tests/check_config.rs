//! `facegate check-config` as a technician runs it: on the shipped configs and on a broken one.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn check_config(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

#[test]
fn the_demo_config_is_valid_and_its_photos_decode() {
    let (code, text) = check_config(&repo().join("config/demo.toml"));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("people   2 with 2 photo(s), all decoded"),
        "{text}"
    );
}

#[test]
fn the_field_config_that_install_sh_puts_on_the_board_is_valid() {
    let (code, text) = check_config(&repo().join("deploy/facegate.toml"));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("camera /dev/video0 Mjpeg 1280x720 @ 15 fps"),
        "{text}"
    );
    if !Path::new("/dev/video0").exists() {
        assert!(
            text.contains("not present now: the device will wait for it"),
            "{text}"
        );
    }
}

#[test]
fn the_reference_config_uses_only_known_keys() {
    // The reference names a model and photos that do not exist on a build machine (an absent
    // camera is waited for, not an error); every other rule must pass, so the file documents
    // the schema truthfully.
    let (code, text) = check_config(&repo().join("config/facegate.example.toml"));
    assert_eq!(code, 1, "{text}");
    let problems: Vec<&str> = text.lines().filter(|l| l.starts_with("  line")).collect();
    assert!(!problems.is_empty(), "{text}");
    for p in problems {
        let about_missing_files =
            p.contains("model.card") || p.contains("source.device") || p.contains("No such file");
        assert!(about_missing_files, "unexpected problem: {p}");
    }
}

#[test]
fn a_broken_config_fails_with_lines() {
    let dir = std::env::temp_dir().join(format!("facegate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    std::fs::write(
        &path,
        "[device]\nid = \"a b\"\n\n[source]\nkind = \"image\"\npath = \"none.jpg\"\n",
    )
    .unwrap();
    let (code, text) = check_config(&path);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("2 problem(s)"), "{text}");
    assert!(text.contains("line 2: device.id"), "{text}");
    assert!(text.contains("line 6: source.path"), "{text}");
    let (code, text) = check_config(&dir.join("absent.toml"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("absent.toml"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}
