//! Validation of a parsed config: every rule, every problem, each with its line. The helpers
//! live here; each section is checked in a file of its own.

// `!(x > 0.0)` is meant: a NaN from the file must fail the rule too.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod access;
mod commands;
mod display;
mod door;
mod embedder;
mod liveness;
mod mqtt;
mod people;
mod source;
mod values;

use super::raw::{RawConfig, RawSource};
use super::{Config, Identity, Issue};
use access::check_access;
use commands::check_commands;
use display::check_display;
use door::check_door;
use embedder::check_embedder;
use facegate_contract::ModelCard;
use liveness::check_liveness;
use mqtt::check_mqtt;
use people::check_people;
use source::check_source;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use toml::Spanned;
use values::{check_decision, check_detection, check_matching, check_quality};

/// Collects problems and turns byte spans into line numbers.
struct Report<'a> {
    text: &'a str,
    issues: Vec<Issue>,
}

impl Report<'_> {
    fn line_of(&self, span: &Range<usize>) -> Option<usize> {
        // Defaults carry the empty span 0..0: they have no place in the file.
        if span.is_empty() && span.start == 0 {
            return None;
        }
        let upto = span.start.min(self.text.len());
        Some(self.text[..upto].bytes().filter(|&b| b == b'\n').count() + 1)
    }

    /// The line that sets the dotted key `path` (`matching.occlusion.min_filters`), however the
    /// file writes it (a table header, a dotted key, an inline table), found with toml's own
    /// spanned parse; `None` when the key is not in the file.
    fn line_of_key(&self, path: &str) -> Option<usize> {
        let doc = toml::de::DeTable::parse(self.text).ok()?;
        let mut table = doc.get_ref();
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let (_, value) = table.iter().find(|(key, _)| key.get_ref() == part)?;
            if parts.peek().is_none() {
                return self.line_of(&value.span());
            }
            let toml::de::DeValue::Table(inner) = value.get_ref() else {
                return None;
            };
            table = inner;
        }
        None
    }

    fn at<T>(&mut self, value: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) {
        let line = self.line_of(&value.span());
        self.push(line, field, message);
    }

    /// A setting given where it has no effect (it applies only to `applies_to`, e.g. `kind =
    /// "png"`): an issue at its own line, so a technician sees it is ignored.
    fn only_for(&mut self, span: Option<Range<usize>>, field: impl Into<String>, applies_to: &str) {
        if let Some(span) = span {
            let line = self.line_of(&span);
            self.push(line, field, format!("only for {applies_to}"));
        }
    }

    fn push(&mut self, line: Option<usize>, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            line,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Checks config `text`, resolving relative paths against `base` (the config file's folder).
/// Returns the typed config, or every problem found, ordered by line.
pub fn check(text: &str, base: &Path) -> Result<Config, Vec<Issue>> {
    let mut r = Report {
        text,
        issues: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().and_then(|s| r.line_of(&s));
            r.push(line, "syntax", e.message().trim().to_owned());
            return Err(r.issues);
        }
    };
    let device = check_device(&mut r, &raw);
    let model_card = raw.model.as_ref().map(|m| {
        let path = base.join(m.card.get_ref());
        check_model(&mut r, &m.card, &path);
        path
    });
    let source = check_source(&mut r, &raw.source, base);
    let mqtt = check_mqtt(&mut r, &raw, &device.id, base);
    let people = check_people(&mut r, &raw.people, base);
    let storage_dir = raw.storage.as_ref().map_or_else(
        || PathBuf::from(super::DEFAULT_STORAGE_DIR),
        |s| {
            if s.dir.get_ref().trim().is_empty() {
                r.at(&s.dir, "storage.dir", "must not be empty");
            }
            base.join(s.dir.get_ref())
        },
    );
    let detection = check_detection(&mut r, &raw);
    let matching = check_matching(&mut r, &raw);
    let quality = check_quality(&mut r, &raw);
    let decision = check_decision(&mut r, &raw);
    let commands = check_commands(&mut r, &raw, base);
    let access = check_access(&mut r, &raw, base, &storage_dir);
    let liveness = check_liveness(&mut r, &raw, base);
    let embedder = check_embedder(&mut r, &raw, base, &storage_dir);
    let display = check_display(&mut r, &raw, base);
    let door = check_door(&mut r, &raw, base);
    let frigate = raw.frigate.as_ref().map_or_else(Default::default, |f| {
        let v = f.get_ref();
        let bad = v.topic.is_empty() || v.topic.contains(['+', '#']);
        rule(
            &mut r,
            f,
            bad,
            "frigate.topic",
            "expected a topic without + or #",
        );
        let mut v = v.clone();
        if v.camera.is_empty() {
            v.camera.clone_from(&device.id);
        }
        v
    });
    let home_assistant = raw
        .home_assistant
        .as_ref()
        .map_or_else(Default::default, |h| {
            let v = h.get_ref();
            let bad = v.prefix.is_empty() || v.prefix.contains(['+', '#']);
            rule(
                &mut r,
                h,
                bad,
                "home_assistant.prefix",
                "expected a topic prefix without + or #",
            );
            v.clone()
        });
    let metrics = raw.metrics.as_ref().and_then(|m| {
        let port = ranged(
            &mut r,
            &m.port,
            1..=u16::MAX,
            crate::metrics::MetricsConfig::DEFAULT_PORT,
            "metrics.port",
            "expected a port in 1..=65535",
        );
        m.enabled
            .get_ref()
            .then_some(crate::metrics::MetricsConfig { port })
    });
    if let (true, Some(source)) = (r.issues.is_empty(), source) {
        return Ok(Config {
            device,
            model_card,
            embedder,
            source,
            mqtt,
            people,
            storage_dir,
            detection,
            matching,
            quality,
            decision,
            privacy: raw.privacy.unwrap_or_default(),
            commands,
            access,
            liveness,
            display,
            door,
            frigate,
            home_assistant,
            metrics,
        });
    }
    let mut issues = r.issues;
    issues.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
    Err(issues)
}

/// Ids become MQTT topic levels and Home Assistant ids, so they are kept to a safe alphabet.
pub(crate) fn id_problem(id: &str) -> Option<String> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if id.is_empty() || id.len() > 64 || !ok_chars {
        Some(format!(
            "{id:?} is not a valid id: expected 1 to 64 of A-Z a-z 0-9 - _"
        ))
    } else {
        None
    }
}

