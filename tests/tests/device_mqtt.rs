//! The device against a real Mosquitto broker: enrollment from a config, the pipeline on image
//! files, events / heat maps / state received over MQTT and checked field by field, the
//! retained topics a late subscriber sees, and a broker outage in the middle of a run that
//! loses nothing.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use base64::Engine;
use facegate::device::Device;
use facegate::publish::access::{AccessVerifier, Verdict};
use facegate::service::Supervisor;
use facegate_e2e::{Broker, Received, Recorder, frame, leave, repo, unique};
use facegate_pipeline::wiring::Pipeline;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

const LIMIT: Duration = Duration::from_secs(20);

/// A device folder mirroring recognitions to Frigate under the test's own topics.
fn device_dir(broker: &Broker, id: &str, frames: &[&str]) -> PathBuf {
    let frigate = format!(
        "[frigate]\nenabled = true\ntopic = \"facegate-test/{id}/frigate/tracked_object_update\""
    );
    facegate_e2e::device_dir(broker, id, frames, &frigate)
}

fn on<'a>(got: &'a [Received], topic: &str) -> Vec<&'a Received> {
    got.iter().filter(|m| m.topic == topic).collect()
}

/// Unix seconds of the last message received.
fn last_time(got: &[Received]) -> f64 {
    got.iter()
        .map(|m| {
            m.at.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn json(m: &Received) -> Value {
    serde_json::from_slice(&m.payload).unwrap()
}

/// What a Home Assistant event entity declared by `component` fires for `events`: its
/// `value_template` rendered with `value_json` (Jinja, as Home Assistant renders it); an empty
/// rendering fires nothing, anything else must be a JSON object naming one of its
/// `event_types`.
fn fired(component: &Value, events: &[Value]) -> Vec<Value> {
    let template = component["value_template"].as_str().unwrap();
    let types = component["event_types"].as_array().unwrap();
    let env = minijinja::Environment::new();
    let template = env.template_from_str(template).unwrap();
    events
        .iter()
        .filter_map(|e| {
            let out = template
                .render(minijinja::context! { value_json => e })
                .unwrap();
            (!out.trim().is_empty()).then(|| {
                let fired: Value = serde_json::from_str(&out).unwrap();
                assert!(
                    types.contains(&fired["event_type"]),
                    "{fired} not in {types:?}"
                );
                fired
            })
        })
        .collect()
}

#[test]
fn events_heat_maps_and_state_reach_the_broker() {
    let broker = Broker::shared();
    let id = unique("door");
    let base = format!("facegate-test/{id}");
    let dir = device_dir(
        &broker,
        &id,
        &[
            "originals/obama2.jpg",
            "originals/obama2.jpg",
            "enroll/biden.jpg",
        ],
    );
    let rec = Recorder::start(&broker, &format!("{base}/#"));
    let ha = Recorder::start(&broker, &format!("homeassistant/device/{id}/config"));
    let mut device = Device::open(&dir.join("facegate.toml")).unwrap();
    // systemd's side of the run: the notify socket, and a watchdog short enough that every
    // frame pings it.
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_nonblocking(true).unwrap();
    device.supervise_with(Supervisor::new(
        Some(notify_path),
        Some(Duration::from_millis(2)),
    ));
    let enrolled = device.enroll().unwrap();
    assert_eq!(enrolled[0].photos[0].verdict, "accepted");
    let out = device.run(&mut []).unwrap();
    assert_eq!(out.undelivered, 0);
    let mut told = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = notify.recv(&mut buf) {
        told.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        told[0].starts_with("READY=1\nSTATUS=watching; enrolled people: 1"),
        "{told:?}"
    );
    assert!(told.iter().any(|m| m == "WATCHDOG=1\n"), "{told:?}");
    assert!(told.last().unwrap().starts_with("STOPPING=1\n"), "{told:?}");
    let events_topic = format!("{base}/events");
    let got = rec.wait_until(LIMIT, |got| {
        on(got, &format!("{base}/availability"))
            .iter()
            .any(|m| m.payload == b"offline")
    });

    // Availability: online first, offline on a clean exit.
    let avail: Vec<&[u8]> = on(&got, &format!("{base}/availability"))
        .iter()
        .map(|m| m.payload.as_slice())
        .collect();
    let flags: Vec<bool> = on(&got, &format!("{base}/availability"))
        .iter()
        .map(|m| m.retain)
        .collect();
    assert_eq!(
        avail,
        [&b"online"[..], &b"offline"[..]],
        "retain flags {flags:?}, subscribed {}",
        rec.subscriptions()
    );
    // State: the model and the gallery.
    let state = json(on(&got, &format!("{base}/state"))[0]);
    // The shipped default model, as its card names it.
    let card: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../models/default/facegate.card.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(state["model_id"], card["model_id"]);
    assert_eq!(state["people"], 1);
    assert_eq!(state["templates"], 1);

    // Events: in order, never retained, no embedding, the documented fields.
    let events: Vec<Value> = on(&got, &events_topic)
        .iter()
        .map(|m| {
            assert!(!m.retain, "an event arrived retained");
            json(m)
        })
        .collect();
    assert_eq!(events.len() as u64, out.stats.events, "{events:#?}");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    for e in &events {
        for field in [
            "schema",
            "id",
            "seq",
            "time",
            "type",
            "device",
            "frame",
            "result",
            "occluded",
            "regions",
            "agreeing_frames",
            "model_id",
            "latency_ms",
        ] {
            assert!(e.get(field).is_some(), "event lacks {field}: {e}");
        }
        assert_eq!(e["device"], id.as_str());
        let text = e.to_string();
        assert!(!text.contains("embedding") && !text.contains("feature"));
    }
    let grant = events
        .iter()
        .find(|e| e["access"]["decision"] == "grant")
        .unwrap();
    assert_eq!(grant["result"], "match");
    assert_eq!(grant["person"]["id"], "obama");
    assert_eq!(grant["person"]["name"], "Barack Obama");
    assert!(
        grant["scores"]["score"].as_f64().unwrap()
            >= grant["scores"]["threshold"].as_f64().unwrap()
    );
    assert_eq!(grant["regions"].as_array().unwrap().len(), 6);
    let stranger = events
        .iter()
        .find(|e| e["frame"]["origin"].as_str().unwrap().ends_with("002.jpg"))
        .unwrap();
    assert_eq!(stranger["result"], "unknown");
    assert!(stranger.get("person").is_none());
    assert_eq!(stranger["access"]["reason"], "unknown");
    // Heat maps: real PNGs of the explanation.
    let heat = on(&got, &format!("{base}/image/heatmap"));
    let known = events
        .iter()
        .filter(|e| e["result"] == "match" || e["result"] == "uncertain")
        .count();
    // The recognised face's only: a stranger's face never leaves the device by default.
    assert!(
        !heat.is_empty() && heat.len() <= known,
        "{} heat maps",
        heat.len()
    );
    let png = image::load_from_memory(&heat[0].payload).unwrap();
    assert_eq!(png.width(), 192);

    // Access: one signed decision per event that took one, never retained, each verified as a
    // door controller would: with the key pinned from the state (and the `.pub` file), fresh
    // when it arrived, sequence increasing.
    let key = state["access_key"].as_str().unwrap();
    let pinned = std::fs::read_to_string(dir.join("state/access.pub")).unwrap();
    assert_eq!(pinned.trim(), key);
    let mut door = AccessVerifier::new(key, &id).unwrap();
    let access = on(&got, &format!("{base}/access"));
    let taken: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("access").is_some())
        .collect();
    assert_eq!(access.len(), taken.len(), "one access message per decision");
    for (m, e) in access.iter().zip(&taken) {
        assert!(!m.retain, "an access decision arrived retained");
        let at =
            m.at.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
        let d = door.check(&m.payload, at).unwrap();
        assert_eq!(d.event_id, e["id"].as_str().unwrap());
        assert!((4.9..=5.1).contains(&(d.expires_at - d.issued_at)), "{d:?}");
        match d.decision {
            Verdict::Grant => assert_eq!(d.person.unwrap().id, "obama"),
            Verdict::Deny => assert_eq!(d.reason.as_deref(), Some("unknown")),
        }
        // The same message again is a replay.
        assert!(door.check(&m.payload, at).is_err());
    }
    assert!(access.len() >= 2, "a grant and a denial: {}", access.len());

    // Home Assistant discovery: one device message, bound to the availability topic.
    let discovery = ha.wait_until(LIMIT, |got| !got.is_empty());
    let d = json(&discovery[0]);
    assert_eq!(d["availability_topic"], format!("{base}/availability"));
    assert_eq!(d["cmps"][format!("{id}_face")]["state_topic"], events_topic);
    assert_eq!(d["cmps"][format!("{id}_heatmap")]["p"], "image");
    // What Home Assistant's event entities fire for this visit, their templates rendered over
    // every event as Home Assistant renders them: one `match` for Obama's visit (not again when
    // the grant follows, nor when his track ends), one `unknown` for the stranger, and one
    // door decision per decision the device signed.
    let face = fired(&d["cmps"][format!("{id}_face")], &events);
    let matches: Vec<&Value> = face.iter().filter(|f| f["event_type"] == "match").collect();
    assert_eq!(matches.len(), 1, "{face:#?}");
    assert_eq!(matches[0]["name"], "Barack Obama");
    assert_eq!(matches[0]["event_id"], grant["id"]);
    let live = matches[0]["live_score"].as_f64().unwrap_or(-1.0);
    assert!(live > 0.5, "the live score rides along: {}", matches[0]);
    assert_eq!(
        face.iter().filter(|f| f["event_type"] == "unknown").count(),
        1,
        "{face:#?}"
    );
    let door_events = fired(&d["cmps"][format!("{id}_door")], &events);
    let kinds: Vec<&Value> = door_events.iter().map(|f| &f["event_type"]).collect();
    assert_eq!(kinds.len(), access.len(), "{door_events:#?}");
    assert!(kinds.contains(&&Value::from("grant")) && kinds.contains(&&Value::from("deny")));

    // The face crop of the recognised face (a JPEG), none of the stranger's; the last person,
    // retained.
    let crops = on(&got, &format!("{base}/image/face"));
    let matches = events
        .iter()
        .filter(|e| e["result"] == "match" || e["result"] == "uncertain")
        .count();
    assert!(
        !crops.is_empty() && crops.len() <= matches,
        "{} crops",
        crops.len()
    );
    let crop = image::load_from_memory(&crops[0].payload).unwrap();
    assert!(crop.width() <= 192 && crop.height() <= 192);
    let last = json(on(&got, &format!("{base}/last_person")).last().unwrap());
    assert_eq!(
        (&last["id"], &last["name"]),
        (&Value::from("obama"), &Value::from("Barack Obama"))
    );

    // The Frigate mirror: the faces, as Frigate's own automations expect them.
    let frigate: Vec<Value> = on(&got, &format!("{base}/frigate/tracked_object_update"))
        .iter()
        .map(|m| json(m))
        .collect();
    assert!(!frigate.is_empty());
    assert_eq!(frigate[0]["type"], "face");
    assert_eq!(frigate[0]["name"], "Barack Obama");
    assert_eq!(frigate[0]["camera"], id.as_str());
    assert!(frigate[0]["score"].as_f64().unwrap() > 0.9);
    // The stranger too, as Frigate reports an unrecognised face: no name.
    assert!(
        frigate
            .iter()
            .any(|f| f["name"].is_null() && f["type"] == "face"),
        "{frigate:?}"
    );

    // Presence: retained; Obama while his track lasted, nobody once it ended.
    let presence: Vec<Value> = on(&got, &format!("{base}/presence"))
        .iter()
        .map(|m| json(m))
        .collect();
    assert!(
        presence
            .iter()
            .any(|p| p["count"] == 1 && p["people"][0]["id"] == "obama"),
        "{presence:?}"
    );
    let last = presence.last().unwrap();
    assert_eq!(last["count"], 0, "{presence:?}");
    assert!(last["expires_at"].as_f64().unwrap() > last_time(&got));

    // A late subscriber sees the retained state, stats, availability, last person and
    // presence, and no event, face or access decision.
    let late = Recorder::start(&broker, &format!("{base}/#"));
    let retained = late.wait_until(Duration::from_secs(3), |got| got.len() >= 5);
    assert!(retained.iter().all(|m| m.retain));
    let mut topics: Vec<&str> = retained.iter().map(|m| m.topic.as_str()).collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        [
            format!("{base}/availability"),
            format!("{base}/last_person"),
            format!("{base}/presence"),
            format!("{base}/state"),
            format!("{base}/stats")
        ]
    );
    drop((rec, late, ha));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn events_survive_a_broker_outage_in_order() {
    let mut broker = Broker::private_persistent();
    let id = unique("door");
    let base = format!("facegate-test/{id}");
    let dir = device_dir(&broker, &id, &["originals/obama2.jpg"]);
    let rec = Recorder::persistent(&broker, &format!("{base}/events"));
    let mut device = Device::open(&dir.join("facegate.toml")).unwrap();
    device.enroll().unwrap();
    let matcher = device.matcher().unwrap();
    let mut link = device.connect(&matcher).unwrap();
    let mut p = Pipeline::new(&device.models, device.cfg.pipeline(), matcher);
    let photo = |name: &str| {
        image::open(repo().join("config/demo").join(name))
            .unwrap()
            .to_rgb8()
    };
    let (obama, biden) = (photo("originals/obama2.jpg"), photo("enroll/biden.jpg"));
    // Broker up: Obama arrives and is granted.
    p.process(&frame(0, &obama), &mut link).unwrap();
    p.process(&frame(1, &obama), &mut link).unwrap();
    rec.wait_until(LIMIT, |got| got.len() >= 2);

    // Broker gone: the door keeps deciding; events wait on disk. Between the visits the
    // doorway is empty long enough to end the open track.
    broker.stop();
    let mut seq = 2;
    leave(&mut p, &mut link, &mut seq);
    p.process(&frame(10, &biden), &mut link).unwrap();
    leave(&mut p, &mut link, &mut seq);
    p.process(&frame(20, &obama), &mut link).unwrap();
    p.process(&frame(21, &obama), &mut link).unwrap();
    let stats = p.finish(&mut link).unwrap();
    assert!(
        link.queued().unwrap() >= 3,
        "events should be queued while the broker is away"
    );

    // Broker back: everything arrives, in order.
    broker.start();
    rec.wait_subscribed(2, LIMIT);
    let left = link.close(Duration::from_secs(30)).unwrap();
    assert_eq!(left, 0);
    let got = rec.wait_until(LIMIT, |got| {
        let mut seqs: Vec<u64> = got
            .iter()
            .map(|m| json(m)["seq"].as_u64().unwrap())
            .collect();
        seqs.dedup();
        seqs.len() as u64 >= stats.events
    });
    let mut seqs: Vec<u64> = got
        .iter()
        .map(|m| json(m)["seq"].as_u64().unwrap())
        .collect();
    // At least once: a message in flight when the broker died may come twice, never out of order.
    seqs.dedup();
    let expected: Vec<u64> = (1..=stats.events).collect();
    assert_eq!(seqs, expected);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn commands_need_a_valid_signature_and_their_refusal_is_published() {
    let broker = Broker::shared();
    let id = unique("door");
    let base = format!("facegate-test/{id}");
    let dir = device_dir(&broker, &id, &["originals/obama2.jpg"]);
    let key = b"facegate-e2e-command-key-0123456789";
    std::fs::write(dir.join("command.key"), key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(dir.join("command.key"), private).unwrap();
    }
    let mut cfg_text = std::fs::read_to_string(dir.join("facegate.toml")).unwrap();
    cfg_text.push_str("\n[commands]\nenabled = true\nkey_file = \"command.key\"\n");
    std::fs::write(dir.join("facegate.toml"), cfg_text).unwrap();

    let rec = Recorder::start(&broker, &format!("{base}/response/#"));
    let progress = Recorder::start(&broker, &format!("{base}/enroll/progress"));
    let states = Recorder::start(&broker, &format!("{base}/state"));
    // The retained state's count of enrolled people, as a dashboard last saw it.
    let people_shown = |n: u64| {
        let got = states.wait_until(LIMIT, |got| {
            got.last().is_some_and(|m| json(m)["people"] == n)
        });
        json(got.last().unwrap())["people"].as_u64().unwrap()
    };
    let mut device = Device::open(&dir.join("facegate.toml")).unwrap();
    device.enroll().unwrap();
    let matcher = device.matcher().unwrap();
    let link = device.connect(&matcher).unwrap();
    let inbox = link.handle();
    device.report_enrollment(&inbox);
    let start = std::time::Instant::now();
    while !link.listening() {
        assert!(
            start.elapsed() < LIMIT,
            "the device never subscribed to its requests"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (caller, mut caller_conn) = facegate_e2e::connect(broker.options("caller"));
    let mut send = |action: &str, payload: String| {
        caller
            .publish(
                format!("{base}/request/{action}"),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload,
            )
            .unwrap();
        facegate_e2e::wait_for(&mut caller_conn, LIMIT, |p| {
            matches!(p, rumqttc::Packet::PubAck(_))
        });
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Unsigned: refused, the refusal published with the caller's transaction.
    let request = format!(r#"{{"transaction":"t-unsigned","issued_at":{now},"person":"obama"}}"#);
    send(
        "erase",
        serde_json::json!({ "request": request }).to_string(),
    );
    let got = rec.wait_until(LIMIT, |got| !got.is_empty());
    let refusal = json(&got[0]);
    assert_eq!(got[0].topic, format!("{base}/response/erase"));
    assert_eq!(refusal["transaction"], "t-unsigned");
    assert_eq!(refusal["ok"], false);
    assert!(
        refusal["error"].as_str().unwrap().contains("unsigned"),
        "{refusal}"
    );
    assert!(
        inbox.take().is_empty(),
        "a refused request must never reach the device"
    );
    assert_eq!(device.gallery.person_ids().unwrap(), ["obama"]);

    // Signed with the device's key: runs between frames and answers.
    let mut p = Pipeline::new(&device.models, device.cfg.pipeline(), matcher);
    let topic = format!("{base}/request/erase");
    let request = format!(r#"{{"transaction":"t-signed","issued_at":{now},"person":"obama"}}"#);
    let hmac = facegate::command::CommandKey::from_bytes(key).sign(&topic, &request);
    send(
        "erase",
        serde_json::json!({ "request": request, "hmac": hmac }).to_string(),
    );
    let start = std::time::Instant::now();
    let mut commands = Vec::new();
    while commands.is_empty() {
        assert!(start.elapsed() < LIMIT, "the signed request never arrived");
        commands = inbox.take();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut serve = |commands: &[facegate::command::Command], p: &mut Pipeline| {
        for c in commands {
            let mut progress = |m: &Value| inbox.progress(m);
            let mut ctx = facegate::command::Context {
                models: &device.models,
                cfg: &mut device.cfg,
                config_file: None,
                gallery: &mut device.gallery,
                pipeline: p,
            };
            facegate::device::serve_command(c, &inbox, &mut ctx, &mut progress);
        }
    };
    serve(&commands, &mut p);
    let got = rec.wait_until(LIMIT, |got| got.len() >= 2);
    let done = json(&got[1]);
    assert_eq!(done["transaction"], "t-signed");
    assert_eq!(done["ok"], true, "{done}");
    assert!(
        p.matcher().index().is_empty(),
        "the matcher forgets the erased person at once"
    );
    assert_eq!(
        people_shown(0),
        0,
        "the state is re-published after an erasure"
    );

    // Enroll by command: a photo in the request, its verdict on enroll/progress and in the
    // response; a person the config lists cannot be overwritten this way.
    let photo = std::fs::read(repo().join("config/demo/enroll/biden.jpg")).unwrap();
    let photo = base64::engine::general_purpose::STANDARD.encode(photo);
    let signed = |tx: &str, person: &str, schedule: &str| {
        let topic = format!("{base}/request/enroll");
        let request = serde_json::json!({
            "transaction": tx, "issued_at": now, "person": person, "name": "Joe Biden",
            "photos": [photo], "schedule": [schedule],
        })
        .to_string();
        let hmac = facegate::command::CommandKey::from_bytes(key).sign(&topic, &request);
        serde_json::json!({ "request": request, "hmac": hmac }).to_string()
    };
    send("enroll", signed("t-bad-schedule", "biden", "weekdays 9-5"));
    send("enroll", signed("t-enroll", "biden", "sat,sun 10:00-12:00"));
    send(
        "enroll",
        signed("t-config-person", "obama", "daily 00:00-24:00"),
    );
    let start = std::time::Instant::now();
    let mut commands = Vec::new();
    while commands.len() < 3 {
        assert!(start.elapsed() < LIMIT, "the enroll requests never arrived");
        commands.extend(inbox.take());
        std::thread::sleep(Duration::from_millis(20));
    }
    serve(&commands, &mut p);
    let got = rec.wait_until(LIMIT, |got| got.len() >= 5);
    let answer = |tx: &str| {
        got.iter()
            .map(json)
            .find(|r| r["transaction"] == tx)
            .unwrap()
    };
    let enrolled = answer("t-enroll");
    assert_eq!(enrolled["ok"], true, "{enrolled}");
    assert_eq!(enrolled["enrolled"]["templates"], 1, "{enrolled}");
    assert_eq!(enrolled["enrolled"]["photos"][0]["photo"], "photos[0]");
    let bad = answer("t-bad-schedule");
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().starts_with("schedule[0]: "),
        "the bad window is named: {bad}"
    );
    let refused = answer("t-config-person");
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"].as_str().unwrap().contains("config"),
        "{refused}"
    );
    let verdicts = progress.wait_until(LIMIT, |got| {
        got.iter().any(|m| json(m)["transaction"] == "t-enroll")
    });
    let v = verdicts
        .iter()
        .map(json)
        .find(|m| m["transaction"] == "t-enroll")
        .unwrap();
    assert_eq!(
        (&v["verdict"], &v["source"], &v["person"], &v["of"]),
        (
            &Value::from("accepted"),
            &Value::from("command"),
            &Value::from("biden"),
            &Value::from(1)
        )
    );
    assert!(
        verdicts.iter().any(|m| json(m)["source"] == "config"),
        "the start enrollment's verdicts are published too"
    );
    assert_eq!(device.gallery.person_ids().unwrap(), ["biden"]);
    assert_eq!(
        device.gallery.person("biden").unwrap().unwrap().origin,
        "command"
    );
    assert_eq!(
        p.matcher().index().people().len(),
        1,
        "matched from the next frame on"
    );
    assert_eq!(
        people_shown(1),
        1,
        "the state is re-published after an enrollment"
    );
    // The request's schedule is stored with the person and governs their decisions.
    assert_eq!(
        device.gallery.person("biden").unwrap().unwrap().schedule,
        ["sat,sun 10:00-12:00"]
    );
    assert_eq!(
        p.matcher().index().people()[0].schedule.texts(),
        ["sat,sun 10:00-12:00"]
    );
    let scratch: Vec<_> = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".enroll"))
        .collect();
    assert!(scratch.is_empty(), "the request's photos are deleted");
    drop(p);
    link.close(Duration::from_secs(5)).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// A device that announced itself to Home Assistant and is then configured with discovery off
/// takes the announcement back: the retained discovery message is cleared, so Home Assistant
/// removes the device instead of keeping entities nothing updates.
#[test]
fn turning_discovery_off_removes_the_device_from_home_assistant() {
    let broker = Broker::shared();
    let id = unique("door");
    let topic = format!("homeassistant/device/{id}/config");
    // What an earlier run with discovery on left on the broker.
    let (client, mut conn) = facegate_e2e::connect(broker.options("earlier-run"));
    client
        .publish(&topic, rumqttc::QoS::AtLeastOnce, true, r#"{"cmps":{}}"#)
        .unwrap();
    facegate_e2e::wait_for(&mut conn, LIMIT, |p| {
        matches!(p, rumqttc::Packet::PubAck(_))
    });
    let ha = Recorder::start(&broker, &topic);
    assert_eq!(ha.wait_until(LIMIT, |got| !got.is_empty()).len(), 1);

    let dir = facegate_e2e::device_dir(
        &broker,
        &id,
        &["originals/obama2.jpg"],
        "[home_assistant]\ndiscovery = false",
    );
    let mut device = Device::open(&dir.join("facegate.toml")).unwrap();
    device.enroll().unwrap();
    let matcher = device.matcher().unwrap();
    let link = device.connect(&matcher).unwrap();
    let got = ha.wait_until(LIMIT, |got| got.len() >= 2);
    assert!(got[1].payload.is_empty(), "{got:?}");
    link.close(Duration::from_secs(5)).unwrap();
    // Nothing is retained there any more: a Home Assistant starting now finds no device.
    let late = Recorder::start(&broker, &topic);
    assert!(
        late.wait_until(Duration::from_secs(1), |got| !got.is_empty())
            .is_empty()
    );
    drop((ha, late, client));
    std::fs::remove_dir_all(dir).unwrap();
}
