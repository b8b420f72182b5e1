//! The firmware's module structure, checked from its source so it stays as ARCHITECTURE.md
//! draws it: no import cycle between top-level modules, no stage importing a later stage
//! (source -> align -> quality -> embed -> matching -> decide -> publish), and the config read
//! by the orchestration alone (the stages own their settings types; `config/` imports them).

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The stages in data-flow order: each may import only earlier ones.
const STAGES: &[&str] = &[
    "source", "liveness", "align", "quality", "embed", "matching", "decide", "publish",
];

/// Modules that read the whole config: the orchestration around the stages.
const READS_CONFIG: &[&str] = &["command", "device", "enrollment", "pipeline"];

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

fn firmware_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycle_between_modules() {
    let graph = imports(&firmware_src());
    assert!(graph.len() > 15, "{graph:?}");
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
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn no_stage_imports_a_later_stage_or_the_config() {
    let graph = imports(&firmware_src());
    for (i, stage) in STAGES.iter().enumerate() {
        let deps = &graph[*stage];
        for later in &STAGES[i + 1..] {
            assert!(
                !deps.contains(*later),
                "{stage} imports the later stage {later}"
            );
        }
        assert!(!deps.contains("config"), "the stage {stage} imports config");
    }
    for (module, deps) in &graph {
        if deps.contains("config") {
            assert!(
                READS_CONFIG.contains(&module.as_str()),
                "{module} reads the config; only {READS_CONFIG:?} may"
            );
        }
    }
}
