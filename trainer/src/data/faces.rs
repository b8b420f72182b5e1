//! Held-out faces for measurement and export checks: every crop of a manifest, centre-cropped
//! to the network input (no random offset, no occluder), decoded on several threads.

use super::loader::{decode_crop, push_crop};
use super::manifest::Manifest;
use rayon::prelude::*;
use std::path::PathBuf;

/// A set of faces ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceSet {
    /// Side of each face.
    pub size: usize,
    /// `len x 3 x size x size` values in [-1, 1].
    pub pixels: Vec<f32>,
    /// Identity label of each face.
    pub labels: Vec<u32>,
    /// Index of each face's manifest entry (skipped entries leave gaps).
    pub entries: Vec<usize>,
    /// Images that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl FaceSet {
    /// Decodes every crop of `manifest` (stored at `source_size`) and takes its centre
    /// `size` x `size`.
    pub fn centre_crops(manifest: &Manifest, source_size: usize, size: usize) -> Self {
        let offset = source_size.saturating_sub(size) / 2;
        let decoded: Vec<_> = manifest
            .entries
            .par_iter()
            .map(|e| decode_crop(&e.path, source_size))
            .collect();
        let mut set = Self {
            size,
            pixels: Vec::new(),
            labels: Vec::new(),
            entries: Vec::new(),
            skipped: Vec::new(),
        };
        for (index, (entry, image)) in manifest.entries.iter().zip(decoded).enumerate() {
            match image {
                Ok(image) if size <= source_size => {
                    push_crop(&image, (offset, offset), size, &mut set.pixels);
                    set.labels.push(entry.label);
                    set.entries.push(index);
                }
                Ok(_) => set.skipped.push((
                    entry.path.clone(),
                    format!("is smaller than the {size}x{size} network input"),
                )),
                Err(reason) => set.skipped.push((entry.path.clone(), reason)),
            }
        }
        set
    }

    /// Number of faces.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no face could be used.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The faces in runs of at most `batch`, each as (count, pixels).
    pub fn batches(&self, batch: usize) -> impl Iterator<Item = (usize, &[f32])> {
        let per_face = 3 * self.size * self.size;
        self.pixels
            .chunks(batch.max(1) * per_face)
            .map(move |c| (c.len() / per_face, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_crop_takes_the_middle_and_lists_bad_files() {
        let dir = std::env::temp_dir().join(format!("facegate-faces-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A 10x10 image whose red channel is the column index times 20.
        let img = image::RgbImage::from_fn(10, 10, |x, _| image::Rgb([(x * 20) as u8, 0, 255]));
        img.save(dir.join("a.png")).unwrap();
        std::fs::write(dir.join("b.png"), b"not a png").unwrap();
        let manifest = Manifest::parse("a.png,alice\nb.png,bob\n", &dir.join("m.csv")).unwrap();
        let set = FaceSet::centre_crops(&manifest, 10, 6);
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped.len(), 1);
        assert!(set.skipped[0].0.ends_with("b.png"));
        // Column 0 of the crop is image column 2: red 40 -> 40/127.5 - 1.
        let want = 40.0 / 127.5 - 1.0;
        assert!((set.pixels[0] - want).abs() < 1e-6, "{}", set.pixels[0]);
        // Blue plane is 255 everywhere -> 1.0.
        assert!((set.pixels[2 * 36] - 1.0).abs() < 1e-6);
        let batches: Vec<_> = set.batches(4).collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].0, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
