//! Validation of a parsed config: every rule, every problem, each with its line.

// `!(x > 0.0)` is meant: a NaN from the file must fail the rule too.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::raw::{RawConfig, RawPerson, RawSource, SourceKind};
use super::{Config, Identity, Issue, Mqtt, Person, PixelFormat, Source};
use facegate_contract::ModelCard;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Largest enrollment photo file listed in the config, in bytes; bigger files are almost certainly not portraits.
const MAX_PHOTO_FILE_BYTES: u64 = 20 * 1024 * 1024;

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

    fn at<T>(&mut self, value: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) {
        let line = self.line_of(&value.span());
        self.push(line, field, message);
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

fn check_source(r: &mut Report, src: &RawSource, base: &Path) -> Option<Source> {
    let kind = *src.kind.get_ref();
    let make: fn(PathBuf) -> Source = match kind {
        SourceKind::V4l2 => return check_v4l2(r, src),
        SourceKind::Folder => Source::Folder,
        SourceKind::Image => Source::Image,
        SourceKind::Mjpeg => Source::Mjpeg,
        SourceKind::Y4m => Source::Y4m,
    };
    let name = format!("{kind:?}").to_lowercase();
    let camera_only = [
        ("device", src.device.as_ref().map(Spanned::span)),
        ("format", src.format.as_ref().map(Spanned::span)),
        ("width", src.width.as_ref().map(Spanned::span)),
        ("height", src.height.as_ref().map(Spanned::span)),
        ("fps", src.fps.as_ref().map(Spanned::span)),
    ];
    for (field, span) in camera_only {
        if let Some(span) = span {
            let line = r.line_of(&span);
            let message = format!("only used by kind \"v4l2\", not {name:?}");
            r.push(line, format!("source.{field}"), message);
        }
    }
    let given = required(r, src, &src.path, "path", &name)?;
    let path = base.join(given.get_ref());
    let want_dir = kind == SourceKind::Folder;
    let ok = if want_dir {
        path.is_dir()
    } else {
        path.is_file()
    };
    if !ok {
        let what = if want_dir { "a folder" } else { "a file" };
        r.at(
            given,
            "source.path",
            format!("{} is not {what}", path.display()),
        );
    }
    Some(make(path))
}

fn check_v4l2(r: &mut Report, src: &RawSource) -> Option<Source> {
    if let Some(p) = &src.path {
        r.at(p, "source.path", "not used by kind \"v4l2\" (use `device`)");
    }
    let device = required(r, src, &src.device, "device", "v4l2")?;
    let path = PathBuf::from(device.get_ref());
    // A node that is absent now is not an error: a USB camera may enumerate after the device
    // starts, and the camera source waits for it (`facegate check-config` says it is absent).
    if !path.is_absolute() {
        r.at(
            device,
            "source.device",
            format!(
                "{:?} is not an absolute device path such as /dev/video0",
                path.display()
            ),
        );
    }
    let mut positive = |v: &Option<Spanned<u32>>, field: &str, default: u32| match v {
        Some(s) if *s.get_ref() == 0 => {
            r.at(s, format!("source.{field}"), "must be positive");
            default
        }
        Some(s) => *s.get_ref(),
        None => default,
    };
    Some(Source::V4l2 {
        device: path,
        format: src
            .format
            .as_ref()
            .map_or(PixelFormat::Mjpeg, |f| *f.get_ref()),
        width: positive(&src.width, "width", 1280),
        height: positive(&src.height, "height", 720),
        fps: positive(&src.fps, "fps", 15),
    })
}

fn check_mqtt(r: &mut Report, raw: &RawConfig, device_id: &str, base: &Path) -> Mqtt {
    let m = &raw.mqtt;
    if m.host.get_ref().trim().is_empty() {
        r.at(&m.host, "mqtt.host", "must not be empty");
    }
    if *m.port.get_ref() == 0 {
        r.at(&m.port, "mqtt.port", "expected a port in 1..=65535");
    }
    let prefix = m.prefix.get_ref();
    let bad_prefix = prefix.is_empty()
        || prefix.contains(['+', '#', '\0'])
        || prefix.split('/').any(str::is_empty);
    if bad_prefix {
        r.at(
            &m.prefix,
            "mqtt.prefix",
            format!("{prefix:?} is not a topic prefix: no wildcards (+ #), no empty levels, no leading or trailing /"),
        );
    }
    let client_id = match &m.client_id {
        Some(c) if c.get_ref().is_empty() || c.get_ref().len() > 128 => {
            r.at(c, "mqtt.client_id", "expected 1 to 128 characters");
            c.get_ref().clone()
        }
        Some(c) => c.get_ref().clone(),
        None => format!("facegate-{device_id}"),
    };
    let password = match (&m.password, &m.password_file) {
        (Some(p), Some(_)) => {
            r.at(
                p,
                "mqtt.password",
                "give `password` or `password_file`, not both",
            );
            None
        }
        (Some(p), None) => Some(p.get_ref().clone()),
        (None, Some(f)) => {
            let path = base.join(f.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_owned()),
                Err(e) => {
                    r.at(f, "mqtt.password_file", format!("{}: {e}", path.display()));
                    None
                }
            }
        }
        (None, None) => None,
    };
    let credentials = match (&m.username, password) {
        (Some(u), p) => Some((u.get_ref().clone(), p.unwrap_or_default())),
        (None, Some(_)) => {
            let at = m.password.as_ref().or(m.password_file.as_ref());
            if let Some(at) = at {
                r.at(at, "mqtt.username", "a password needs a `username`");
            }
            None
        }
        (None, None) => None,
    };
    let keep_alive_seconds = match &m.keep_alive_seconds {
        Some(k) if !(5..=3600).contains(k.get_ref()) => {
            r.at(k, "mqtt.keep_alive_seconds", "expected 5..=3600");
            30
        }
        Some(k) => *k.get_ref(),
        None => 30,
    };
    let queue_limit = match &m.queue_limit {
        Some(q) if *q.get_ref() == 0 || *q.get_ref() > 10_000_000 => {
            r.at(q, "mqtt.queue_limit", "expected 1..=10000000 events");
            10_000
        }
        Some(q) => *q.get_ref(),
        None => 10_000,
    };
    let drain_seconds = match &m.drain_seconds {
        Some(d) if !(0.0..=600.0).contains(d.get_ref()) => {
            r.at(d, "mqtt.drain_seconds", "expected 0..=600 seconds");
            5.0
        }
        Some(d) => *d.get_ref(),
        None => 5.0,
    };
    let tls = m.tls.as_ref().map(|t| {
        let file = |r: &mut Report, f: &Spanned<String>, name: &str| {
            let path = base.join(f.get_ref());
            if let Err(e) = std::fs::metadata(&path) {
                r.at(
                    f,
                    format!("mqtt.tls.{name}"),
                    format!("{}: {e}", path.display()),
                );
            }
            path
        };
        let ca_file = file(r, &t.ca_file, "ca_file");
        let client = match (&t.cert_file, &t.key_file) {
            (Some(c), Some(k)) => Some((file(r, c, "cert_file"), file(r, k, "key_file"))),
            (Some(one), None) | (None, Some(one)) => {
                r.at(
                    one,
                    "mqtt.tls",
                    "a client certificate needs both `cert_file` and `key_file`",
                );
                None
            }
            (None, None) => None,
        };
        crate::config::Tls { ca_file, client }
    });
    Mqtt {
        host: m.host.get_ref().clone(),
        port: *m.port.get_ref(),
        prefix: prefix.clone(),
        client_id,
        credentials,
        keep_alive_seconds,
        queue_limit,
        drain_seconds,
        tls,
    }
}

