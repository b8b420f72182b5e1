//! `[[people]]`: who is enrolled, from which photos, with which schedule.

use super::{Report, id_problem};
use crate::config::Person;
use crate::config::raw::RawPerson;
use std::collections::HashMap;
use std::path::Path;

/// Largest enrollment photo file listed in the config, in bytes; bigger files are almost
/// certainly not portraits.
const MAX_PHOTO_FILE_BYTES: u64 = 20 * 1024 * 1024;

pub(super) fn check_people(r: &mut Report, people: &[RawPerson], base: &Path) -> Vec<Person> {
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
                    match facegate_pipeline::schedule::Window::parse(w) {
                        Ok(w) => parsed.push(w),
                        Err(e) => r.at(windows, format!("people[{i}].schedule[{k}]"), e),
                    }
                }
                facegate_pipeline::schedule::Schedule(parsed)
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

/// A photo must exist, be of sane size and decode with a real codec.
pub(super) fn check_photo(path: &Path) -> Result<(), String> {
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
