//! The `enroll` command: a technician's app sends a person's photos over MQTT instead of
//! editing the config. Beside the pipeline, like config enrollment, and judged by the same
//! rules (one clear face, good quality, unoccluded, nobody else's); the verdicts go back on
//! `.../enroll/progress` and in the response.
//!
//! A request may carry the person's weekly `schedule` (as in the config); it is stored with
//! them in the gallery. People enrolled this way are the command's: a reload of the config leaves them alone, and a
//! person the config lists cannot be overwritten by command (the config would undo it). The
//! photos are written to a private folder under the storage folder only while they are being
//! analysed, and deleted whatever the outcome.

use crate::config::{Config, Person};
use base64::Engine;
use facegate_pipeline::enrollment::{Origin, PersonEnrollment, enroll};
use facegate_pipeline::gallery::Gallery;
use facegate_pipeline::model::Models;
use std::path::{Path, PathBuf};

/// Most photos one request may carry.
pub const MAX_PHOTOS: usize = 10;
/// Largest photo accepted in an `enroll` request, decoded bytes (the request itself is limited
/// to [`crate::publish::mqtt::MAX_ENROLL_REQUEST`]).
pub const MAX_SENT_PHOTO_BYTES: usize = 4 * 1024 * 1024;

/// What an `enroll` request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Stable id.
    pub person: String,
    /// Display name.
    pub name: String,
    /// Base64 photo files.
    pub photos: Vec<String>,
    /// Per-person threshold.
    pub threshold: Option<f32>,
    /// Weekly windows when they may come in; empty: any time.
    pub schedule: Vec<String>,
}

/// Removes the scratch folder whatever happens.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(
                "could not delete enrollment photos in {}: {e}",
                self.0.display()
            );
        }
    }
}

fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Checks the request, enrolls the person from its photos, returns the verdicts.
pub fn run(
    models: &Models,
    cfg: &Config,
    gallery: &mut Gallery,
    request: &Request,
    alive: &mut dyn FnMut(),
) -> Result<PersonEnrollment, String> {
    if let Some(problem) = crate::config::id_problem(&request.person) {
        return Err(format!("person: {problem}"));
    }
    if request.name.trim().is_empty() {
        return Err("name: must not be empty".into());
    }
    if request.photos.is_empty() || request.photos.len() > MAX_PHOTOS {
        return Err(format!(
            "photos: expected 1 to {MAX_PHOTOS}, got {}",
            request.photos.len()
        ));
    }
    let operating =
        facegate_pipeline::matching::Thresholds::from_card(&models.card, cfg.matching.target_far)
            .map_or(1.0, |t| t.full);
    if let Some(t) = request.threshold {
        if !(-1.0..=1.0).contains(&t) {
            return Err(format!("threshold: expected a cosine in -1..=1, got {t}"));
        }
        if t < operating {
            return Err(format!(
                "threshold: {t} is looser than the model's operating threshold {operating:.4} \
                 (false accept rate {}); a person's threshold may only be stricter",
                cfg.matching.target_far
            ));
        }
    }
    let schedule = facegate_pipeline::schedule::Schedule::parse_all(&request.schedule)
        .map_err(|(i, message)| format!("schedule[{i}]: {message}"))?;
    if cfg.people.iter().any(|p| p.id == request.person)
        || gallery
            .person(&request.person)
            .map_err(|e| e.to_string())?
            .is_some_and(|p| p.origin == "config")
    {
        return Err(format!(
            "person {:?} is enrolled from the config: change the config instead",
            request.person
        ));
    }
    let mut decoded = Vec::new();
    for (i, b64) in request.photos.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("photos[{i}]: not base64: {e}"))?;
        if bytes.len() > MAX_SENT_PHOTO_BYTES {
            return Err(format!(
                "photos[{i}]: {} bytes, over the limit of {MAX_SENT_PHOTO_BYTES}",
                bytes.len()
            ));
        }
        decoded.push(bytes);
    }
    let dir = cfg
        .storage_dir
        .join(format!(".enroll-{}-{}", request.person, std::process::id()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let scratch = Scratch(dir);
    let mut paths = Vec::new();
    for (i, bytes) in decoded.iter().enumerate() {
        paths.push(write_private(
            &scratch.0,
            &format!("photo-{}", i + 1),
            bytes,
        )?);
    }
    let person = Person {
        id: request.person.clone(),
        name: request.name.clone(),
        photos: paths,
        threshold: request.threshold,
        schedule,
    };
    let duplicate = operating;
    // The scratch paths mean nothing to anyone: photos are named by their place in the request.
    let label = |path: &Path| {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let index = name
            .strip_prefix("photo-")
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n.saturating_sub(1));
        format!("photos[{index}]")
    };
    let settings = cfg.pipeline();
    let mut enrolled = enroll(
        models,
        settings.limits(),
        &cfg.matching.occlusion,
        gallery,
        std::slice::from_ref(&person),
        Origin::Command { label: &label },
        duplicate,
        &facegate_pipeline::event::now(),
        alive,
    )
    .map_err(|e| e.to_string())?;
    drop(scratch);
    let enrolled = enrolled
        .pop()
        .ok_or_else(|| "nothing enrolled".to_owned())?;
    if enrolled.templates == 0 {
        let verdicts: Vec<String> = enrolled
            .photos
            .iter()
            .map(|p| {
                format!("{}: {} {}", p.photo, p.verdict, p.detail)
                    .trim_end()
                    .to_owned()
            })
            .collect();
        let kept = if enrolled.kept_previous {
            "the previous enrollment is kept"
        } else {
            "nothing was stored"
        };
        return Err(format!(
            "no photo was accepted ({}); {kept}",
            verdicts.join("; ")
        ));
    }
    Ok(enrolled)
}
