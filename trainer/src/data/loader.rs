//! Deterministic mini-batches from a manifest, decoded on several threads and prefetched.
//!
//! Batch `s` depends only on the seed and `s`: the epoch's order is a seeded shuffle, and the
//! crops and occluder place come from a generator seeded by the step. So a run resumed at step
//! `s` sees exactly the batches it would have seen, with no loader state to save.

use super::augment::{AugmentConfig, Draw};
use super::manifest::Manifest;
use super::paint::{Painted, five_points};
use crate::train::Occluder;
use facegate_contract::Normalisation;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How batches are made.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Side of the stored aligned crops (110 in the paper).
    pub source_size: usize,
    /// Side of the random crop fed to the network (96 in the paper).
    pub crop_size: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Whether to make the occluded copy of each batch (the `full` mode's second branch).
    pub occlude: bool,
    /// Share of batches whose occluded copy carries painted sunglasses or a mask (half each)
    /// at each face's landmarks instead of the paper's window; needs landmarks in the manifest.
    pub painted_share: f32,
    /// Variation of each photo.
    pub augment: AugmentConfig,
}

/// The occluder of one batch's occluded copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOccluder {
    /// The paper's black window, at one place in the stored crops' frame.
    Window(Occluder),
    /// Sunglasses or a mask at each face's own landmarks.
    Painted(Painted),
}

/// Per-entry target vectors (the teacher's embeddings), in manifest order.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTable {
    /// Length of each vector.
    pub dim: usize,
    /// One per manifest entry; entries without one are left out of batches.
    pub rows: Vec<Option<Vec<f32>>>,
}

/// Why a loader could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoaderError {
    /// A setting is out of range.
    #[error("loader: {0}")]
    Config(String),
}

/// One decoded mini-batch, as flat channel-major planes.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchData {
    /// The step this batch belongs to.
    pub step: u64,
    /// Images actually in the batch (the batch size less skipped images).
    pub len: usize,
    /// Side of each crop.
    pub crop_size: usize,
    /// `len x 3 x crop x crop` values in [-1, 1].
    pub clean: Vec<f32>,
    /// The same faces with the batch's occluder painted black, when occlusion is on.
    pub occluded: Option<Vec<f32>>,
    /// The occluder of this batch.
    pub occluder: Option<BatchOccluder>,
    /// The teacher's embedding of each image (`len x dim`), when the loader has targets.
    pub targets: Option<Vec<f32>>,
    /// Identity label of each image.
    pub labels: Vec<i64>,
    /// Top-left corner of each image's crop in its stored crop.
    pub offsets: Vec<(usize, usize)>,
    /// Images that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Makes batches from a manifest.
pub struct Loader {
    manifest: Arc<Manifest>,
    cfg: LoaderConfig,
    targets: Option<Arc<TargetTable>>,
    order: Mutex<Option<(u64, Arc<Vec<usize>>)>>,
}

