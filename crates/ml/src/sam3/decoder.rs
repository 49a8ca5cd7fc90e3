//! DETR decoder: object queries plus a presence token, conditional query positions from the
//! reference boxes, text and image cross-attention with the box-relative position bias (boxRPB),
//! post-norm, and iterative box refinement.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::StackConfig;
use super::error::Result;
use super::layers::{Attention, FeedForward, LN_EPS, LayerNorm, ReluMlp, key_padding_bias};
use super::weights::WeightStore;

const PREFIX: &str = "detr_decoder";

/// `log(x / (1 - x))` with both terms clamped to at least `1e-3`.
pub fn inverse_sigmoid(x: Tensor<3>) -> Tensor<3> {
    let x = x.clamp(0.0, 1.0);
    let num = x.clone().clamp_min(1e-3);
    let den = x.neg().add_scalar(1.0).clamp_min(1e-3);
    (num / den).log()
}

/// `(cx, cy, w, h)` → `(x0, y0, x1, y1)` on the last dimension of `[B, N, 4]`.
pub fn cxcywh_to_xyxy(b: Tensor<3>) -> Tensor<3> {
    let cx = b.clone().slice_dim(2, 0..1);
    let cy = b.clone().slice_dim(2, 1..2);
    let w = b.clone().slice_dim(2, 2..3).mul_scalar(0.5);
    let h = b.slice_dim(2, 3..4).mul_scalar(0.5);
    Tensor::cat(
        vec![
            cx.clone() - w.clone(),
            cy.clone() - h.clone(),
            cx + w,
            cy + h,
        ],
        2,
    )
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    self_norm: LayerNorm,
    text_attn: Attention,
    text_norm: LayerNorm,
    vision_attn: Attention,
    vision_norm: LayerNorm,
    mlp: FeedForward,
    mlp_norm: LayerNorm,
}

/// Everything the decoder produces (per layer).
#[derive(Debug, Clone)]
pub struct DecoderOutput {
    /// Raw layer outputs `[1, 1 + Q, C]` (presence token first).
    pub layer_outputs: Vec<Tensor<3>>,
    /// Output-LayerNorm'd query states `[1, Q, C]` of every layer.
    pub hidden: Vec<Tensor<3>>,
    /// Reference boxes (cxcywh, sigmoid space) entering each layer, `[1, Q, 4]`.
    pub reference_boxes: Vec<Tensor<3>>,
    /// `box_head` offsets of every layer, `[1, Q, 4]`.
    pub box_offsets: Vec<Tensor<3>>,
    /// Refined boxes (cxcywh) of every layer, `[1, Q, 4]`.
    pub boxes_cxcywh: Vec<Tensor<3>>,
    /// Presence logits of every layer, `[1, 1]`, clamped to ±10.
    pub presence_logits: Vec<Tensor<2>>,
    /// Query position embedding used by the last layer, `[1, Q, C]`.
    pub last_query_pos: Option<Tensor<3>>,
}

/// The DETR decoder.
#[derive(Debug, Clone)]
pub struct DetrDecoder {
    layers: Vec<DecoderLayer>,
    output_norm: LayerNorm,
    box_head: ReluMlp,
    query_embed: Tensor<3>,
    reference_points: Tensor<3>,
    presence_token: Tensor<3>,
    presence_head: ReluMlp,
    presence_norm: LayerNorm,
    ref_point_head: ReluMlp,
    rpb_x: ReluMlp,
    rpb_y: ReluMlp,
    heads: usize,
    dim: usize,
    device: Device,
}

impl DetrDecoder {
    /// Loads `detr_decoder.*`.
    pub fn load(ws: &WeightStore, cfg: &StackConfig, device: &Device) -> Result<Self> {
        let c = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let q = cfg.num_queries;
        let layers = (0..cfg.num_layers)
            .map(|i| {
                let p = format!("{PREFIX}.layers.{i}");
                let ln = |n: &str| LayerNorm::load(ws, &format!("{p}.{n}"), c, LN_EPS, device);
                let attn =
                    |n: &str| Attention::load(ws, &format!("{p}.{n}"), "o_proj", c, heads, device);
                Ok(DecoderLayer {
                    self_attn: attn("self_attn")?,
                    self_norm: ln("self_attn_layer_norm")?,
                    text_attn: attn("text_cross_attn")?,
                    text_norm: ln("text_cross_attn_layer_norm")?,
                    vision_attn: attn("vision_cross_attn")?,
                    vision_norm: ln("vision_cross_attn_layer_norm")?,
                    mlp: FeedForward::load(
                        ws,
                        &format!("{p}.mlp"),
                        c,
                        cfg.intermediate_size,
                        false,
                        device,
                    )?,
                    mlp_norm: ln("mlp_layer_norm")?,
                })
            })
            .collect::<Result<_>>()?;
        let mlp = |name: &str, dims: &[usize]| {
            ReluMlp::load_numbered(ws, &format!("{PREFIX}.{name}"), dims, device)
        };
        Ok(Self {
            layers,
            output_norm: LayerNorm::load(
                ws,
                &format!("{PREFIX}.output_layer_norm"),
                c,
                LN_EPS,
                device,
            )?,
            box_head: mlp("box_head", &[c, c, c, 4])?,
            query_embed: ws
                .tensor::<2>(&format!("{PREFIX}.query_embed.weight"), [q, c], device)?
                .unsqueeze(),
            reference_points: ws
                .tensor::<2>(&format!("{PREFIX}.reference_points.weight"), [q, 4], device)?
                .unsqueeze(),
            presence_token: ws
                .tensor::<2>(&format!("{PREFIX}.presence_token.weight"), [1, c], device)?
                .unsqueeze(),
            presence_head: mlp("presence_head", &[c, c, c, 1])?,
            presence_norm: LayerNorm::load(
                ws,
                &format!("{PREFIX}.presence_layer_norm"),
                c,
                LN_EPS,
                device,
            )?,
            ref_point_head: mlp("ref_point_head", &[2 * c, c, c])?,
            rpb_x: mlp("box_rpb_embed_x", &[2, c, heads])?,
            rpb_y: mlp("box_rpb_embed_y", &[2, c, heads])?,
            heads,
            dim: c,
            device: device.clone(),
        })
    }