fn check_people(r: &mut Report, people: &[RawPerson], base: &Path) -> Vec<Person> {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(people.len());
    for (i, p) in people.iter().enumerate() {
        let id = p.id.get_ref();
        if let Some(problem) = id_problem(id) {
            r.at(&p.id, format!("people[{i}].id"), problem);
        }
        if let Some(&j) = first_seen.get(id.as_str()) {
            r.at(
                &p.id,
                format!("people[{i}].id"),
                format!("{id:?} is already used by people[{j}]"),
            );
        } else {
            first_seen.insert(id, i);
        }
        if p.name.get_ref().trim().is_empty() {
            r.at(&p.name, format!("people[{i}].name"), "must not be empty");
        }
        if p.photos.is_empty() {
            r.at(
                &p.id,
                format!("people[{i}].photos"),
                "needs at least one photo to enroll from",
            );
        }
        let photos = p
            .photos
            .iter()
            .enumerate()
            .map(|(k, photo)| {
                let path = base.join(photo.get_ref());
                if let Err(problem) = check_photo(&path) {
                    r.at(photo, format!("people[{i}].photos[{k}]"), problem);
                }
                path
            })
            .collect();
        let threshold = p.threshold.as_ref().map(|t| {
            if !(-1.0..=1.0).contains(t.get_ref()) {
                r.at(
                    t,
                    format!("people[{i}].threshold"),
                    format!("{} is not a cosine in -1..=1", t.get_ref()),
                );
            }
            *t.get_ref()
        });
        let schedule = p
            .schedule
            .as_ref()
            .map_or_else(Default::default, |windows| {
                let mut parsed = Vec::new();
                for (k, w) in windows.get_ref().iter().enumerate() {
                    match crate::schedule::Window::parse(w) {
                        Ok(w) => parsed.push(w),
                        Err(e) => r.at(windows, format!("people[{i}].schedule[{k}]"), e),
                    }
                }
                crate::schedule::Schedule(parsed)
            });
        out.push(Person {
            id: id.clone(),
            name: p.name.get_ref().clone(),
            photos,
            threshold,
            schedule,
        });
    }
    out
}

