//! The device pipeline end to end on real photos, the shipped default model and the real
//! detector: enrollment verdicts, events from a folder of frames (with a corrupt one), the
//! decision across frames, and `explain`'s heat map.
#![allow(clippy::unwrap_used)]

use facegate::config::{self, Config};
use facegate_pipeline::decide::Access;
use facegate_pipeline::event::{Event, Outcome};
use facegate_pipeline::gallery::Gallery;
use facegate_pipeline::model::Models;
use facegate_pipeline::sink::{PublishError, Sink};
use facegate_pipeline::source::open::open;
use facegate_pipeline::wiring::sync_config;
use facegate_pipeline::wiring::{self, Pipeline};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facegate-device-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("frames")).unwrap();
    dir
}

/// Events and heat maps kept in memory, each event checked to round-trip through JSON.
#[derive(Default)]
struct Collect(Vec<(Event, Option<Vec<u8>>, serde_json::Value)>);

impl Sink for Collect {
    fn publish(&mut self, event: &Event, heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        let json = serde_json::to_value(event).unwrap();
        let back: Event = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, event);
        self.0
            .push((event.clone(), heatmap.map(<[u8]>::to_vec), json));
        Ok(())
    }
}

fn write_config(dir: &Path, people: &str, agreeing: u32) -> Config {
    let demo = repo().join("config/demo");
    let text = format!(
        r#"
[device]
id = "test-door"
[source]
kind = "folder"
path = "frames"
[storage]
dir = "state"
[detection]
min_face = 80  # the demo faces are over 200 px: no pyramid levels below that (tests run faster, qemu most)
[decision]
agreeing_frames = {agreeing}
{people}
"#
    )
    .replace("DEMO", &demo.display().to_string());
    std::fs::write(dir.join("facegate.toml"), text).unwrap();
    config::load(&dir.join("facegate.toml")).unwrap()
}

fn models() -> Models {
    Models::load(
        None,
        facegate::config::Detection::default().detector(),
        &facegate::config::EmbedderConfig::Tract,
        None,
    )
    .unwrap()
}

fn gallery(cfg: &Config) -> Gallery {
    std::fs::create_dir_all(&cfg.storage_dir).unwrap();
    Gallery::open(
        &cfg.storage_dir.join("gallery.sqlite"),
        &cfg.storage_dir.join("gallery.key"),
    )
    .unwrap()
}

/// A config in `dir` enrolling Obama from one demo photo, its models and matcher.
fn obama_enrolled_from(
    dir: &Path,
    photo: &str,
) -> (Config, Models, facegate_pipeline::matching::Matcher) {
    let people = format!(
        "[[people]]\nid = \"obama\"\nname = \"Barack Obama\"\nphotos = [\"DEMO/{photo}\"]\n"
    );
    let cfg = write_config(dir, &people, 2);
    let m = models();
    let mut g = gallery(&cfg);
    sync_config(&m, &cfg.pipeline(), &mut g, "2026-11-29T00:00:00Z").unwrap();
    let matcher = wiring::matcher(&m, &g, &cfg.pipeline()).unwrap();
    (cfg, m, matcher)
}

