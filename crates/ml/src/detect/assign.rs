//! Ultralytics' task-aligned assigner (TOOD), on the host: which anchors learn which ground-truth
//! box, and with which soft class target.
//!
//! For every ground-truth box, the anchors whose centre lies inside it (sides shorter than
//! `candidate_min_side` widened to it about the centre, as current Ultralytics does) are
//! candidates; each gets
//! the alignment metric `score^α · CIoU^β` (score of the box's class, CIoU of the predicted box,
//! clamped at 0); the `topk` best are positives. An anchor claimed by several boxes keeps the one
//! it overlaps most. The class target of a positive is its alignment metric normalised so that the
//! best anchor of each box gets that box's best IoU.

use super::postprocess::Xyxy;

/// A ground-truth box in model-input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    /// Class index.
    pub class_id: usize,
    /// Corners `x1, y1, x2, y2`.
    pub xyxy: Xyxy,
}

/// Assigner settings (Ultralytics' defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssignerConfig {
    /// Positives per box.
    pub topk: usize,
    /// Exponent of the class score.
    pub alpha: f32,
    /// Exponent of the IoU.
    pub beta: f32,
    /// Numerical guard.
    pub eps: f32,
    /// Boxes narrower or lower than this (pixels) look for candidate anchors in a region widened
    /// to it about their centre (Ultralytics: the middle stride, 16).
    pub candidate_min_side: f32,
}

impl Default for AssignerConfig {
    fn default() -> Self {
        Self {
            topk: 10,
            alpha: 0.5,
            beta: 6.0,
            eps: 1e-9,
            candidate_min_side: 16.0,
        }
    }
}

/// The region whose anchors are candidates for box `b`: `b` with sides below `min_side` widened
/// to it about the centre.
fn candidate_region(b: &Xyxy, min_side: f32) -> Xyxy {
    let widen = |lo: f32, hi: f32| {
        if hi - lo < min_side {
            let centre = (lo + hi) / 2.0;
            (centre - min_side / 2.0, centre + min_side / 2.0)
        } else {
            (lo, hi)
        }
    };
    let (x1, x2) = widen(b[0], b[2]);
    let (y1, y2) = widen(b[1], b[3]);
    [x1, y1, x2, y2]
}

/// A positive anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positive {
    /// Anchor index.
    pub anchor: usize,
    /// Index of its ground-truth box.
    pub gt: usize,
    /// Soft target of the box's class (the normalised alignment metric).
    pub weight: f32,
}