fn mix(seed: u64, salt: u64, n: u64) -> u64 {
    // SplitMix64 finaliser over the three inputs: nearby steps get unrelated streams.
    let mut z = seed ^ salt.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Loader {
    /// A loader over `manifest`.
    pub fn new(manifest: Arc<Manifest>, cfg: LoaderConfig) -> Result<Self, LoaderError> {
        if cfg.batch_size == 0 {
            return Err(LoaderError::Config("batch_size must be at least 1".into()));
        }
        if cfg.crop_size == 0 || cfg.crop_size > cfg.source_size {
            return Err(LoaderError::Config(format!(
                "crop_size {} must be between 1 and source_size {}",
                cfg.crop_size, cfg.source_size
            )));
        }
        if manifest.entries.is_empty() {
            return Err(LoaderError::Config("the manifest lists no images".into()));
        }
        Ok(Self {
            manifest,
            cfg,
            targets: None,
            order: Mutex::new(None),
        })
    }

    /// The same loader, with the teacher's embedding of each entry added to every batch.
    pub fn with_targets(self, targets: Arc<TargetTable>) -> Result<Self, LoaderError> {
        if targets.rows.len() != self.manifest.entries.len() {
            return Err(LoaderError::Config(format!(
                "{} target rows for {} manifest entries",
                targets.rows.len(),
                self.manifest.entries.len()
            )));
        }
        Ok(Self {
            targets: Some(targets),
            ..self
        })
    }

    /// Batches in one pass over the data (a final partial batch is dropped).
    pub fn batches_per_epoch(&self) -> u64 {
        (self.manifest.entries.len() / self.cfg.batch_size).max(1) as u64
    }

    fn epoch_order(&self, epoch: u64) -> Arc<Vec<usize>> {
        let mut cache = self.order.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, order)) = cache.as_ref().filter(|(e, _)| *e == epoch) {
            return order.clone();
        }
        let mut order: Vec<usize> = (0..self.manifest.entries.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(mix(self.cfg.seed, 1, epoch)));
        let order = Arc::new(order);
        *cache = Some((epoch, order.clone()));
        order
    }

    /// The batch's occluder: the paper's window scaled to the stored crops' frame, or (for
    /// `painted_share` of the batches) sunglasses or a mask.
    fn occluder(&self, rng: &mut StdRng) -> BatchOccluder {
        let x = rng.random_range(Occluder::X_RANGE);
        let y = rng.random_range(Occluder::Y_RANGE);
        let window = Occluder::window(x, y).scaled_to(self.cfg.source_size);
        // No extra draws without painted occluders: older runs keep their exact batches.
        if self.cfg.painted_share <= 0.0 || rng.random_range(0.0f32..1.0) >= self.cfg.painted_share
        {
            return BatchOccluder::Window(window);
        }
        if rng.random_bool(0.5) {
            BatchOccluder::Painted(Painted::Sunglasses)
        } else {
            BatchOccluder::Painted(Painted::Mask)
        }
    }

    /// Batch number `step`.
    pub fn batch(&self, step: u64) -> BatchData {
        let per_epoch = self.batches_per_epoch();
        let order = self.epoch_order(step / per_epoch);
        let first = (step % per_epoch) as usize * self.cfg.batch_size;
        let picks: Vec<usize> = (0..self.cfg.batch_size)
            .map(|k| order[(first + k) % order.len()])
            .collect();
        let mut rng = StdRng::seed_from_u64(mix(self.cfg.seed, 2, step));
        let occluder = self.cfg.occlude.then(|| self.occluder(&mut rng));
        let span = self.cfg.source_size - self.cfg.crop_size;
        let draws: Vec<((usize, usize), Draw)> = picks
            .iter()
            .map(|_| {
                let offset = (rng.random_range(0..=span), rng.random_range(0..=span));
                (offset, self.cfg.augment.draw(&mut rng))
            })
            .collect();
        let decoded: Vec<Result<(image::RgbImage, u32), String>> =
            picks.par_iter().map(|&i| self.decode(i)).collect();

        let c = self.cfg.crop_size;
        let plane = c * c;
        let mut out = BatchData {
            step,
            len: 0,
            crop_size: c,
            clean: Vec::with_capacity(picks.len() * 3 * plane),
            occluded: occluder.map(|_| Vec::with_capacity(picks.len() * 3 * plane)),
            occluder,
            targets: self.targets.as_ref().map(|_| Vec::new()),
            labels: Vec::new(),
            offsets: Vec::new(),
            skipped: Vec::new(),
        };
        for ((&i, image), &(offset, draw)) in picks.iter().zip(decoded).zip(&draws) {
            let entry = &self.manifest.entries[i];
            let target = match self.targets.as_ref().map(|t| t.rows[i].as_ref()) {
                Some(None) => {
                    out.skipped
                        .push((entry.path.clone(), "no teacher embedding".into()));
                    continue;
                }
                Some(Some(t)) => Some(t),
                None => None,
            };
            let (image, stored) = match image {
                Ok(decoded) => decoded,
                Err(reason) => {
                    out.skipped.push((entry.path.clone(), reason));
                    continue;
                }
            };
            let start = out.clean.len();
            draw.render(&image, offset, c, &mut out.clean);
            if let (Some(occ), Some(buf)) = (occluder, out.occluded.as_mut()) {
                buf.extend_from_slice(&out.clean[start..]);
                let planes = &mut buf[start..];
                match occ {
                    BatchOccluder::Window(window) => {
                        let (ox, oy) = offset;
                        for y in 0..c {
                            for x in 0..c {
                                if window.covers(x + ox, y + oy) {
                                    for ch in 0..3 {
                                        planes[ch * plane + y * c + x] = -1.0;
                                    }
                                }
                            }
                        }
                    }
                    BatchOccluder::Painted(kind) => {
                        let points = entry.landmarks.as_deref().and_then(five_points);
                        if let Some(points) = points {
                            let scale = self.cfg.source_size as f32 / stored as f32;
                            let moved = points.map(|p| {
                                let (x, y) = draw.output_of(p.x * scale, p.y * scale, c, offset);
                                facegate_contract::Point::new(x, y)
                            });
                            kind.paint_planes(&moved, c, planes);
                        }
                    }
                }
            }
            if let (Some(t), Some(buf)) = (target, out.targets.as_mut()) {
                buf.extend_from_slice(t);
            }
            out.labels.push(i64::from(entry.label));
            out.offsets.push(offset);
            out.len += 1;
        }
        out
    }

    fn decode(&self, index: usize) -> Result<(image::RgbImage, u32), String> {
        decode_crop_sized(&self.manifest.entries[index].path, self.cfg.source_size)
    }
}

