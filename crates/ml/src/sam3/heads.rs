//! Output heads: dot-product scoring, and the mask decoder (prompt cross-attention, pixel
//! decoder, instance projection + mask embedder, semantic head).

use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::{Sam3Config, StackConfig};
use super::error::Result;
use super::layers::{
    Attention, Conv2d, GroupNorm, LN_EPS, LayerNorm, Linear, ReluMlp, key_padding_bias,
};
use super::weights::WeightStore;

/// Dot-product scoring between decoder queries and the pooled prompt.
#[derive(Debug, Clone)]
pub struct DotProductScoring {
    text_mlp: ReluMlp,
    out_norm: LayerNorm,
    text_proj: Linear,
    query_proj: Linear,
    scale: f64,
    device: Device,
}

impl DotProductScoring {
    /// Loads `dot_product_scoring.*`.
    pub fn load(ws: &WeightStore, cfg: &Sam3Config, device: &Device) -> Result<Self> {
        let c = cfg.detr_decoder_config.hidden_size;
        let p = "dot_product_scoring";
        Ok(Self {
            text_mlp: ReluMlp::load_numbered(
                ws,
                &format!("{p}.text_mlp"),
                &[c, cfg.detr_decoder_config.intermediate_size, c],
                device,
            )?,
            out_norm: LayerNorm::load(ws, &format!("{p}.text_mlp_out_norm"), c, LN_EPS, device)?,
            text_proj: Linear::load(ws, &format!("{p}.text_proj"), c, c, device)?,
            query_proj: Linear::load(ws, &format!("{p}.query_proj"), c, c, device)?,
            scale: 1.0 / (c as f64).sqrt(),
            device: device.clone(),
        })
    }

    /// Pooled and projected prompt `[1, 1, C]` (computed once per prompt).
    pub fn prompt_vector(&self, prompt: Tensor<3>, valid: &[bool]) -> Tensor<3> {
        let x = self
            .out_norm
            .forward(prompt.clone() + self.text_mlp.forward(prompt));
        let p = valid.len();
        let count = valid.iter().filter(|v| **v).count().max(1) as f64;
        let w: Vec<f32> = valid.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect();
        let w: Tensor<3> = Tensor::from_data(TensorData::new(w, [1, 1, p]), &self.device);
        let pooled = w.matmul(x).div_scalar(count); // [1, 1, C]
        self.text_proj.forward(pooled)
    }

    /// Logits `[1, Q]` of queries `[1, Q, C]`, clamped to ±12.
    pub fn logits(&self, queries: Tensor<3>, prompt_vector: Tensor<3>) -> Tensor<2> {
        let q = self.query_proj.forward(queries);
        let [b, n, _] = q.dims();
        q.matmul(prompt_vector.swap_dims(1, 2))
            .mul_scalar(self.scale)
            .clamp(-12.0, 12.0)
            .reshape([b, n])
    }
}

/// Intermediates of the mask decoder.
#[derive(Debug, Clone)]
pub struct MaskTrace {
    /// Prompt cross-attention output before the residual, `[1, HW, C]`.
    pub prompt_cross_attn: Tensor<3>,
    /// Pixel decoder output `[1, C, H0, W0]`.
    pub pixel_embed: Tensor<4>,
    /// Instance projection `[1, C, H0, W0]`.
    pub instance_embeds: Tensor<4>,
    /// Mask embeddings `[1, Q, C]`.
    pub mask_embeddings: Tensor<3>,
}

/// Mask logits and semantic logits.
#[derive(Debug, Clone)]
pub struct MaskOutput {
    /// `[1, Q, H0, W0]`.
    pub pred_masks: Tensor<4>,
    /// `[1, 1, H0, W0]`.
    pub semantic_seg: Tensor<4>,
}

/// MaskFormer-style mask decoder.
#[derive(Debug, Clone)]
pub struct MaskDecoder {
    cross_attn: Attention,
    cross_norm: LayerNorm,
    convs: Vec<Conv2d>,
    norms: Vec<GroupNorm>,
    instance: Conv2d,
    semantic: Conv2d,
    mask_embedder: ReluMlp,
    device: Device,
}

impl MaskDecoder {
    /// Loads `mask_decoder.*`.
    pub fn load(ws: &WeightStore, cfg: &StackConfig, device: &Device) -> Result<Self> {
        let c = cfg.hidden_size;
        let p = "mask_decoder";
        let stages = cfg.num_upsampling_stages;
        Ok(Self {
            cross_attn: Attention::load(
                ws,
                &format!("{p}.prompt_cross_attn"),
                "o_proj",
                c,
                cfg.num_attention_heads,
                device,
            )?,
            cross_norm: LayerNorm::load(
                ws,
                &format!("{p}.prompt_cross_attn_norm"),
                c,
                LN_EPS,
                device,
            )?,
            convs: (0..stages)
                .map(|i| {
                    Conv2d::load(
                        ws,
                        &format!("{p}.pixel_decoder.conv_layers.{i}"),
                        c,
                        c,
                        3,
                        1,
                        1,
                        true,
                        device,
                    )
                })
                .collect::<Result<_>>()?,
            norms: (0..stages)
                .map(|i| GroupNorm::load(ws, &format!("{p}.pixel_decoder.norms.{i}"), c, 8, device))
                .collect::<Result<_>>()?,
            instance: Conv2d::load(
                ws,
                &format!("{p}.instance_projection"),
                c,
                c,
                1,
                1,
                0,
                true,
                device,
            )?,
            semantic: Conv2d::load(
                ws,
                &format!("{p}.semantic_projection"),
                c,
                1,
                1,
                1,
                0,
                true,
                device,
            )?,
            mask_embedder: ReluMlp::load(
                ws,
                &format!("{p}.mask_embedder.layers"),
                &["0", "1", "2"],
                &[c, c, c, c],
                device,
            )?,
            device: device.clone(),
        })
    }

