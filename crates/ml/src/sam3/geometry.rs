//! Geometry / exemplar prompt encoder: box prompts (direct projection + ROI-align pooling +
//! sine position + label embedding) followed by the CLS token and a small transformer that
//! cross-attends to the image. With no boxes it still runs and yields only the CLS token, which
//! is what Meta's model appends to text-only prompts.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::StackConfig;
use super::error::{Result, Sam3Error};
use super::layers::{LN_EPS, LayerNorm, Linear, PreNormLayer};
use super::neck::sine_features;
use super::weights::WeightStore;

const PREFIX: &str = "geometry_encoder";

/// A box prompt in normalised `(cx, cy, w, h)` coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxPrompt {
    /// Centre x in `[0, 1]`.
    pub cx: f32,
    /// Centre y in `[0, 1]`.
    pub cy: f32,
    /// Width in `[0, 1]`.
    pub w: f32,
    /// Height in `[0, 1]`.
    pub h: f32,
    /// `true` for a positive exemplar, `false` for a negative one.
    pub positive: bool,
}

impl BoxPrompt {
    /// A box from pixel corners `(x0, y0, x1, y1)` in an image of `width × height`.
    pub fn from_xyxy_pixels(xyxy: [f32; 4], width: u32, height: u32, positive: bool) -> Self {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        let [x0, y0, x1, y1] = xyxy;
        Self {
            cx: (x0 + x1) / 2.0 / w,
            cy: (y0 + y1) / 2.0 / h,
            w: (x1 - x0).abs() / w,
            h: (y1 - y0).abs() / h,
            positive,
        }
    }
}

/// Bilinear ROI-align (torchvision semantics, `aligned=False`, adaptive sampling) expressed as a
/// sparse-weight matrix `[N·r·r, H·W]`; multiplying it with the `[H·W, C]` feature map gives
/// the pooled bins. `boxes` are `(x0, y0, x1, y1)` in feature pixels.
pub fn roi_align_weights(boxes: &[[f32; 4]], h: usize, w: usize, r: usize) -> Vec<f32> {
    let mut m = vec![0f32; boxes.len() * r * r * h * w];
    let (hf, wf) = (h as f32, w as f32);
    for (n, b) in boxes.iter().enumerate() {
        let [x1, y1, x2, y2] = *b;
        let roi_w = (x2 - x1).max(1.0);
        let roi_h = (y2 - y1).max(1.0);
        let bin_h = roi_h / r as f32;
        let bin_w = roi_w / r as f32;
        let grid_h = (roi_h / r as f32).ceil().max(1.0) as usize;
        let grid_w = (roi_w / r as f32).ceil().max(1.0) as usize;
        let count = (grid_h * grid_w).max(1) as f32;
        for ph in 0..r {
            for pw in 0..r {
                let row = ((n * r + ph) * r + pw) * h * w;
                for iy in 0..grid_h {
                    let y0 = y1 + ph as f32 * bin_h + (iy as f32 + 0.5) * bin_h / grid_h as f32;
                    for ix in 0..grid_w {
                        let x0 = x1 + pw as f32 * bin_w + (ix as f32 + 0.5) * bin_w / grid_w as f32;
                        if y0 < -1.0 || y0 > hf || x0 < -1.0 || x0 > wf {
                            continue;
                        }
                        let mut y = y0.max(0.0);
                        let mut x = x0.max(0.0);
                        let mut y_low = y as usize;
                        let y_high;
                        if y_low >= h - 1 {
                            y_low = h - 1;
                            y_high = h - 1;
                            y = y_low as f32;
                        } else {
                            y_high = y_low + 1;
                        }
                        let mut x_low = x as usize;
                        let x_high;
                        if x_low >= w - 1 {
                            x_low = w - 1;
                            x_high = w - 1;
                            x = x_low as f32;
                        } else {
                            x_high = x_low + 1;
                        }
                        let ly = y - y_low as f32;
                        let lx = x - x_low as f32;
                        let (hy, hx) = (1.0 - ly, 1.0 - lx);
                        m[row + y_low * w + x_low] += hy * hx / count;
                        m[row + y_low * w + x_high] += hy * lx / count;
                        m[row + y_high * w + x_low] += ly * hx / count;
                        m[row + y_high * w + x_high] += ly * lx / count;
                    }
                }
            }
        }
    }
    m
}

/// Intermediate results of the geometry encoder (for the parity tests).
#[derive(Debug, Clone)]
pub struct GeometryTrace {
    /// LayerNorm'd image features `[1, H, W, C]`.
    pub vision_layer_norm: Tensor<4>,
    /// Per-box pieces `[1, N, C]` (direct, pooled, position).
    pub direct: Option<Tensor<3>>,
    /// ROI-pooled and projected features `[N, C, 1, 1]`.
    pub pooled: Option<Tensor<4>>,
    /// Position projections `[1, N, C]`.
    pub pos: Option<Tensor<3>>,
    /// Tokens after `final_proj` + LayerNorm, CLS last.
    pub prompt_embeds: Tensor<3>,
    /// Output of every layer.
    pub layers: Vec<Tensor<3>>,
}

