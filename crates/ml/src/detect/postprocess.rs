//! From decoded predictions to detections: score filtering, class-aware non-maximum suppression
//! and the letterbox geometry that maps boxes back to the original image's pixels.

use serde::{Deserialize, Serialize};

/// An axis-aligned box `x1, y1, x2, y2`.
pub type Xyxy = [f32; 4];

/// One detected object: class index, confidence and box (`x1, y1, x2, y2`) in some pixel frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxPrediction {
    /// Class index.
    pub class_id: usize,
    /// Class probability (sigmoid).
    pub score: f32,
    /// Corners `x1, y1, x2, y2`.
    pub xyxy: Xyxy,
}

/// Area of a box (0 when degenerate).
pub fn area(b: &Xyxy) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Intersection over union of two boxes, in `[0, 1]` (0 when both are empty).
pub fn iou(a: &Xyxy, b: &Xyxy) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        (inter / union).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Thresholds of [`non_max_suppression`]. Defaults are Ultralytics' `predict` settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NmsOptions {
    /// Minimum class probability of a candidate.
    pub score_threshold: f32,
    /// A box is suppressed by a higher-scoring kept box of the same class whose IoU exceeds this.
    pub iou_threshold: f32,
    /// Most detections kept per image.
    pub max_detections: usize,
    /// Most candidates entering suppression (the highest-scoring ones).
    pub max_candidates: usize,
    /// Every class above the threshold of an anchor is a candidate (evaluation), not only its
    /// best class (prediction).
    pub multi_label: bool,
}

impl Default for NmsOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.25,
            iou_threshold: 0.7,
            max_detections: 300,
            max_candidates: 30_000,
            multi_label: false,
        }
    }
}

impl NmsOptions {
    /// Ultralytics' validation settings (score 0.001, IoU 0.7, multi-label, 300 per image).
    pub const EVALUATION: NmsOptions = NmsOptions {
        score_threshold: 0.001,
        iou_threshold: 0.7,
        max_detections: 300,
        max_candidates: 30_000,
        multi_label: true,
    };
}

/// Class-aware greedy NMS over one image's anchors: `boxes` `[A]` and row-major `scores`
/// `[A, num_classes]`. Returns the kept detections by decreasing score (ties by anchor order).
pub fn non_max_suppression(
    boxes: &[Xyxy],
    scores: &[f32],
    num_classes: usize,
    options: &NmsOptions,
) -> Vec<BoxPrediction> {
    let mut candidates: Vec<BoxPrediction> = Vec::new();
    for (anchor, row) in scores.chunks_exact(num_classes.max(1)).enumerate() {
        let Some(&xyxy) = boxes.get(anchor) else {
            break;
        };
        if options.multi_label {
            for (class_id, &score) in row.iter().enumerate() {
                if score > options.score_threshold {
                    candidates.push(BoxPrediction {
                        class_id,
                        score,
                        xyxy,
                    });
                }
            }
        } else if let Some((class_id, &score)) = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            && score > options.score_threshold
        {
            candidates.push(BoxPrediction {
                class_id,
                score,
                xyxy,
            });
        }
    }
    // Stable: equal scores keep anchor order.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(options.max_candidates);
    suppress(candidates, options.iou_threshold, options.max_detections)
}

/// Greedy suppression of score-sorted candidates, per class.
pub fn suppress(
    sorted: Vec<BoxPrediction>,
    iou_threshold: f32,
    max_detections: usize,
) -> Vec<BoxPrediction> {
    let mut kept: Vec<BoxPrediction> = Vec::new();
    for candidate in sorted {
        if kept.len() >= max_detections {
            break;
        }
        let suppressed = kept.iter().any(|k| {
            k.class_id == candidate.class_id && iou(&k.xyxy, &candidate.xyxy) > iou_threshold
        });
        if !suppressed {
            kept.push(candidate);
        }
    }
    kept
}

/// How an image of `width`×`height` sits in a square model input of `size`: scaled by `gain`
/// (aspect kept) and padded by `left`/`top` pixels (Ultralytics' `LetterBox`, centred).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Letterbox {
    /// Original width.
    pub width: u32,
    /// Original height.
    pub height: u32,
    /// Model input side.
    pub size: u32,
    /// Scale factor original → input.
    pub gain: f64,
    /// Width of the scaled image inside the input.
    pub scaled_width: u32,
    /// Height of the scaled image inside the input.
    pub scaled_height: u32,
    /// Padding left of the scaled image.
    pub left: u32,
    /// Padding above the scaled image.
    pub top: u32,
}

impl Letterbox {
    /// The letterbox of a `width`×`height` image in a `size`² input.
    pub fn new(width: u32, height: u32, size: u32) -> Self {
        let (w, h) = (width.max(1) as f64, height.max(1) as f64);
        let gain = (size as f64 / h).min(size as f64 / w);
        let scaled_width = ((w * gain).round() as u32).clamp(1, size);
        let scaled_height = ((h * gain).round() as u32).clamp(1, size);
        let dw = (size - scaled_width) as f64 / 2.0;
        let dh = (size - scaled_height) as f64 / 2.0;
        Self {
            width,
            height,
            size,
            gain,
            scaled_width,
            scaled_height,
            left: (dw - 0.1).round().max(0.0) as u32,
            top: (dh - 0.1).round().max(0.0) as u32,
        }
    }