/// Reports `message` on `field` of a section at the section's line, when `bad`.
fn rule<T>(r: &mut Report, section: &Spanned<T>, bad: bool, field: &str, message: &str) {
    if bad {
        r.at(section, field, message);
    }
}

fn check_commands(r: &mut Report, raw: &RawConfig, base: &Path) -> Option<super::Commands> {
    let c = raw.commands.as_ref()?;
    if !*c.enabled.get_ref() {
        return None;
    }
    let Some(key) = &c.key_file else {
        r.at(
            &c.enabled,
            "commands.key_file",
            "enabled commands need a `key_file`",
        );
        return None;
    };
    let key_file = base.join(key.get_ref());
    if let Err(e) = crate::secret::CommandKey::load(&key_file) {
        r.at(key, "commands.key_file", e.to_string());
    }
    let max_age_seconds = match &c.max_age_seconds {
        Some(a) if !(1.0..=3600.0).contains(a.get_ref()) => {
            r.at(a, "commands.max_age_seconds", "expected 1..=3600");
            60.0
        }
        Some(a) => *a.get_ref(),
        None => 60.0,
    };
    let refusals_per_second = match &c.refusals_per_second {
        Some(a) if !(0.0..=1000.0).contains(a.get_ref()) => {
            r.at(a, "commands.refusals_per_second", "expected 0..=1000");
            5.0
        }
        Some(a) => *a.get_ref(),
        None => 5.0,
    };
    Some(super::Commands {
        key_file,
        max_age_seconds,
        refusals_per_second,
    })
}

fn check_embedder(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
    storage_dir: &Path,
) -> super::EmbedderConfig {
    use super::raw::{PrecisionKind, RuntimeKind};
    use super::{EmbedderConfig, TensorRtConfig, TrtPrecision};
    let Some(e) = &raw.embedder else {
        return EmbedderConfig::Tract;
    };
    if *e.runtime.get_ref() == RuntimeKind::Tract {
        for (field, span) in [
            ("precision", e.precision.as_ref().map(|v| v.span())),
            ("calibration", e.calibration.as_ref().map(|v| v.span())),
            ("workspace_mib", e.workspace_mib.as_ref().map(|v| v.span())),
        ] {
            if let Some(span) = span {
                let line = r.line_of(&span);
                r.push(
                    line,
                    format!("embedder.{field}"),
                    "only used by runtime \"tensorrt\"",
                );
            }
        }
        return EmbedderConfig::Tract;
    }
    let workspace_mib = match &e.workspace_mib {
        Some(w) if !(16..=65536).contains(w.get_ref()) => {
            r.at(w, "embedder.workspace_mib", "expected 16..=65536 MiB");
            256
        }
        Some(w) => *w.get_ref(),
        None => 256,
    };
    let asked = e
        .precision
        .as_ref()
        .map_or(PrecisionKind::Fp16, |p| *p.get_ref());
    let plain = |kind: PrecisionKind| match kind {
        PrecisionKind::Fp32 => TrtPrecision::Fp32,
        _ => TrtPrecision::Fp16,
    };
    let precision = match (asked, &e.calibration) {
        (PrecisionKind::Int8, Some(c)) => {
            let dir = base.join(c.get_ref());
            if !dir.is_dir() {
                r.at(
                    c,
                    "embedder.calibration",
                    format!("{} is not a folder of photos", dir.display()),
                );
            }
            TrtPrecision::Int8 { calibration: dir }
        }
        (PrecisionKind::Int8, None) => {
            if let Some(p) = &e.precision {
                r.at(
                    p,
                    "embedder.precision",
                    "\"int8\" needs `calibration`, a folder of face photos",
                );
            }
            TrtPrecision::Fp16
        }
        (other, Some(c)) => {
            r.at(
                c,
                "embedder.calibration",
                "only used with precision = \"int8\"",
            );
            plain(other)
        }
        (other, None) => plain(other),
    };
    EmbedderConfig::TensorRt(TensorRtConfig {
        precision,
        workspace_mib,
        engine_dir: storage_dir.join("engines"),
    })
}

