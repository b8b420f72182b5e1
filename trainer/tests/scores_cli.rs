//! `facegate-train scores` on a real file.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use std::path::Path;
use std::process::{Command, Output};

fn scores(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate-train"))
        .arg("scores")
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn scores_command_prints_the_report() {
    let dir = std::env::temp_dir().join(format!("facegate-train-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pairs.csv");
    std::fs::write(&path, "score,label\n0.9,1\n0.7,1\n0.8,0\n0.1,0\n").unwrap();
    let out = scores(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("pairs: 2 genuine, 2 impostor"), "{text}");
    assert!(text.contains("EER: 0.5000"), "{text}");

    std::fs::write(&path, "0.9,1\nbad\n").unwrap();
    let out = scores(&path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pairs.csv:2:"));
    std::fs::remove_dir_all(dir).unwrap();
}
