//! Fusion (DETR) encoder: image tokens self-attend (with position) and cross-attend to the
//! prompt tokens (text + geometry), pre-norm, ReLU FFN.

use burn::tensor::{Device, Tensor};

use super::config::StackConfig;
use super::error::Result;
use super::layers::{PreNormLayer, key_padding_bias};
use super::weights::WeightStore;

/// The fusion encoder.
#[derive(Debug, Clone)]
pub struct FusionEncoder {
    layers: Vec<PreNormLayer>,
    device: Device,
}

impl FusionEncoder {
    /// Loads `detr_encoder.layers.*`.
    pub fn load(ws: &WeightStore, cfg: &StackConfig, device: &Device) -> Result<Self> {
        let c = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let layers = (0..cfg.num_layers)
            .map(|i| {
                let p = format!("detr_encoder.layers.{i}");
                PreNormLayer::load(ws, &p, c, heads, cfg.intermediate_size, device)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            device: device.clone(),
        })
    }

    /// Runs the encoder on image tokens `[1, HW, C]` with position `[1, HW, C]` and the prompt
    /// `[1, P, C]` (`valid` marks real prompt tokens); returns the output of every layer.
    pub fn forward_all(
        &self,
        image: Tensor<3>,
        pos: Tensor<3>,
        prompt: Tensor<3>,
        valid: &[bool],
    ) -> Vec<Tensor<3>> {
        let bias = key_padding_bias(valid, 1, &self.device);
        let mut x = image;
        let mut outs = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            x = layer.forward(
                x,
                Some(pos.clone()),
                prompt.clone(),
                prompt.clone(),
                Some(bias.clone()),
            );
            outs.push(x.clone());
        }
        outs
    }

    /// Runs the encoder and returns the last layer's output ("memory").
    pub fn forward(
        &self,
        image: Tensor<3>,
        pos: Tensor<3>,
        prompt: Tensor<3>,
        valid: &[bool],
    ) -> Tensor<3> {
        let mut outs = self.forward_all(image.clone(), pos, prompt, valid);
        outs.pop().unwrap_or(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn fusion_parity() {
        let cfg = tiny_config();
        let enc = FusionEncoder::load(&tiny_store(), &cfg.detr_encoder_config, &dev()).unwrap();
        for name in ["text", "text-box", "box", "meta-text"] {
            let case = case(name);
            let fpn: Tensor<4> = t(&case.inter, "vision.fpn.2");
            let image = fpn.reshape([1, 32, 64]).swap_dims(1, 2);
            let pos: Tensor<3> = t(&case.inter, "detr_encoder.pos_embeds");
            let valid: Vec<bool> = ints(&case.inter, "prompt.mask")
                .iter()
                .map(|&m| m == 1)
                .collect();
            let outs = enc.forward_all(image, pos, t(&case.inter, "prompt.features"), &valid);
            for (i, o) in outs.into_iter().enumerate() {
                assert_close(
                    &format!("{name} detr_encoder.layers.{i}"),
                    o,
                    t(&case.inter, &format!("detr_encoder.layers.{i}")),
                );
            }
        }
    }
}