/// The geometry encoder.
#[derive(Debug, Clone)]
pub struct GeometryEncoder {
    label_embed: Tensor<2>,
    cls_embed: Tensor<3>,
    direct: Linear,
    pool_weight: Tensor<4>,
    pool_bias: Tensor<1>,
    pos_proj: Linear,
    vision_norm: LayerNorm,
    final_proj: Linear,
    prompt_norm: LayerNorm,
    layers: Vec<PreNormLayer>,
    output_norm: LayerNorm,
    roi: usize,
    dim: usize,
    device: Device,
}

impl GeometryEncoder {
    /// Loads `geometry_encoder.*`.
    pub fn load(ws: &WeightStore, cfg: &StackConfig, device: &Device) -> Result<Self> {
        let c = cfg.hidden_size;
        let r = cfg.roi_size;
        let ln = |name: &str| LayerNorm::load(ws, &format!("{PREFIX}.{name}"), c, LN_EPS, device);
        let layers = (0..cfg.num_layers)
            .map(|i| {
                let p = format!("{PREFIX}.layers.{i}");
                PreNormLayer::load(
                    ws,
                    &p,
                    c,
                    cfg.num_attention_heads,
                    cfg.intermediate_size,
                    device,
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            label_embed: ws.tensor(&format!("{PREFIX}.label_embed.weight"), [2, c], device)?,
            cls_embed: ws
                .tensor::<2>(&format!("{PREFIX}.cls_embed.weight"), [1, c], device)?
                .unsqueeze(),
            direct: Linear::load(ws, &format!("{PREFIX}.boxes_direct_project"), 4, c, device)?,
            pool_weight: ws.tensor(
                &format!("{PREFIX}.boxes_pool_project.weight"),
                [c, c, r, r],
                device,
            )?,
            pool_bias: ws.tensor(&format!("{PREFIX}.boxes_pool_project.bias"), [c], device)?,
            pos_proj: Linear::load(
                ws,
                &format!("{PREFIX}.boxes_pos_enc_project"),
                c + 2,
                c,
                device,
            )?,
            vision_norm: ln("vision_layer_norm")?,
            final_proj: Linear::load(ws, &format!("{PREFIX}.final_proj"), c, c, device)?,
            prompt_norm: ln("prompt_layer_norm")?,
            layers,
            output_norm: ln("output_layer_norm")?,
            roi: r,
            dim: c,
            device: device.clone(),
        })
    }

    /// Encodes `boxes` against the image level `feats` `[1, C, H, W]` with position `pos`.
    /// Returns `[1, N + 1, C]` tokens (boxes then CLS), all valid.
    pub fn forward(
        &self,
        boxes: &[BoxPrompt],
        feats: Tensor<4>,
        pos: Tensor<4>,
    ) -> Result<Tensor<3>> {
        Ok(self.forward_traced(boxes, feats, pos)?.0)
    }

    /// [`Self::forward`] keeping the intermediates.
    pub fn forward_traced(
        &self,
        boxes: &[BoxPrompt],
        feats: Tensor<4>,
        pos: Tensor<4>,
    ) -> Result<(Tensor<3>, GeometryTrace)> {
        let [b, c, h, w] = feats.dims();
        if b != 1 || c != self.dim {
            return Err(Sam3Error::InvalidInput(format!(
                "geometry encoder expects [1, {}, H, W] features, got {:?}",
                self.dim,
                feats.dims()
            )));
        }
        let dev = &self.device;
        let flat = feats.clone().reshape([1, c, h * w]).swap_dims(1, 2);
        let pos_flat = pos.reshape([1, c, h * w]).swap_dims(1, 2);
        let normed = self.vision_norm.forward(feats.permute([0, 2, 3, 1]));
        let n = boxes.len();
        let mut trace = GeometryTrace {
            vision_layer_norm: normed.clone(),
            direct: None,
            pooled: None,
            pos: None,
            prompt_embeds: self.cls_embed.clone(),
            layers: Vec::new(),
        };
        let mut tokens = self.cls_embed.clone();
        if n > 0 {
            let coords: Vec<f32> = boxes.iter().flat_map(|b| [b.cx, b.cy, b.w, b.h]).collect();
            let coords_t: Tensor<3> = Tensor::from_data(TensorData::new(coords, [1, n, 4]), dev);
            let direct = self.direct.forward(coords_t);
            // ROI-align on the normalised map, then the r×r conv.
            let xyxy: Vec<[f32; 4]> = boxes
                .iter()
                .map(|b| {
                    [
                        (b.cx - 0.5 * b.w) * w as f32,
                        (b.cy - 0.5 * b.h) * h as f32,
                        (b.cx + 0.5 * b.w) * w as f32,
                        (b.cy + 0.5 * b.h) * h as f32,
                    ]
                })
                .collect();
            let r = self.roi;
            let weights: Tensor<2> = Tensor::from_data(
                TensorData::new(roi_align_weights(&xyxy, h, w, r), [n * r * r, h * w]),
                dev,
            );
            let sampled = weights
                .matmul(normed.reshape([h * w, c]))
                .reshape([n, r, r, c])
                .permute([0, 3, 1, 2]);
            let pooled = conv2d(
                sampled,
                self.pool_weight.clone(),
                Some(self.pool_bias.clone()),
                ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
            );
            // Sine encoding of the centre plus raw h, w.
            let half = c / 2;
            let scale = 2.0 * std::f32::consts::PI;
            let mut pe = Vec::with_capacity(n * (c + 2));
            for b in boxes {
                sine_features(b.cy * scale, half, &mut pe);
                sine_features(b.cx * scale, half, &mut pe);
                pe.push(b.h);
                pe.push(b.w);
            }
            let pe = self.pos_proj.forward(Tensor::<3>::from_data(
                TensorData::new(pe, [1, n, c + 2]),
                dev,
            ));
            let labels: Vec<i64> = boxes.iter().map(|b| i64::from(b.positive)).collect();
            let labels: Tensor<1, Int> = Tensor::from_data(TensorData::new(labels, [n]), dev);
            let label = self.label_embed.clone().select(0, labels).unsqueeze::<3>();
            let embeds = label + direct.clone() + pooled.clone().reshape([1, n, c]) + pe.clone();
            trace.direct = Some(direct);
            trace.pooled = Some(pooled);
            trace.pos = Some(pe);
            tokens = Tensor::cat(vec![embeds, tokens], 1);
        }
        let mut x = self.prompt_norm.forward(self.final_proj.forward(tokens));
        trace.prompt_embeds = x.clone();
        let key = flat.clone() + pos_flat;
        for layer in &self.layers {
            x = layer.forward(x, None, key.clone(), flat.clone(), None);
            trace.layers.push(x.clone());
        }
        let out = self.output_norm.forward(x);
        Ok((out, trace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn roi_align_of_constant_map_is_constant() {
        // Inside the map every bin averages bilinear weights that sum to one.
        let m = roi_align_weights(&[[1.0, 2.0, 6.5, 7.0]], 8, 8, 7);
        for row in m.chunks(64) {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5, "{s}");
        }
    }

    #[test]
    fn geometry_parity() {
        let cfg = tiny_config();
        let enc =
            GeometryEncoder::load(&tiny_store(), &cfg.geometry_encoder_config, &dev()).unwrap();
        for name in ["text-box", "box"] {
            let case = case(name);
            let boxes = case_boxes(&case);
            let (out, tr) = enc
                .forward_traced(
                    &boxes,
                    t(&case.inter, "vision.fpn.2"),
                    t(&case.inter, "vision.fpn_pos.2"),
                )
                .unwrap();
            let n = boxes.len();
            assert_close(
                &format!("{name} geometry.vision_layer_norm"),
                tr.vision_layer_norm,
                t(&case.inter, "geometry.vision_layer_norm"),
            );
            assert_close(
                &format!("{name} geometry.boxes_direct_project"),
                tr.direct.unwrap(),
                t(&case.inter, "geometry.boxes_direct_project"),
            );
            assert_close(
                &format!("{name} geometry.boxes_pool_project"),
                tr.pooled.unwrap(),
                t(&case.inter, "geometry.boxes_pool_project"),
            );
            assert_close(
                &format!("{name} geometry.boxes_pos_enc_project"),
                tr.pos.unwrap(),
                t(&case.inter, "geometry.boxes_pos_enc_project"),
            );
            // All boxes of these cases are valid, so the CLS token sits right after them.
            let mask = ints(&case.inter, "geometry.attention_mask");
            assert!(mask.iter().all(|&m| m == 1));
            assert_close(
                &format!("{name} geometry.prompt_embeds"),
                tr.prompt_embeds,
                t(&case.inter, "geometry.prompt_embeds"),
            );
            assert_close(
                &format!("{name} geometry.layers.0"),
                tr.layers[0].clone(),
                t(&case.inter, "geometry.layers.0"),
            );
            assert_eq!(out.dims(), [1, n + 1, 32]);
            assert_close(
                &format!("{name} geometry.last_hidden_state"),
                out,
                t(&case.inter, "geometry.last_hidden_state"),
            );
        }
    }

    #[test]
    fn text_only_geometry_is_the_cls_token_meta_semantics() {
        // meta-text: transformers emulated Meta with one padding box; the valid token is CLS.
        let cfg = tiny_config();
        let enc =
            GeometryEncoder::load(&tiny_store(), &cfg.geometry_encoder_config, &dev()).unwrap();
        let case = case("meta-text");
        let out = enc
            .forward(
                &[],
                t(&case.inter, "vision.fpn.2"),
                t(&case.inter, "vision.fpn_pos.2"),
            )
            .unwrap();
        let reference: Tensor<3> = t(&case.inter, "geometry.last_hidden_state");
        let mask = ints(&case.inter, "geometry.attention_mask");
        assert_eq!(mask, vec![1, 0]);
        assert_close("meta-text geometry CLS", out, reference.slice_dim(1, 0..1));
    }
}
