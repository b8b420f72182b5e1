//! The config's people into the gallery: everyone listed enrolled (verdict per photo), and the
//! people an earlier config enrolled and this one no longer lists erased. Beside the run loop:
//! the device calls it at start and on `reload`.

use super::Settings;
use crate::enrollment::{Origin, PersonEnrollment, enroll};
use crate::gallery::{Gallery, GalleryError};
use crate::matching::Thresholds;
use crate::model::Models;

/// Brings the gallery in step with the config: enrolls everyone it lists and removes the people
/// an earlier config enrolled and this one no longer lists (people enrolled by command stay).
pub fn sync_config(
    models: &Models,
    cfg: &Settings,
    gallery: &mut Gallery,
    now: &str,
) -> Result<Vec<PersonEnrollment>, GalleryError> {
    sync_config_alive(models, cfg, gallery, now, &mut || {})
}

/// [`sync_config`], calling `alive` after each photo (see [`enroll`]).
pub fn sync_config_alive(
    models: &Models,
    cfg: &Settings,
    gallery: &mut Gallery,
    now: &str,
    alive: &mut dyn FnMut(),
) -> Result<Vec<PersonEnrollment>, GalleryError> {
    let duplicate =
        Thresholds::from_card(&models.card, cfg.matching.target_far).map_or(1.0, |t| t.full);
    let enrolled = enroll(
        models,
        cfg.limits(),
        &cfg.matching.occlusion,
        gallery,
        &cfg.people,
        Origin::Config,
        duplicate,
        now,
        alive,
    )?;
    for id in gallery.person_ids()? {
        let listed = cfg.people.iter().any(|p| p.id == id);
        let from_config = gallery.person(&id)?.is_some_and(|p| p.origin == "config");
        if !listed && from_config {
            gallery.remove_person(&id)?;
            tracing::info!("removed {id}: no longer in the config");
        }
    }
    Ok(enrolled)
}