#[test]
fn enrollment_gives_every_photo_a_verdict() {
    let dir = scratch("enroll");
    // A photo without a face: a smooth gradient.
    image::RgbImage::from_fn(200, 160, |x, y| image::Rgb([x as u8, y as u8, 128]))
        .save(dir.join("wall.png"))
        .unwrap();
    const OBAMA: &str = "[[people]]\nid = \"obama\"\nname = \"Barack Obama\"\n";
    let both = format!(
        "{OBAMA}photos = [\"DEMO/enroll/obama.jpg\", \"wall.png\"]\n\
         [[people]]\nid = \"biden\"\nname = \"Joe Biden\"\nphotos = [\"DEMO/enroll/biden.jpg\"]\n"
    );
    let cfg = write_config(&dir, &both, 2);
    let m = models();
    let mut g = gallery(&cfg);
    let out = sync_config(&m, &cfg.pipeline(), &mut g, "2026-11-29T00:00:00Z").unwrap();
    let verdicts: Vec<(&str, Vec<&str>)> = out
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.photos.iter().map(|v| v.verdict.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("obama", vec!["accepted", "no_face"]),
            ("biden", vec!["accepted"])
        ]
    );
    assert_eq!(g.templates(&m.card.model_id).unwrap().len(), 2);

    // Biden leaves the config: he leaves the gallery on the next start.
    let cfg = write_config(
        &dir,
        &format!("{OBAMA}photos = [\"DEMO/enroll/obama.jpg\"]\n"),
        2,
    );
    sync_config(&m, &cfg.pipeline(), &mut g, "2026-11-29T00:00:01Z").unwrap();
    assert_eq!(g.person_ids().unwrap(), ["obama"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_folder_of_frames_becomes_events_and_one_grant_per_visit() {
    let dir = scratch("run");
    let demo = repo().join("config/demo");
    // The enrolled photo itself, three times (one visit), a corrupt frame, then a stranger.
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        std::fs::copy(
            demo.join("originals/obama2.jpg"),
            dir.join(format!("frames/{i:02}{name}.jpg")),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("frames/03-corrupt.jpg"),
        b"\xff\xd8\xff\xe0 truncated",
    )
    .unwrap();
    for i in 4..20 {
        // A long gap of faceless frames ends the first track.
        image::RgbImage::from_fn(200, 160, |x, y| image::Rgb([x as u8, y as u8, 90]))
            .save(dir.join(format!("frames/{i:02}-empty.png")))
            .unwrap();
    }
    std::fs::copy(
        demo.join("enroll/biden.jpg"),
        dir.join("frames/20-stranger.jpg"),
    )
    .unwrap();
    let (cfg, m, matcher) = obama_enrolled_from(&dir, "originals/obama2.jpg");
    let mut p = Pipeline::new(&m, cfg.pipeline(), matcher);
    let source = open(&cfg.source).unwrap();
    let mut sink = Collect::default();
    let go = std::sync::atomic::AtomicBool::new(false);
    let stats = wiring::run(
        &mut p,
        source.frames,
        source.live,
        &mut sink,
        &mut |_| Ok(()),
        &go,
    )
    .unwrap();
    assert_eq!(
        stats.bad_frames, 1,
        "the corrupt frame is skipped, not fatal"
    );
    assert_eq!(stats.frames, 20);
    assert_eq!(stats.grants, 1);

    let events: Vec<&Event> = sink.0.iter().map(|(e, _, _)| e).collect();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let grants: Vec<&&Event> = events
        .iter()
        .filter(|e| matches!(e.access, Some(Access::Grant { .. })))
        .collect();
    assert_eq!(grants.len(), 1);
    let g0 = grants[0];
    assert_eq!(g0.result, Outcome::Match);
    assert_eq!(g0.person.as_ref().unwrap().id, "obama");
    assert_eq!(
        g0.person.as_ref().unwrap().name.as_deref(),
        Some("Barack Obama")
    );
    assert_eq!(g0.agreeing_frames, 2);
    let scores = g0.scores.as_ref().unwrap();
    assert!(scores.score >= scores.threshold && scores.full > 0.999);
    assert_eq!(g0.regions.len(), 6);
    assert!(g0.face.as_ref().unwrap().quality.problems.is_empty());
    assert!(g0.latency_ms.embed > 0.0 && g0.latency_ms.detect > 0.0);
    // The stranger is refused, once, and not named.
    let stranger: Vec<&&Event> = events
        .iter()
        .filter(|e| e.frame.origin.ends_with("20-stranger.jpg"))
        .collect();
    assert_eq!(stranger.len(), 1);
    assert_eq!(stranger[0].result, Outcome::Unknown);
    assert!(stranger[0].person.is_none());
    assert!(matches!(&stranger[0].access, Some(Access::Deny { reason }) if reason == "unknown"));
    // Tracks end; every live event carries its heat map, a real PNG.
    let brief: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {:?} {}",
                e.id, e.lifecycle, e.result, e.frame.origin
            )
        })
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.lifecycle == facegate_pipeline::decide::Lifecycle::End)
            .count(),
        2,
        "{brief:#?}"
    );
    for (e, heat, json) in &sink.0 {
        assert!(json.get("embedding").is_none() && json.get("feature").is_none());
        let known = matches!(e.result, Outcome::Match | Outcome::Uncertain);
        if e.face.is_some() && known {
            let png = image::load_from_memory(heat.as_ref().unwrap()).unwrap();
            assert_eq!(png.width(), facegate_pipeline::heatmap::SIDE);
        } else {
            // A stranger's face (drawn under the heat map) stays on the device by default.
            assert!(
                heat.is_none(),
                "{:?} {:?} has a heat map",
                e.lifecycle,
                e.result
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn explain_names_the_candidate_and_draws_the_heat_map() {
    let dir = scratch("explain");
    let (cfg, m, matcher) = obama_enrolled_from(&dir, "enroll/obama.jpg");
    let photo = repo().join("config/demo/enroll/obama.jpg");
    let e =
        facegate_pipeline::wiring::explain::explain_photo(&m, &cfg.pipeline(), &matcher, &photo)
            .unwrap();
    assert_eq!(e.summary.faces.len(), 1);
    let f = &e.summary.faces[0];
    assert_eq!(
        f.result,
        Outcome::Match,
        "the enrolled photo matches itself"
    );
    assert_eq!(f.candidate.as_ref().unwrap().id, "obama");
    assert!(
        f.regions
            .iter()
            .any(|r| r.verdict == facegate_pipeline::matching::RegionVerdict::Support)
    );
    let png = image::load_from_memory(&e.heatmap.unwrap()).unwrap();
    assert_eq!(png.width(), 192);

    // A corrupt photo is an error naming the file.
    let bad = dir.join("bad.jpg");
    std::fs::write(&bad, b"not an image").unwrap();
    let err =
        facegate_pipeline::wiring::explain::explain_photo(&m, &cfg.pipeline(), &matcher, &bad)
            .unwrap_err();
    assert!(err.to_string().contains("bad.jpg"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bench_measures_every_target() {
    let dir = scratch("bench");
    write_config(
        &dir,
        "[[people]]\nid = \"obama\"\nname = \"Barack Obama\"\nphotos = [\"DEMO/enroll/obama.jpg\"]\n",
        2,
    );
    let mut device = facegate::device::Device::open(&dir.join("facegate.toml")).unwrap();
    device.enroll().unwrap();
    let opts = facegate::bench::BenchOptions {
        photo: repo().join("config/demo/enroll/obama.jpg"),
        runs: 3,
        templates: 1000,
        frames: 2,
        python: None,
    };
    let rows = facegate::bench::run(&mut device, &opts).unwrap();
    let what: Vec<&str> = rows.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(rows.len(), 8, "{what:?}");
    assert!(what[1].contains("its own Elu and TopK"), "{what:?}");
    assert!(what[2].contains("2 threads, tract's size gate"), "{what:?}");
    assert!(
        what[3].contains("2 threads, every product split"),
        "{what:?}"
    );
    assert!(what[4].starts_with("liveness of one face"), "{what:?}");
    assert!(
        what[5].starts_with("1:N search over 1000 templates"),
        "{what:?}"
    );
    assert!(rows.iter().all(|r| !r.value.contains("NaN")));
    std::fs::remove_dir_all(dir).unwrap();
}

/// One frame from `photo` through a fresh pipeline; the face's event.
fn see(
    cfg: &Config,
    m: &Models,
    matcher: facegate_pipeline::matching::Matcher,
    photo: &str,
) -> Event {
    let mut p = Pipeline::new(m, cfg.pipeline(), matcher);
    let mut got = Collect::default();
    p.process(&frame(photo), &mut got).unwrap();
    got.0.remove(0).0
}

/// A demo photo as a frame.
fn frame(photo: &str) -> facegate_pipeline::source::Frame {
    facegate_pipeline::source::Frame {
        seq: 0,
        time: std::time::SystemTime::now(),
        origin: photo.into(),
        image: image::open(repo().join("config/demo").join(photo))
            .unwrap()
            .to_rgb8(),
    }
}

/// Sends `{"event": event, field: person}` as a `feedback` command; the response.
fn tell(
    p: &mut Pipeline,
    m: &Models,
    cfg: &Config,
    g: &mut Gallery,
    event: &str,
    field: &str,
    person: &str,
) -> serde_json::Value {
    let command = facegate::command::Command {
        transaction: "t".into(),
        action: "feedback".into(),
        request: serde_json::json!({ "event": event, field: person }),
    };
    let mut cfg = cfg.clone();
    let mut ctx = facegate::command::Context {
        models: m,
        cfg: &mut cfg,
        config_file: None,
        gallery: g,
        pipeline: p,
    };
    facegate::command::run(&command, &mut ctx, &mut |_: &serde_json::Value| {}).response
}

#[test]
fn feedback_teaches_a_new_look_and_refuses_a_wrong_match_from_then_on() {
    // "This is Obama": another photo of him, refused at first, recognised after feedback.
    let dir = scratch("feedback-is");
    let (cfg, m, matcher) = obama_enrolled_from(&dir, "enroll/obama.jpg");
    let mut g = gallery(&cfg);
    let mut p = Pipeline::new(&m, cfg.pipeline(), matcher.clone());
    let photo = "frames/01-obama-another-photo.jpg";
    let mut got = Collect::default();
    p.process(&frame(photo), &mut got).unwrap();
    let first = &got.0[0].0;
    assert_eq!(first.result, Outcome::Unknown);
    let answer = tell(&mut p, &m, &cfg, &mut g, &first.id, "is", "obama");
    assert_eq!(answer["ok"], true, "{answer}");
    let again = see(&cfg, &m, p.matcher().clone(), photo);
    assert_eq!(again.result, Outcome::Match, "{:?}", again.scores);

    // Unknown events and ids that are not the event's match are refused.
    let answer = tell(&mut p, &m, &cfg, &mut g, "no-such-event", "is", "obama");
    assert_eq!(answer["ok"], false);
    std::fs::remove_dir_all(dir).unwrap();

    // "Not this person": a match is corrected, and the same face no longer passes.
    let dir = scratch("feedback-is-not");
    let (cfg, m, matcher) = obama_enrolled_from(&dir, "enroll/obama.jpg");
    let mut g = gallery(&cfg);
    let mut p = Pipeline::new(&m, cfg.pipeline(), matcher);
    let photo = "frames/02-obama-enrolled-photo.jpg";
    let mut got = Collect::default();
    p.process(&frame(photo), &mut got).unwrap();
    let matched = &got.0[0].0;
    assert_eq!(matched.result, Outcome::Match);
    let wrong = tell(&mut p, &m, &cfg, &mut g, &matched.id, "is_not", "biden");
    assert_eq!(wrong["ok"], false, "the event did not match biden: {wrong}");
    let answer = tell(&mut p, &m, &cfg, &mut g, &matched.id, "is_not", "obama");
    assert_eq!(answer["ok"], true, "{answer}");
    let again = see(&cfg, &m, p.matcher().clone(), photo);
    assert_ne!(again.result, Outcome::Match, "{:?}", again.scores);
    // The correction outlives re-enrollment from the config, and goes with the person.
    sync_config(&m, &cfg.pipeline(), &mut g, "2026-11-29T00:00:02Z").unwrap();
    assert_eq!(g.feedback_floors(&m.card.model_id).unwrap().len(), 1);
    g.remove_person("obama").unwrap();
    assert!(g.feedback_floors(&m.card.model_id).unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A camera that never ends: the same photo again and again; asks to stop after `after` frames.
struct Endless {
    frame: facegate_pipeline::source::Frame,
    served: u64,
    after: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl facegate_pipeline::source::FrameSource for Endless {
    fn next_frame(
        &mut self,
    ) -> Result<Option<facegate_pipeline::source::Frame>, facegate_pipeline::source::SourceError>
    {
        if self.served == self.after {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut f = self.frame.clone();
        f.seq = self.served;
        self.served += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
        Ok(Some(f))
    }
}

#[test]
fn a_stop_request_ends_an_endless_source_cleanly() {
    let dir = scratch("stop");
    let (cfg, m, matcher) = obama_enrolled_from(&dir, "enroll/obama.jpg");
    for live in [false, true] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = Endless {
            frame: frame("frames/02-obama-enrolled-photo.jpg"),
            served: 0,
            after: 3,
            stop: std::sync::Arc::clone(&stop),
        };
        let mut p = Pipeline::new(&m, cfg.pipeline(), matcher.clone());
        let mut sink = Collect::default();
        let stats = wiring::run(
            &mut p,
            Box::new(source),
            live,
            &mut sink,
            &mut |_| Ok(()),
            &stop,
        )
        .unwrap();
        assert!(
            (1..=4).contains(&stats.frames),
            "live {live}: {} frames after a stop at the 4th",
            stats.frames
        );
        let last = &sink.0.last().unwrap().0;
        assert_eq!(
            last.lifecycle,
            facegate_pipeline::decide::Lifecycle::End,
            "open tracks end"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_face_the_liveness_check_refuses_is_never_let_in() {
    // The same frames twice: with the shipped threshold Obama's photo (taken of him, by a
    // camera) is live and let in; with a threshold above its score it is a presentation attack.
    for (threshold, let_in) in [(None, true), (Some(0.999_999f32), false)] {
        let dir = scratch(&format!("liveness-{let_in}"));
        let mut people = "[[people]]\nid = \"obama\"\nname = \"Barack Obama\"\n\
                          photos = [\"DEMO/enroll/obama.jpg\"]\n"
            .to_owned();
        if let Some(t) = threshold {
            people.push_str(&format!("[liveness]\nthreshold = {t}\n"));
        }
        let cfg = write_config(&dir, &people, 2);
        let live_cfg = cfg.liveness.as_ref().expect("liveness is on by default");
        assert_eq!(live_cfg.threshold, threshold.unwrap_or(0.5));
        let m = Models::load(
            None,
            cfg.detection.detector(),
            &cfg.embedder,
            cfg.liveness.as_ref(),
        )
        .unwrap();
        let mut g = gallery(&cfg);
        sync_config(&m, &cfg.pipeline(), &mut g, "2026-11-29T00:00:00Z").unwrap();
        let matcher = wiring::matcher(&m, &g, &cfg.pipeline()).unwrap();
        let mut p = Pipeline::new(&m, cfg.pipeline(), matcher);
        let mut got = Collect::default();
        for seq in 0..4 {
            let f = facegate_pipeline::source::Frame {
                seq,
                ..frame("enroll/obama.jpg")
            };
            p.process(&f, &mut got).unwrap();
        }
        let events: Vec<&Event> = got.0.iter().map(|(e, _, _)| e).collect();
        let grants = events
            .iter()
            .filter(|e| matches!(e.access, Some(Access::Grant { .. })))
            .count();
        let attacks: Vec<&&Event> = events
            .iter()
            .filter(|e| {
                matches!(&e.access, Some(Access::Deny { reason }) if reason == "presentation_attack")
            })
            .collect();
        // Every event about a face carries the score and the threshold it was held to.
        for e in events.iter().filter(|e| e.face.is_some()) {
            let live = e.face.as_ref().unwrap().liveness.unwrap();
            assert_eq!(live.threshold, live_cfg.threshold);
            assert_eq!(live.score >= live.threshold, let_in, "{live:?}");
            assert!(e.latency_ms.liveness > 0.0);
        }
        if let_in {
            assert_eq!((grants, attacks.len()), (1, 0), "{events:#?}");
        } else {
            assert_eq!((grants, attacks.len()), (0, 1), "{events:#?}");
            assert_eq!(attacks[0].result, Outcome::Spoof);
            assert!(events.iter().all(|e| e.result != Outcome::Match));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_person_is_let_in_only_within_their_schedule() {
    use jiff::civil::Weekday;
    let today = jiff::Zoned::now().weekday();
    let other = match today {
        Weekday::Monday => "tue",
        _ => "mon",
    };
    for (window, granted) in [
        ("daily 00:00-24:00", true),
        (&*format!("{other} 00:00-24:00"), false),
    ] {
        let dir = scratch(&format!("schedule-{granted}"));
        let people = format!(
            "[[people]]\nid = \"obama\"\nname = \"Barack Obama\"\nphotos = [\"DEMO/enroll/obama.jpg\"]\n\
             schedule = [\"{window}\"]\n"
        );
        let cfg = write_config(&dir, &people, 2);
        let m = models();
        let mut g = gallery(&cfg);
        sync_config(&m, &cfg.pipeline(), &mut g, "2026-11-29T00:00:00Z").unwrap();
        let matcher = wiring::matcher(&m, &g, &cfg.pipeline()).unwrap();
        assert_eq!(matcher.index().people()[0].schedule.texts().len(), 1);
        let mut p = Pipeline::new(&m, cfg.pipeline(), matcher);
        let mut got = Collect::default();
        for seq in 0..3 {
            let f = facegate_pipeline::source::Frame {
                seq,
                ..frame("enroll/obama.jpg")
            };
            p.process(&f, &mut got).unwrap();
        }
        let access: Vec<&Access> = got
            .0
            .iter()
            .filter_map(|(e, _, _)| e.access.as_ref())
            .collect();
        let grants = access
            .iter()
            .filter(|a| matches!(a, Access::Grant { .. }))
            .count();
        let outside = access
            .iter()
            .filter(|a| matches!(a, Access::Deny { reason } if reason == "outside_schedule"))
            .count();
        assert_eq!(
            (grants > 0, outside > 0),
            (granted, !granted),
            "{window}: {access:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn int8_calibration_sees_each_photos_face_as_the_door_would() {
    let m = models();
    let dir = repo().join("config/demo/enroll");
    let faces = facegate_pipeline::model::calibration_faces(&dir, &m.detector, &m.aligner).unwrap();
    let per_face = (3 * m.card.input.width * m.card.input.height) as usize;
    let photos = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(faces.len() % per_face, 0);
    assert_eq!(faces.len() / per_face, photos, "one face per demo portrait");
    // The first face is exactly what alignment gives for that photo at the door.
    let mut first: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    first.sort();
    let image = facegate_pipeline::source::files::read_image(&first[0]).unwrap();
    let found = m.detector.detect(&image).unwrap();
    let aligned = m.aligner.align(&image, &found[0].landmarks).unwrap();
    assert_eq!(&faces[..per_face], &aligned.input.data[..]);
    // A folder without faces is refused, naming it.
    let empty = scratch("calibration-empty");
    std::fs::write(empty.join("notes.txt"), "no photo").unwrap();
    let err = facegate_pipeline::model::calibration_faces(&empty, &m.detector, &m.aligner)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no photo with a face") && err.contains("calibration-empty"),
        "{err}"
    );
    std::fs::remove_dir_all(empty).unwrap();
}

#[cfg(not(feature = "tensorrt"))]
#[test]
fn asking_for_tensorrt_in_a_build_without_it_says_how_to_get_it() {
    let settings = facegate::config::TensorRtConfig {
        precision: facegate::config::TrtPrecision::Fp16,
        workspace_mib: 256,
        engine_dir: scratch("engines"),
    };
    let err = Models::load(
        None,
        facegate::config::Detection::default().detector(),
        &facegate::config::EmbedderConfig::TensorRt(settings),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--features tensorrt"), "{err}");
}

#[test]
fn bad_frames_are_skipped_and_counted_never_fatal() {
    let dir = scratch("bad-frames");
    let demo = repo().join("config/demo");
    let frames = dir.join("frames");
    std::fs::copy(
        demo.join("originals/obama2.jpg"),
        frames.join("00-good.jpg"),
    )
    .unwrap();
    // Too small for the detector (a side under 40 px).
    image::RgbImage::new(30, 20)
        .save(frames.join("01-tiny.png"))
        .unwrap();
    // Over the pixel limit: refused from its header, before its pixels are allocated.
    image::GrayImage::new(5000, 5000)
        .save(frames.join("02-huge.png"))
        .unwrap();
    std::fs::write(frames.join("03-garbage.jpg"), b"not an image at all").unwrap();
    std::fs::copy(
        demo.join("originals/obama2.jpg"),
        frames.join("04-vanishes.jpg"),
    )
    .unwrap();
    std::fs::copy(
        demo.join("originals/obama2.jpg"),
        frames.join("05-good.jpg"),
    )
    .unwrap();
    let (cfg, m, matcher) = obama_enrolled_from(&dir, "originals/obama2.jpg");
    let source = open(&cfg.source).unwrap();
    // Deleted after the folder was listed, before it is read.
    std::fs::remove_file(frames.join("04-vanishes.jpg")).unwrap();
    let mut p = Pipeline::new(&m, cfg.pipeline(), matcher);
    let mut sink = Collect::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stats = wiring::run(
        &mut p,
        source.frames,
        source.live,
        &mut sink,
        &mut |_| Ok(()),
        &stop,
    )
    .unwrap();
    assert_eq!(stats.bad_frames, 4, "{stats:?}");
    assert_eq!(stats.frames, 2, "both good frames processed: {stats:?}");
    assert!(
        sink.0.iter().any(|(e, _, _)| e.result == Outcome::Match),
        "the good frames still decide"
    );
    let err =
        facegate_pipeline::source::files::read_image(&frames.join("02-huge.png")).unwrap_err();
    assert!(
        err.to_string()
            .contains("over the limit of 16777216 pixels"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_stale_enrollment_folder_is_removed_and_a_loose_threshold_refused_at_start() {
    let dir = scratch("start");
    let people = "[[people]]\nid = \"obama\"\nname = \"Barack Obama\"\n\
                  photos = [\"DEMO/originals/obama2.jpg\"]\n";
    let cfg = write_config(&dir, people, 2);
    // What a device killed in the middle of an MQTT enrollment leaves behind.
    let stale = cfg.storage_dir.join(".enroll-eve-4242");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("photo-1"), b"raw face photo").unwrap();
    let mut device = facegate::device::Device::from_config(cfg.clone()).unwrap();
    assert!(stale.exists(), "only the folder's holder clears it");
    device.hold_storage().unwrap();
    assert!(
        !stale.exists(),
        "the interrupted enrollment's photos are gone"
    );
    // A second device on the same folder (two doors' configs naming it) is refused.
    let mut second = facegate::device::Device::from_config(cfg.clone()).unwrap();
    let refused = second.hold_storage().unwrap_err().to_string();
    assert!(
        refused.contains("in use by another running facegate"),
        "{refused}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cfg.storage_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the state folder is private");
    drop(device);
    // A per-person threshold below the card's operating point would let more strangers in.
    let loose = format!("{people}threshold = 0.2\n");
    let cfg = write_config(&dir, &loose, 2);
    let err = facegate::device::Device::from_config(cfg).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("people[0].threshold = 0.2 is looser"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
