//! The gallery: enrolled people, their templates and the verdict on every enrollment photo.
//!
//! Pipeline position: written by enrollment (config on start and reload, `facegate enroll`,
//! MQTT enroll commands), read once into the *match* stage's index. Stored in SQLite: each
//! person is replaced in one transaction, so a power cut leaves either the old or the new
//! enrollment, never half of one. Templates are sealed ([`seal`]) with a key kept outside the
//! database. Removing a person deletes every row about them (with `secure_delete`, the freed
//! pages are overwritten too).

pub mod seal;

use rusqlite::{Connection, OptionalExtension, params};
use seal::{Seal, SealError, Sealed};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why the gallery could not be opened, read or changed.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// SQLite refused.
    #[error("gallery {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The key file or a sealed template.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The database was written by a newer facegate.
    #[error("gallery {path}: schema version {found} is newer than this build's {SCHEMA_VERSION}")]
    Schema {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: i64,
    },
}

impl GalleryError {
    /// Whether the disk was full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Db { source, .. } => crate::sqlite::is_disk_full(source),
            _ => false,
        }
    }
}

/// The schema this build reads and writes (2: people have a schedule).
pub const SCHEMA_VERSION: i64 = 2;

/// Between a person's windows in the `schedule` column (a window never contains it).
const SCHEDULE_SEPARATOR: &str = "; ";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    threshold REAL,
    origin TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    schedule TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    photo TEXT NOT NULL,
    model_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_person ON templates(person_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    person_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('is', 'is_not')),
    model_id TEXT NOT NULL,
    floor REAL,
    nonce BLOB,
    sealed BLOB,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_person ON feedback(person_id);
CREATE TABLE IF NOT EXISTS verdicts (
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    photo TEXT NOT NULL,
    verdict TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (person_id, photo)
);
";

fn insert_verdicts(
    tx: &rusqlite::Transaction,
    person_id: &str,
    verdicts: &[PhotoVerdict],
) -> rusqlite::Result<()> {
    for v in verdicts {
        tx.execute(
            "INSERT OR REPLACE INTO verdicts (person_id, photo, verdict, detail)
             VALUES (?1, ?2, ?3, ?4)",
            params![person_id, v.photo, v.verdict, v.detail],
        )?;
    }
    Ok(())
}

/// A person as enrolled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRecord {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Per-person threshold, if set.
    pub threshold: Option<f32>,
    /// Who enrolled them: `config` (kept in step with the config file) or `command`.
    pub origin: String,
    /// When the enrollment was written (RFC 3339).
    pub enrolled_at: String,
    /// Weekly windows when they may come in (`mon-fri 07:00-19:00`); empty: any time.
    pub schedule: Vec<String>,
}

/// What became of one enrollment photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhotoVerdict {
    /// The photo, as the config names it.
    pub photo: String,
    /// `accepted` or the reason it was rejected (`no_face`, `several_faces`, ...).
    pub verdict: String,
    /// Human-readable details.
    pub detail: String,
}

/// One template ready to be stored: the photo it came from and its unit feature.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    /// The photo, as the config names it.
    pub photo: String,
    /// Unit-length feature.
    pub feature: Vec<f32>,
}

/// One stored template, opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Whose it is.
    pub person_id: String,
    /// The photo it came from.
    pub photo: String,
    /// Unit-length feature.
    pub feature: Vec<f32>,
}

/// A person with counts, for `gallery list` and the device state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonSummary {
    /// The person.
    #[serde(flatten)]
    pub person: PersonRecord,
    /// Templates stored for the model in use.
    pub templates: usize,
    /// Every photo's verdict.
    pub photos: Vec<PhotoVerdict>,
}

/// The open gallery.
#[derive(Debug)]
pub struct Gallery {
    conn: Connection,
    seal: Seal,
    path: PathBuf,
}

