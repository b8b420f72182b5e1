//! The broker path, proven against a real Mosquitto: publish/subscribe round trip, retained
//! messages for late subscribers, and the last will that marks a vanished device offline.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate_e2e::{Broker, connect, unique, wait_for, wait_publish};
use rumqttc::{LastWill, Packet, QoS};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn publish_and_receive_through_the_broker() {
    let broker = Broker::shared();
    let topic = format!("facegate-test/{}/events", unique("roundtrip"));
    let (sub, mut sub_conn) = connect(broker.options("sub"));
    sub.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    wait_for(&mut sub_conn, LIMIT, |p| matches!(p, Packet::SubAck(_)));

    let (publ, mut pub_conn) = connect(broker.options("pub"));
    let payload = br#"{"result":"match","person":"obama"}"#.to_vec();
    publ.publish(&topic, QoS::AtLeastOnce, false, payload.clone())
        .unwrap();
    wait_for(&mut pub_conn, LIMIT, |p| matches!(p, Packet::PubAck(_)));

    let got = wait_publish(&mut sub_conn, &topic, LIMIT);
    assert_eq!(got.payload.as_ref(), payload.as_slice());
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert!(!got.retain, "a live event must not arrive as retained");
}

#[test]
fn retained_state_reaches_a_late_subscriber() {
    let broker = Broker::shared();
    let topic = format!("facegate-test/{}/availability", unique("retained"));
    let (publ, mut pub_conn) = connect(broker.options("pub"));
    publ.publish(&topic, QoS::AtLeastOnce, true, "online")
        .unwrap();
    wait_for(&mut pub_conn, LIMIT, |p| matches!(p, Packet::PubAck(_)));

    let (sub, mut sub_conn) = connect(broker.options("late"));
    sub.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    let got = wait_publish(&mut sub_conn, &topic, LIMIT);
    assert_eq!(got.payload.as_ref(), b"online");
    assert!(got.retain, "a late subscriber sees the retained copy");

    // Clear it so the shared broker holds nothing from this test.
    publ.publish(&topic, QoS::AtLeastOnce, true, Vec::new())
        .unwrap();
    wait_for(&mut pub_conn, LIMIT, |p| matches!(p, Packet::PubAck(_)));
}

#[test]
fn last_will_marks_a_vanished_device_offline() {
    let broker = Broker::shared();
    let topic = format!("facegate-test/{}/availability", unique("will"));
    let (watch, mut watch_conn) = connect(broker.options("watch"));
    watch.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    wait_for(&mut watch_conn, LIMIT, |p| matches!(p, Packet::SubAck(_)));

    let mut opts = broker.options("device");
    opts.set_last_will(LastWill::new(&topic, "offline", QoS::AtLeastOnce, false));
    let (device, device_conn) = connect(opts);
    // The device vanishes without DISCONNECT: its socket closes when its event loop is dropped.
    drop(device_conn);
    drop(device);

    let got = wait_publish(&mut watch_conn, &topic, LIMIT);
    assert_eq!(got.payload.as_ref(), b"offline");
}
