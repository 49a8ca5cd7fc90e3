//! COCO-style box mAP, computed the way `pycocotools.cocoeval.COCOeval` does for `iouType="bbox"`
//! (area range `all`, `maxDets` 100, IoU thresholds 0.50:0.05:0.95, 101-point interpolated
//! precision, per-category greedy matching by descending score), without crowd annotations.
//!
//! The test `matches_pycocotools` checks the numbers against pycocotools on a shared case
//! (`tests/fixtures/coco_eval_case.json`, made by `tools/coco_eval_reference.py`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A box for evaluation: class, `[x, y, width, height]` in pixels and (detections) a score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalBox {
    /// Class index.
    pub class_id: usize,
    /// `[x, y, width, height]`.
    pub bbox: [f64; 4],
    /// Confidence (ignored for ground truth).
    #[serde(default)]
    pub score: f64,
}

/// Result of [`CocoEvaluator::evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoMetrics {
    /// AP averaged over IoU 0.50:0.95 and the classes with ground truth (`None` without any).
    pub map50_95: Option<f64>,
    /// AP at IoU 0.50.
    pub map50: Option<f64>,
    /// AP at IoU 0.75.
    pub map75: Option<f64>,
    /// Per class with ground truth: (class, AP 0.50:0.95, AP 0.50).
    pub per_class: Vec<(usize, f64, f64)>,
}

#[derive(Debug, Clone, Default)]
struct ImageBoxes {
    ground_truth: Vec<EvalBox>,
    detections: Vec<EvalBox>,
}

/// Accumulates ground truth and detections image by image, then computes COCO AP.
#[derive(Debug, Clone, Default)]
pub struct CocoEvaluator {
    images: BTreeMap<u64, ImageBoxes>,
}

/// Per (image, class) matching result: for each IoU threshold, whether each detection (sorted by
/// score, at most 100) matched; plus the scores and the number of ground-truth boxes.
struct ImageClassEval {
    matched: Vec<Vec<bool>>,
    scores: Vec<f64>,
    ground_truth: usize,
}

const MAX_DETECTIONS: usize = 100;
const RECALL_POINTS: usize = 101;

/// `np.linspace(.5, 0.95, 10)`, computed the way numpy does.
fn iou_thresholds() -> [f64; 10] {
    let step = (0.95 - 0.5) / 9.0;
    let mut t = [0.0; 10];
    for (i, v) in t.iter_mut().enumerate() {
        *v = i as f64 * step + 0.5;
    }
    t[9] = 0.95;
    t
}

/// `np.linspace(.0, 1.00, 101)`.
fn recall_thresholds() -> [f64; RECALL_POINTS] {
    let step = 1.0 / 100.0;
    let mut r = [0.0; RECALL_POINTS];
    for (i, v) in r.iter_mut().enumerate() {
        *v = i as f64 * step;
    }
    r[100] = 1.0;
    r
}

/// pycocotools' box IoU (`maskApi.c` `bbIou`, no crowd): `[x, y, w, h]` boxes.
pub fn iou_xywh(d: &[f64; 4], g: &[f64; 4]) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (d[2] * d[3] + g[2] * g[3] - inter)
}

/// Indices of `values` sorted by decreasing score, stable (numpy's mergesort of `-score`).
fn by_score(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| (-scores[a]).total_cmp(&-scores[b]));
    order
}

impl CocoEvaluator {
    /// An empty evaluator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the ground truth and detections of one image (detections in any order; ties in score
    /// keep the order given, like pycocotools keeps the results' order). Adding the same image id
    /// again appends.
    pub fn add_image(&mut self, image_id: u64, ground_truth: &[EvalBox], detections: &[EvalBox]) {
        let entry = self.images.entry(image_id).or_default();
        entry.ground_truth.extend_from_slice(ground_truth);
        entry.detections.extend_from_slice(detections);
    }