fn check_access(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
    storage_dir: &Path,
) -> Option<super::Signing> {
    let defaults = super::Signing {
        key_file: storage_dir.join("access.key"),
        valid_seconds: 5.0,
    };
    let Some(a) = &raw.access else {
        return Some(defaults);
    };
    if a.enabled.as_ref().is_some_and(|e| !*e.get_ref()) {
        return None;
    }
    let valid_seconds = match &a.valid_seconds {
        Some(v) if !(0.5..=60.0).contains(v.get_ref()) => {
            r.at(v, "access.valid_seconds", "expected 0.5..=60 seconds");
            defaults.valid_seconds
        }
        Some(v) => *v.get_ref(),
        None => defaults.valid_seconds,
    };
    let key_file = match &a.key_file {
        Some(k) if k.get_ref().trim().is_empty() => {
            r.at(k, "access.key_file", "must not be empty");
            defaults.key_file
        }
        Some(k) => base.join(k.get_ref()),
        None => defaults.key_file,
    };
    Some(super::Signing {
        key_file,
        valid_seconds,
    })
}

/// The live score a face must reach when the config names none: measured in
/// docs/liveness.md (live faces' scores against printed photos and screens).
pub const DEFAULT_LIVENESS_THRESHOLD: f32 = 0.5;

fn check_liveness(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
) -> Option<crate::liveness::LivenessConfig> {
    let mut settings = crate::liveness::LivenessConfig {
        dir: crate::model::models_dir().join("liveness"),
        threshold: DEFAULT_LIVENESS_THRESHOLD,
    };
    let Some(l) = &raw.liveness else {
        return Some(settings);
    };
    if l.enabled.as_ref().is_some_and(|e| !*e.get_ref()) {
        return None;
    }
    if let Some(t) = &l.threshold {
        if (0.0..1.0).contains(t.get_ref()) {
            settings.threshold = *t.get_ref();
        } else {
            r.at(
                t,
                "liveness.threshold",
                "expected a live score 0..1 (below 1)",
            );
        }
    }
    if let Some(m) = &l.models {
        if m.get_ref().trim().is_empty() {
            r.at(m, "liveness.models", "must not be empty");
        } else {
            settings.dir = base.join(m.get_ref());
            if !settings.dir.join(crate::liveness::MANIFEST).is_file() {
                r.at(
                    m,
                    "liveness.models",
                    format!(
                        "expected a folder with {} ({} has none)",
                        crate::liveness::MANIFEST,
                        settings.dir.display()
                    ),
                );
            }
        }
    }
    Some(settings)
}

fn check_display(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
) -> Option<crate::display::DisplayConfig> {
    use super::raw::DisplayKind;
    use crate::display::{DisplayConfig, DisplayTarget};
    let d = raw.display.as_ref()?;
    let kind = *d.kind.get_ref();
    let misplaced = |r: &mut Report, field: &Option<Spanned<_>>, name: &str, kinds: &str| {
        if let Some(f) = field {
            r.at(
                f,
                format!("display.{name}"),
                format!("only for kind = {kinds}"),
            );
        }
    };
    let hold_seconds = match &d.hold_seconds {
        Some(h) if !(0.5..=60.0).contains(h.get_ref()) => {
            r.at(h, "display.hold_seconds", "expected 0.5..=60 seconds");
            4.0
        }
        Some(h) => *h.get_ref(),
        None => 4.0,
    };
    let target = match kind {
        DisplayKind::Framebuffer => {
            misplaced(r, &d.path, "path", "\"png\"");
            let size = |f: &Option<Spanned<u32>>, name: &str, r: &mut Report| {
                if let Some(f) = f {
                    r.at(
                        f,
                        format!("display.{name}"),
                        "a framebuffer's size is read from the kernel; only for kind = \"png\"",
                    );
                }
            };
            size(&d.width, "width", r);
            size(&d.height, "height", r);
            let device = d
                .device
                .as_ref()
                .map_or_else(|| PathBuf::from("/dev/fb0"), |p| PathBuf::from(p.get_ref()));
            DisplayTarget::Framebuffer { device }
        }
        DisplayKind::Png => {
            misplaced(r, &d.device, "device", "\"framebuffer\"");
            let Some(path) = &d.path else {
                r.at(&d.kind, "display.path", "kind = \"png\" needs a `path`");
                return None;
            };
            let dim = |f: &Option<Spanned<u32>>, name: &str, default: u32, r: &mut Report| match f {
                Some(v) if !(64..=4096).contains(v.get_ref()) => {
                    r.at(v, format!("display.{name}"), "expected 64..=4096 pixels");
                    default
                }
                Some(v) => *v.get_ref(),
                None => default,
            };
            DisplayTarget::Png {
                path: base.join(path.get_ref()),
                width: dim(&d.width, "width", 480, r),
                height: dim(&d.height, "height", 320, r),
            }
        }
    };
    Some(DisplayConfig {
        target,
        hold_seconds,
    })
}

