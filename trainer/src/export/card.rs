//! The model card of an export: everything the device must know to run and trust the file.

use super::onnx::{FEATURE, INPUT, MAPS};
use crate::measure::PeakMap;
use crate::model::FoldedNet;
use crate::train::TrainedModel;
use facegate_contract::card::{
    Architecture, ChannelOrder, DatasetRef, DatasetRole, FORMAT_VERSION, FeatureOutput, InputSpec,
    MapsOutput, Metric, ModelCard, ModelFile, Outputs, TensorLayout,
};
use facegate_contract::{AlignmentTemplate, Normalisation};

/// Name of the training set in the card.
pub const TRAIN_SET: &str = "train";
/// Name of the held-out set the peak map was measured on.
pub const HELD_OUT_SET: &str = "held-out";
/// Family name of the network.
pub const ARCHITECTURE: &str = "casia-net-hypercolumn-sad-fad";

/// What the card says about the data, beyond the run's own record.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFacts {
    /// Whether the training and held-out faces are generated rather than photographed.
    pub synthetic: bool,
    /// Identities in the held-out set.
    pub held_out_identities: u64,
    /// Faces measured in the held-out set.
    pub held_out_images: u64,
    /// Where the held-out set came from.
    pub held_out_description: String,
    /// Origin and terms of the data and teacher.
    pub provenance: Option<facegate_contract::card::Provenance>,
}

/// The card of `net` (trained as `trained` says) saved as `file_name` with hash `sha256`.
/// Thresholds are left empty: `facegate-train eval` calibrates them.
pub fn build(
    model_id: &str,
    file_name: &str,
    sha256: &str,
    trained: &TrainedModel,
    net: &FoldedNet,
    peaks: &PeakMap,
    data: &DataFacts,
) -> ModelCard {
    let size = net.input_size as u32;
    let dim = net.feature_dim() as u32;
    let map = net.map_size() as u32;
    let mut metrics = Vec::new();
    for (name, value) in [
        ("spreadness-positive-px", peaks.d_positive),
        ("spreadness-negative-px", peaks.d_negative),
    ] {
        if let Some(value) = value {
            metrics.push(Metric {
                dataset: HELD_OUT_SET.to_owned(),
                protocol: "peak-map".to_owned(),
                name: name.to_owned(),
                value,
            });
        }
    }
    ModelCard {
        format_version: FORMAT_VERSION,
        model_id: model_id.to_owned(),
        model_file: ModelFile {
            path: file_name.to_owned(),
            sha256: sha256.to_owned(),
        },
        architecture: Architecture {
            name: ARCHITECTURE.to_owned(),
            mode: trained.mode,
            width_multiplier: trained.width_multiplier,
        },
        input: InputSpec {
            name: INPUT.to_owned(),
            width: size,
            height: size,
            channels: ChannelOrder::Rgb,
            layout: TensorLayout::Nchw,
            normalisation: Normalisation::SYMMETRIC,
        },
        alignment: AlignmentTemplate::square(size),
        outputs: Outputs {
            feature: FeatureOutput {
                name: FEATURE.to_owned(),
                dim,
            },
            maps: MapsOutput {
                name: MAPS.to_owned(),
                channels: dim,
                height: map,
                width: map,
                layout: TensorLayout::Nchw,
            },
        },
        filter_peaks: peaks.filters.clone(),
        thresholds: Vec::new(),
        data: vec![
            DatasetRef {
                name: TRAIN_SET.to_owned(),
                role: DatasetRole::Train,
                synthetic: data.synthetic,
                identities: trained.data.identities,
                images: trained.data.images,
                description: format!(
                    "manifest {}; {} steps, seed {}, mode {:?}",
                    trained.data.manifest.display(),
                    trained.steps,
                    trained.seed,
                    trained.mode
                ),
            },
            DatasetRef {
                name: HELD_OUT_SET.to_owned(),
                role: DatasetRole::Calibration,
                synthetic: data.synthetic,
                identities: data.held_out_identities,
                images: data.held_out_images,
                description: data.held_out_description.clone(),
            },
        ],
        metrics,
        provenance: data.provenance.clone(),
    }
}