    /// Number of images added.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether no image was added.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    fn evaluate_image(
        gts: &[&EvalBox],
        dts: &[&EvalBox],
        thresholds: &[f64; 10],
    ) -> Option<ImageClassEval> {
        if gts.is_empty() && dts.is_empty() {
            return None;
        }
        let scores: Vec<f64> = dts.iter().map(|d| d.score).collect();
        let order: Vec<usize> = by_score(&scores).into_iter().take(MAX_DETECTIONS).collect();
        let dts: Vec<&EvalBox> = order.iter().map(|&i| dts[i]).collect();
        let ious: Vec<Vec<f64>> = dts
            .iter()
            .map(|d| gts.iter().map(|g| iou_xywh(&d.bbox, &g.bbox)).collect())
            .collect();
        let mut matched = vec![vec![false; dts.len()]; thresholds.len()];
        for (t, &threshold) in thresholds.iter().enumerate() {
            let mut gt_taken = vec![false; gts.len()];
            for (d, row) in ious.iter().enumerate() {
                let mut best = threshold.min(1.0 - 1e-10);
                let mut found = None;
                for (g, &iou) in row.iter().enumerate() {
                    if gt_taken[g] || iou < best {
                        continue;
                    }
                    best = iou;
                    found = Some(g);
                }
                if let Some(g) = found {
                    gt_taken[g] = true;
                    matched[t][d] = true;
                }
            }
        }
        Some(ImageClassEval {
            matched,
            scores: dts.iter().map(|d| d.score).collect(),
            ground_truth: gts.len(),
        })
    }

    /// Precision at the 101 recall points for one class and threshold index.
    fn interpolated_precision(
        evals: &[&ImageClassEval],
        t: usize,
        ground_truth: usize,
        recall_points: &[f64; RECALL_POINTS],
    ) -> [f64; RECALL_POINTS] {
        let scores: Vec<f64> = evals.iter().flat_map(|e| e.scores.clone()).collect();
        let matched: Vec<bool> = evals.iter().flat_map(|e| e.matched[t].clone()).collect();
        let order = by_score(&scores);
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let mut recall = Vec::with_capacity(order.len());
        let mut precision = Vec::with_capacity(order.len());
        for &i in &order {
            if matched[i] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            recall.push(tp / ground_truth as f64);
            precision.push(tp / (fp + tp + f64::EPSILON));
        }
        for i in (1..precision.len()).rev() {
            if precision[i] > precision[i - 1] {
                precision[i - 1] = precision[i];
            }
        }
        let mut q = [0.0; RECALL_POINTS];
        for (r, &point) in recall_points.iter().enumerate() {
            // searchsorted(recall, point, side="left")
            let index = recall.partition_point(|&x| x < point);
            match precision.get(index) {
                Some(&p) => q[r] = p,
                None => break,
            }
        }
        q
    }

    /// COCO AP over everything added.
    pub fn evaluate(&self) -> CocoMetrics {
        let thresholds = iou_thresholds();
        let recall_points = recall_thresholds();
        let mut classes: Vec<usize> = self
            .images
            .values()
            .flat_map(|i| i.ground_truth.iter().map(|g| g.class_id))
            .collect();
        classes.sort_unstable();
        classes.dedup();
        let mut per_class = Vec::new();
        let (mut sum_all, mut sum_50, mut sum_75) = (0.0, 0.0, 0.0);
        for &class in &classes {
            let evals: Vec<ImageClassEval> = self
                .images
                .values()
                .filter_map(|image| {
                    let gts: Vec<&EvalBox> = image
                        .ground_truth
                        .iter()
                        .filter(|g| g.class_id == class)
                        .collect();
                    let dts: Vec<&EvalBox> = image
                        .detections
                        .iter()
                        .filter(|d| d.class_id == class)
                        .collect();
                    Self::evaluate_image(&gts, &dts, &thresholds)
                })
                .collect();
            let refs: Vec<&ImageClassEval> = evals.iter().collect();
            let ground_truth: usize = evals.iter().map(|e| e.ground_truth).sum();
            let mut class_sum = 0.0;
            let mut ap = [0.0; 10];
            for (t, value) in ap.iter_mut().enumerate() {
                let q = Self::interpolated_precision(&refs, t, ground_truth, &recall_points);
                *value = q.iter().sum::<f64>();
                class_sum += *value;
            }
            sum_all += class_sum;
            sum_50 += ap[0];
            sum_75 += ap[5];
            let points = RECALL_POINTS as f64;
            per_class.push((class, class_sum / (points * 10.0), ap[0] / points));
        }
        let n = classes.len() as f64;
        let mean = |sum: f64, per: f64| (n > 0.0).then(|| sum / (per * n));
        CocoMetrics {
            map50_95: mean(sum_all, RECALL_POINTS as f64 * 10.0),
            map50: mean(sum_50, RECALL_POINTS as f64),
            map75: mean(sum_75, RECALL_POINTS as f64),
            per_class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Case {
        images: Vec<CaseImage>,
        reference: Reference,
    }

    #[derive(Deserialize)]
    struct CaseImage {
        id: u64,
        ground_truth: Vec<EvalBox>,
        detections: Vec<EvalBox>,
    }

    #[derive(Deserialize)]
    struct Reference {
        map50_95: f64,
        map50: f64,
        map75: f64,
    }

    #[test]
    fn matches_pycocotools() -> Result<(), Box<dyn std::error::Error>> {
        let text = include_str!("../../tests/fixtures/coco_eval_case.json");
        let case: Case = serde_json::from_str(text)?;
        let mut evaluator = CocoEvaluator::new();
        for image in &case.images {
            evaluator.add_image(image.id, &image.ground_truth, &image.detections);
        }
        let metrics = evaluator.evaluate();
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-6);
        assert!(
            close(metrics.map50_95, case.reference.map50_95),
            "{metrics:?}"
        );
        assert!(close(metrics.map50, case.reference.map50), "{metrics:?}");
        assert!(close(metrics.map75, case.reference.map75), "{metrics:?}");
        Ok(())
    }

    #[test]
    fn perfect_and_empty() {
        let mut evaluator = CocoEvaluator::new();
        assert_eq!(evaluator.evaluate().map50, None);
        let gt = EvalBox {
            class_id: 1,
            bbox: [10.0, 10.0, 20.0, 30.0],
            score: 0.0,
        };
        evaluator.add_image(7, &[gt], &[EvalBox { score: 0.9, ..gt }]);
        let m = evaluator.evaluate();
        // pycocotools' precision is tp / (tp + fp + ε): 1 − 1.1e-16 here.
        let near_one = |v: Option<f64>| v.is_some_and(|v| (v - 1.0).abs() < 1e-12);
        assert!(near_one(m.map50) && near_one(m.map50_95), "{m:?}");
        // A detection of the wrong class is a miss.
        let mut wrong = CocoEvaluator::new();
        wrong.add_image(
            7,
            &[gt],
            &[EvalBox {
                class_id: 0,
                score: 0.9,
                ..gt
            }],
        );
        assert_eq!(wrong.evaluate().map50, Some(0.0));
    }
}
