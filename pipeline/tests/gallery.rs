//! The gallery on a real SQLite file: sealed templates, atomic replacement, removal, key rules.
#![allow(clippy::unwrap_used)]

use facegate_pipeline::gallery::seal::SealError;
use facegate_pipeline::gallery::{Gallery, GalleryError, NewTemplate, PersonRecord, PhotoVerdict};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facegate-gallery-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn person(id: &str) -> PersonRecord {
    PersonRecord {
        id: id.into(),
        name: format!("{id} name"),
        threshold: None,
        origin: "config".into(),
        enrolled_at: "2026-11-29T00:00:00Z".into(),
        schedule: Vec::new(),
    }
}

fn template(photo: &str, seed: f32) -> NewTemplate {
    let mut feature: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
    facegate_contract::similarity::normalize(&mut feature);
    NewTemplate {
        photo: photo.into(),
        feature,
    }
}

fn accepted(photo: &str) -> PhotoVerdict {
    PhotoVerdict {
        photo: photo.into(),
        verdict: "accepted".into(),
        detail: String::new(),
    }
}

#[test]
fn templates_are_sealed_at_rest_and_open_with_the_key() {
    let dir = scratch("sealed");
    let (db, key) = (dir.join("g.sqlite"), dir.join("g.key"));
    let t = template("ann.jpg", 1.0);
    {
        let mut g = Gallery::open(&db, &key).unwrap();
        g.replace_person(
            &person("ann"),
            "m1",
            std::slice::from_ref(&t),
            &[accepted("ann.jpg")],
        )
        .unwrap();
    }
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);
    // The raw database holds no plaintext feature bytes.
    let raw = [
        std::fs::read(&db).unwrap(),
        std::fs::read(dir.join("g.sqlite-wal")).unwrap_or_default(),
    ]
    .concat();
    let plain: Vec<u8> = t.feature.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(!raw.windows(8).any(|w| w == &plain[..8]));
    // Reopened with the same key: the same feature, only for the model that made it.
    let g = Gallery::open(&db, &key).unwrap();
    let got = g.templates("m1").unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].feature, t.feature);
    assert!(g.templates("another-model").unwrap().is_empty());
    // Another key cannot open them (no key is made for a gallery with templates: this one is
    // put there by hand).
    let other = dir.join("other.key");
    std::fs::write(&other, [9u8; 32]).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let g = Gallery::open(&db, &other).unwrap();
    assert!(matches!(
        g.templates("m1"),
        Err(GalleryError::Seal(SealError::Open { .. }))
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn replacing_a_person_is_all_or_nothing_and_removal_leaves_no_trace() {
    let dir = scratch("replace");
    let mut g = Gallery::open(&dir.join("g.sqlite"), &dir.join("g.key")).unwrap();
    g.replace_person(
        &person("ann"),
        "m1",
        &[template("a1.jpg", 1.0), template("a2.jpg", 2.0)],
        &[accepted("a1.jpg"), accepted("a2.jpg")],
    )
    .unwrap();
    g.replace_person(
        &person("bob"),
        "m1",
        &[template("b1.jpg", 3.0)],
        &[accepted("b1.jpg")],
    )
    .unwrap();
    // Re-enrolling ann replaces both her templates with one.
    g.replace_person(
        &person("ann"),
        "m1",
        &[template("a3.jpg", 4.0)],
        &[accepted("a3.jpg")],
    )
    .unwrap();
    let all = g.templates("m1").unwrap();
    let photos: Vec<&str> = all.iter().map(|t| t.photo.as_str()).collect();
    assert_eq!(photos, ["a3.jpg", "b1.jpg"]);
    let summaries = g.summaries("m1").unwrap();
    assert_eq!(
        summaries[0].photos.len(),
        1,
        "old verdicts went with the old enrollment"
    );

    assert!(g.remove_person("ann").unwrap());
    assert!(!g.remove_person("ann").unwrap());
    assert_eq!(g.person_ids().unwrap(), ["bob"]);
    assert_eq!(g.templates("m1").unwrap().len(), 1);
    assert!(
        g.summaries("m1")
            .unwrap()
            .iter()
            .all(|s| s.person.id == "bob")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_key_others_can_read_or_of_the_wrong_size_is_refused() {
    let dir = scratch("key");
    let key = dir.join("g.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Gallery::open(&dir.join("g.sqlite"), &key).unwrap_err();
    assert!(err.to_string().contains("0600"), "{err}");
    std::fs::write(&key, [7u8; 10]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = Gallery::open(&dir.join("g.sqlite"), &key).unwrap_err();
    assert!(err.to_string().contains("exactly 32 bytes"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_removed_key_is_never_made_again_while_templates_are_sealed_with_it() {
    let dir = scratch("key-removed");
    let (db, key) = (dir.join("g.sqlite"), dir.join("g.key"));
    let mut g = Gallery::open(&db, &key).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600, "the database is private");
    g.replace_person(&person("ann"), "m1", &[template("a.jpg", 1.0)], &[])
        .unwrap();
    drop(g);
    std::fs::remove_file(&key).unwrap();
    let err = Gallery::open(&db, &key).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("1 template(s) sealed"), "{text}");
    assert!(text.contains("delete"), "says how to start over: {text}");
    assert!(!key.exists(), "no new key was made");
    // An empty gallery may get its first key.
    let fresh = dir.join("fresh.sqlite");
    Gallery::open(&fresh, &dir.join("fresh.key")).unwrap();
    std::fs::remove_file(dir.join("fresh.key")).unwrap();
    Gallery::open(&fresh, &dir.join("fresh.key")).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_template_moved_to_another_person_does_not_open() {
    let dir = scratch("moved");
    let db = dir.join("g.sqlite");
    let mut g = Gallery::open(&db, &dir.join("g.key")).unwrap();
    g.replace_person(&person("ann"), "m1", &[template("a.jpg", 1.0)], &[])
        .unwrap();
    g.replace_person(&person("bob"), "m1", &[template("b.jpg", 2.0)], &[])
        .unwrap();
    drop(g);
    // An attacker with write access swaps ann's sealed template onto bob's row.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE templates SET sealed = (SELECT sealed FROM templates WHERE person_id = 'ann'),
         nonce = (SELECT nonce FROM templates WHERE person_id = 'ann') WHERE person_id = 'bob'",
        [],
    )
    .unwrap();
    drop(conn);
    let g = Gallery::open(&db, &dir.join("g.key")).unwrap();
    let err = g.templates("m1").unwrap_err();
    assert!(err.to_string().contains("bob"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn schedules_are_stored_and_a_version_1_gallery_is_upgraded_in_place() {
    let dir = scratch("schema-v1");
    let db = dir.join("gallery.db");
    {
        // A gallery as version 1 wrote it: people without a schedule column.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT NOT NULL, threshold REAL,
                 origin TEXT NOT NULL, enrolled_at TEXT NOT NULL);
             INSERT INTO people VALUES ('ada', 'Ada', NULL, 'command', '2026-01-01T00:00:00Z');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let mut g = Gallery::open(&db, &dir.join("gallery.key")).unwrap();
    let ada = g.person("ada").unwrap().unwrap();
    assert_eq!(ada.name, "Ada");
    assert!(
        ada.schedule.is_empty(),
        "an upgraded person may come any time"
    );
    let mut grace = person("grace");
    grace.schedule = vec!["mon,tue 07:00-19:00".into(), "sat 10:00-12:00".into()];
    g.replace_person(&grace, "m", &[template("a.jpg", 0.1)], &[accepted("a.jpg")])
        .unwrap();
    drop(g);
    let g = Gallery::open(&db, &dir.join("gallery.key")).unwrap();
    assert_eq!(g.person("grace").unwrap().unwrap().schedule, grace.schedule);
    assert!(g.person("ada").unwrap().unwrap().schedule.is_empty());
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, facegate_pipeline::gallery::SCHEMA_VERSION);
    std::fs::remove_dir_all(dir).unwrap();
}
