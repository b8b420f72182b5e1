//! `[embedder]`: the CPU (tract) or the board's GPU (TensorRT).

use super::{Report, ranged};
use crate::config::raw::RawConfig;
use std::path::Path;

pub(super) fn check_embedder(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
    storage_dir: &Path,
) -> crate::config::EmbedderConfig {
    use crate::config::raw::{PrecisionKind, RuntimeKind};
    use crate::config::{EmbedderConfig, TensorRtConfig, TrtPrecision};
    let Some(e) = &raw.embedder else {
        return EmbedderConfig::Tract;
    };
    if *e.runtime.get_ref() == RuntimeKind::Tract {
        for (field, span) in [
            ("precision", e.precision.as_ref().map(|v| v.span())),
            ("calibration", e.calibration.as_ref().map(|v| v.span())),
            ("workspace_mib", e.workspace_mib.as_ref().map(|v| v.span())),
        ] {
            r.only_for(span, format!("embedder.{field}"), "runtime = \"tensorrt\"");
        }
        return EmbedderConfig::Tract;
    }
    let workspace_mib = ranged(
        r,
        &e.workspace_mib,
        16..=65536,
        TensorRtConfig::DEFAULT_WORKSPACE_MIB,
        "embedder.workspace_mib",
        "expected 16..=65536 MiB",
    );
    let asked = e
        .precision
        .as_ref()
        .map_or(PrecisionKind::Fp16, |p| *p.get_ref());
    let plain = |kind: PrecisionKind| match kind {
        PrecisionKind::Fp32 => TrtPrecision::Fp32,
        _ => TrtPrecision::Fp16,
    };
    let precision = match (asked, &e.calibration) {
        (PrecisionKind::Int8, Some(c)) => {
            let dir = base.join(c.get_ref());
            if !dir.is_dir() {
                r.at(
                    c,
                    "embedder.calibration",
                    format!("{} is not a folder of photos", dir.display()),
                );
            }
            TrtPrecision::Int8 { calibration: dir }
        }
        (PrecisionKind::Int8, None) => {
            if let Some(p) = &e.precision {
                r.at(
                    p,
                    "embedder.precision",
                    "\"int8\" needs `calibration`, a folder of face photos",
                );
            }
            TrtPrecision::Fp16
        }
        (other, Some(c)) => {
            r.at(
                c,
                "embedder.calibration",
                "only used with precision = \"int8\"",
            );
            plain(other)
        }
        (other, None) => plain(other),
    };
    EmbedderConfig::TensorRt(TensorRtConfig {
        precision,
        workspace_mib,
        engine_dir: storage_dir.join("engines"),
    })
}