/// Decodes a stored aligned crop, which must be square and at least `source_size`: a larger
/// one (crops prepared for a larger network) is scaled down to `source_size`.
pub(super) fn decode_crop(path: &Path, source_size: usize) -> Result<image::RgbImage, String> {
    decode_crop_sized(path, source_size).map(|(image, _)| image)
}

/// [`decode_crop`], also giving the stored crop's side (the frame of its landmarks).
fn decode_crop_sized(path: &Path, source_size: usize) -> Result<(image::RgbImage, u32), String> {
    let image = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| format!("does not decode: {e}"))?
        .into_rgb8();
    let s = source_size as u32;
    let (w, h) = image.dimensions();
    if w != h || w < s {
        return Err(format!(
            "is {w}x{h}, expected an aligned square crop of at least {s}x{s}"
        ));
    }
    if w == s {
        return Ok((image, w));
    }
    let resized = image::imageops::resize(&image, s, s, image::imageops::FilterType::Triangle);
    Ok((resized, w))
}

/// Appends the `crop` x `crop` window at `(ox, oy)` of `image` as three normalised planes.
pub(crate) fn push_crop(
    image: &image::RgbImage,
    (ox, oy): (usize, usize),
    crop: usize,
    out: &mut Vec<f32>,
) {
    let plane = crop * crop;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    let norm = Normalisation::SYMMETRIC;
    for y in 0..crop {
        for x in 0..crop {
            let rgb = image.get_pixel((x + ox) as u32, (y + oy) as u32).0;
            let v = norm.apply(rgb.map(f32::from));
            for (ch, value) in v.into_iter().enumerate() {
                out[start + ch * plane + y * crop + x] = value;
            }
        }
    }
}

