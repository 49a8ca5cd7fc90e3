//! SimpleFPN neck (transpose convs / max-pool, 1×1 and 3×3 projections) and the DETR-style sine
//! position encodings.

use crate::models::activation::gelu;
use burn::tensor::module::{conv_transpose2d, max_pool2d};
use burn::tensor::ops::{ConvTransposeOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::VisionConfig;
use super::error::Result;
use super::layers::Conv2d;
use super::weights::WeightStore;

#[derive(Debug, Clone)]
struct ConvT {
    weight: Tensor<4>,
    bias: Tensor<1>,
}

impl ConvT {
    fn load(
        ws: &WeightStore,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            weight: ws.tensor(&format!("{prefix}.weight"), [c_in, c_out, 2, 2], device)?,
            bias: ws.tensor(&format!("{prefix}.bias"), [c_out], device)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_transpose2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1),
        )
    }
}

#[derive(Debug, Clone)]
enum Scale {
    Up4(Box<(ConvT, ConvT)>),
    Up2(Box<ConvT>),
    Same,
    Down2,
}

#[derive(Debug, Clone)]
struct FpnLevel {
    scale: Scale,
    proj1: Conv2d,
    proj2: Conv2d,
}

impl FpnLevel {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.scale {
            Scale::Up4(pair) => pair.1.forward(gelu(pair.0.forward(x))),
            Scale::Up2(a) => a.forward(x),
            Scale::Same => x,
            Scale::Down2 => max_pool2d(x, MaxPoolOptions::new([2, 2])),
        };
        self.proj2.forward(self.proj1.forward(x))
    }
}

/// The FPN neck on the ViT output.
#[derive(Debug, Clone)]
pub struct Neck {
    levels: Vec<FpnLevel>,
}

impl Neck {
    /// Loads `vision_encoder.neck.fpn_layers.*`.
    pub fn load(ws: &WeightStore, cfg: &VisionConfig, device: &Device) -> Result<Self> {
        let c = cfg.backbone_config.hidden_size;
        let d = cfg.fpn_hidden_size;
        let mut levels = Vec::new();
        for (i, s) in cfg.scale_factors.iter().enumerate() {
            let p = format!("vision_encoder.neck.fpn_layers.{i}");
            let (scale, mid) = if *s == 4.0 {
                (
                    Scale::Up4(Box::new((
                        ConvT::load(ws, &format!("{p}.scale_layers.0"), c, c / 2, device)?,
                        ConvT::load(ws, &format!("{p}.scale_layers.2"), c / 2, c / 4, device)?,
                    ))),
                    c / 4,
                )
            } else if *s == 2.0 {
                (
                    Scale::Up2(Box::new(ConvT::load(
                        ws,
                        &format!("{p}.scale_layers.0"),
                        c,
                        c / 2,
                        device,
                    )?)),
                    c / 2,
                )
            } else if *s == 1.0 {
                (Scale::Same, c)
            } else {
                (Scale::Down2, c)
            };
            levels.push(FpnLevel {
                scale,
                proj1: Conv2d::load(ws, &format!("{p}.proj1"), mid, d, 1, 1, 0, true, device)?,
                proj2: Conv2d::load(ws, &format!("{p}.proj2"), d, d, 3, 1, 1, true, device)?,
            });
        }
        Ok(Self { levels })
    }

    /// Computes the first `count` FPN levels from the ViT map `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, count: usize) -> Vec<Tensor<4>> {
        self.levels
            .iter()
            .take(count)
            .map(|l| l.forward(x.clone()))
            .collect()
    }

    /// Number of levels in the checkpoint.
    pub fn num_levels(&self) -> usize {
        self.levels.len()
    }
}

/// `temperature^(2·⌊i/2⌋/n)` for i in 0..n.
fn dim_t(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 10000f32.powf((2 * (i / 2)) as f32 / n as f32))
        .collect()
}

/// Sine/cosine features of scalar positions (already scaled): interleaved sin (even) / cos (odd).
pub fn sine_features(value: f32, n: usize, out: &mut Vec<f32>) {
    for (i, d) in dim_t(n).iter().enumerate() {
        let v = value / d;
        out.push(if i % 2 == 0 { v.sin() } else { v.cos() });
    }
}

/// Normalised sine position encoding of an `h × w` map with `channels` channels,
/// `[1, channels, h, w]` (`cat(pos_y, pos_x)`).
pub fn sine_position_encoding(channels: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
    let n = channels / 2;
    let scale = 2.0 * std::f32::consts::PI;
    let eps = 1e-6f32;
    let axis = |len: usize| -> Vec<f32> {
        let mut feats = Vec::with_capacity(len * n);
        for i in 0..len {
            let pos = (i + 1) as f32 / (len as f32 + eps) * scale;
            sine_features(pos, n, &mut feats);
        }
        feats
    };
    // [len, n] → [n, len]
    let y = Tensor::<2>::from_data(TensorData::new(axis(h), [h, n]), device)
        .swap_dims(0, 1)
        .reshape([1, n, h, 1])
        .expand([1, n, h, w]);
    let x = Tensor::<2>::from_data(TensorData::new(axis(w), [w, n]), device)
        .swap_dims(0, 1)
        .reshape([1, n, 1, w])
        .expand([1, n, h, w]);
    Tensor::cat(vec![y, x], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn neck_and_position_parity() {
        let cfg = tiny_config();
        let neck = Neck::load(&tiny_store(), &cfg.vision_config, &dev()).unwrap();
        let case = case("text-box");
        let hidden: Tensor<3> = t(&case.inter, "vision.last_hidden_state");
        let x = hidden.reshape([1, 8, 8, 32]).permute([0, 3, 1, 2]);
        let levels = neck.forward(x, neck.num_levels());
        assert_eq!(levels.len(), 4);
        for (i, level) in levels.into_iter().enumerate() {
            let [_, c, h, w] = level.dims();
            assert_close(
                &format!("vision.fpn.{i}"),
                level,
                t(&case.inter, &format!("vision.fpn.{i}")),
            );
            assert_close(
                &format!("vision.fpn_pos.{i}"),
                sine_position_encoding(c, h, w, &dev()),
                t(&case.inter, &format!("vision.fpn_pos.{i}")),
            );
        }
    }
}
