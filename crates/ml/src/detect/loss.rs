//! YOLOv8's training loss (Ultralytics `v8DetectionLoss`): the task-aligned assigner picks the
//! positives, then
//! * class: BCE-with-logits of every anchor × class against the soft targets,
//! * box: `1 − CIoU` of the positives' decoded boxes, weighted by their target score,
//! * DFL: cross-entropy of each side's 16 bins against the two bins around the target distance,
//!
//! each normalised by the sum of target scores, weighted 7.5 / 0.5 / 1.5. The loss to
//! back-propagate is the weighted sum times the batch size, like Ultralytics.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;

use super::assign::{AssignerConfig, GtBox, assign};
use super::head::{Anchors, Detect, HeadOutput, REG_MAX};
use super::postprocess::Xyxy;
use crate::error::MlError;
use crate::kernels::channels_last;
use crate::models::activation::sigmoid_one;

/// Loss gains (Ultralytics' `box`, `cls`, `dfl` hyper-parameters) and assigner settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// Box (CIoU) gain.
    pub box_gain: f64,
    /// Class (BCE) gain.
    pub cls_gain: f64,
    /// DFL gain.
    pub dfl_gain: f64,
    /// Assigner.
    pub assigner: AssignerConfig,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            box_gain: 7.5,
            cls_gain: 0.5,
            dfl_gain: 1.5,
            assigner: AssignerConfig::default(),
        }
    }
}

/// The weighted parts of one batch's loss (what Ultralytics logs as `box_loss`, `cls_loss`,
/// `dfl_loss`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossParts {
    /// `7.5 · (1 − CIoU)` part.
    pub box_loss: f64,
    /// `0.5 · BCE` part.
    pub cls_loss: f64,
    /// `1.5 · DFL` part.
    pub dfl_loss: f64,
}

impl LossParts {
    /// Sum of the parts.
    pub fn total(&self) -> f64 {
        self.box_loss + self.cls_loss + self.dfl_loss
    }
}

/// Complete IoU of row-aligned boxes `[N, 4]` (`x1, y1, x2, y2`) → `[N, 1]`; the aspect-ratio
/// weight `α` is not differentiated (as in Ultralytics).
pub fn ciou_tensor(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let eps = 1e-7;
    let col = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i, 1);
    let (a0, a1, a2, a3) = (col(&a, 0), col(&a, 1), col(&a, 2), col(&a, 3));
    let (b0, b1, b2, b3) = (col(&b, 0), col(&b, 1), col(&b, 2), col(&b, 3));
    let w1 = a2.clone().sub(a0.clone());
    let h1 = a3.clone().sub(a1.clone()).add_scalar(eps);
    let w2 = b2.clone().sub(b0.clone());
    let h2 = b3.clone().sub(b1.clone()).add_scalar(eps);
    let inter_w = a2
        .clone()
        .min_pair(b2.clone())
        .sub(a0.clone().max_pair(b0.clone()))
        .clamp_min(0.0);
    let inter_h = a3
        .clone()
        .min_pair(b3.clone())
        .sub(a1.clone().max_pair(b1.clone()))
        .clamp_min(0.0);
    let inter = inter_w.mul(inter_h);
    let union = w1
        .clone()
        .mul(h1.clone())
        .add(w2.clone().mul(h2.clone()))
        .sub(inter.clone())
        .add_scalar(eps);
    let iou = inter.div(union);
    let cw = a2
        .clone()
        .max_pair(b2.clone())
        .sub(a0.clone().min_pair(b0.clone()));
    let ch = a3
        .clone()
        .max_pair(b3.clone())
        .sub(a1.clone().min_pair(b1.clone()));
    let c2 = cw.square().add(ch.square()).add_scalar(eps);
    let dx = b0.add(b2).sub(a0).sub(a2);
    let dy = b1.add(b3).sub(a1).sub(a3);
    let rho2 = dx.square().add(dy.square()).div_scalar(4.0);
    let dv = w2.div(h2).atan().sub(w1.div(h1).atan());
    let v = dv
        .square()
        .mul_scalar(4.0 / (std::f64::consts::PI * std::f64::consts::PI));
    let alpha = v
        .clone()
        .div(v.clone().sub(iou.clone()).add_scalar(1.0 + eps))
        .detach();
    iou.sub(rho2.div(c2).add(v.mul(alpha)))
}