fn check_device(r: &mut Report, raw: &RawConfig) -> Identity {
    let id = raw.device.id.get_ref().clone();
    if let Some(problem) = id_problem(&id) {
        r.at(&raw.device.id, "device.id", problem);
    }
    let name = raw.device.name.clone().unwrap_or_else(|| id.clone());
    let time_zone = raw.device.time_zone.as_ref().map(|tz| {
        if let Err(e) = jiff::tz::TimeZone::get(tz.get_ref()) {
            r.at(
                tz,
                "device.time_zone",
                format!("expected an IANA time zone such as \"Europe/Berlin\": {e}"),
            );
        }
        tz.get_ref().clone()
    });
    Identity {
        id,
        name,
        time_zone,
    }
}

fn check_model(r: &mut Report, at: &Spanned<String>, card_path: &Path) {
    match ModelCard::load(card_path) {
        Ok(card) => {
            if let Err(e) = card.verify_model(card_path) {
                r.at(at, "model.card", e.to_string());
            }
        }
        Err(e) => r.at(at, "model.card", e.to_string()),
    }
}

fn required<'a, T>(
    r: &mut Report,
    src: &RawSource,
    value: &'a Option<Spanned<T>>,
    field: &str,
    kind: &str,
) -> Option<&'a Spanned<T>> {
    if value.is_none() {
        r.at(
            &src.kind,
            format!("source.{field}"),
            format!("source kind {kind:?} needs `{field}`"),
        );
    }
    value.as_ref()
}