fn check_door(r: &mut Report, raw: &RawConfig, base: &Path) -> Option<crate::door::DoorConfig> {
    use super::raw::DoorKind;
    use crate::door::DoorConfig;
    let d = raw.door.as_ref()?;
    let kind = *d.kind.get_ref();
    let only = |r: &mut Report, span: Option<std::ops::Range<usize>>, name: &str, kinds: &str| {
        if let Some(span) = span {
            let line = r.line_of(&span);
            r.push(
                line,
                format!("door.{name}"),
                format!("only for kind = {kinds}"),
            );
        }
    };
    let gpio_fields = [
        (d.chip.as_ref().map(Spanned::span), "chip"),
        (d.line.as_ref().map(Spanned::span), "line"),
        (d.active_low.as_ref().map(Spanned::span), "active_low"),
        (d.pulse_seconds.as_ref().map(Spanned::span), "pulse_seconds"),
    ];
    let command_fields = [
        (d.command.as_ref().map(Spanned::span), "command"),
        (
            d.timeout_seconds.as_ref().map(Spanned::span),
            "timeout_seconds",
        ),
    ];
    let seconds = |r: &mut Report, v: &Option<Spanned<f64>>, name: &str, default: f64| match v {
        Some(s) if !(0.1..=600.0).contains(s.get_ref()) => {
            r.at(s, format!("door.{name}"), "expected 0.1..=600 seconds");
            default
        }
        Some(s) => *s.get_ref(),
        None => default,
    };
    match kind {
        DoorKind::Off => {
            for (span, name) in gpio_fields.into_iter().chain(command_fields) {
                only(r, span, name, "\"gpio\" or \"command\"");
            }
            None
        }
        DoorKind::Gpio => {
            for (span, name) in command_fields {
                only(r, span, name, "\"command\"");
            }
            let Some(line) = &d.line else {
                r.at(
                    &d.kind,
                    "door.line",
                    "kind = \"gpio\" needs the `line` offset",
                );
                return None;
            };
            Some(DoorConfig::Gpio {
                chip: d.chip.as_ref().map_or_else(
                    || PathBuf::from("/dev/gpiochip0"),
                    |c| PathBuf::from(c.get_ref()),
                ),
                line: *line.get_ref(),
                active_low: d.active_low.as_ref().is_some_and(|a| *a.get_ref()),
                pulse_seconds: seconds(r, &d.pulse_seconds, "pulse_seconds", 3.0),
            })
        }
        DoorKind::Command => {
            for (span, name) in gpio_fields {
                only(r, span, name, "\"gpio\"");
            }
            let Some(cmd) = &d.command else {
                r.at(
                    &d.kind,
                    "door.command",
                    "kind = \"command\" needs `command = [program, args...]`",
                );
                return None;
            };
            let mut argv = cmd.get_ref().clone();
            match argv.first_mut() {
                None => {
                    r.at(
                        cmd,
                        "door.command",
                        "expected [program, args...], found an empty list",
                    );
                    return None;
                }
                // A program given as a relative path is relative to the config's folder.
                Some(p) if p.contains('/') && !p.starts_with('/') => {
                    *p = base.join(&*p).display().to_string();
                }
                Some(_) => {}
            }
            Some(DoorConfig::Command {
                argv,
                timeout_seconds: seconds(r, &d.timeout_seconds, "timeout_seconds", 10.0),
            })
        }
    }
}

