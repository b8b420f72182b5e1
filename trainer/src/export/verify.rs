//! The exported file checked against the network it came from: tract-onnx (the device's CPU
//! runtime) runs the ONNX bytes on held-out faces and both outputs are compared with burn's.

use crate::data::FaceSet;
use crate::model::FaceNet;
use burn::prelude::Device;
use facegate_contract::card::TrainingMode;

/// Largest absolute difference allowed between burn's and tract's outputs.
pub const TOLERANCE: f32 = 1e-4;

/// How closely the ONNX file reproduces the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Faces compared.
    pub faces: usize,
    /// Largest absolute difference over the feature values.
    pub feature: f32,
    /// Largest absolute difference over the map values.
    pub maps: f32,
}

impl Agreement {
    /// Whether both outputs agree within [`TOLERANCE`].
    pub fn holds(&self) -> bool {
        self.feature <= TOLERANCE && self.maps <= TOLERANCE
    }
}

fn max_abs_diff(a: impl Iterator<Item = f32>, b: impl Iterator<Item = f32>) -> f32 {
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// An exported graph loaded and optimised by tract for batches of exactly `shape`.
pub fn tract_plan(
    bytes: &[u8],
    shape: [usize; 4],
) -> tract_onnx::prelude::TractResult<std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>> {
    use tract_onnx::prelude::*;
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()
}

/// Feature and maps of `onnx` on one batch, computed by tract.
fn run_tract(
    bytes: &[u8],
    shape: [usize; 4],
    pixels: &[f32],
) -> tract_onnx::prelude::TractResult<(Vec<f32>, Vec<f32>)> {
    use tract_onnx::prelude::*;
    let plan = tract_plan(bytes, shape)?;
    let input = Tensor::from_shape(&shape, pixels)?.into_tvalue();
    let outputs = plan.run(tvec![input])?;
    let values = |i: usize| -> TractResult<Vec<f32>> {
        Ok(outputs[i]
            .to_plain_array_view::<f32>()?
            .iter()
            .copied()
            .collect())
    };
    Ok((values(0)?, values(1)?))
}

/// Runs `onnx` with tract and `net` (as trained in `mode`) with burn on the first `max_faces`
/// faces of `faces`, and reports the largest differences. Errors are tract's, as text.
pub fn compare(
    onnx: &[u8],
    net: &FaceNet,
    mode: TrainingMode,
    faces: &FaceSet,
    max_faces: usize,
) -> Result<Agreement, String> {
    let n = faces.len().min(max_faces);
    let s = faces.size;
    let pixels = &faces.pixels[..n * 3 * s * s];
    let shape = [n, 3, s, s];
    let (feature, maps) = run_tract(onnx, shape, pixels).map_err(|e| format!("{e:?}"))?;

    let device = Device::flex();
    let batch = burn::tensor::Tensor::<1>::from_floats(pixels, &device).reshape(shape);
    let want = net.embed_as(mode, batch);
    let want_feature: Vec<f32> = want.feature.into_data().iter::<f32>().collect();
    let want_maps: Vec<f32> = want.maps.into_data().iter::<f32>().collect();
    if feature.len() != want_feature.len() || maps.len() != want_maps.len() {
        return Err(format!(
            "output sizes differ: feature {} vs {}, maps {} vs {}",
            feature.len(),
            want_feature.len(),
            maps.len(),
            want_maps.len()
        ));
    }
    Ok(Agreement {
        faces: n,
        feature: max_abs_diff(feature.into_iter(), want_feature.into_iter()),
        maps: max_abs_diff(maps.into_iter(), want_maps.into_iter()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::onnx;
    use crate::model::NetConfig;
    use burn::prelude::Module;
    use burn::tensor::{Distribution, Tensor};

    fn cfg() -> NetConfig {
        NetConfig::tiny(3)
    }

    /// A small network whose BatchNorm statistics have moved away from their initial values.
    fn trained_ish() -> FaceNet {
        let ad = Device::flex().autodiff();
        let net = cfg().init(&ad);
        for _ in 0..3 {
            let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.3, 1.5), &ad);
            let _ = net.embed(x);
        }
        cfg()
            .init(&Device::flex())
            .try_load_record(net.into_record())
            .unwrap()
    }

    fn faces(n: usize) -> FaceSet {
        let pixels = (0..n * 3 * 32 * 32)
            .map(|i| ((i * 7919 % 2003) as f32 / 1001.5) - 1.0)
            .collect();
        FaceSet {
            size: 32,
            pixels,
            labels: vec![0; n],
            entries: (0..n).collect(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn tract_reproduces_every_mode_within_tolerance() {
        let net = trained_ish();
        for mode in [TrainingMode::Full, TrainingMode::Base] {
            let bytes = onnx::to_bytes(&net.folded(mode), "test");
            let a = compare(&bytes, &net, mode, &faces(3), 16).unwrap();
            assert_eq!(a.faces, 3);
            assert!(a.holds(), "{mode:?}: {a:?}");
        }
    }

    #[test]
    fn another_network_is_caught() {
        let net = trained_ish();
        let other = trained_ish();
        let bytes = onnx::to_bytes(&other.folded(TrainingMode::Full), "test");
        let a = compare(&bytes, &net, TrainingMode::Full, &faces(2), 16).unwrap();
        assert!(!a.holds(), "{a:?}");
    }
}
