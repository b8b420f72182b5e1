//! The workspace's structure, checked from its source so it stays as ARCHITECTURE.md draws it:
//! the pipeline crate (`facegate-pipeline`) depends on no MQTT, command-line or config-file
//! library and not on the device crate; within each crate no import cycle between top-level
//! modules; in the pipeline no stage imports a later stage or the wiring around the stages
//! (source -> liveness -> align -> quality -> embed -> matching -> decide -> event -> sink); in
//! the device crate the config is read by the orchestration alone, and the device's sinks
//! (publish, display, door) import neither the orchestration nor the config.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The pipeline's stages in data-flow order: each may import only earlier ones.
const STAGES: &[&str] = &[
    "source", "liveness", "align", "quality", "embed", "matching", "decide", "event", "sink",
];

/// The pipeline's wiring around the stages: no stage imports these.
const WIRING: &[&str] = &["analyse", "enrollment", "model", "wiring"];

/// Libraries the pipeline must not depend on: the device's concerns (MQTT and TLS, the command
/// line, the config file, signing door decisions, the screen, the relay), and the device itself.
const NOT_IN_PIPELINE: &[&str] = &[
    "facegate",
    "rumqttc",
    "rustls",
    "clap",
    "ctrlc",
    "signal-hook",
    "metrics-exporter-prometheus",
    "tiny_http",
    "toml",
    "tracing-subscriber",
    "ed25519-dalek",
    "embedded-graphics",
    "gpiocdev",
    "indicatif",
];

/// Device modules that read the whole config: the orchestration around the pipeline.
const READS_CONFIG: &[&str] = &["command", "device"];

/// The device's sinks: they take events, and know nothing of what produced them.
const DEVICE_SINKS: &[&str] = &["publish", "display", "door", "metrics"];

/// Top-level module -> the top-level modules its code (comments and test modules left out)
/// names through `crate::`.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_owned();
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let deps = out.entry(module.clone()).or_default();
            for line in code.lines() {
                let line = line.split("//").next().unwrap();
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    out
}

/// The workspace folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Panics naming the cycle when `graph` has one.
fn assert_acyclic(graph: &BTreeMap<String, BTreeSet<String>>) {
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit<'a>(
        n: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == n) {
            panic!("import cycle: {} -> {n}", path[at..].join(" -> "));
        }
        path.push(n);
        for d in graph.get(n).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
        done.insert(n);
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_pipeline_depends_on_no_device_library() {
    let manifest = std::fs::read_to_string(root().join("pipeline/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    assert!(deps.contains_key("tract-onnx"), "{deps:?}");
    for name in NOT_IN_PIPELINE {
        assert!(
            !deps.contains_key(*name),
            "pipeline/Cargo.toml depends on {name}, a device concern"
        );
    }
}

#[test]
fn no_import_cycle_between_modules() {
    let pipeline = imports(&root().join("pipeline/src"));
    assert!(pipeline.len() > 15, "{pipeline:?}");
    assert_acyclic(&pipeline);
    let device = imports(&root().join("firmware/src"));
    assert!(device.len() > 7, "{device:?}");
    assert_acyclic(&device);
}

#[test]
fn no_stage_imports_a_later_stage_or_the_wiring() {
    let graph = imports(&root().join("pipeline/src"));
    for (i, stage) in STAGES.iter().enumerate() {
        let deps = &graph[*stage];
        for later in &STAGES[i + 1..] {
            assert!(
                !deps.contains(*later),
                "{stage} imports the later stage {later}"
            );
        }
        for wiring in WIRING {
            assert!(
                !deps.contains(*wiring),
                "the stage {stage} imports {wiring}"
            );
        }
    }
}

#[test]
fn the_config_is_read_by_the_orchestration_alone() {
    let graph = imports(&root().join("firmware/src"));
    for (module, deps) in &graph {
        if deps.contains("config") {
            assert!(
                READS_CONFIG.contains(&module.as_str()),
                "{module} reads the config; only {READS_CONFIG:?} may"
            );
        }
    }
    for sink in DEVICE_SINKS {
        for orchestration in ["config", "command", "device", "bench"] {
            assert!(
                !graph[*sink].contains(orchestration),
                "the sink {sink} imports {orchestration}"
            );
        }
    }
}
