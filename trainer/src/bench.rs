//! `facegate-train bench`: images per second for training (one `full`-mode step: clean and
//! occluded branches, every loss, backward, Adam) and inference (feature and maps), on burn and
//! on tract-onnx with the exported graph; optionally beside the PyTorch / ONNX Runtime
//! reference (`reference/torch_bench.py`, the same network) run in the same invocation, with
//! the ratio, since these machines are noisy.

use crate::export::onnx;
use crate::model::NetConfig;
use crate::train::{Batch, LossWeights, Occluder, Stepper, adam_paper};
use burn::prelude::*;
use burn::tensor::Distribution;
use facegate_contract::card::TrainingMode;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;

/// The reference script, shipped inside the binary so `bench` works from any folder.
pub const REFERENCE_SCRIPT: &str = include_str!("../reference/torch_bench.py");

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Faces per batch.
    pub batch: usize,
    /// Input side.
    pub input_size: usize,
    /// Channel multiplier.
    pub width_multiplier: f32,
    /// Classifier outputs (10,575 identities in CASIA-WebFace).
    pub num_classes: usize,
    /// Timed repetitions of each workload (after one untimed warm-up).
    pub repeats: usize,
}

/// One measured workload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Row {
    /// Framework and backend, e.g. `burn/flex`, `tract`, `pytorch/cpu`.
    pub framework: String,
    /// `train-full` or `inference`.
    pub workload: String,
    /// Faces per batch.
    pub batch: usize,
    /// Mean seconds per batch.
    pub seconds_per_batch: f64,
}