    /// A box in original pixels → input pixels.
    pub fn to_input(&self, b: &Xyxy) -> Xyxy {
        let g = self.gain as f32;
        let (l, t) = (self.left as f32, self.top as f32);
        [b[0] * g + l, b[1] * g + t, b[2] * g + l, b[3] * g + t]
    }

    /// A box in input pixels → original pixels, clipped to the image.
    pub fn to_original(&self, b: &Xyxy) -> Xyxy {
        let g = self.gain as f32;
        let (l, t) = (self.left as f32, self.top as f32);
        let (w, h) = (self.width as f32, self.height as f32);
        [
            ((b[0] - l) / g).clamp(0.0, w),
            ((b[1] - t) / g).clamp(0.0, h),
            ((b[2] - l) / g).clamp(0.0, w),
            ((b[3] - t) / g).clamp(0.0, h),
        ]
    }
}

/// NMS on one image's decoded predictions (input pixels), then boxes mapped back to the
/// original image through `letterbox`.
pub fn detections(
    boxes: &[Xyxy],
    scores: &[f32],
    num_classes: usize,
    letterbox: &Letterbox,
    options: &NmsOptions,
) -> Vec<BoxPrediction> {
    non_max_suppression(boxes, scores, num_classes, options)
        .into_iter()
        .map(|d| BoxPrediction {
            xyxy: letterbox.to_original(&d.xyxy),
            ..d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn boxes() -> impl Strategy<Value = Xyxy> {
        (0.0f32..100.0, 0.0f32..100.0, 0.0f32..60.0, 0.0f32..60.0)
            .prop_map(|(x, y, w, h)| [x, y, x + w, y + h])
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_and_bounded(a in boxes(), b in boxes()) {
            let ab = iou(&a, &b);
            prop_assert_eq!(ab, iou(&b, &a));
            prop_assert!((0.0..=1.0).contains(&ab));
            if area(&a) > 0.0 {
                prop_assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
            }
        }

        #[test]
        fn nms_keeps_a_subset_without_same_class_overlaps(
            items in prop::collection::vec((boxes(), 0usize..3, 0.0f32..1.0), 0..60),
            threshold in 0.1f32..0.9,
            max_detections in 1usize..80,
        ) {
            let classes = 3;
            let input: Vec<Xyxy> = items.iter().map(|i| i.0).collect();
            let mut scores = vec![0.0f32; items.len() * classes];
            for (a, item) in items.iter().enumerate() {
                scores[a * classes + item.1] = item.2;
            }
            let options = NmsOptions {
                score_threshold: 0.05,
                iou_threshold: threshold,
                max_detections,
                ..NmsOptions::default()
            };
            let kept = non_max_suppression(&input, &scores, classes, &options);
            prop_assert!(kept.len() <= max_detections);
            for k in &kept {
                prop_assert!(k.score > 0.05);
                prop_assert!(items.iter().any(|i| i.0 == k.xyxy && i.1 == k.class_id && i.2 == k.score));
            }
            for (i, a) in kept.iter().enumerate() {
                for b in &kept[i + 1..] {
                    prop_assert!(a.score >= b.score);
                    if a.class_id == b.class_id {
                        prop_assert!(iou(&a.xyxy, &b.xyxy) <= threshold);
                    }
                }
            }
            // Every candidate left out is either below the score threshold, past the cap, or
            // overlaps a kept box of its class by more than the threshold.
            if kept.len() < max_detections {
                for item in &items {
                    let in_kept = kept.iter().any(|k| k.xyxy == item.0 && k.class_id == item.1 && k.score == item.2);
                    if item.2 > 0.05 && !in_kept {
                        prop_assert!(kept.iter().any(|k| k.class_id == item.1 && iou(&k.xyxy, &item.0) > threshold));
                    }
                }
            }
        }
    }

    #[test]
    fn nms_is_class_aware_and_single_label_by_default() {
        let b = [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 0.0, 11.0, 10.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        // Anchor 0: class 0 (0.9) and class 1 (0.1); anchor 1: class 0 (0.8, IoU 0.82 with
        // anchor 0); anchor 2: class 1 (0.7), elsewhere.
        let scores = [0.9, 0.1, 0.8, 0.0, 0.0, 0.7];
        let kept = non_max_suppression(&b, &scores, 2, &NmsOptions::default());
        let ids: Vec<(usize, f32)> = kept.iter().map(|k| (k.class_id, k.score)).collect();
        assert_eq!(ids, vec![(0, 0.9), (1, 0.7)]);
        let multi = non_max_suppression(
            &b,
            &scores,
            2,
            &NmsOptions {
                score_threshold: 0.05,
                multi_label: true,
                ..NmsOptions::default()
            },
        );
        assert_eq!(multi.len(), 3, "{multi:?}");
    }

    #[test]
    fn letterbox_round_trips() {
        let lb = Letterbox::new(200, 100, 64);
        assert_eq!((lb.scaled_width, lb.scaled_height), (64, 32));
        assert_eq!((lb.left, lb.top), (0, 16));
        let b = [20.0, 10.0, 120.0, 90.0];
        let back = lb.to_original(&lb.to_input(&b));
        for (x, y) in b.iter().zip(back) {
            assert!((x - y).abs() < 1e-4);
        }
        assert_eq!(
            lb.to_original(&[-5.0, 0.0, 70.0, 70.0]),
            [0.0, 0.0, 200.0, 100.0]
        );
    }
}
