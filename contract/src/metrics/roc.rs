//! Verification metrics: the ROC of genuine vs impostor similarity scores.

use super::MetricsError;

/// One operating point: accept a pair when its score is `>= threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    /// The acceptance threshold (`+inf` for the point that accepts nothing).
    pub threshold: f32,
    /// False accept rate: share of impostor pairs accepted.
    pub far: f64,
    /// True accept rate: share of genuine pairs accepted.
    pub tar: f64,
}

/// The equal error rate and where it lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eer {
    /// The rate at which false accepts and false rejects are equal (interpolated between the two
    /// operating points that straddle the crossing).
    pub rate: f64,
    /// The threshold of the first operating point at or past the crossing.
    pub threshold: f32,
}

/// A receiver operating characteristic: one point per distinct score, thresholds descending,
/// starting at `(far, tar) = (0, 0)` and ending at `(1, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Roc {
    points: Vec<RocPoint>,
}

fn check(scores: &[f32], what: &'static str) -> Result<(), MetricsError> {
    if scores.is_empty() {
        return Err(MetricsError::Empty { what });
    }
    match scores.iter().position(|s| s.is_nan()) {
        Some(index) => Err(MetricsError::NaN { what, index }),
        None => Ok(()),
    }
}

impl Roc {
    /// Builds the ROC from the scores of genuine (same person) and impostor pairs.
    pub fn new(genuine: &[f32], impostor: &[f32]) -> Result<Self, MetricsError> {
        check(genuine, "genuine")?;
        check(impostor, "impostor")?;
        let mut all: Vec<(f32, bool)> = genuine
            .iter()
            .map(|&s| (s, true))
            .chain(impostor.iter().map(|&s| (s, false)))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (g, i) = (genuine.len() as f64, impostor.len() as f64);
        let mut points = vec![RocPoint {
            threshold: f32::INFINITY,
            far: 0.0,
            tar: 0.0,
        }];
        let (mut ga, mut ia) = (0usize, 0usize);
        let mut k = 0;
        while k < all.len() {
            let threshold = all[k].0;
            // Every pair with this exact score is accepted together.
            while k < all.len() && all[k].0 == threshold {
                if all[k].1 {
                    ga += 1;
                } else {
                    ia += 1;
                }
                k += 1;
            }
            points.push(RocPoint {
                threshold,
                far: ia as f64 / i,
                tar: ga as f64 / g,
            });
        }
        Ok(Self { points })
    }

    /// All operating points, thresholds descending (FAR and TAR ascending).
    pub fn points(&self) -> &[RocPoint] {
        &self.points
    }

    /// The operating point whose FAR is nearest `target`; among equally near points the one
    /// with the lower FAR (the safer side), and at equal FAR the one with the higher TAR.
    pub fn at_far(&self, target: f64) -> RocPoint {
        let mut best = self.points[0];
        for p in &self.points[1..] {
            let (d, db) = ((p.far - target).abs(), (best.far - target).abs());
            let nearer = d < db;
            let as_near_better =
                d == db && (p.far < best.far || (p.far == best.far && p.tar > best.tar));
            if nearer || as_near_better {
                best = *p;
            }
        }
        best
    }

