//! The measuring instrument: a set's faces embedded by the exported ONNX file through tract,
//! the same runtime the device uses, so the numbers describe the shipped artefact.

use crate::data::{FaceSet, Manifest};
use crate::export::verify::tract_plan;
use crate::train::Occluder;
use facegate_contract::occlusion::{OcclusionRule, RegionMap, RegionSet};
use facegate_contract::similarity::normalize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One face set, embedded: unit-length features with who and which photo each is.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// Feature length.
    pub dim: usize,
    /// `len x dim` unit-length features.
    pub features: Vec<f32>,
    /// Identity name of each face.
    pub identity: Vec<String>,
    /// Position of each face among its identity's photos in the manifest (0 = first).
    pub photo: Vec<usize>,
    /// Each face's crop file, as the manifest names it.
    pub path: Vec<PathBuf>,
    /// The regions the device's occlusion rule finds occluded on each face (from its maps).
    pub occluded: Vec<RegionSet>,
    /// Images that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Embedded {
    /// Number of faces.
    pub fn len(&self) -> usize {
        self.identity.len()
    }

    /// Whether there are no faces.
    pub fn is_empty(&self) -> bool {
        self.identity.is_empty()
    }

    /// Feature of face `i`.
    pub fn feature(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// Faces grouped by identity: name -> (photo -> face index), in name order.
    pub fn by_identity(&self) -> BTreeMap<&str, BTreeMap<usize, usize>> {
        let mut out: BTreeMap<&str, BTreeMap<usize, usize>> = BTreeMap::new();
        for i in 0..self.len() {
            out.entry(self.identity[i].as_str())
                .or_default()
                .insert(self.photo[i], i);
        }
        out
    }
}

/// Paints the paper's window at a random place on each face (centre crops of `source_size`
/// crops of the template), seeded by `seed` and the face's position, for sets that lack one.
pub fn paint_windows(faces: &mut FaceSet, source_size: usize, seed: u64) {
    use rand::{RngExt, SeedableRng};
    let offset = source_size.saturating_sub(faces.size) / 2;
    let s = faces.size;
    for (i, face) in faces.pixels.chunks_mut(3 * s * s).enumerate() {
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
        let window = Occluder::window(
            rng.random_range(Occluder::X_RANGE),
            rng.random_range(Occluder::Y_RANGE),
        )
        .scaled_to(source_size);
        for (p, v) in face.iter_mut().enumerate() {
            let at = p % (s * s);
            if window.covers(at % s + offset, at / s + offset) {
                *v = -1.0;
            }
        }
    }
}

/// Embeds `faces` (from `manifest`) with the ONNX graph `model`, `batch` faces per run, and
/// applies the occlusion rule to each face's maps as the device would.
pub fn embed(
    model: &[u8],
    occlusion: (&RegionMap, &OcclusionRule),
    manifest: &Manifest,
    faces: &FaceSet,
    batch: usize,
) -> Result<Embedded, String> {
    let (regions, rule) = occlusion;
    let mut occluded = vec![RegionSet::EMPTY; faces.len()];
    let features = run_model(model, faces, batch, &mut |i, maps| {
        if let Some(slot) = occluded.get_mut(i) {
            *slot = regions.occluded(maps, rule);
        }
    })?;
    let mut embedded = label(manifest, faces, features);
    embedded.occluded = occluded;
    Ok(embedded)
}

/// Runs `model` over `faces`, `batch` at a time; returns the unit-length features (`len x
/// dim`) and hands each face's maps (`channels x h x w`) to `on_maps` with the face's index.
pub fn run_model(
    model: &[u8],
    faces: &FaceSet,
    batch: usize,
    on_maps: &mut dyn FnMut(usize, &[f32]),
) -> Result<(usize, Vec<f32>), String> {
    use tract_onnx::prelude::*;
    let s = faces.size;
    let batch = batch.clamp(1, faces.len().max(1));
    let plan = tract_plan(model, [batch, 3, s, s]).map_err(|e| format!("{e:?}"))?;
    let per_face = 3 * s * s;
    let mut features = Vec::new();
    let mut dim = 0;
    let mut face = 0;
    for (n, pixels) in faces.batches(batch) {
        let mut input = pixels.to_vec();
        input.resize(batch * per_face, 0.0);
        let tensor = Tensor::from_shape(&[batch, 3, s, s], &input).map_err(|e| format!("{e:?}"))?;
        let out = plan
            .run(tvec![tensor.into_tvalue()])
            .map_err(|e| format!("{e:?}"))?;
        let values = |i: usize| -> Result<Vec<f32>, String> {
            let view = out
                .get(i)
                .ok_or_else(|| format!("the model has no output {i}"))?
                .to_plain_array_view::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            Ok(view.iter().copied().collect())
        };
        let f = values(0)?;
        dim = f.len() / batch;
        for row in f.chunks(dim).take(n) {
            let mut v = row.to_vec();
            normalize(&mut v);
            features.extend(v);
        }
        let maps = values(1)?;
        let plane = maps.len() / batch;
        for (k, m) in maps.chunks(plane).take(n).enumerate() {
            on_maps(face + k, m);
        }
        face += n;
    }
    Ok((dim, features))
}

/// Attaches who and which photo each face is.
fn label(manifest: &Manifest, faces: &FaceSet, (dim, features): (usize, Vec<f32>)) -> Embedded {
    // Photo number: position among the identity's manifest entries, skipped ones counted.
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    let ordinal: Vec<usize> = manifest
        .entries
        .iter()
        .map(|e| {
            let slot = count.entry(e.label).or_default();
            *slot += 1;
            *slot - 1
        })
        .collect();
    let photo = faces.entries.iter().map(|&e| ordinal[e]).collect();
    let identity = faces
        .entries
        .iter()
        .map(|&e| manifest.identities[manifest.entries[e].label as usize].clone())
        .collect();
    let path = faces
        .entries
        .iter()
        .map(|&e| manifest.entries[e].path.clone())
        .collect();
    Embedded {
        dim,
        features,
        identity,
        photo,
        path,
        skipped: faces.skipped.clone(),
        occluded: Vec::new(),
    }
}