/// Reports `message` on `field` of a section at the section's line, when `bad`.
/// An optional setting that must lie in `range`: its value, `default` when it is absent, or
/// `default` with an issue at the value's own line when it is out of range.
fn ranged<T: PartialOrd + Copy>(
    r: &mut Report,
    value: &Option<Spanned<T>>,
    range: RangeInclusive<T>,
    default: T,
    field: &str,
    expected: &str,
) -> T {
    match value {
        Some(v) if !range.contains(v.get_ref()) => {
            r.at(v, field, expected);
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    }
}

/// A rule on a value of a section parsed as a whole (`[quality]`, `[decision]`, ...): when
/// broken, an issue at the line that sets `field`, else at the section's header.
fn rule<T>(r: &mut Report, section: &Spanned<T>, bad: bool, field: &str, message: &str) {
    if bad {
        let line = r.line_of_key(field).or_else(|| r.line_of(&section.span()));
        r.push(line, field, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("facegate-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(dir.join("frames")).unwrap();
        image::RgbImage::new(8, 8)
            .save(dir.join("face.png"))
            .unwrap();
        dir
    }

    const MINIMAL: &str = r#"
[device]
id = "door-1"

[source]
kind = "folder"
path = "frames"

[[people]]
id = "ann"
name = "Ann"
photos = ["face.png"]
"#;

    #[test]
    fn a_minimal_config_gets_its_defaults() {
        let dir = scratch("minimal");
        let cfg = check(MINIMAL, &dir).unwrap();
        assert_eq!(cfg.device.name, "door-1");
        assert_eq!(cfg.source, Source::Folder(dir.join("frames")));
        assert_eq!((cfg.mqtt.host.as_str(), cfg.mqtt.port), ("127.0.0.1", 1883));
        assert_eq!(cfg.mqtt.client_id, "facegate-door-1");
        assert_eq!(cfg.people[0].photos, [dir.join("face.png")]);
        assert_eq!(cfg.model_card, None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let text = MINIMAL.replace("kind = \"folder\"", "kind = folder");
        let issues = check(&text, Path::new(".")).unwrap_err();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].line, Some(6), "{issues:?}");
    }

    #[test]
    fn every_problem_is_reported_in_line_order() {
        let dir = scratch("many");
        std::fs::write(
            dir.join("broken.jpg"),
            b"\xff\xd8\xff\xe0 not really a jpeg",
        )
        .unwrap();
        let text = r#"
[device]
id = "door/1"

[source]
kind = "v4l2"
device = "video0"
fps = 0

[mqtt]
prefix = "/facegate"

[[people]]
id = "ann"
name = "Ann"
photos = ["broken.jpg", "missing.jpg"]
"#;
        let issues = check(text, &dir).unwrap_err();
        let got: Vec<(Option<usize>, &str)> =
            issues.iter().map(|i| (i.line, i.field.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(3), "device.id"),
                (Some(7), "source.device"),
                (Some(8), "source.fps"),
                (Some(11), "mqtt.prefix"),
                (Some(16), "people[0].photos[0]"),
                (Some(16), "people[0].photos[1]"),
            ]
        );
        assert!(
            issues[4].message.contains("does not decode"),
            "{}",
            issues[4]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_embedder_is_tract_by_default_and_tensorrt_settings_are_checked() {
        use crate::config::{EmbedderConfig, TensorRtConfig, TrtPrecision};
        let dir = scratch("embedder");
        assert_eq!(
            check(MINIMAL, &dir).unwrap().embedder,
            EmbedderConfig::Tract
        );
        let with = |extra: &str| format!("{MINIMAL}\n[embedder]\n{extra}\n");
        let trt = check(&with("runtime = \"tensorrt\""), &dir).unwrap();
        assert_eq!(
            trt.embedder,
            EmbedderConfig::TensorRt(TensorRtConfig {
                precision: TrtPrecision::Fp16,
                workspace_mib: 256,
                engine_dir: PathBuf::from(crate::config::DEFAULT_STORAGE_DIR).join("engines"),
            })
        );
        let int8 = check(
            &with("runtime = \"tensorrt\"\nprecision = \"int8\"\ncalibration = \"frames\""),
            &dir,
        )
        .unwrap();
        let EmbedderConfig::TensorRt(t) = int8.embedder else {
            panic!("not tensorrt");
        };
        assert_eq!(
            t.precision,
            TrtPrecision::Int8 {
                calibration: dir.join("frames")
            }
        );
        for (extra, field) in [
            (
                "runtime = \"tract\"\nprecision = \"fp16\"",
                "embedder.precision",
            ),
            (
                "runtime = \"tensorrt\"\nprecision = \"int8\"",
                "embedder.precision",
            ),
            (
                "runtime = \"tensorrt\"\nprecision = \"int8\"\ncalibration = \"nowhere\"",
                "embedder.calibration",
            ),
            (
                "runtime = \"tensorrt\"\ncalibration = \"frames\"",
                "embedder.calibration",
            ),
            (
                "runtime = \"tensorrt\"\nworkspace_mib = 1",
                "embedder.workspace_mib",
            ),
            ("runtime = \"onnxruntime\"", "syntax"),
        ] {
            let issues = check(&with(extra), &dir).unwrap_err();
            assert_eq!(issues.len(), 1, "{extra}: {issues:?}");
            assert_eq!(issues[0].field, field, "{extra}: {issues:?}");
            assert!(issues[0].line.is_some(), "{extra}: {issues:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_camera_that_is_not_plugged_in_yet_is_not_a_config_error() {
        let dir = scratch("camera-later");
        let text = MINIMAL.replace(
            "kind = \"folder\"\npath = \"frames\"",
            "kind = \"v4l2\"\ndevice = \"/dev/facegate-no-such-camera\"",
        );
        assert_ne!(text, MINIMAL);
        let cfg = check(&text, &dir).unwrap();
        assert!(matches!(cfg.source, Source::V4l2 { .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_network_camera_s_url_is_checked_and_its_password_never_echoed() {
        let dir = scratch("stream");
        let stream = |url: &str| {
            MINIMAL.replace(
                "kind = \"folder\"\npath = \"frames\"",
                &format!("kind = \"stream\"\nurl = \"{url}\"\nfps = 0"),
            )
        };
        let ffmpeg = super::source::on_path(facegate_pipeline::source::open::FFMPEG);
        match check(&stream("rtsp://door:s3cret@192.168.1.20:554/stream2"), &dir) {
            Ok(cfg) => {
                assert!(ffmpeg);
                assert_eq!(
                    cfg.source,
                    Source::Stream {
                        url: "rtsp://door:s3cret@192.168.1.20:554/stream2".into(),
                        fps: 0
                    }
                );
            }
            Err(issues) => {
                assert!(!ffmpeg, "{issues:?}");
                assert_eq!(issues.len(), 1, "{issues:?}");
                assert!(
                    issues[0].message.contains("apt install ffmpeg"),
                    "{issues:?}"
                );
            }
        }
        let issues = check(&stream("ftp://door:s3cret@cam/x"), &dir).unwrap_err();
        let url = issues.iter().find(|i| i.field == "source.url").unwrap();
        assert_eq!(url.line, Some(7));
        assert!(url.message.contains("ftp://cam/x"), "{}", url.message);
        assert!(!url.message.contains("s3cret"), "{}", url.message);
        let issues = check(&stream("rtsp://door:pw@/x"), &dir).unwrap_err();
        assert!(issues.iter().any(|i| i.field == "source.url"), "{issues:?}");
        let text = stream("http://cam/video.mjpg").replace("fps = 0", "fps = 90\nwidth = 640");
        let issues = check(&text, &dir).unwrap_err();
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert!(fields.contains(&"source.fps"), "{issues:?}");
        assert!(fields.contains(&"source.width"), "{issues:?}");
        let missing = MINIMAL
            .replace("path = \"frames\"", "")
            .replace("\"folder\"", "\"stream\"");
        let issues = check(&missing, &dir).unwrap_err();
        assert!(
            issues.iter().any(|i| i.message.contains("needs `url`")),
            "{issues:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fields_of_the_wrong_source_kind_are_refused() {
        let dir = scratch("kind");
        let text = MINIMAL.replace("path = \"frames\"", "path = \"frames\"\nwidth = 640");
        let issues = check(&text, &dir).unwrap_err();
        assert_eq!(issues[0].field, "source.width");
        assert_eq!(issues[0].line, Some(8));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_model_card_that_is_missing_is_an_error() {
        let dir = scratch("model");
        let text = MINIMAL.replace("[source]", "[model]\ncard = \"nope.card.json\"\n\n[source]");
        let issues = check(&text, &dir).unwrap_err();
        assert_eq!(issues[0].field, "model.card");
        assert!(
            issues[0].message.contains("nope.card.json"),
            "{}",
            issues[0]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn device_settings_have_defaults_and_bad_values_name_their_line() {
        let dir = scratch("settings");
        let cfg = check(MINIMAL, &dir).unwrap();
        assert_eq!(cfg.decision.agreeing_frames, 2);
        assert_eq!(
            cfg.storage_dir,
            PathBuf::from(super::super::DEFAULT_STORAGE_DIR)
        );
        let text = format!(
            "{MINIMAL}\n[storage]\ndir = \"state\"\n\n[decision]\nagreeing_frames = 0\n\n\
             [matching]\ntarget_far = 0.5\n\n[quality]\nmax_yaw = 0.2\nbogus = 1\n"
        );
        let issues = check(&text, &dir).unwrap_err();
        // An unknown key is a syntax-level error: reported alone, with its line.
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].message.contains("bogus"), "{issues:?}");
        let text = text.replace("bogus = 1\n", "");
        let issues = check(&text, &dir).unwrap_err();
        let got: Vec<(Option<usize>, &str)> =
            issues.iter().map(|i| (i.line, i.field.as_str())).collect();
        // Rules on a section's values are reported at the value's own line.
        assert_eq!(
            got,
            [
                (Some(18), "decision.agreeing_frames"),
                (Some(21), "matching.target_far")
            ]
        );
        let ok = check(
            &text
                .replace("agreeing_frames = 0", "agreeing_frames = 3")
                .replace("0.5", "0.01"),
            &dir,
        )
        .unwrap();
        assert_eq!(ok.decision.agreeing_frames, 3);
        assert_eq!(ok.quality.max_yaw, 0.2);
        assert_eq!(ok.storage_dir, dir.join("state"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_bad_value_written_as_a_dotted_key_or_inline_table_names_its_line() {
        let dir = scratch("dotted");
        let lines = MINIMAL.lines().count();
        let dotted = format!(
            "{MINIMAL}\n[matching]\nocclusion.radius_sigmas = 3.0\n\
             occlusion.min_radius_cells = -1.0\nocclusion.displaced_share = 0.8\n\
             occlusion.min_filters = 3\n"
        );
        let inline = format!(
            "{MINIMAL}\n[matching]\nmax_faces = 4\nocclusion = {{ radius_sigmas = 3.0, \
             min_radius_cells = -1.0, displaced_share = 0.8, min_filters = 3 }}\n"
        );
        for text in [dotted, inline] {
            let issues = check(&text, &dir).unwrap_err();
            let got: Vec<(Option<usize>, &str)> =
                issues.iter().map(|i| (i.line, i.field.as_str())).collect();
            assert_eq!(
                got,
                [(Some(lines + 4), "matching.occlusion.min_radius_cells")],
                "{text}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn access_decisions_are_signed_by_default_and_can_be_turned_off() {
        let dir = scratch("access");
        let text = format!("{MINIMAL}\n[storage]\ndir = \"state\"\n");
        let cfg = check(&text, &dir).unwrap();
        let access = cfg.access.unwrap();
        assert_eq!(access.key_file, dir.join("state").join("access.key"));
        assert_eq!(access.valid_seconds, 5.0);
        let off = check(&format!("{text}\n[access]\nenabled = false\n"), &dir).unwrap();
        assert_eq!(off.access, None);
        let bad = format!("{text}\n[access]\nvalid_seconds = 600\n");
        let issues = check(&bad, &dir).unwrap_err();
        assert_eq!(issues[0].field, "access.valid_seconds", "{issues:?}");
        assert_eq!(issues[0].line, Some(18), "{issues:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn liveness_is_on_by_default_and_its_fields_are_checked() {
        let dir = scratch("liveness");
        let on = check(MINIMAL, &dir).unwrap().liveness.unwrap();
        assert_eq!(
            on.threshold,
            facegate_pipeline::liveness::LivenessConfig::DEFAULT_THRESHOLD
        );
        assert!(on.dir.ends_with("liveness"));
        let off = check(&format!("{MINIMAL}\n[liveness]\nenabled = false\n"), &dir).unwrap();
        assert_eq!(off.liveness, None);
        let set = check(&format!("{MINIMAL}\n[liveness]\nthreshold = 0.8\n"), &dir).unwrap();
        assert_eq!(set.liveness.unwrap().threshold, 0.8);
        for (line, field) in [
            ("threshold = 1.0", "liveness.threshold"),
            ("threshold = -0.1", "liveness.threshold"),
            ("models = \"nowhere\"", "liveness.models"),
            ("models = \" \"", "liveness.models"),
        ] {
            let issues = check(&format!("{MINIMAL}\n[liveness]\n{line}\n"), &dir).unwrap_err();
            assert_eq!(issues[0].field, field, "{line}: {issues:?}");
            assert!(issues[0].line.is_some(), "{line}: {issues:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_screen_is_a_framebuffer_or_a_png_and_wrong_fields_are_named() {
        let dir = scratch("display");
        assert_eq!(
            check(MINIMAL, &dir).unwrap().display,
            None,
            "no screen by default"
        );
        let fb = check(
            &format!("{MINIMAL}\n[display]\nkind = \"framebuffer\"\n"),
            &dir,
        )
        .unwrap();
        assert_eq!(
            fb.display.unwrap().target,
            crate::display::DisplayTarget::Framebuffer {
                device: PathBuf::from("/dev/fb0")
            }
        );
        let png = check(
            &format!("{MINIMAL}\n[display]\nkind = \"png\"\npath = \"screen.png\"\n"),
            &dir,
        )
        .unwrap();
        assert_eq!(
            png.display.unwrap().target,
            crate::display::DisplayTarget::Png {
                path: dir.join("screen.png"),
                width: 480,
                height: 320
            }
        );
        let bad = format!(
            "{MINIMAL}\n[display]\nkind = \"framebuffer\"\npath = \"x.png\"\nwidth = 100\n"
        );
        let fields: Vec<String> = check(&bad, &dir)
            .unwrap_err()
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(fields, ["display.path", "display.width"]);
        let no_path = format!("{MINIMAL}\n[display]\nkind = \"png\"\n");
        assert_eq!(check(&no_path, &dir).unwrap_err()[0].field, "display.path");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_door_relay_is_off_unless_configured_and_its_fields_are_checked() {
        let dir = scratch("door");
        assert_eq!(check(MINIMAL, &dir).unwrap().door, None);
        let gpio = check(
            &format!("{MINIMAL}\n[door]\nkind = \"gpio\"\nline = 17\nactive_low = true\n"),
            &dir,
        )
        .unwrap();
        assert_eq!(
            gpio.door,
            Some(crate::door::DoorConfig::Gpio {
                chip: PathBuf::from("/dev/gpiochip0"),
                line: 17,
                active_low: true,
                pulse_seconds: 3.0
            })
        );
        let cmd = check(
            &format!(
                "{MINIMAL}\n[door]\nkind = \"command\"\ncommand = [\"./open.sh\", \"front\"]\n"
            ),
            &dir,
        )
        .unwrap();
        assert_eq!(
            cmd.door,
            Some(crate::door::DoorConfig::Command {
                argv: vec![dir.join("./open.sh").display().to_string(), "front".into()],
                timeout_seconds: 10.0
            })
        );
        let bad = format!("{MINIMAL}\n[door]\nkind = \"gpio\"\ncommand = [\"x\"]\n");
        let fields: Vec<String> = check(&bad, &dir)
            .unwrap_err()
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(fields, ["door.line", "door.command"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tls_needs_its_files_and_a_certificate_with_its_key() {
        let dir = scratch("tls");
        std::fs::write(dir.join("ca.pem"), "x").unwrap();
        let ok = check(
            &format!("{MINIMAL}\n[mqtt.tls]\nca_file = \"ca.pem\"\n"),
            &dir,
        )
        .unwrap();
        assert_eq!(
            ok.mqtt.tls,
            Some(crate::config::Tls {
                ca_file: dir.join("ca.pem"),
                client: None
            })
        );
        let half = format!("{MINIMAL}\n[mqtt.tls]\nca_file = \"ca.pem\"\ncert_file = \"ca.pem\"\n");
        assert_eq!(check(&half, &dir).unwrap_err()[0].field, "mqtt.tls");
        let missing = format!("{MINIMAL}\n[mqtt.tls]\nca_file = \"nope.pem\"\n");
        let issues = check(&missing, &dir).unwrap_err();
        assert_eq!(issues[0].field, "mqtt.tls.ca_file");
        assert!(issues[0].message.contains("nope.pem"), "{issues:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn schedules_and_the_time_zone_are_checked() {
        let dir = scratch("schedule");
        let text = MINIMAL.replace(
            "photos = [\"face.png\"]",
            "photos = [\"face.png\"]\nschedule = [\"mon-fri 07:00-19:00\", \"weekends 10:00-12:00\"]",
        );
        let issues = check(&text, &dir).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "people[0].schedule[1]");
        assert!(issues[0].message.contains("not a day"), "{issues:?}");
        let ok = check(&text.replace("weekends", "sat,sun"), &dir).unwrap();
        assert_eq!(ok.people[0].schedule.0.len(), 2);
        let tz = MINIMAL.replace(
            "id = \"door-1\"",
            "id = \"door-1\"\ntime_zone = \"Mars/Olympus\"",
        );
        assert_eq!(check(&tz, &dir).unwrap_err()[0].field, "device.time_zone");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