    /// Prompt-conditioned image tokens and pixel embedding. `fine` are the FPN levels finer
    /// than the encoder grid (finest first), `memory` is the encoder output `[1, h·w, C]`.
    pub fn pixel_embed(
        &self,
        fine: &[Tensor<4>],
        memory: Tensor<3>,
        grid: (usize, usize),
        prompt: Tensor<3>,
        valid: &[bool],
    ) -> (Tensor<3>, Tensor<4>) {
        let bias = key_padding_bias(valid, 1, &self.device);
        let normed = self.cross_norm.forward(memory.clone());
        let attn = self
            .cross_attn
            .forward(normed, prompt.clone(), prompt, Some(bias));
        let memory = memory + attn.clone();
        let [b, _, c] = memory.dims();
        let mut prev = memory.swap_dims(1, 2).reshape([b, c, grid.0, grid.1]);
        for (i, feat) in fine.iter().rev().enumerate() {
            let [_, _, h, w] = feat.dims();
            prev = interpolate(
                prev,
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            );
            prev = prev + feat.clone();
            prev = relu(self.norms[i].forward(self.convs[i].forward(prev)));
        }
        (attn, prev)
    }

    /// Mask logits for `queries` `[1, Q, C]` from a pixel embedding.
    pub fn masks(
        &self,
        queries: Tensor<3>,
        pixel_embed: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<3>) {
        let instance = self.instance.forward(pixel_embed);
        let [b, c, h, w] = instance.dims();
        let emb = self.mask_embedder.forward(queries);
        let q = emb.dims()[1];
        let masks = emb
            .clone()
            .matmul(instance.clone().reshape([b, c, h * w]))
            .reshape([b, q, h, w]);
        (masks, instance, emb)
    }

    /// Semantic logits `[1, 1, H0, W0]`.
    pub fn semantic(&self, pixel_embed: Tensor<4>) -> Tensor<4> {
        self.semantic.forward(pixel_embed)
    }

    /// Full mask head.
    pub fn forward_traced(
        &self,
        queries: Tensor<3>,
        fine: &[Tensor<4>],
        memory: Tensor<3>,
        grid: (usize, usize),
        prompt: Tensor<3>,
        valid: &[bool],
    ) -> (MaskOutput, MaskTrace) {
        let (attn, pixel) = self.pixel_embed(fine, memory, grid, prompt, valid);
        let (pred_masks, instance, emb) = self.masks(queries, pixel.clone());
        let semantic_seg = self.semantic(pixel.clone());
        (
            MaskOutput {
                pred_masks,
                semantic_seg,
            },
            MaskTrace {
                prompt_cross_attn: attn,
                pixel_embed: pixel,
                instance_embeds: instance,
                mask_embeddings: emb,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn scoring_parity() {
        let cfg = tiny_config();
        let scoring = DotProductScoring::load(&tiny_store(), &cfg, &dev()).unwrap();
        for name in ["text", "text-box", "box", "meta-text"] {
            let case = case(name);
            let inter = &case.inter;
            let valid: Vec<bool> = ints(inter, "prompt.mask").iter().map(|&m| m == 1).collect();
            let pv = scoring.prompt_vector(t(inter, "prompt.features"), &valid);
            let hs: Tensor<4> = t(inter, "detr_decoder.intermediate_hidden_states");
            let expected: Tensor<4> = t(inter, "scoring.logits");
            for l in 0..2 {
                let logits = scoring.logits(
                    hs.clone().slice_dim(0, l..l + 1).reshape([1, 10, 32]),
                    pv.clone(),
                );
                assert_close(
                    &format!("{name} scoring.logits[{l}]"),
                    logits,
                    expected.clone().slice_dim(0, l..l + 1).reshape([1, 10]),
                );
            }
        }
    }

    #[test]
    fn mask_decoder_parity() {
        let cfg = tiny_config();
        let md = MaskDecoder::load(&tiny_store(), &cfg.mask_decoder_config, &dev()).unwrap();
        for name in ["text", "text-box", "box", "meta-text"] {
            let case = case(name);
            let inter = &case.inter;
            let valid: Vec<bool> = ints(inter, "prompt.mask").iter().map(|&m| m == 1).collect();
            let hs: Tensor<4> = t(inter, "detr_decoder.intermediate_hidden_states");
            let (out, tr) = md.forward_traced(
                hs.slice_dim(0, 1..2).reshape([1, 10, 32]),
                &[t(inter, "vision.fpn.0"), t(inter, "vision.fpn.1")],
                t(inter, "detr_encoder.last_hidden_state"),
                (8, 8),
                t(inter, "prompt.features"),
                &valid,
            );
            let tag = |s: &str| format!("{name} mask_decoder.{s}");
            assert_close(
                &tag("prompt_cross_attn"),
                tr.prompt_cross_attn,
                t(inter, "mask_decoder.prompt_cross_attn"),
            );
            assert_close(
                &tag("pixel_embed"),
                tr.pixel_embed,
                t(inter, "mask_decoder.pixel_embed"),
            );
            assert_close(
                &tag("instance_embeds"),
                tr.instance_embeds,
                t(inter, "mask_decoder.instance_embeds"),
            );
            assert_close(
                &tag("mask_embeddings"),
                tr.mask_embeddings,
                t(inter, "mask_decoder.mask_embeddings"),
            );
            assert_close(
                &tag("pred_masks"),
                out.pred_masks,
                t(inter, "mask_decoder.pred_masks"),
            );
            assert_close(
                &tag("semantic_seg"),
                out.semantic_seg,
                t(inter, "mask_decoder.semantic_seg"),
            );
        }
    }
}