/// Batches made ahead on a background thread (at most `depth` waiting), in step order.
pub struct Prefetch {
    rx: Option<Receiver<BatchData>>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts making batches `start..end`.
    pub fn spawn(loader: Arc<Loader>, start: u64, end: u64, depth: usize) -> Self {
        let (tx, rx): (SyncSender<BatchData>, _) = sync_channel(depth.max(1));
        let handle = std::thread::spawn(move || {
            for step in start..end {
                if tx.send(loader.batch(step)).is_err() {
                    break; // The consumer stopped.
                }
            }
        });
        Self {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

impl Iterator for Prefetch {
    type Item = BatchData;

    fn next(&mut self) -> Option<BatchData> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the channel first lets a producer blocked on a full queue finish.
        self.rx.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Three identities, two images each: identity k is a flat colour with red = 40 + 60 k.
    fn fixture(name: &str) -> (PathBuf, Arc<Manifest>) {
        let dir =
            std::env::temp_dir().join(format!("facegate-loader-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lines = String::new();
        for k in 0..3u8 {
            for n in 0..2 {
                let file = format!("id{k}_{n}.png");
                image::RgbImage::from_pixel(110, 110, image::Rgb([40 + 60 * k, 200, 10]))
                    .save(dir.join(&file))
                    .unwrap();
                lines.push_str(&format!("{file},person{k}\n"));
            }
        }
        std::fs::write(dir.join("broken.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
        image::RgbImage::new(64, 64)
            .save(dir.join("small.png"))
            .unwrap();
        lines.push_str("broken.png,person0\nsmall.png,person1\n");
        let manifest = Manifest::parse(&lines, &dir.join("m.csv")).unwrap();
        (dir, Arc::new(manifest))
    }

    fn config(occlude: bool) -> LoaderConfig {
        LoaderConfig {
            batch_size: 8,
            source_size: 110,
            crop_size: 96,
            seed: 7,
            occlude,
            painted_share: 0.0,
            augment: AugmentConfig::default(),
        }
    }

    #[test]
    fn batches_are_deterministic_labelled_and_skip_bad_images() {
        let (dir, manifest) = fixture("determinism");
        let loader = Loader::new(manifest.clone(), config(false)).unwrap();
        let a = loader.batch(3);
        assert_eq!(a, loader.batch(3));
        assert_ne!(a.offsets, loader.batch(4).offsets);
        // All 8 manifest lines are in the one batch of the epoch; the two bad ones are skipped.
        assert_eq!(a.len, 6);
        assert_eq!(a.skipped.len(), 2);
        let reasons: Vec<String> = a
            .skipped
            .iter()
            .map(|(p, r)| format!("{} {r}", p.display()))
            .collect();
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("broken.png does not decode")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("small.png is 64x64")),
            "{reasons:?}"
        );
        // The red value of every image encodes its label.
        let plane = 96 * 96;
        for (n, &label) in a.labels.iter().enumerate() {
            let red = a.clean[n * 3 * plane];
            let want = (40.0 + 60.0 * label as f32) / 127.5 - 1.0;
            assert!((red - want).abs() < 1e-6, "image {n}: {red} vs {want}");
        }
        assert!(a.clean.iter().all(|v| (-1.0..=1.0).contains(v)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn occluded_copy_is_black_exactly_under_the_window() {
        let (dir, manifest) = fixture("occlusion");
        let loader = Loader::new(manifest, config(true)).unwrap();
        let b = loader.batch(11);
        let Some(BatchOccluder::Window(occ)) = b.occluder else {
            panic!("expected the window, got {:?}", b.occluder);
        };
        let dark = b.occluded.as_ref().unwrap();
        let plane = 96 * 96;
        for (n, &(ox, oy)) in b.offsets.iter().enumerate() {
            for y in 0..96 {
                for x in 0..96 {
                    let inside = (occ.x..occ.x + 32).contains(&(x + ox))
                        && (occ.y..occ.y + 12).contains(&(y + oy));
                    let i = n * 3 * plane + plane + y * 96 + x;
                    if inside {
                        assert_eq!(dark[i], -1.0);
                    } else {
                        assert_eq!(dark[i], b.clean[i]);
                    }
                }
            }
        }
        assert!(Occluder::X_RANGE.contains(&occ.x) && Occluder::Y_RANGE.contains(&occ.y));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn larger_crops_shrink_painted_occluders_follow_landmarks_and_targets_ride_along() {
        let dir =
            std::env::temp_dir().join(format!("facegate-loader-{}-paint", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = facegate_contract::align::AlignmentTemplate::square(96).centred_in(110, 110);
        let coords: Vec<String> = t
            .points
            .0
            .iter()
            .flat_map(|p| [p.x.to_string(), p.y.to_string()])
            .collect();
        let mut lines = String::new();
        for k in 0..2 {
            image::RgbImage::from_pixel(110, 110, image::Rgb([128, 128, 128]))
                .save(dir.join(format!("{k}.png")))
                .unwrap();
            lines.push_str(&format!("{k}.png,p{k},{}\n", coords.join(",")));
        }
        let manifest = Arc::new(Manifest::parse(&lines, &dir.join("m.csv")).unwrap());
        let cfg = LoaderConfig {
            batch_size: 2,
            source_size: 73,
            crop_size: 64,
            seed: 3,
            occlude: true,
            painted_share: 1.0,
            augment: AugmentConfig {
                enabled: true,
                ..AugmentConfig::default()
            },
        };
        let targets = Arc::new(TargetTable {
            dim: 2,
            rows: vec![Some(vec![1.0, 0.0]), None],
        });
        let loader = Loader::new(manifest, cfg)
            .unwrap()
            .with_targets(targets)
            .unwrap();
        let b = loader.batch(0);
        // The entry without a teacher embedding is left out, the other carries its target.
        assert_eq!(b.len, 1);
        assert_eq!(b.targets.as_deref(), Some([1.0, 0.0].as_slice()));
        assert_eq!(b.clean.len(), 3 * 64 * 64);
        let Some(BatchOccluder::Painted(kind)) = b.occluder else {
            panic!("expected a painted occluder, got {:?}", b.occluder);
        };
        let changed = b
            .occluded
            .as_ref()
            .unwrap()
            .iter()
            .zip(&b.clean)
            .filter(|(a, c)| a != c)
            .count();
        // Sunglasses or a mask covers a real part of the 64x64 face, not all of it.
        assert!(
            (3 * 200..3 * 64 * 64 / 2).contains(&changed),
            "{kind:?}: {changed}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn prefetch_yields_the_same_batches_in_order() {
        let (dir, manifest) = fixture("prefetch");
        let loader = Arc::new(Loader::new(manifest, config(true)).unwrap());
        let got: Vec<BatchData> = Prefetch::spawn(loader.clone(), 5, 9, 2).collect();
        assert_eq!(got.len(), 4);
        for (k, b) in got.iter().enumerate() {
            assert_eq!(*b, loader.batch(5 + k as u64));
        }
        // Dropping a prefetch mid-way stops its thread.
        let mut early = Prefetch::spawn(loader, 0, 1000, 1);
        assert!(early.next().is_some());
        drop(early);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_settings_are_refused() {
        let (dir, manifest) = fixture("settings");
        let mut cfg = config(false);
        cfg.crop_size = 120;
        let err = Loader::new(manifest, cfg).err().unwrap();
        assert!(err.to_string().contains("crop_size 120"), "{err}");
        assert!(Path::new(&dir).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
