//! Candidate face boxes between the detector's stages: overlap, non-maximum suppression,
//! squaring and the networks' box regression.

/// A candidate face box in source-image pixels, with the score of the stage that kept it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
    /// Face probability from the last network that saw this box.
    pub score: f32,
}

/// How two boxes' overlap is measured in [`nms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller box (drops boxes nested in a better one).
    Min,
}

impl Candidate {
    fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Overlap of `self` and `other` as `how` measures it, in 0..=1.
    pub fn overlap(&self, other: &Candidate, how: Overlap) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let denom = match how {
            Overlap::Union => self.area() + other.area() - inter,
            Overlap::Min => self.area().min(other.area()),
        };
        if denom > 0.0 { inter / denom } else { 0.0 }
    }

    /// The square of the box's larger side around its centre (the next network's input is square).
    pub fn squared(&self) -> Candidate {
        let (w, h) = (self.x2 - self.x1, self.y2 - self.y1);
        let side = w.max(h);
        let x1 = self.x1 + 0.5 * (w - side);
        let y1 = self.y1 + 0.5 * (h - side);
        Candidate {
            x1,
            y1,
            x2: x1 + side,
            y2: y1 + side,
            score: self.score,
        }
    }

    /// The box moved by a network's regression `[dx1, dy1, dx2, dy2]`, in units of its size.
    pub fn regressed(&self, reg: [f32; 4]) -> Candidate {
        let w = self.x2 - self.x1 + 1.0;
        let h = self.y2 - self.y1 + 1.0;
        Candidate {
            x1: self.x1 + reg[0] * w,
            y1: self.y1 + reg[1] * h,
            x2: self.x2 + reg[2] * w,
            y2: self.y2 + reg[3] * h,
            score: self.score,
        }
    }
}

/// Keeps the best-scoring boxes, dropping every box that overlaps a better kept one by more
/// than `threshold`. Returns indices into `boxes`, best first.
pub fn nms(boxes: &[Candidate], threshold: f32, how: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept
            .iter()
            .all(|&k| boxes[k].overlap(&boxes[i], how) <= threshold)
        {
            kept.push(i);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Candidate {
        Candidate {
            x1,
            y1,
            x2,
            y2,
            score,
        }
    }

    #[test]
    fn overlap_measures() {
        let a = b(0.0, 0.0, 10.0, 10.0, 1.0);
        let c = b(5.0, 0.0, 15.0, 10.0, 1.0);
        assert!((a.overlap(&c, Overlap::Union) - 50.0 / 150.0).abs() < 1e-6);
        let inner = b(2.0, 2.0, 4.0, 4.0, 1.0);
        assert!((a.overlap(&inner, Overlap::Min) - 1.0).abs() < 1e-6);
        assert_eq!(
            a.overlap(&b(20.0, 20.0, 30.0, 30.0, 1.0), Overlap::Union),
            0.0
        );
    }

    #[test]
    fn nms_keeps_the_best_of_each_cluster() {
        let boxes = [
            b(0.0, 0.0, 10.0, 10.0, 0.7),
            b(1.0, 1.0, 11.0, 11.0, 0.9),
            b(50.0, 50.0, 60.0, 60.0, 0.8),
        ];
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), vec![1, 2]);
        assert_eq!(nms(&boxes, 0.99, Overlap::Union), vec![1, 2, 0]);
    }

    #[test]
    fn squared_keeps_the_centre() {
        let s = b(10.0, 20.0, 30.0, 60.0, 0.5).squared();
        assert_eq!((s.x1, s.y1, s.x2, s.y2), (0.0, 20.0, 40.0, 60.0));
        let r = b(0.0, 0.0, 9.0, 9.0, 0.5).regressed([0.1, -0.1, 0.0, 0.5]);
        assert_eq!((r.x1, r.y1, r.x2, r.y2), (1.0, -1.0, 9.0, 14.0));
    }
}
