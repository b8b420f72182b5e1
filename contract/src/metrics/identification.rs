//! Closed-set identification: is the right person among the k best-scoring identities?

use super::MetricsError;

/// Share of probes whose true identity ranks within the top `k` identities of the gallery.
///
/// `scores` is row-major, one row per probe and one column per gallery entry. An identity with
/// several gallery entries is scored by its best entry. Ties count against the probe: another
/// identity scoring *equal* to the true one ranks ahead of it, so a model that outputs constant
/// scores scores zero, not one.
pub fn rank_k_accuracy(
    scores: &[f32],
    probe_ids: &[u32],
    gallery_ids: &[u32],
    k: usize,
) -> Result<f64, MetricsError> {
    if k == 0 {
        return Err(MetricsError::Parameter("rank k must be at least 1"));
    }
    if probe_ids.is_empty() {
        return Err(MetricsError::Empty { what: "probe" });
    }
    let cols = gallery_ids.len();
    if scores.len() != probe_ids.len() * cols {
        return Err(MetricsError::Shape {
            what: "score matrix (probes x gallery entries)",
            expected: probe_ids.len() * cols,
            got: scores.len(),
        });
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(MetricsError::NaN {
            what: "identification",
            index,
        });
    }
    let mut identities: Vec<u32> = gallery_ids.to_vec();
    identities.sort_unstable();
    identities.dedup();
    let mut hits = 0usize;
    let mut best = vec![f32::NEG_INFINITY; identities.len()];
    for (probe, (&truth, row)) in probe_ids.iter().zip(scores.chunks(cols)).enumerate() {
        best.fill(f32::NEG_INFINITY);
        for (&id, &s) in gallery_ids.iter().zip(row) {
            // `identities` is sorted and holds every gallery id, so the search always succeeds.
            if let Ok(slot) = identities.binary_search(&id) {
                best[slot] = best[slot].max(s);
            }
        }
        let Ok(true_slot) = identities.binary_search(&truth) else {
            return Err(MetricsError::NotInGallery {
                probe,
                identity: truth,
            });
        };
        let own = best[true_slot];
        let ahead = best
            .iter()
            .enumerate()
            .filter(|&(slot, &s)| slot != true_slot && s >= own)
            .count();
        if ahead < k {
            hits += 1;
        }
    }
    Ok(hits as f64 / probe_ids.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_one_and_five_by_hand() {
        // Gallery: identities 1, 2, 3 (identity 2 has two entries).
        let gallery = [1, 2, 2, 3];
        let probes = [1, 2, 3];
        #[rustfmt::skip]
        let scores = [
            0.9, 0.1, 0.2, 0.3, // probe of 1: rank 1
            0.8, 0.1, 0.7, 0.2, // probe of 2: best entry 0.7 < 0.8 of id 1: rank 2
            0.5, 0.6, 0.1, 0.4, // probe of 3: 0.4 behind 0.5 and 0.6: rank 3
        ];
        let r1 = rank_k_accuracy(&scores, &probes, &gallery, 1).unwrap();
        assert!((r1 - 1.0 / 3.0).abs() < 1e-12);
        let r2 = rank_k_accuracy(&scores, &probes, &gallery, 2).unwrap();
        assert!((r2 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rank_k_accuracy(&scores, &probes, &gallery, 5).unwrap(), 1.0);
    }

    #[test]
    fn ties_count_against_the_probe() {
        let scores = [0.5, 0.5];
        assert_eq!(rank_k_accuracy(&scores, &[1], &[1, 2], 1).unwrap(), 0.0);
    }

    #[test]
    fn bad_shapes_and_unknown_identities_are_errors() {
        assert!(matches!(
            rank_k_accuracy(&[0.1; 3], &[1], &[1, 2], 1),
            Err(MetricsError::Shape { .. })
        ));
        assert_eq!(
            rank_k_accuracy(&[0.1, 0.2], &[7], &[1, 2], 1),
            Err(MetricsError::NotInGallery {
                probe: 0,
                identity: 7
            })
        );
        assert!(rank_k_accuracy(&[0.1], &[1], &[1], 0).is_err());
    }
}
