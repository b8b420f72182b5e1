//! Training runs end to end on a tiny generated data set: checkpoints, exact resume, stop on
//! request, and the network's record round trip.
//!
//! Burn's random generator is per device and process-wide, so these tests hold a lock while
//! they seed and draw, and live in their own test binary, away from the unit tests.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use burn::prelude::*;
use burn::tensor::Distribution;
use facegate_train::config::RunConfig;
use facegate_train::model::NetConfig;
use facegate_train::train::checkpoint;
use facegate_train::train::{RunOptions, run};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

static RNG: Mutex<()> = Mutex::new(());

/// Four identities, three 40x40 crops each: a per-identity pattern plus per-image noise.
fn fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut lines = String::new();
    for id in 0..4u32 {
        for n in 0..3u32 {
            let img = image::RgbImage::from_fn(40, 40, |x, y| {
                let v =
                    |k: u32| ((x * (id + 1) * 7 + y * (k + 3) * (id + 2) + n * k * 13) % 256) as u8;
                image::Rgb([v(1), v(2), v(3)])
            });
            let file = format!("p{id}_{n}.png");
            img.save(dir.join(&file)).unwrap();
            lines.push_str(&format!("{file},person{id}\n"));
        }
    }
    std::fs::write(dir.join("manifest.csv"), lines).unwrap();
}

fn config(dir: &Path, stage2: u64) -> RunConfig {
    let text = format!(
        "seed = 5\n[data]\nmanifest = \"{}\"\nsource_size = 40\n[model]\ninput_size = 32\nwidth_multiplier = 0.125\ntop_k = 4\n[train]\nmode = \"full\"\nbatch_size = 6\nstage1_steps = 3\nstage2_steps = {stage2}\ncheckpoint_every = 2\nlog_every = 1\n",
        dir.join("manifest.csv").display()
    );
    let cfg: RunConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn options(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_owned(),
        resume: true,
        stop: Arc::new(AtomicBool::new(false)),
        progress: false,
    }
}

/// (step, total loss) of every metrics line.
fn losses(out: &Path) -> Vec<(u64, f32, String)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["total"].as_f64().unwrap() as f32,
                v["mode"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn resumed_run_reproduces_the_uninterrupted_one() {
    let root = std::env::temp_dir().join(format!("facegate-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    fixture(&root);
    let _rng = RNG.lock().unwrap_or_else(|p| p.into_inner());
    let device = Device::flex();

    let whole = root.join("whole");
    let s = run(&config(&root, 5), &options(&whole), &device).unwrap();
    assert_eq!((s.next_step, s.total_steps, s.stopped), (8, 8, false));
    assert!(whole.join("model.bpk").exists());
    let a = losses(&whole);
    assert_eq!(a.len(), 8);
    assert_eq!(a[2].2, "base");
    assert_eq!(a[3].2, "full");

    // The same schedule cut after step 5 (a checkpoint), then resumed to the end.
    let split = root.join("split");
    let s = run(&config(&root, 2), &options(&split), &device).unwrap();
    assert_eq!(s.next_step, 5);
    let s = run(&config(&root, 5), &options(&split), &device).unwrap();
    assert_eq!(s.next_step, 8);
    let b = losses(&split);
    assert_eq!(b.len(), 8, "{a:?}\n{b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!(
            (x.1 - y.1).abs() <= 1e-5 * x.1.abs().max(1.0),
            "step {}: {} vs {}",
            x.0,
            x.1,
            y.1
        );
    }

    // A stop request ends the run after one step with a checkpoint to resume from.
    let stopped = root.join("stopped");
    let opts = options(&stopped);
    opts.stop.store(true, Ordering::Relaxed);
    let s = run(&config(&root, 5), &opts, &device).unwrap();
    assert!(s.stopped);
    assert_eq!(s.next_step, 1);
    let ckpt = checkpoint::load(&stopped).unwrap().unwrap();
    assert_eq!(ckpt.state.step, 1);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_saved_network_loads_into_a_fresh_one() {
    let _rng = RNG.lock().unwrap_or_else(|p| p.into_inner());
    let device = Device::flex().autodiff();
    let cfg = NetConfig::tiny(3);
    device.seed(1);
    let a = cfg.init(&device);
    device.seed(2);
    let b = cfg.init(&device);
    let path = std::env::temp_dir().join(format!("facegate-rec-{}.bpk", std::process::id()));
    a.clone().into_record().save(&path).unwrap();
    let b = b.load_record(burn::store::ModuleRecord::load(&path).unwrap());
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device).detach();
    device.seed(9);
    let fa: Vec<f32> = a
        .logits(a.embed(x.clone()).feature)
        .into_data()
        .iter::<f32>()
        .collect();
    device.seed(9);
    let fb: Vec<f32> = b
        .logits(b.embed(x).feature)
        .into_data()
        .iter::<f32>()
        .collect();
    assert_eq!(fa, fb);
    std::fs::remove_file(path).unwrap();
}
