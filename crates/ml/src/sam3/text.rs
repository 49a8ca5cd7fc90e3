//! CLIP text encoder (causal pre-LN transformer) and the projection to the DETR width.

use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::TextConfig;
use super::error::{Result, Sam3Error};
use super::layers::{Attention, FeedForward, LayerNorm, Linear, MASKED};
use super::weights::WeightStore;

const PREFIX: &str = "text_encoder.text_model";

#[derive(Debug, Clone)]
struct TextBlock {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    mlp: FeedForward,
}

/// Encoded prompt text: projected token features and their validity mask.
#[derive(Debug, Clone)]
pub struct TextFeatures {
    /// `[1, L, C]` features after the projection to the DETR width.
    pub features: Tensor<3>,
    /// `true` for real tokens, `false` for padding (length `L`).
    pub valid: Vec<bool>,
}

/// The CLIP text tower plus `text_projection`.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    token_embedding: Tensor<2>,
    position_embedding: Tensor<3>,
    blocks: Vec<TextBlock>,
    final_norm: LayerNorm,
    projection: Linear,
    context: usize,
    device: Device,
}

impl TextEncoder {
    /// Loads the text tower; `out_dim` is the DETR hidden size.
    pub fn load(
        ws: &WeightStore,
        cfg: &TextConfig,
        out_dim: usize,
        device: &Device,
    ) -> Result<Self> {
        let c = cfg.hidden_size;
        let gelu = match cfg.hidden_act.as_str() {
            "gelu" => true,
            other => {
                return Err(Sam3Error::Config(format!(
                    "text hidden_act `{other}` is not supported (SAM3 uses exact gelu)"
                )));
            }
        };
        let eps = cfg.layer_norm_eps;
        let blocks = (0..cfg.num_hidden_layers)
            .map(|i| {
                let p = format!("{PREFIX}.encoder.layers.{i}");
                Ok(TextBlock {
                    norm1: LayerNorm::load(ws, &format!("{p}.layer_norm1"), c, eps, device)?,
                    attn: Attention::load(
                        ws,
                        &format!("{p}.self_attn"),
                        "out_proj",
                        c,
                        cfg.num_attention_heads,
                        device,
                    )?,
                    norm2: LayerNorm::load(ws, &format!("{p}.layer_norm2"), c, eps, device)?,
                    mlp: FeedForward::load(
                        ws,
                        &format!("{p}.mlp"),
                        c,
                        cfg.intermediate_size,
                        gelu,
                        device,
                    )?,
                })
            })
            .collect::<Result<_>>()?;
        let ctx = cfg.max_position_embeddings;
        Ok(Self {
            token_embedding: ws.tensor(
                &format!("{PREFIX}.embeddings.token_embedding.weight"),
                [cfg.vocab_size, c],
                device,
            )?,
            position_embedding: ws
                .tensor::<2>(
                    &format!("{PREFIX}.embeddings.position_embedding.weight"),
                    [ctx, c],
                    device,
                )?
                .unsqueeze(),
            blocks,
            final_norm: LayerNorm::load(ws, &format!("{PREFIX}.final_layer_norm"), c, eps, device)?,
            projection: Linear::load(ws, "text_projection", c, out_dim, device)?,
            context: ctx,
            device: device.clone(),
        })
    }

    /// Context length (32).
    pub fn context(&self) -> usize {
        self.context
    }

    /// CLIP output after the final LayerNorm, `[1, L, C_text]`, for padded ids of length `L`.
    /// Attention is causal and ignores padding keys.
    pub fn last_hidden_state(&self, ids: &[i64], valid: &[bool]) -> Result<Tensor<3>> {
        let l = ids.len();
        if l == 0 || l > self.context || valid.len() != l {
            return Err(Sam3Error::InvalidInput(format!(
                "text needs 1..={} ids and a mask of the same length",
                self.context
            )));
        }
        let ids_t: Tensor<2, Int> =
            Tensor::from_data(TensorData::new(ids.to_vec(), [1, l]), &self.device);
        let mut x = embedding(self.token_embedding.clone(), ids_t)
            + self.position_embedding.clone().slice_dim(1, 0..l);
        let mut bias = Vec::with_capacity(l * l);
        for q in 0..l {
            bias.extend(
                valid
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| if k <= q && v { 0.0 } else { MASKED }),
            );
        }
        let bias: Tensor<4> = Tensor::from_data(TensorData::new(bias, [1, 1, l, l]), &self.device);
        for b in &self.blocks {
            let h = b.norm1.forward(x.clone());
            x = x + b.attn.forward(h.clone(), h.clone(), h, Some(bias.clone()));
            x = x.clone() + b.mlp.forward(b.norm2.forward(x));
        }
        Ok(self.final_norm.forward(x))
    }

    /// Projected text features for the DETR stages.
    pub fn encode(&self, ids: &[i64], valid: &[bool]) -> Result<TextFeatures> {
        let hidden = self.last_hidden_state(ids, valid)?;
        Ok(TextFeatures {
            features: self.projection.forward(hidden),
            valid: valid.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    /// Keeps only the rows of `[1, L, C]` where the mask is set.
    fn valid_rows(x: Tensor<3>, valid: &[bool]) -> Vec<f32> {
        let [_, _, c] = x.dims();
        let v = x.into_data().try_to_vec::<f32>().unwrap();
        v.chunks(c)
            .zip(valid)
            .filter(|(_, m)| **m)
            .flat_map(|(r, _)| r.to_vec())
            .collect()
    }

    #[test]
    fn text_parity() {
        let cfg = tiny_config();
        let enc = TextEncoder::load(&tiny_store(), &cfg.text_config, 32, &dev()).unwrap();
        for name in ["text", "text-box", "box"] {
            let case = case(name);
            let ids = ints(&case.inputs, "input_ids");
            let valid: Vec<bool> = ints(&case.inputs, "attention_mask")
                .iter()
                .map(|&m| m == 1)
                .collect();
            let hidden = enc.last_hidden_state(&ids, &valid).unwrap();
            assert_close_vec(
                &format!("{name} text.last_hidden_state"),
                &valid_rows(hidden, &valid),
                &valid_rows(t(&case.inter, "text.last_hidden_state"), &valid),
            );
            let feats = enc.encode(&ids, &valid).unwrap();
            assert_close_vec(
                &format!("{name} text.projected"),
                &valid_rows(feats.features, &valid),
                &valid_rows(t(&case.inter, "text.projected"), &valid),
            );
        }
    }
}
