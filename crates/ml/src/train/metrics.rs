//! Accuracy bookkeeping on host-side logits.

/// Number of rows of `logits` (`[labels.len(), classes]`, row-major) whose label is the arg-max,
/// and whose label is among the `k` largest logits.
pub fn topk_correct(logits: &[f32], classes: usize, labels: &[usize], k: usize) -> (usize, usize) {
    let mut top1 = 0;
    let mut topk = 0;
    for (row, &label) in logits.chunks_exact(classes.max(1)).zip(labels) {
        let target = row[label];
        // Rank = how many logits beat the target (ties resolved in the target's favour only
        // when the earlier index is the target, like an arg-max).
        let better = row
            .iter()
            .enumerate()
            .filter(|&(i, &v)| v > target || (v == target && i < label))
            .count();
        if better == 0 {
            top1 += 1;
        }
        if better < k {
            topk += 1;
        }
    }
    (top1, topk)
}

/// Running sums over one pass.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Accumulator {
    pub loss_sum: f64,
    pub correct: usize,
    pub correct_top5: usize,
    pub count: usize,
}

impl Accumulator {
    pub fn add(&mut self, mean_loss: f64, correct: usize, correct_top5: usize, count: usize) {
        self.loss_sum += mean_loss * count as f64;
        self.correct += correct;
        self.correct_top5 += correct_top5;
        self.count += count;
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count.max(1) as f64
    }

    pub fn top5(&self) -> f64 {
        self.correct_top5 as f64 / self.count.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_counts() {
        let logits = [0.1, 0.9, 0.0, 0.5, 0.2, 0.3, 0.3, 0.3, 0.3];
        assert_eq!(topk_correct(&logits, 3, &[1, 2, 0], 1), (2, 2));
        assert_eq!(topk_correct(&logits, 3, &[0, 2, 1], 2), (0, 3));
    }
}
