//! Feature similarity: cosine, and cosine over a subset of dimensions.
//!
//! Pipeline position: *match* on the device, and every verification metric on the trainer.
//! The masked form is what occlusion-aware matching compares on: the dimensions whose filters an
//! occlusion damaged are left out of both the dot product and the norms.

use serde::{Deserialize, Serialize};

/// Why two features could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimilarityError {
    /// The two features (or a feature and its mask) have different lengths.
    #[error("feature dimensions differ: {left} vs {right}")]
    DimensionMismatch {
        /// Length of the first operand.
        left: usize,
        /// Length of the second operand.
        right: usize,
    },
}

/// Which feature dimensions take part in a comparison (`true` = kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureMask(Vec<bool>);

impl FeatureMask {
    /// A mask that keeps all `dim` dimensions.
    pub fn all(dim: usize) -> Self {
        Self(vec![true; dim])
    }

    /// A mask over `dim` dimensions that drops the listed ones; indices past `dim` are ignored.
    pub fn without(dim: usize, dropped: impl IntoIterator<Item = usize>) -> Self {
        let mut keep = vec![true; dim];
        for i in dropped {
            if let Some(k) = keep.get_mut(i) {
                *k = false;
            }
        }
        Self(keep)
    }

    /// Number of dimensions the mask covers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the mask covers no dimensions at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of dimensions kept.
    pub fn kept(&self) -> usize {
        self.0.iter().filter(|&&k| k).count()
    }

    /// Whether dimension `i` is kept.
    pub fn keeps(&self, i: usize) -> bool {
        self.0.get(i).copied().unwrap_or(false)
    }
}

impl From<Vec<bool>> for FeatureMask {
    fn from(keep: Vec<bool>) -> Self {
        Self(keep)
    }
}

fn same_len(a: usize, b: usize) -> Result<(), SimilarityError> {
    if a == b {
        Ok(())
    } else {
        Err(SimilarityError::DimensionMismatch { left: a, right: b })
    }
}

/// Cosine of the angle between `a` and `b`, in -1..=1. A zero vector is similar to nothing:
/// the result is 0, so it can never pass a match threshold.
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f32, SimilarityError> {
    same_len(a.len(), b.len())?;
    Ok(cosine_of(a.iter().copied().zip(b.iter().copied())))
}

/// Cosine over the dimensions `mask` keeps; 0 when no kept dimension carries signal.
pub fn cosine_masked(a: &[f32], b: &[f32], mask: &FeatureMask) -> Result<f32, SimilarityError> {
    same_len(a.len(), b.len())?;
    same_len(a.len(), mask.len())?;
    let kept = a
        .iter()
        .zip(b)
        .zip(&mask.0)
        .filter(|(_, keep)| **keep)
        .map(|((x, y), _)| (*x, *y));
    Ok(cosine_of(kept))
}

fn cosine_of(pairs: impl Iterator<Item = (f32, f32)>) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in pairs {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0) as f32
}

/// Scales `v` to unit length in place; leaves a zero vector unchanged. Stored templates are kept
/// unit-length so that 1:N search is a dot product.
pub fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (*x as f64 / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0]).unwrap()).abs() < 1e-7);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]).unwrap() - 1.0).abs() < 1e-7);
        assert!((cosine(&[1.0, 2.0], &[-1.0, -2.0]).unwrap() + 1.0).abs() < 1e-7);
        // (3,4).(4,3) = 24, |.| = 5 each: 24/25.
        assert!((cosine(&[3.0, 4.0], &[4.0, 3.0]).unwrap() - 0.96).abs() < 1e-7);
    }

    #[test]
    fn zero_vectors_match_nothing() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]).unwrap(), 0.0);
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        assert_eq!(
            cosine(&[1.0], &[1.0, 2.0]),
            Err(SimilarityError::DimensionMismatch { left: 1, right: 2 })
        );
        let mask = FeatureMask::all(3);
        assert!(cosine_masked(&[1.0, 2.0], &[1.0, 2.0], &mask).is_err());
    }

    #[test]
    fn masked_cosine_ignores_dropped_dimensions() {
        // Dimension 2 is "occluded": it disagrees completely, the rest agree.
        let a = [3.0, 4.0, 10.0];
        let b = [3.0, 4.0, -10.0];
        let full = cosine(&a, &b).unwrap();
        // (9 + 16 - 100) / 125 = -0.6
        assert!((full + 0.6).abs() < 1e-6, "{full}");
        let mask = FeatureMask::without(3, [2]);
        assert_eq!(mask.kept(), 2);
        assert!(!mask.keeps(2) && mask.keeps(0));
        let masked = cosine_masked(&a, &b, &mask).unwrap();
        assert!((masked - 1.0).abs() < 1e-6, "{masked}");
    }

    #[test]
    fn mask_ignores_indices_past_its_length() {
        let mask = FeatureMask::without(2, [0, 9]);
        assert_eq!(mask.kept(), 1);
        assert!(!mask.keeps(9));
    }

    #[test]
    fn normalize_makes_unit_length() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut z = [0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }
}