    /// The equal error rate, where FAR equals FRR = 1 - TAR.
    pub fn eer(&self) -> Eer {
        let gap = |p: &RocPoint| (1.0 - p.tar) - p.far;
        // The first point has gap 1 > 0 and the last gap -1 < 0, so a crossing always exists.
        let mut prev = self.points[0];
        for p in &self.points[1..] {
            let (g0, g1) = (gap(&prev), gap(p));
            if g1 <= 0.0 {
                let t = g0 / (g0 - g1);
                let far = prev.far + t * (p.far - prev.far);
                return Eer {
                    rate: far,
                    threshold: p.threshold,
                };
            }
            prev = *p;
        }
        Eer {
            rate: prev.far,
            threshold: prev.threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn roc_of_a_hand_computed_case() {
        let genuine = [0.9, 0.8, 0.7, 0.3];
        let impostor = [0.6, 0.4, 0.2, 0.1];
        let roc = Roc::new(&genuine, &impostor).unwrap();
        let got: Vec<(f64, f64)> = roc.points().iter().map(|p| (p.far, p.tar)).collect();
        let want = [
            (0.0, 0.0),
            (0.0, 0.25),
            (0.0, 0.5),
            (0.0, 0.75),
            (0.25, 0.75),
            (0.5, 0.75),
            (0.5, 1.0),
            (0.75, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(got, want);
        // FRR = FAR = 0.25 exactly at threshold 0.6.
        let eer = roc.eer();
        assert!(approx(eer.rate, 0.25), "{eer:?}");
        assert_eq!(eer.threshold, 0.6);
    }

    #[test]
    fn eer_interpolates_between_straddling_points() {
        // Points: (0,0) t=inf, (0,0.5) t=0.9, (0.5,0.5) t=0.8, (0.5,1) t=0.7, (1,1) t=0.1.
        // Gap = FRR - FAR: 1, 0.5, 0, ... -> crossing exactly at (0.5, 0.5): EER 0.5.
        let roc = Roc::new(&[0.9, 0.7], &[0.8, 0.1]).unwrap();
        assert!(approx(roc.eer().rate, 0.5));
        // Genuine [0.9, 0.6, 0.5], impostor [0.7]: points (0,0), (0,1/3) t=.9, (1,1/3) t=.7, ...
        // Gaps: 1, 2/3, -1/3 -> t = (2/3)/(2/3+1/3) = 2/3 along FAR 0..1: EER = 2/3.
        let roc = Roc::new(&[0.9, 0.6, 0.5], &[0.7]).unwrap();
        assert!(approx(roc.eer().rate, 2.0 / 3.0), "{:?}", roc.eer());
        assert_eq!(roc.eer().threshold, 0.7);
    }

    #[test]
    fn perfect_separation_has_zero_eer() {
        let roc = Roc::new(&[0.9, 0.8], &[0.1, 0.2]).unwrap();
        assert!(approx(roc.eer().rate, 0.0));
        let p = roc.at_far(1e-3);
        assert_eq!((p.far, p.tar), (0.0, 1.0));
        assert_eq!(p.threshold, 0.8);
    }

    #[test]
    fn tied_scores_move_together() {
        let roc = Roc::new(&[0.5, 0.5], &[0.5, 0.1]).unwrap();
        let got: Vec<(f64, f64)> = roc.points().iter().map(|p| (p.far, p.tar)).collect();
        assert_eq!(got, [(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn tar_at_far_picks_the_nearest_point() {
        // 10 impostors 0.0..0.9, genuine spread so TAR changes at each impostor step.
        let impostor: Vec<f32> = (0..10).map(|k| k as f32 / 10.0).collect();
        let genuine = [0.95, 0.85, 0.75, 0.65, 0.55];
        let roc = Roc::new(&genuine, &impostor).unwrap();
        // FAR steps are 0.1; target 0.12 -> nearest FAR 0.1 (threshold 0.9); TAR there: 0.95
        // accepted, then at t=0.85 0.85 also, but FAR 0.1 holds for thresholds 0.9 and 0.85:
        // the higher TAR at equal FAR is (0.1, 0.4).
        let p = roc.at_far(0.12);
        assert!(approx(p.far, 0.1));
        assert!(approx(p.tar, 0.4), "{p:?}");
        assert_eq!(p.threshold, 0.85);
        // Exactly between 0.1 and 0.2: the lower FAR wins.
        assert!(approx(roc.at_far(0.15).far, 0.1));
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            Roc::new(&[], &[0.1]),
            Err(MetricsError::Empty { what: "genuine" })
        );
        assert_eq!(
            Roc::new(&[0.1], &[0.2, f32::NAN]),
            Err(MetricsError::NaN {
                what: "impostor",
                index: 1
            })
        );
    }
}
