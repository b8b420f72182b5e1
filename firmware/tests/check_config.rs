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

/// The example config states each setting's default (in use or commented out): every value it
/// states for the settings below must be the code's own default, so the file a technician
/// copies never promises what the program does not do.
#[test]
fn the_example_config_states_the_codes_defaults() {
    use facegate::config::{Commands, Detection, MatchRules, Mqtt, Signing};
    use facegate::display::DisplayConfig;
    use facegate::door::DoorConfig;
    use facegate_pipeline::decide::DecideRules;
    use facegate_pipeline::embed::TensorRtConfig;
    use facegate_pipeline::liveness::LivenessConfig;
    use facegate_pipeline::quality::QualityRules;
    let (detection, matching) = (Detection::default(), MatchRules::default());
    let (quality, decision) = (QualityRules::default(), DecideRules::default());
    let occlusion = &matching.occlusion;
    let defaults: Vec<(&str, &str, f64)> = vec![
        (
            "embedder",
            "workspace_mib",
            TensorRtConfig::DEFAULT_WORKSPACE_MIB.into(),
        ),
        (
            "mqtt",
            "keep_alive_seconds",
            Mqtt::DEFAULT_KEEP_ALIVE_SECONDS as f64,
        ),
        ("mqtt", "queue_limit", Mqtt::DEFAULT_QUEUE_LIMIT as f64),
        ("mqtt", "drain_seconds", Mqtt::DEFAULT_DRAIN_SECONDS.into()),
        ("detection", "min_face", detection.min_face.into()),
        ("detection", "min_score", detection.min_score.into()),
        (
            "quality",
            "min_eye_distance",
            quality.min_eye_distance.into(),
        ),
        ("quality", "max_yaw", quality.max_yaw.into()),
        (
            "quality",
            "max_roll_degrees",
            quality.max_roll_degrees.into(),
        ),
        ("quality", "min_sharpness", quality.min_sharpness.into()),
        ("matching", "target_far", matching.target_far),
        ("matching", "max_faces", matching.max_faces as f64),
        (
            "matching.occlusion",
            "radius_sigmas",
            occlusion.radius_sigmas.into(),
        ),
        (
            "matching.occlusion",
            "min_radius_cells",
            occlusion.min_radius_cells.into(),
        ),
        (
            "matching.occlusion",
            "displaced_share",
            occlusion.displaced_share.into(),
        ),
        (
            "matching.occlusion",
            "min_filters",
            occlusion.min_filters as f64,
        ),
        (
            "decision",
            "agreeing_frames",
            decision.agreeing_frames.into(),
        ),
        (
            "decision",
            "uncertain_margin",
            decision.uncertain_margin.into(),
        ),
        (
            "decision",
            "cooldown_seconds",
            decision.cooldown_seconds.into(),
        ),
        (
            "decision",
            "track_gap_frames",
            decision.track_gap_frames as f64,
        ),
        ("decision", "track_overlap", decision.track_overlap.into()),
        (
            "liveness",
            "threshold",
            LivenessConfig::DEFAULT_THRESHOLD.into(),
        ),
        ("access", "valid_seconds", Signing::DEFAULT_VALID_SECONDS),
        ("display", "width", DisplayConfig::DEFAULT_PNG_SIZE.0.into()),
        (
            "display",
            "height",
            DisplayConfig::DEFAULT_PNG_SIZE.1.into(),
        ),
        (
            "display",
            "hold_seconds",
            DisplayConfig::DEFAULT_HOLD_SECONDS,
        ),
        ("door", "pulse_seconds", DoorConfig::DEFAULT_PULSE_SECONDS),
        (
            "metrics",
            "port",
            facegate::metrics::MetricsConfig::DEFAULT_PORT.into(),
        ),
        (
            "door",
            "timeout_seconds",
            DoorConfig::DEFAULT_TIMEOUT_SECONDS,
        ),
        (
            "commands",
            "max_age_seconds",
            Commands::DEFAULT_MAX_AGE_SECONDS,
        ),
        (
            "commands",
            "refusals_per_second",
            Commands::DEFAULT_REFUSALS_PER_SECOND,
        ),
    ];
    let path = repo().join("config/facegate.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // (section, key) -> the number stated, from `key = value` lines, commented out or not.
    let mut stated = std::collections::HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[') {
            section = name.trim_matches(|c| c == '[' || c == ']').to_owned();
            section = section.split(']').next().unwrap().to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        let value = value.split('#').next().unwrap().trim();
        if let Ok(number) = value.parse::<f64>() {
            stated.insert((section.clone(), key.trim().to_owned()), number);
        }
    }
    for (section, key, default) in defaults {
        let Some(&number) = stated.get(&(section.to_owned(), key.to_owned())) else {
            panic!("{}: [{section}] {key} is not stated", path.display());
        };
        // f32 defaults compared through their f64 value.
        assert!(
            (number - default).abs() <= 1e-6 * default.abs().max(1.0),
            "{}: [{section}] {key} = {number}, the code's default is {default}",
            path.display()
        );
    }
}
