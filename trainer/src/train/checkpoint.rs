//! Checkpoints: the network, the optimiser state and the step, replaced atomically.
//!
//! A checkpoint is a folder (`model.bpk`, `optimizer.bpk`, `state.json`). It is written beside
//! the live one and swapped in by renames, so a power cut leaves either the old or the new
//! checkpoint, never a mix.

use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The next step to run.
    pub step: u64,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file operation failed.
    #[error("checkpoint {path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

fn io(path: &Path, message: impl ToString) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// A saved run: network, optimiser and state.
pub struct Checkpoint {
    /// The network's parameters and running statistics.
    pub model: ModuleRecord,
    /// The optimiser's moments.
    pub optimizer: OptimizerRecord,
    /// The run's position.
    pub state: RunState,
}

/// The live checkpoint folder of a run folder.
pub fn folder(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoint")
}

/// Writes `checkpoint` into `run_dir/checkpoint`, atomically replacing any earlier one.
pub fn save(run_dir: &Path, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
    let live = folder(run_dir);
    let tmp = run_dir.join("checkpoint.tmp");
    let old = run_dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let model = tmp.join("model.bpk");
    checkpoint.model.save(&model).map_err(|e| io(&model, e))?;
    let optim = tmp.join("optimizer.bpk");
    checkpoint
        .optimizer
        .save(&optim)
        .map_err(|e| io(&optim, e))?;
    let state = tmp.join("state.json");
    let json = serde_json::to_vec_pretty(&checkpoint.state).map_err(|e| io(&state, e))?;
    facegate_contract::fsutil::write_atomic(&state, &json).map_err(|e| io(&state, e))?;
    let _ = std::fs::remove_dir_all(&old);
    if live.exists() {
        std::fs::rename(&live, &old).map_err(|e| io(&live, e))?;
    }
    std::fs::rename(&tmp, &live).map_err(|e| io(&live, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Folder of the run's copy of its checkpoint at the end of stage 1 (the trained base CNN),
/// kept so other modes' stage 2 can start from the same backbone (ablations).
pub fn stage1_folder(run_dir: &Path) -> PathBuf {
    run_dir.join("stage1")
}

/// Copies the live checkpoint to [`stage1_folder`], atomically replacing an earlier copy.
pub fn keep_stage1(run_dir: &Path) -> Result<(), CheckpointError> {
    let live = folder(run_dir);
    let kept = stage1_folder(run_dir);
    let tmp = run_dir.join("stage1.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    for name in ["model.bpk", "optimizer.bpk", "state.json"] {
        let from = live.join(name);
        std::fs::copy(&from, tmp.join(name)).map_err(|e| io(&from, e))?;
    }
    let _ = std::fs::remove_dir_all(&kept);
    std::fs::rename(&tmp, &kept).map_err(|e| io(&kept, e))
}

/// Reads the run's checkpoint, if it has one. A crash between the two renames of [`save`]
/// leaves only `checkpoint.old`, which is then used.
pub fn load(run_dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let live = folder(run_dir);
    let old = run_dir.join("checkpoint.old");
    let dir = if live.exists() {
        live
    } else if old.exists() {
        old
    } else {
        return Ok(None);
    };
    let state_path = dir.join("state.json");
    let text = std::fs::read(&state_path).map_err(|e| io(&state_path, e))?;
    let state: RunState = serde_json::from_slice(&text).map_err(|e| io(&state_path, e))?;
    let model_path = dir.join("model.bpk");
    let model = ModuleRecord::load(&model_path).map_err(|e| io(&model_path, e))?;
    let optim_path = dir.join("optimizer.bpk");
    let optimizer = OptimizerRecord::load(&optim_path).map_err(|e| io(&optim_path, e))?;
    Ok(Some(Checkpoint {
        model,
        optimizer,
        state,
    }))
}