/// Host copy of a tensor.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, MlError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| MlError::InvalidConfig(format!("tensor readback: {e:?}")))
}

/// Decoded boxes of every anchor in input pixels, on the host, from `distances` `[B, 4, A]`.
pub(crate) fn boxes_from_distances(
    distances: &[f32],
    batch: usize,
    anchors: &Anchors,
) -> Vec<Vec<Xyxy>> {
    let a = anchors.len();
    (0..batch)
        .map(|b| {
            let d = &distances[b * 4 * a..(b + 1) * 4 * a];
            (0..a)
                .map(|i| {
                    let [x, y] = anchors.points[i];
                    let s = anchors.strides[i];
                    [
                        (x - d[i]) * s,
                        (y - d[a + i]) * s,
                        (x + d[2 * a + i]) * s,
                        (y + d[3 * a + i]) * s,
                    ]
                })
                .collect()
        })
        .collect()
}

/// `Σ bce(x, t)` over every element of the logits `x` (with `values`, their host copy, and
/// `probabilities`, their sigmoids) against the targets `t`, as a tensor whose gradient with
/// respect to `x` is `σ(x) − t`.
///
/// Value and gradient come from one parallel host pass; the graph records `Σ x·g + c` with `g`
/// the (constant) gradient and `c = Σ bce − Σ x·g`, so it holds one product and one sum instead of
/// the eight element-wise operations of `max(x, 0) − x·t + ln(1 + e^−|x|)` and their backward
/// passes over `B × classes × anchors` values (~8 % of a YOLOv8n training step).
fn bce_with_logits_sum(
    x: Tensor<3>,
    values: &[f32],
    probabilities: &[f32],
    targets: &[f32],
) -> Tensor<1> {
    const CHUNK: usize = 1 << 14;
    let mut grad = vec![0.0f32; values.len()];
    let (bce, linear) = grad
        .par_chunks_mut(CHUNK)
        .zip(values.par_chunks(CHUNK))
        .zip(probabilities.par_chunks(CHUNK))
        .zip(targets.par_chunks(CHUNK))
        .map(|(((grad, x), p), t)| {
            let (mut bce, mut linear) = (0.0f64, 0.0f64);
            for (((g, &x), &p), &t) in grad.iter_mut().zip(x).zip(p).zip(t) {
                // ln(1 + e^−|x|) = −ln σ(|x|), and σ(|x|) is the larger of p and 1 − p.
                let value = x.max(0.0) - x * t - p.max(1.0 - p).ln();
                *g = p - t;
                bce += f64::from(value);
                linear += f64::from(x * *g);
            }
            (bce, linear)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let device = x.device();
    let grad = Tensor::<3>::from_data(TensorData::new(grad, x.dims()), &device);
    x.mul(grad).sum().add_scalar(bce - linear)
}

/// `v8DetectionLoss`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectionLoss {
    /// Settings.
    pub config: LossConfig,
}

impl DetectionLoss {
    /// The loss of the head's raw outputs against each image's boxes (input pixels): the tensor to
    /// back-propagate (weighted sum × batch size) and its parts.
    pub fn forward(
        &self,
        head: &Detect,
        output: &HeadOutput,
        targets: &[Vec<GtBox>],
    ) -> Result<(Tensor<1>, LossParts), MlError> {
        let anchors = output.anchors();
        let [batch, _, a] = output.boxes.dims();
        let nc = head.num_classes;
        let device = output.boxes.device();
        let pred_distri = output.boxes.clone();
        let pred_cls = output.classes.clone();

        // Assignment on detached predictions.
        let logits = host(pred_cls.clone().detach())?;
        let probabilities: Vec<f32> = logits.par_iter().map(|&x| sigmoid_one(x)).collect();
        let scores = channels_last(&probabilities, batch, nc);
        let distances = head.host_distances(&host(pred_distri.clone().detach())?, a)?;
        let pred_boxes = boxes_from_distances(&distances, batch, &anchors);
        let anchor_pixels: Vec<[f32; 2]> = anchors
            .points
            .iter()
            .zip(&anchors.strides)
            .map(|(p, s)| [p[0] * s, p[1] * s])
            .collect();
        let mut target_scores = vec![0.0f32; batch * nc * a];
        let mut fg_index: Vec<i64> = Vec::new();
        let mut fg_weight: Vec<f32> = Vec::new();
        let mut fg_target: Vec<f32> = Vec::new();
        let mut fg_anchor: Vec<f32> = Vec::new();
        let empty = Vec::new();
        let gts = |b: usize| targets.get(b).unwrap_or(&empty);
        let assigned: Vec<_> = (0..batch)
            .into_par_iter()
            .map(|b| {
                assign(
                    &self.config.assigner,
                    &scores[b * a * nc..(b + 1) * a * nc],
                    nc,
                    &pred_boxes[b],
                    &anchor_pixels,
                    gts(b),
                )
            })
            .collect();
        for (b, positives) in assigned.into_iter().enumerate() {
            let gts = gts(b);
            for p in positives {
                let gt = gts[p.gt];
                if gt.class_id < nc {
                    target_scores[(b * nc + gt.class_id) * a + p.anchor] = p.weight;
                }
                let s = anchors.strides[p.anchor];
                fg_index.push((b * a + p.anchor) as i64);
                fg_weight.push(p.weight);
                fg_target.extend(gt.xyxy.iter().map(|v| v / s));
                fg_anchor.extend_from_slice(&anchors.points[p.anchor]);
            }
        }
        let score_sum = (target_scores.iter().map(|&v| v as f64).sum::<f64>()).max(1.0);

        // Class: BCE with logits, summed, over the target-score sum.
        let cls = bce_with_logits_sum(pred_cls, &logits, &probabilities, &target_scores)
            .div_scalar(score_sum);

        let n = fg_index.len();
        let (box_loss, dfl) = if n == 0 {
            let zero = Tensor::<1>::zeros([1], &device);
            (zero.clone(), zero)
        } else {
            let index = Tensor::<1, Int>::from_data(TensorData::new(fg_index, [n]), &device);
            let distri = pred_distri
                .swap_dims(1, 2)
                .reshape([batch * a, 4 * REG_MAX])
                .select(0, index)
                .reshape([n, 4, REG_MAX]);
            let bins = head.dfl.conv.weight.val().detach().reshape([1, 1, REG_MAX]);
            let dist = softmax(distri.clone(), 2)
                .mul(bins)
                .sum_dim(2)
                .reshape([n, 4]);
            let anchor_t =
                Tensor::<2>::from_data(TensorData::new(fg_anchor.clone(), [n, 2]), &device);
            let lt = dist.clone().narrow(1, 0, 2);
            let rb = dist.narrow(1, 2, 2);
            let pred = Tensor::cat(vec![anchor_t.clone().sub(lt), anchor_t.add(rb)], 1);
            let target =
                Tensor::<2>::from_data(TensorData::new(fg_target.clone(), [n, 4]), &device);
            let weight =
                Tensor::<2>::from_data(TensorData::new(fg_weight.clone(), [n, 1]), &device);
            let iou = ciou_tensor(pred, target);
            let box_loss = iou
                .neg()
                .add_scalar(1.0)
                .mul(weight.clone())
                .sum()
                .div_scalar(score_sum);

            // DFL: two-bin soft target per side.
            let mut soft = vec![0.0f32; n * 4 * REG_MAX];
            for i in 0..n {
                let [ax, ay] = [fg_anchor[2 * i], fg_anchor[2 * i + 1]];
                let t = &fg_target[4 * i..4 * i + 4];
                let ltrb = [ax - t[0], ay - t[1], t[2] - ax, t[3] - ay];
                for (side, d) in ltrb.into_iter().enumerate() {
                    let d = d.clamp(0.0, REG_MAX as f32 - 1.0 - 0.01);
                    let left = d.floor() as usize;
                    let wl = (left + 1) as f32 - d;
                    let base = (i * 4 + side) * REG_MAX;
                    soft[base + left] = wl;
                    soft[base + left + 1] = 1.0 - wl;
                }
            }
            let soft = Tensor::<3>::from_data(TensorData::new(soft, [n, 4, REG_MAX]), &device);
            let ce = log_softmax(distri, 2)
                .mul(soft)
                .sum_dim(2)
                .neg()
                .reshape([n, 4]);
            let dfl = ce.mean_dim(1).mul(weight).sum().div_scalar(score_sum);
            (box_loss, dfl)
        };
        let cls = cls.mul_scalar(self.config.cls_gain);
        let box_loss = box_loss.mul_scalar(self.config.box_gain);
        let dfl = dfl.mul_scalar(self.config.dfl_gain);
        let parts_tensor = Tensor::cat(vec![box_loss.clone(), cls.clone(), dfl.clone()], 0);
        let parts = host(parts_tensor.detach())?;
        let parts = LossParts {
            box_loss: parts.first().copied().unwrap_or(0.0) as f64,
            cls_loss: parts.get(1).copied().unwrap_or(0.0) as f64,
            dfl_loss: parts.get(2).copied().unwrap_or(0.0) as f64,
        };
        let total = box_loss.add(cls).add(dfl).mul_scalar(batch as f64);
        Ok((total, parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::assign::ciou;
    use burn::tensor::Device;

    /// The fused class loss against burn's autodiff of the formula it replaces: same value,
    /// same gradient, over logits from −30 to 30 and soft targets (none exactly 0, where the
    /// formula's `max` and `|·|` give burn a one-sided derivative: 1 − t instead of ½ − t).
    #[test]
    fn fused_bce_matches_the_formula_and_its_gradient() -> Result<(), MlError> {
        let device = Device::flex().autodiff();
        let dims = [2, 3, 50];
        let len = 2 * 3 * 50;
        let values: Vec<f32> = (0..len)
            .map(|i| (i as f32 * 0.37).sin() * 30.0 - (i % 7) as f32 * 0.1 + 0.013)
            .collect();
        let targets: Vec<f32> = (0..len)
            .map(|i| {
                if i % 5 == 0 {
                    (i % 11) as f32 / 10.0
                } else {
                    0.0
                }
            })
            .collect();
        let leaf = || {
            Tensor::<3>::from_data(TensorData::new(values.clone(), dims), &device).require_grad()
        };

        let x = leaf();
        let probabilities: Vec<f32> = values.iter().map(|&v| sigmoid_one(v)).collect();
        let fused = bce_with_logits_sum(x.clone(), &values, &probabilities, &targets);
        let fused_value = host(fused.clone())?[0];
        let fused_grad = host(x.grad(&fused.backward()).expect("gradient"))?;

        let x = leaf();
        let t = Tensor::<3>::from_data(TensorData::new(targets.clone(), dims), &device);
        let formula = x
            .clone()
            .clamp_min(0.0)
            .sub(x.clone().mul(t))
            .add(x.clone().abs().neg().exp().log1p())
            .sum();
        let formula_value = host(formula.clone())?[0];
        let formula_grad = host(x.grad(&formula.backward()).expect("gradient"))?;

        assert!(
            (fused_value - formula_value).abs() <= 1e-4 * formula_value.abs(),
            "{fused_value} vs {formula_value}"
        );
        for (a, b) in fused_grad.iter().zip(&formula_grad) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
        Ok(())
    }

    #[test]
    fn tensor_ciou_matches_host_ciou() -> Result<(), MlError> {
        let device = Device::flex();
        let pairs: [(Xyxy, Xyxy); 4] = [
            ([0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]),
            ([0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]),
            ([0.0, 0.0, 10.0, 10.0], [-5.0, 2.5, 15.0, 7.5]),
            ([1.0, 2.0, 4.0, 9.0], [20.0, 20.0, 30.0, 24.0]),
        ];
        let a: Vec<f32> = pairs.iter().flat_map(|p| p.0).collect();
        let b: Vec<f32> = pairs.iter().flat_map(|p| p.1).collect();
        let t = ciou_tensor(
            Tensor::from_data(TensorData::new(a, [4, 4]), &device),
            Tensor::from_data(TensorData::new(b, [4, 4]), &device),
        );
        let values = host(t)?;
        for (v, (x, y)) in values.iter().zip(pairs.iter()) {
            assert!((v - ciou(x, y)).abs() < 1e-5, "{v} vs {}", ciou(x, y));
        }
        Ok(())
    }
}