impl Gallery {
    /// Opens (or creates) the gallery database at `db` (private to the device's user) with the
    /// key file at `key`. A missing key is made only while no template is sealed: otherwise
    /// the templates could never be opened again, and the error says so.
    pub fn open(db: &Path, key: &Path) -> Result<Self, GalleryError> {
        let err = |source| GalleryError::Db {
            path: db.to_owned(),
            source,
        };
        let conn = crate::sqlite::open(db).map_err(err)?;
        let has_templates: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'templates')",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let sealed: i64 = if has_templates {
            conn.query_row("SELECT count(*) FROM templates", [], |r| r.get(0))
                .map_err(err)?
        } else {
            0
        };
        let creation = if sealed == 0 {
            crate::secret::Creation::Allowed
        } else {
            crate::secret::Creation::Refused {
                depends: format!("{} holds {sealed} template(s) sealed with it", db.display()),
                rotate: format!(
                    "Restore the key from a backup; or, to start over on purpose, delete {} too \
                     and enroll everyone again (facegate enroll CONFIG).",
                    db.display()
                ),
            }
        };
        let seal = Seal::open_or_create(key, creation)?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;")
            .map_err(err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(GalleryError::Schema {
                path: db.to_owned(),
                found: version,
            });
        }
        // Version 1 galleries gain the schedule column (everyone: any time), in one transaction.
        let upgrade = if version == 1 {
            "ALTER TABLE people ADD COLUMN schedule TEXT NOT NULL DEFAULT '';"
        } else {
            ""
        };
        // Written only when the schema changes: an open writes nothing, so a device whose disk
        // is full still starts with the people it has.
        if version < SCHEMA_VERSION {
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} {upgrade} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(err)?;
        }
        Ok(Self {
            conn,
            seal,
            path: db.to_owned(),
        })
    }

    fn db(&self, source: rusqlite::Error) -> GalleryError {
        GalleryError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Replaces everything stored about `person` with this enrollment, atomically.
    pub fn replace_person(
        &mut self,
        person: &PersonRecord,
        model_id: &str,
        templates: &[NewTemplate],
        verdicts: &[PhotoVerdict],
    ) -> Result<(), GalleryError> {
        let sealed = templates
            .iter()
            .map(|t| self.seal.seal(&t.feature, &person.id, model_id, &t.photo))
            .collect::<Result<Vec<_>, _>>()?;
        let path = self.path.clone();
        let err = |source| GalleryError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM people WHERE id = ?1", params![person.id])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO people (id, name, threshold, origin, enrolled_at, schedule)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                person.id,
                person.name,
                person.threshold,
                person.origin,
                person.enrolled_at,
                person.schedule.join(SCHEDULE_SEPARATOR)
            ],
        )
        .map_err(err)?;
        for (t, s) in templates.iter().zip(&sealed) {
            tx.execute(
                "INSERT INTO templates (person_id, photo, model_id, nonce, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![person.id, t.photo, model_id, s.nonce, s.data],
            )
            .map_err(err)?;
        }
        insert_verdicts(&tx, &person.id, verdicts).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Records new verdicts for `person_id`'s photos without touching their templates (an
    /// enrollment where no photo was accepted keeps the previous one).
    pub fn record_verdicts(
        &mut self,
        person_id: &str,
        verdicts: &[PhotoVerdict],
    ) -> Result<(), GalleryError> {
        let path = self.path.clone();
        let err = |source| GalleryError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        insert_verdicts(&tx, person_id, verdicts).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Removes every trace of a person (templates, verdicts, feedback); returns whether they
    /// were enrolled.
    pub fn remove_person(&mut self, id: &str) -> Result<bool, GalleryError> {
        let path = self.path.clone();
        let err = |source| GalleryError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM feedback WHERE person_id = ?1", params![id])
            .map_err(err)?;
        let n = tx
            .execute("DELETE FROM people WHERE id = ?1", params![id])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n > 0)
    }

    /// Records "the face of `event_id` is `person_id`": its feature becomes one more template
    /// of theirs (sealed like the others). Feedback outlives re-enrollment from the config; it
    /// goes with the person.
    pub fn add_feedback_is(
        &mut self,
        person_id: &str,
        event_id: &str,
        model_id: &str,
        feature: &[f32],
        now: &str,
    ) -> Result<(), GalleryError> {
        let photo = format!("feedback:{event_id}");
        let sealed = self.seal.seal(feature, person_id, model_id, &photo)?;
        self.conn
            .execute(
                "INSERT INTO feedback (person_id, event_id, kind, model_id, nonce, sealed, created_at)
                 VALUES (?1, ?2, 'is', ?3, ?4, ?5, ?6)",
                params![person_id, event_id, model_id, sealed.nonce, sealed.data, now],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Records "the face of `event_id` is not `person_id`": their threshold (for `model_id`)
    /// is raised to at least `floor`.
    pub fn add_feedback_is_not(
        &mut self,
        person_id: &str,
        event_id: &str,
        model_id: &str,
        floor: f32,
        now: &str,
    ) -> Result<(), GalleryError> {
        self.conn
            .execute(
                "INSERT INTO feedback (person_id, event_id, kind, model_id, floor, created_at)
                 VALUES (?1, ?2, 'is_not', ?3, ?4, ?5)",
                params![person_id, event_id, model_id, floor, now],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Per person, the highest threshold floor "not this person" feedback set for `model_id`.
    pub fn feedback_floors(&self, model_id: &str) -> Result<Vec<(String, f32)>, GalleryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT person_id, MAX(floor) FROM feedback
                 WHERE kind = 'is_not' AND model_id = ?1 GROUP BY person_id ORDER BY person_id",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map(params![model_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.db(e))
    }

    /// The ids of everyone enrolled.
    pub fn person_ids(&self) -> Result<Vec<String>, GalleryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM people ORDER BY id")
            .map_err(|e| self.db(e))?;
        let ids = stmt
            .query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| self.db(e))?;
        Ok(ids)
    }

    /// One person, if enrolled.
    pub fn person(&self, id: &str) -> Result<Option<PersonRecord>, GalleryError> {
        self.conn
            .query_row(
                "SELECT id, name, threshold, origin, enrolled_at, schedule FROM people
                 WHERE id = ?1",
                params![id],
                |r| {
                    let schedule: String = r.get(5)?;
                    Ok(PersonRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        threshold: r.get(2)?,
                        origin: r.get(3)?,
                        enrolled_at: r.get(4)?,
                        schedule: schedule
                            .split(SCHEDULE_SEPARATOR)
                            .filter(|w| !w.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    })
                },
            )
            .optional()
            .map_err(|e| self.db(e))
    }

    /// Everyone, with their template count for `model_id` and every photo's verdict.
    pub fn summaries(&self, model_id: &str) -> Result<Vec<PersonSummary>, GalleryError> {
        let mut out = Vec::new();
        for id in self.person_ids()? {
            let Some(person) = self.person(&id)? else {
                continue;
            };
            let templates: i64 = self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM templates WHERE person_id = ?1 AND model_id = ?2",
                    params![id, model_id],
                    |r| r.get(0),
                )
                .map_err(|e| self.db(e))?;
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT photo, verdict, detail FROM verdicts WHERE person_id = ?1
                     ORDER BY photo",
                )
                .map_err(|e| self.db(e))?;
            let photos = stmt
                .query_map(params![id], |r| {
                    Ok(PhotoVerdict {
                        photo: r.get(0)?,
                        verdict: r.get(1)?,
                        detail: r.get(2)?,
                    })
                })
                .and_then(Iterator::collect)
                .map_err(|e| self.db(e))?;
            out.push(PersonSummary {
                person,
                templates: templates as usize,
                photos,
            });
        }
        Ok(out)
    }

    /// Every template made by `model_id`, opened, with those "this is X" feedback added.
    /// Templates of other models are skipped: a feature is only comparable with features of
    /// the model that made it.
    pub fn templates(&self, model_id: &str) -> Result<Vec<Template>, GalleryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT person_id, photo, nonce, sealed FROM templates WHERE model_id = ?1
                 UNION ALL
                 SELECT f.person_id, 'feedback:' || f.event_id, f.nonce, f.sealed
                 FROM feedback f JOIN people p ON p.id = f.person_id
                 WHERE f.kind = 'is' AND f.model_id = ?1
                 ORDER BY 1",
            )
            .map_err(|e| self.db(e))?;
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = stmt
            .query_map(params![model_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.db(e))?;
        rows.into_iter()
            .map(|(person_id, photo, nonce, data)| {
                let feature =
                    self.seal
                        .open(&Sealed { nonce, data }, &person_id, model_id, &photo)?;
                Ok(Template {
                    person_id,
                    photo,
                    feature,
                })
            })
            .collect()
    }
}
