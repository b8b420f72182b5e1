//! The programs with their standard output closed, as `facegate ... | head -1` leaves them (or a
//! journal that restarted): commands that only print end quietly and successfully, and
//! `facegate run`, whose printing is a convenience beside the door's work, goes on deciding.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Runs `facegate ARGS` with its standard output closed before it writes anything (it reads
/// its config and decodes photos first); returns its exit code and standard error.
fn with_stdout_closed(args: &[&Path]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (status.code(), stderr)
}

#[test]
fn check_config_ends_quietly() {
    let demo = repo().join("config/demo.toml");
    let (code, stderr) = with_stdout_closed(&[Path::new("check-config"), &demo]);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn run_goes_on_deciding() {
    let demo = repo().join("config/demo");
    let dir: PathBuf =
        std::env::temp_dir().join(format!("facegate-closed-pipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The demo's frames and Obama; no broker (port 9 refuses at once): events stay queued.
    let config = format!(
        "[device]\nid = \"pipe-door\"\n[storage]\ndir = \"state\"\n[decision]\n\
         agreeing_frames = 1\n[source]\nkind = \"folder\"\npath = \"{demo}/frames\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = 9\ndrain_seconds = 1\n\
         [[people]]\nid = \"obama\"\nname = \"Barack Obama\"\n\
         photos = [\"{demo}/enroll/obama.jpg\"]\n",
        demo = demo.display()
    );
    std::fs::write(dir.join("facegate.toml"), config).unwrap();
    let (code, stderr) = with_stdout_closed(&[Path::new("run"), &dir.join("facegate.toml")]);
    assert_eq!(code, Some(0), "{stderr}");
    // Every frame was still decided on: the summary counts them all, and the grant was taken.
    assert!(stderr.contains("4 frames"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "log lines into a pipe (or the journal) carry no colour codes: {stderr:?}"
    );
    assert!(stderr.contains("1 grants"), "{stderr}");
    assert!(
        stderr.contains("events are no longer printed"),
        "the closed output is said once: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