/// Complete IoU of two boxes (Ultralytics' `bbox_iou(..., CIoU=True)`, eps 1e-7): IoU minus the
/// normalised centre distance and an aspect-ratio consistency term. In `[-1.5, 1]`.
pub fn ciou(a: &Xyxy, b: &Xyxy) -> f32 {
    let eps = 1e-7f32;
    let (w1, h1) = (a[2] - a[0], a[3] - a[1] + eps);
    let (w2, h2) = (b[2] - b[0], b[3] - b[1] + eps);
    let inter =
        (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) * (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let union = w1 * h1 + w2 * h2 - inter + eps;
    let iou = inter / union;
    let cw = a[2].max(b[2]) - a[0].min(b[0]);
    let ch = a[3].max(b[3]) - a[1].min(b[1]);
    let c2 = cw * cw + ch * ch + eps;
    let dx = b[0] + b[2] - a[0] - a[2];
    let dy = b[1] + b[3] - a[1] - a[3];
    let rho2 = (dx * dx + dy * dy) / 4.0;
    let dv = (w2 / h2).atan() - (w1 / h1).atan();
    let v = 4.0 / (std::f32::consts::PI * std::f32::consts::PI) * dv * dv;
    let alpha = v / (v - iou + (1.0 + eps));
    iou - (rho2 / c2 + v * alpha)
}

/// Assigns one image. `scores` are class probabilities `[A, classes]` row-major, `boxes` the
/// predicted boxes and `anchors` the anchor centres, all in input pixels. Positives are returned by
/// anchor index.
pub fn assign(
    config: &AssignerConfig,
    scores: &[f32],
    num_classes: usize,
    boxes: &[Xyxy],
    anchors: &[[f32; 2]],
    gts: &[GtBox],
) -> Vec<Positive> {
    let a_count = anchors.len();
    if gts.is_empty() || a_count == 0 {
        return Vec::new();
    }
    // Per box: candidate anchors with (overlap, alignment).
    struct Candidate {
        anchor: usize,
        overlap: f32,
        align: f32,
    }
    let mut candidates: Vec<Vec<Candidate>> = Vec::with_capacity(gts.len());
    for gt in gts {
        let b = gt.xyxy;
        let r = candidate_region(&b, config.candidate_min_side);
        let mut list = Vec::new();
        for (anchor, p) in anchors.iter().enumerate() {
            let inside = p[0] - r[0] > config.eps
                && p[1] - r[1] > config.eps
                && r[2] - p[0] > config.eps
                && r[3] - p[1] > config.eps;
            if !inside {
                continue;
            }
            let overlap = ciou(&b, &boxes[anchor]).max(0.0);
            let score = scores
                .get(anchor * num_classes + gt.class_id)
                .copied()
                .unwrap_or(0.0);
            let align = score.powf(config.alpha) * overlap.powf(config.beta);
            list.push(Candidate {
                anchor,
                overlap,
                align,
            });
        }
        candidates.push(list);
    }
    // Top-k over all anchors (non-candidates count as 0; ties go to the lower anchor index), kept
    // only where the anchor is a candidate.
    let mut positive: Vec<Vec<(usize, f32, f32)>> = Vec::with_capacity(gts.len());
    for list in &candidates {
        let mut ranked: Vec<&Candidate> = list.iter().filter(|c| c.align > 0.0).collect();
        ranked.sort_by(|x, y| y.align.total_cmp(&x.align).then(x.anchor.cmp(&y.anchor)));
        ranked.truncate(config.topk);
        let mut chosen: Vec<(usize, f32, f32)> = ranked
            .iter()
            .map(|c| (c.anchor, c.overlap, c.align))
            .collect();
        let missing = config.topk.saturating_sub(chosen.len());
        if missing > 0 {
            // The lowest-indexed zero-valued anchors fill the top-k; those inside the box count.
            // (Candidates are in anchor order.)
            let mut taken = 0;
            for anchor in 0..a_count {
                if taken == missing {
                    break;
                }
                match list.binary_search_by_key(&anchor, |c| c.anchor) {
                    Ok(i) if list[i].align > 0.0 => continue,
                    Ok(i) => chosen.push((anchor, list[i].overlap, list[i].align)),
                    Err(_) => {}
                }
                taken += 1;
            }
        }
        positive.push(chosen);
    }
    // Anchor → boxes claiming it.
    let mut claims: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (g, chosen) in positive.iter().enumerate() {
        for &(anchor, _, _) in chosen {
            claims.entry(anchor).or_default().push(g);
        }
    }
    // Candidates are in anchor order.
    let overlap_of = |g: usize, anchor: usize| -> (f32, f32) {
        candidates[g]
            .binary_search_by_key(&anchor, |c| c.anchor)
            .map_or((0.0, 0.0), |i| {
                (candidates[g][i].overlap, candidates[g][i].align)
            })
    };
    // Resolve multiple claims by the highest overlap over all boxes (first on ties).
    let mut owner: Vec<(usize, usize)> = Vec::with_capacity(claims.len());
    for (&anchor, boxes_claiming) in &claims {
        let g = if boxes_claiming.len() > 1 {
            let mut best = 0;
            let mut best_overlap = f32::NEG_INFINITY;
            for g in 0..gts.len() {
                let (o, _) = overlap_of(g, anchor);
                if o > best_overlap {
                    best_overlap = o;
                    best = g;
                }
            }
            best
        } else {
            boxes_claiming[0]
        };
        owner.push((anchor, g));
    }
    // Normalisation per box: best alignment and best overlap among its final positives.
    let mut best_align = vec![0.0f32; gts.len()];
    let mut best_overlap = vec![0.0f32; gts.len()];
    for &(anchor, g) in &owner {
        let (o, a) = overlap_of(g, anchor);
        best_align[g] = best_align[g].max(a);
        best_overlap[g] = best_overlap[g].max(o);
    }
    owner
        .into_iter()
        .map(|(anchor, g)| {
            let (_, a) = overlap_of(g, anchor);
            Positive {
                anchor,
                gt: g,
                weight: a * best_overlap[g] / (best_align[g] + config.eps),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciou_hand_checked() {
        // Identical boxes: 1.
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((ciou(&a, &a) - 1.0).abs() < 1e-5);
        // Same size, shifted by 5 in x: IoU 50/150 = 1/3; enclosing 15×10, c² = 325;
        // centre distance² 25 → 25/325; same aspect, v = 0.
        let b = [5.0, 0.0, 15.0, 10.0];
        let expected = 1.0 / 3.0 - 25.0 / 325.0;
        assert!((ciou(&a, &b) - expected).abs() < 1e-5, "{}", ciou(&a, &b));
        // Concentric 10×10 and 20×5: IoU 50/150; no centre offset; aspect term
        // v = 4/π²·(atan(4) − atan(1))², α = v / (v − IoU + 1).
        let c = [-5.0, 2.5, 15.0, 7.5];
        let v = 4.0 / (std::f32::consts::PI.powi(2)) * (4.0f32.atan() - 1.0f32.atan()).powi(2);
        let iou = 1.0 / 3.0;
        let expected = iou - v * v / (v - iou + 1.0);
        assert!((ciou(&a, &c) - expected).abs() < 1e-5);
        // Disjoint boxes are negative.
        assert!(ciou(&a, &[20.0, 20.0, 30.0, 30.0]) < 0.0);
    }

    fn grid(n: usize, stride: f32) -> Vec<[f32; 2]> {
        (0..n * n)
            .map(|i| {
                [
                    ((i % n) as f32 + 0.5) * stride,
                    ((i / n) as f32 + 0.5) * stride,
                ]
            })
            .collect()
    }

    #[test]
    fn assigns_inside_anchors_by_alignment() {
        // 4×4 anchors at stride 8 (centres 4, 12, 20, 28); one box over the centre 2×2 anchors
        // (5, 6, 9, 10) and a little of nothing else.
        let anchors = grid(4, 8.0);
        let gt = GtBox {
            class_id: 1,
            xyxy: [8.0, 8.0, 24.0, 24.0],
        };
        // Every anchor predicts the gt box exactly except anchor 10, which is off.
        let mut boxes = vec![gt.xyxy; 16];
        boxes[10] = [14.0, 14.0, 30.0, 30.0];
        let mut scores = vec![0.1f32; 16 * 2];
        scores[5 * 2 + 1] = 0.9;
        let config = AssignerConfig {
            topk: 3,
            ..AssignerConfig::default()
        };
        let pos = assign(&config, &scores, 2, &boxes, &anchors, &[gt]);
        let anchors_taken: Vec<usize> = pos.iter().map(|p| p.anchor).collect();
        // Candidates 5, 6, 9, 10; top-3 by score^0.5·CIoU^6: 5 (0.9, 1), 6 and 9 (0.1, 1).
        assert_eq!(anchors_taken, vec![5, 6, 9]);
        // Best anchor gets the box's best IoU (1); others scale by their metric.
        assert!((pos[0].weight - 1.0).abs() < 1e-5);
        let ratio = (0.1f32 / 0.9).sqrt();
        assert!((pos[1].weight - ratio).abs() < 1e-5, "{pos:?}");
        assert!(pos.iter().all(|p| p.gt == 0));
    }

    #[test]
    fn tiny_boxes_find_candidates_in_a_widened_region() {
        // A 2×2 box centred at (14, 14) contains no anchor centre; widened to 16×16 about its
        // centre ([6, 22]²) it contains anchors 5, 6, 9, 10.
        let anchors = grid(4, 8.0);
        let gt = GtBox {
            class_id: 0,
            xyxy: [13.0, 13.0, 15.0, 15.0],
        };
        let boxes = vec![gt.xyxy; 16];
        let scores = vec![0.5f32; 16];
        let pos = assign(
            &AssignerConfig::default(),
            &scores,
            1,
            &boxes,
            &anchors,
            &[gt],
        );
        let taken: Vec<usize> = pos.iter().map(|p| p.anchor).collect();
        assert_eq!(taken, vec![5, 6, 9, 10]);
        let strict = AssignerConfig {
            candidate_min_side: 0.0,
            ..AssignerConfig::default()
        };
        assert!(assign(&strict, &scores, 1, &boxes, &anchors, &[gt]).is_empty());
    }

    #[test]
    fn contested_anchor_goes_to_the_larger_overlap() {
        let anchors = grid(4, 8.0);
        // Two boxes of different classes both contain anchor 5 (centre 12, 12).
        let a = GtBox {
            class_id: 0,
            xyxy: [0.0, 0.0, 16.0, 16.0],
        };
        let b = GtBox {
            class_id: 1,
            xyxy: [8.0, 8.0, 32.0, 32.0],
        };
        // Anchor 5 predicts a box that overlaps `a` a little (CIoU ≈ 0.05) and `b` a lot (≈ 0.59):
        // both put it in their top 2, `b` keeps it.
        let mut boxes = vec![[0.0, 0.0, 1.0, 1.0]; 16];
        boxes[0] = a.xyxy;
        boxes[5] = [6.0, 6.0, 28.0, 28.0];
        assert!(ciou(&a.xyxy, &boxes[5]) > 0.0);
        let scores = vec![0.5f32; 32];
        let config = AssignerConfig {
            topk: 2,
            ..AssignerConfig::default()
        };
        let pos = assign(&config, &scores, 2, &boxes, &anchors, &[a, b]);
        let five: Vec<&Positive> = pos.iter().filter(|p| p.anchor == 5).collect();
        assert_eq!(five.len(), 1);
        assert_eq!(five[0].gt, 1);
        let of_a: Vec<usize> = pos.iter().filter(|p| p.gt == 0).map(|p| p.anchor).collect();
        assert_eq!(of_a, vec![0]);
        assert!(assign(&config, &scores, 2, &boxes, &anchors, &[]).is_empty());
    }
}