    /// Box MLP applied to query states.
    pub fn box_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.box_head.forward(hidden)
    }

    /// Sine embedding of reference boxes `[1, Q, 4]` → `[1, Q, 2C]` in `(y, x, w, h)` order.
    fn box_sine(&self, boxes: Tensor<3>) -> Tensor<3> {
        let n = self.dim / 2;
        let [b, q, _] = boxes.dims();
        let dim_t: Vec<f32> = (0..n)
            .map(|i| 10000f32.powf((2 * (i / 2)) as f32 / n as f32))
            .collect();
        let even: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        let dim_t: Tensor<4> =
            Tensor::from_data(TensorData::new(dim_t, [1, 1, 1, n]), &self.device);
        let even: Tensor<4> = Tensor::from_data(TensorData::new(even, [1, 1, 1, n]), &self.device);
        let v = boxes
            .mul_scalar(2.0 * std::f64::consts::PI)
            .unsqueeze_dim::<4>(3)
            / dim_t;
        let feats = v.clone().sin() * even.clone() + v.cos() * even.neg().add_scalar(1.0);
        let order: Tensor<1, Int> =
            Tensor::from_data(TensorData::new(vec![1i64, 0, 2, 3], [4]), &self.device);
        feats.select(2, order).reshape([b, q, 4 * n])
    }

    /// `sign(8d)·log2(|8d| + 1) / log2(8)`.
    fn log_delta(d: Tensor<4>) -> Tensor<4> {
        let d = d.mul_scalar(8.0);
        let mag = d
            .clone()
            .abs()
            .add_scalar(1.0)
            .log()
            .div_scalar(std::f64::consts::LN_2 * 3.0);
        d.sign() * mag
    }

    /// Box-relative position bias `[1, heads, 1 + Q, H·W]` (zero row for the presence token).
    fn rpb(&self, boxes: Tensor<3>, h: usize, w: usize) -> Tensor<4> {
        let [b, q, _] = boxes.dims();
        let xyxy = cxcywh_to_xyxy(boxes);
        let coords = |len: usize| -> Tensor<4> {
            let v: Vec<f32> = (0..len).map(|i| i as f32 / len as f32).collect();
            Tensor::from_data(TensorData::new(v, [1, 1, len, 1]), &self.device)
        };
        let pick = |idx: [i64; 2]| -> Tensor<4> {
            let i: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(idx.to_vec(), [2]), &self.device);
            xyxy.clone().select(2, i).unsqueeze_dim::<4>(2)
        };
        let dy = Self::log_delta(coords(h) - pick([1, 3])); // [B, Q, H, 2]
        let dx = Self::log_delta(coords(w) - pick([0, 2])); // [B, Q, W, 2]
        let by = self.rpb_y.forward(dy); // [B, Q, H, heads]
        let bx = self.rpb_x.forward(dx); // [B, Q, W, heads]
        let bias = by.unsqueeze_dim::<5>(3) + bx.unsqueeze_dim::<5>(2); // [B, Q, H, W, heads]
        let bias = bias
            .reshape([b, q, h * w, self.heads])
            .permute([0, 3, 1, 2]);
        let zeros = Tensor::zeros([b, self.heads, 1, h * w], &self.device);
        Tensor::cat(vec![zeros, bias], 2)
    }

    /// Runs all layers. `memory`/`pos` are `[1, H·W, C]` image tokens of an `h × w` map, the
    /// prompt is `[1, P, C]` with validity `valid`.
    pub fn forward(
        &self,
        memory: Tensor<3>,
        pos: Tensor<3>,
        prompt: Tensor<3>,
        valid: &[bool],
        h: usize,
        w: usize,
    ) -> DecoderOutput {
        let text_bias = key_padding_bias(valid, 1, &self.device);
        let mut x = Tensor::cat(
            vec![self.presence_token.clone(), self.query_embed.clone()],
            1,
        );
        let mut refs = sigmoid(self.reference_points.clone());
        let key = memory.clone() + pos;
        let [b, _, c] = x.dims();
        let mut out = DecoderOutput {
            layer_outputs: Vec::new(),
            hidden: Vec::new(),
            reference_boxes: Vec::new(),
            box_offsets: Vec::new(),
            boxes_cxcywh: Vec::new(),
            presence_logits: Vec::new(),
            last_query_pos: None,
        };
        for layer in &self.layers {
            let qpos = self.ref_point_head.forward(self.box_sine(refs.clone()));
            out.last_query_pos = Some(qpos.clone());
            let qpos = Tensor::cat(vec![Tensor::zeros([b, 1, c], &self.device), qpos], 1);
            let rpb = self.rpb(refs.clone(), h, w);

            let qp = x.clone() + qpos.clone();
            x = layer
                .self_norm
                .forward(x.clone() + layer.self_attn.forward(qp.clone(), qp, x, None));
            let qp = x.clone() + qpos.clone();
            x = layer.text_norm.forward(
                x + layer.text_attn.forward(
                    qp,
                    prompt.clone(),
                    prompt.clone(),
                    Some(text_bias.clone()),
                ),
            );
            let qp = x.clone() + qpos;
            x = layer.vision_norm.forward(
                x + layer
                    .vision_attn
                    .forward(qp, key.clone(), memory.clone(), Some(rpb)),
            );
            x = layer.mlp_norm.forward(x.clone() + layer.mlp.forward(x));
            out.layer_outputs.push(x.clone());

            let [_, n, _] = x.dims();
            let queries = self.output_norm.forward(x.clone().slice_dim(1, 1..n));
            let offsets = self.box_head.forward(queries.clone());
            let new_refs = sigmoid(offsets.clone() + inverse_sigmoid(refs.clone()));
            out.reference_boxes.push(refs);
            out.box_offsets.push(offsets);
            out.boxes_cxcywh.push(new_refs.clone());
            out.hidden.push(queries);
            refs = new_refs;

            let presence = self
                .presence_head
                .forward(self.presence_norm.forward(x.clone().slice_dim(1, 0..1)))
                .reshape([b, 1])
                .clamp(-10.0, 10.0);
            out.presence_logits.push(presence);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    fn layer_slice(x: Tensor<4>, l: usize) -> Tensor<3> {
        let [_, b, q, c] = x.dims();
        x.slice_dim(0, l..l + 1).reshape([b, q, c])
    }

    #[test]
    fn decoder_parity() {
        let cfg = tiny_config();
        let dec = DetrDecoder::load(&tiny_store(), &cfg.detr_decoder_config, &dev()).unwrap();
        for name in ["text", "text-box", "box", "meta-text"] {
            let case = case(name);
            let inter = &case.inter;
            let valid: Vec<bool> = ints(inter, "prompt.mask").iter().map(|&m| m == 1).collect();
            let out = dec.forward(
                t(inter, "detr_encoder.last_hidden_state"),
                t(inter, "detr_encoder.pos_embeds"),
                t(inter, "prompt.features"),
                &valid,
                8,
                8,
            );
            for l in 0..2 {
                let tag = |s: &str| format!("{name} detr_decoder.{s}[{l}]");
                assert_close(
                    &tag("layers"),
                    out.layer_outputs[l].clone(),
                    t(inter, &format!("detr_decoder.layers.{l}")),
                );
                assert_close(
                    &tag("intermediate_hidden_states"),
                    out.hidden[l].clone(),
                    layer_slice(t(inter, "detr_decoder.intermediate_hidden_states"), l),
                );
                assert_close(
                    &tag("reference_boxes"),
                    out.reference_boxes[l].clone(),
                    layer_slice(t(inter, "detr_decoder.reference_boxes"), l),
                );
                assert_close(
                    &tag("box_offsets"),
                    out.box_offsets[l].clone(),
                    layer_slice(t(inter, "detr_decoder.box_offsets"), l),
                );
                assert_close(
                    &tag("pred_boxes_cxcywh"),
                    out.boxes_cxcywh[l].clone(),
                    layer_slice(t(inter, "detr_decoder.pred_boxes_cxcywh"), l),
                );
                assert_close(
                    &tag("pred_boxes_xyxy"),
                    cxcywh_to_xyxy(out.boxes_cxcywh[l].clone()),
                    layer_slice(t(inter, "detr_decoder.pred_boxes_xyxy"), l),
                );
                let p: Tensor<3> = t(inter, "detr_decoder.presence_logits");
                assert_close(
                    &tag("presence_logits"),
                    out.presence_logits[l].clone(),
                    p.slice_dim(0, l..l + 1).reshape([1, 1]),
                );
            }
            assert_close(
                &format!("{name} detr_decoder.query_pos.last_layer"),
                out.last_query_pos.clone().unwrap(),
                t(inter, "detr_decoder.query_pos.last_layer"),
            );
        }
    }
}
