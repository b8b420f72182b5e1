//! Set-to-set (template) distance, as used for IJB-A style evaluation (docs/method.md).

use super::MetricsError;
use crate::similarity::cosine;

/// Distance between two templates (sets of features of one person each): with `D` the matrix of
/// pairwise cosine distances `1 - cos`, `(sum of row minima + sum of column minima) / (n1 + n2)`.
/// Each face is credited with its closest counterpart in the other set, so one bad photo in a
/// template does not sink the comparison.
pub fn template_distance(t1: &[&[f32]], t2: &[&[f32]]) -> Result<f64, MetricsError> {
    if t1.is_empty() {
        return Err(MetricsError::Empty {
            what: "first template",
        });
    }
    if t2.is_empty() {
        return Err(MetricsError::Empty {
            what: "second template",
        });
    }
    let dim = t1[0].len();
    if let Some(bad) = t1.iter().chain(t2).find(|f| f.len() != dim) {
        return Err(MetricsError::Shape {
            what: "template feature length",
            expected: dim,
            got: bad.len(),
        });
    }
    let mut row_min = vec![f64::INFINITY; t1.len()];
    let mut col_min = vec![f64::INFINITY; t2.len()];
    for (i, a) in t1.iter().enumerate() {
        for (j, b) in t2.iter().enumerate() {
            // Lengths were checked above, so the comparison cannot fail.
            let d = 1.0 - cosine(a, b).map_or(0.0, f64::from);
            row_min[i] = row_min[i].min(d);
            col_min[j] = col_min[j].min(d);
        }
    }
    let total: f64 = row_min.iter().sum::<f64>() + col_min.iter().sum::<f64>();
    Ok(total / (t1.len() + t2.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_distance_by_hand() {
        // t1 = {x, y}, t2 = {x, -x}. Distances: d(x,x)=0, d(x,-x)=2, d(y,x)=1, d(y,-x)=1.
        // Row minima: 0, 1. Column minima: 0, 1. (0+1+0+1) / 4 = 0.5.
        let (x, y, nx) = ([1.0f32, 0.0], [0.0f32, 1.0], [-1.0f32, 0.0]);
        let d = template_distance(&[&x, &y], &[&x, &nx]).unwrap();
        assert!((d - 0.5).abs() < 1e-7, "{d}");
        // Identical single-face templates are at distance 0.
        assert!(template_distance(&[&x], &[&x]).unwrap().abs() < 1e-7);
    }

    #[test]
    fn empty_or_ragged_templates_are_errors() {
        let x = [1.0f32, 0.0];
        let short = [1.0f32];
        assert!(template_distance(&[], &[&x]).is_err());
        assert!(matches!(
            template_distance(&[&x], &[&short]),
            Err(MetricsError::Shape { .. })
        ));
    }
}
