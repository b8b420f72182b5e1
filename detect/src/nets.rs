//! The three MTCNN networks as tract plans: loaded once, optimised per input shape on first
//! use (P-Net sees a new size at every pyramid level), with a bounded plan cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::*;

/// Plans kept per network before the cache starts over (a device sees a handful of shapes;
/// `prepare` over photos of many sizes would otherwise grow without bound).
const MAX_PLANS: usize = 64;

/// Why the detector's networks could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A network file could not be read.
    #[error("cannot read detector network {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A network file is not an ONNX graph tract can load.
    #[error("detector network {name} is not a loadable ONNX graph: {message}")]
    Load {
        /// pnet, rnet or onet.
        name: &'static str,
        /// tract's complaint.
        message: String,
    },
    /// A network failed on an input (shape it cannot take, or a runtime error).
    #[error("detector network {name} failed on input {shape:?}: {message}")]
    Run {
        /// pnet, rnet or onet.
        name: &'static str,
        /// The input shape.
        shape: Vec<usize>,
        /// tract's complaint.
        message: String,
    },
}

type Plan = Arc<TypedRunnableModel>;

/// One output of a network run.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: Vec<f32>,
}

/// One network: its graph and the plans built from it so far.
pub struct Net {
    name: &'static str,
    model: InferenceModel,
    plans: Mutex<HashMap<Vec<usize>, Plan>>,
}

impl Net {
    /// Loads the ONNX graph `bytes` as network `name` (used in errors), which must have
    /// `outputs` outputs.
    pub fn from_bytes(name: &'static str, bytes: &[u8], outputs: usize) -> Result<Self, NetError> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| NetError::Load {
                name,
                message: e.to_string(),
            })?;
        if model.outputs.len() != outputs {
            return Err(NetError::Load {
                name,
                message: format!("{} outputs, expected {outputs}", model.outputs.len()),
            });
        }
        Ok(Self {
            name,
            model,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Loads `dir/<name>.onnx`, which must have `outputs` outputs.
    pub fn load(dir: &Path, name: &'static str, outputs: usize) -> Result<Self, NetError> {
        let path = dir.join(format!("{name}.onnx"));
        let bytes = std::fs::read(&path).map_err(|source| NetError::Read { path, source })?;
        Self::from_bytes(name, &bytes, outputs)
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan, NetError> {
        let fail = |e: TractError| NetError::Run {
            name: self.name,
            shape: shape.to_vec(),
            message: e.to_string(),
        };
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(plan) = plans.get(shape) {
            return Ok(plan.clone());
        }
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(fail)?;
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }

    /// Runs the network on `input` (NCHW, `shape`), returning its outputs in graph order.
    pub fn run(&self, shape: [usize; 4], input: Vec<f32>) -> Result<Vec<Output>, NetError> {
        let fail = |e: TractError| NetError::Run {
            name: self.name,
            shape: shape.to_vec(),
            message: e.to_string(),
        };
        let plan = self.plan(&shape)?;
        let tensor = Tensor::from_shape(&shape, &input).map_err(fail)?;
        let outputs = plan.run(tvec![tensor.into_tvalue()]).map_err(fail)?;
        outputs
            .iter()
            .map(|o| {
                o.to_plain_array_view::<f32>()
                    .map(|v| Output {
                        shape: v.shape().to_vec(),
                        data: v.iter().copied().collect(),
                    })
                    .map_err(fail)
            })
            .collect()
    }
}