impl Row {
    /// Faces per second.
    pub fn images_per_s(&self) -> f64 {
        self.batch as f64 / self.seconds_per_batch.max(1e-12)
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The network could not be trained a step.
    #[error("training step: {0}")]
    Step(#[from] crate::train::ObjectiveError),
    /// tract could not run the graph.
    #[error("tract-onnx: {0}")]
    Tract(String),
    /// The reference could not be started or answered nonsense.
    #[error("reference {python}: {message}")]
    Reference {
        /// The interpreter.
        python: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl BenchConfig {
    /// The measured network: the paper's, at this input size and width.
    pub fn net(&self) -> NetConfig {
        NetConfig {
            input_size: self.input_size,
            width_multiplier: self.width_multiplier,
            num_classes: self.num_classes,
            ..NetConfig::paper(self.num_classes)
        }
    }
}

/// Times `f` once untimed, then `repeats` times; mean seconds.
fn time(repeats: usize, mut f: impl FnMut() -> Result<(), BenchError>) -> Result<f64, BenchError> {
    f()?;
    let start = Instant::now();
    for _ in 0..repeats.max(1) {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() / repeats.max(1) as f64)
}

/// Training steps per second in `full` mode on `device`, named `framework`.
pub fn train(cfg: &BenchConfig, device: &Device, framework: &str) -> Result<Row, BenchError> {
    let netcfg = cfg.net();
    let ad = device.clone().autodiff();
    let mut net = Some(netcfg.init(&ad));
    let s = cfg.input_size;
    let clean = Tensor::<4>::random([cfg.batch, 3, s, s], Distribution::Uniform(-1.0, 1.0), &ad);
    let occluder = Occluder::window(39, 40);
    let labels: Vec<i64> = (0..cfg.batch as i64)
        .map(|i| i % cfg.num_classes as i64)
        .collect();
    let offset = (
        110usize.saturating_sub(s) / 2,
        110usize.saturating_sub(s) / 2,
    );
    let batch = Batch {
        occluded: Some(occluder.apply(clean.clone(), offset)),
        clean,
        labels: Tensor::<1, Int>::from_ints(labels.as_slice(), &ad),
        targets: None,
    };
    let weights = LossWeights::paper(netcfg.feature_dim());
    let mut stepper = Stepper::new(&adam_paper(), 1e-3, TrainingMode::Full, weights);
    let seconds = time(cfg.repeats, || {
        if let Some(current) = net.take() {
            let (next, terms) = stepper.step(current, &batch)?;
            // Reading the loss waits for the device, so the step is really done.
            std::hint::black_box(terms.total);
            net = Some(next);
        }
        Ok(())
    })?;
    Ok(Row {
        framework: framework.to_owned(),
        workload: "train-full".to_owned(),
        batch: cfg.batch,
        seconds_per_batch: seconds,
    })
}

/// Inference (feature and maps) on `device` with burn, and the same graph with tract; also
/// returns the ONNX bytes, for the reference to run with ONNX Runtime.
pub fn inference(
    cfg: &BenchConfig,
    device: &Device,
    framework: &str,
) -> Result<(Vec<Row>, Vec<u8>), BenchError> {
    let netcfg = cfg.net();
    let net = netcfg.init(device);
    let s = cfg.input_size;
    let faces = Tensor::<4>::random(
        [cfg.batch, 3, s, s],
        Distribution::Uniform(-1.0, 1.0),
        device,
    );
    let burn_s = time(cfg.repeats, || {
        let e = net.embed(faces.clone());
        std::hint::black_box(e.feature.into_data());
        Ok(())
    })?;
    let bytes = onnx::to_bytes(&net.folded(TrainingMode::Full), "facegate-train bench");
    let pixels: Vec<f32> = faces.into_data().iter::<f32>().collect();
    let tract_s = tract_inference(&bytes, [cfg.batch, 3, s, s], &pixels, cfg.repeats)?;
    let row = |framework: &str, seconds_per_batch| Row {
        framework: framework.to_owned(),
        workload: "inference".to_owned(),
        batch: cfg.batch,
        seconds_per_batch,
    };
    Ok((vec![row(framework, burn_s), row("tract", tract_s)], bytes))
}

/// Seconds per batch of tract running the exported graph.
fn tract_inference(
    bytes: &[u8],
    shape: [usize; 4],
    pixels: &[f32],
    repeats: usize,
) -> Result<f64, BenchError> {
    use tract_onnx::prelude::*;
    let tract = |e: TractError| BenchError::Tract(format!("{e:?}"));
    let plan = crate::export::verify::tract_plan(bytes, shape).map_err(tract)?;
    let input = Tensor::from_shape(&shape, pixels).map_err(tract)?;
    time(repeats, || {
        plan.run(tvec![input.clone().into_tvalue()])
            .map_err(tract)?;
        Ok(())
    })
}

/// Runs the PyTorch / ONNX Runtime reference with `python` on the same shapes and the same ONNX
/// file; its rows are read from the JSON lines it prints.
pub fn reference(
    cfg: &BenchConfig,
    python: &std::path::Path,
    onnx_bytes: &[u8],
    device: &str,
) -> Result<Vec<Row>, BenchError> {
    let fail = |message: String| BenchError::Reference {
        python: python.to_owned(),
        message,
    };
    let dir = std::env::temp_dir().join(format!("facegate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    let script = dir.join("torch_bench.py");
    let model = dir.join("model.onnx");
    std::fs::write(&script, REFERENCE_SCRIPT).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&model, onnx_bytes).map_err(|e| fail(e.to_string()))?;
    let output = std::process::Command::new(python)
        .arg(&script)
        .args(["--batch", &cfg.batch.to_string()])
        .args(["--input", &cfg.input_size.to_string()])
        .args(["--width", &cfg.width_multiplier.to_string()])
        .args(["--classes", &cfg.num_classes.to_string()])
        .args(["--repeats", &cfg.repeats.to_string()])
        .args(["--device", device])
        .arg("--onnx")
        .arg(&model)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| fail(format!("cannot start: {e}")));
    let _ = std::fs::remove_dir_all(&dir);
    let output = output?;
    if !output.status.success() {
        return Err(fail(format!("exited with {}", output.status)));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).map_err(|e| fail(format!("{e}: {l}"))))
        .collect()
}

/// The rows as a table, with each workload's rate relative to the first row of that workload.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<16} {:<11} {:>5} {:>10} {:>9} {:>8}\n",
        "framework", "workload", "batch", "ms/batch", "images/s", "ratio"
    );
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.workload == r.workload)
            .map_or(1.0, Row::images_per_s);
        out.push_str(&format!(
            "{:<16} {:<11} {:>5} {:>10.1} {:>9.2} {:>8.2}\n",
            r.framework,
            r.workload,
            r.batch,
            r.seconds_per_batch * 1e3,
            r.images_per_s(),
            r.images_per_s() / base
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_reports_rates_relative_to_the_first_row_of_each_workload() {
        let row = |f: &str, w: &str, s| Row {
            framework: f.into(),
            workload: w.into(),
            batch: 4,
            seconds_per_batch: s,
        };
        let t = table(&[
            row("burn/flex", "train-full", 2.0),
            row("pytorch/cpu", "train-full", 1.0),
            row("tract", "inference", 0.5),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].ends_with(" 2.00     1.00"), "{t}");
        assert!(lines[2].ends_with(" 4.00     2.00"), "{t}");
        assert!(lines[3].ends_with(" 8.00     1.00"), "{t}");
    }

    #[test]
    fn a_tiny_network_is_measured_on_every_path() {
        let cfg = BenchConfig {
            batch: 2,
            input_size: 32,
            width_multiplier: 0.125,
            num_classes: 5,
            repeats: 1,
        };
        let device = Device::flex();
        let t = train(&cfg, &device, "burn/flex").unwrap();
        assert!(t.seconds_per_batch > 0.0 && t.seconds_per_batch.is_finite());
        let (rows, bytes) = inference(&cfg, &device, "burn/flex").unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.seconds_per_batch > 0.0));
        assert!(!bytes.is_empty());
    }
}