fn check_detection(r: &mut Report, raw: &RawConfig) -> super::Detection {
    let Some(d) = &raw.detection else {
        return super::Detection::default();
    };
    let v = d.get_ref();
    rule(
        r,
        d,
        !(12.0..=4096.0).contains(&v.min_face),
        "detection.min_face",
        "expected 12..=4096 pixels",
    );
    rule(
        r,
        d,
        !(0.0..=1.0).contains(&v.min_score),
        "detection.min_score",
        "expected a probability in 0..=1",
    );
    *v
}

fn check_matching(r: &mut Report, raw: &RawConfig) -> super::Matching {
    let Some(m) = &raw.matching else {
        return super::Matching::default();
    };
    let v = m.get_ref();
    let far_ok = v.target_far > 0.0 && v.target_far <= 0.1;
    rule(
        r,
        m,
        !far_ok,
        "matching.target_far",
        "expected a false accept rate in (0, 0.1]",
    );
    rule(
        r,
        m,
        v.max_faces == 0 || v.max_faces > 32,
        "matching.max_faces",
        "expected 1..=32",
    );
    let o = &v.occlusion;
    rule(
        r,
        m,
        !(o.radius_sigmas > 0.0),
        "matching.occlusion.radius_sigmas",
        "must be positive",
    );
    rule(
        r,
        m,
        !(o.min_radius_cells >= 0.0),
        "matching.occlusion.min_radius_cells",
        "must not be negative",
    );
    let share_ok = o.displaced_share > 0.0 && o.displaced_share <= 1.0;
    rule(
        r,
        m,
        !share_ok,
        "matching.occlusion.displaced_share",
        "expected a share in (0, 1]",
    );
    *v
}

fn check_quality(r: &mut Report, raw: &RawConfig) -> crate::quality::QualityRules {
    let Some(q) = &raw.quality else {
        return Default::default();
    };
    let v = q.get_ref();
    rule(
        r,
        q,
        !(v.min_eye_distance >= 0.0),
        "quality.min_eye_distance",
        "must not be negative",
    );
    rule(
        r,
        q,
        !(v.max_yaw > 0.0),
        "quality.max_yaw",
        "must be positive",
    );
    rule(
        r,
        q,
        !(v.pitch_range.0 < v.pitch_range.1),
        "quality.pitch_range",
        "expected [low, high] with low < high",
    );
    rule(
        r,
        q,
        !(v.max_roll_degrees > 0.0 && v.max_roll_degrees <= 90.0),
        "quality.max_roll_degrees",
        "expected (0, 90]",
    );
    rule(
        r,
        q,
        !(v.min_sharpness >= 0.0),
        "quality.min_sharpness",
        "must not be negative",
    );
    *v
}

fn check_decision(r: &mut Report, raw: &RawConfig) -> crate::decide::DecideRules {
    let Some(d) = &raw.decision else {
        return Default::default();
    };
    let v = d.get_ref();
    rule(
        r,
        d,
        v.agreeing_frames == 0,
        "decision.agreeing_frames",
        "must be at least 1",
    );
    rule(
        r,
        d,
        !(0.0..0.5).contains(&v.uncertain_margin),
        "decision.uncertain_margin",
        "expected [0, 0.5)",
    );
    rule(
        r,
        d,
        !(v.cooldown_seconds >= 0.0),
        "decision.cooldown_seconds",
        "must not be negative",
    );
    rule(
        r,
        d,
        !(v.track_overlap > 0.0 && v.track_overlap <= 1.0),
        "decision.track_overlap",
        "expected (0, 1]",
    );
    *v
}

/// A photo must exist, be of sane size and decode with a real codec.
fn check_photo(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() > MAX_PHOTO_FILE_BYTES {
        return Err(format!(
            "{} is {} bytes; photos over {MAX_PHOTO_FILE_BYTES} bytes are refused",
            path.display(),
            meta.len()
        ));
    }
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("{}: {e}", path.display()))?
        .decode()
        .map(|_| ())
        .map_err(|e| format!("{} does not decode as an image: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn device_settings_have_defaults_and_bad_values_name_their_section() {
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
        // Rules on a section's values are reported at the section's header line.
        assert_eq!(
            got,
            [
                (Some(17), "decision.agreeing_frames"),
                (Some(20), "matching.target_far")
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
        assert_eq!(on.threshold, DEFAULT_LIVENESS_THRESHOLD);
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
