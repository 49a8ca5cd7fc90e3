//! ViT backbone: patch embedding, tiled absolute positions, `ln_pre`, and blocks with 2-D axial
//! RoPE and windowed or global attention.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::VitConfig;
use super::error::Result;
use super::layers::{Attention, FeedForward, LayerNorm, attend};
use super::weights::WeightStore;

const PREFIX: &str = "vision_encoder.backbone";

/// Cos/sin tables of the axial RoPE of one block, plus the pairwise-rotation matrix.
#[derive(Debug, Clone)]
struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
    rotate: Tensor<2>,
}

impl Rope {
    /// Tables for an `end × end` token grid with coordinates scaled by `scale`.
    fn new(head_dim: usize, end: usize, scale: f64, theta: f64, device: &Device) -> Self {
        let quarter = head_dim / 4;
        let freqs: Vec<f64> = (0..quarter)
            .map(|i| 1.0 / theta.powf((4 * i) as f64 / head_dim as f64))
            .collect();
        let len = end * end;
        let mut cos = Vec::with_capacity(len * head_dim);
        let mut sin = Vec::with_capacity(len * head_dim);
        for idx in 0..len {
            // Positions are computed in f32 like the reference tables.
            let x = ((idx % end) as f32 * scale as f32) as f64;
            let y = ((idx / end) as f32 * scale as f32) as f64;
            for axis in [x, y] {
                for f in &freqs {
                    let angle = (axis as f32 * *f as f32) as f64;
                    for _ in 0..2 {
                        cos.push(angle.cos() as f32);
                        sin.push(angle.sin() as f32);
                    }
                }
            }
        }
        // rotate(x)[2i] = -x[2i+1], rotate(x)[2i+1] = x[2i]  ⇔  x · R
        let mut r = vec![0f32; head_dim * head_dim];
        for i in 0..head_dim / 2 {
            r[(2 * i + 1) * head_dim + 2 * i] = -1.0;
            r[(2 * i) * head_dim + 2 * i + 1] = 1.0;
        }
        Self {
            cos: Tensor::from_data(TensorData::new(cos, [1, 1, len, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(sin, [1, 1, len, head_dim]), device),
            rotate: Tensor::from_data(TensorData::new(r, [head_dim, head_dim]), device),
        }
    }

    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        // One 2-D matmul over all (window, head, token) rows is much faster than a broadcast
        // batched matmul of many small matrices.
        let [b, h, l, d] = x.dims();
        let rotated = x
            .clone()
            .reshape([b * h * l, d])
            .matmul(self.rotate.clone())
            .reshape([b, h, l, d]);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

/// One ViT block.
#[derive(Debug, Clone)]
struct VitBlock {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    mlp: FeedForward,
    rope: Rope,
    /// Window side in tokens, 0 for global attention.
    window: usize,
}

impl VitBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let residual = x.clone();
        let x = self.norm1.forward(x);
        let tokens = if self.window > 0 {
            let ws = self.window;
            x.reshape([b, h / ws, ws, w / ws, ws, c])
                .permute([0, 1, 3, 2, 4, 5])
                .reshape([b * (h / ws) * (w / ws), ws * ws, c])
        } else {
            x.reshape([b, h * w, c])
        };
        let q = self.rope.apply(self.attn.project_q(tokens.clone()));
        let k = self.rope.apply(self.attn.project_k(tokens.clone()));
        let v = self.attn.project_v(tokens);
        let out = self.attn.merge(attend(q, k, v, None));
        let out = if self.window > 0 {
            let ws = self.window;
            out.reshape([b, h / ws, w / ws, ws, ws, c])
                .permute([0, 1, 3, 2, 4, 5])
                .reshape([b, h, w, c])
        } else {
            out.reshape([b, h, w, c])
        };
        let x = residual + out;
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// Outputs of the backbone that the parity tests inspect.
#[derive(Debug, Clone)]
pub struct VitTrace {
    /// Patch embedding + tiled position embedding, `[B, H·W, C]`.
    pub embeddings: Tensor<3>,
    /// After `ln_pre`, `[B, H, W, C]`.
    pub ln_pre: Tensor<4>,
    /// Output of every block, `[B, H, W, C]`.
    pub layers: Vec<Tensor<4>>,
}

/// The SAM3 ViT.
#[derive(Debug, Clone)]
pub struct Vit {
    patch_weight: Tensor<4>,
    /// Tiled absolute position embedding `[1, H, W, C]`.
    pos: Tensor<4>,
    ln_pre: LayerNorm,
    blocks: Vec<VitBlock>,
    patch: usize,
    grid: usize,
}

impl Vit {
    /// Loads the backbone weights.
    pub fn load(ws: &WeightStore, cfg: &VitConfig, device: &Device) -> Result<Self> {
        let c = cfg.hidden_size;
        let grid = cfg.image_size / cfg.patch_size;
        let pre = cfg.pretrain_image_size / cfg.patch_size;
        let patch_weight = ws.tensor(
            &format!("{PREFIX}.embeddings.patch_embeddings.projection.weight"),
            [c, cfg.num_channels, cfg.patch_size, cfg.patch_size],
            device,
        )?;
        let name = format!("{PREFIX}.embeddings.position_embeddings");
        let table = ws.f32_checked(&name, &[1, pre * pre, c])?;
        let mut tiled = Vec::with_capacity(grid * grid * c);
        for i in 0..grid {
            for j in 0..grid {
                let src = ((i % pre) * pre + (j % pre)) * c;
                tiled.extend_from_slice(&table[src..src + c]);
            }
        }
        let pos = Tensor::from_data(TensorData::new(tiled, [1, grid, grid, c]), device);
        let eps = cfg.layer_norm_eps;
        let heads = cfg.num_attention_heads;
        let head_dim = c / heads;
        let theta = cfg.rope_base();
        let window_rope = Rope::new(head_dim, cfg.window_size, 1.0, theta, device);
        let global_rope = Rope::new(
            head_dim,
            grid,
            cfg.window_size as f64 / grid as f64,
            theta,
            device,
        );
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("{PREFIX}.layers.{i}");
            let global = cfg.global_attn_indexes.contains(&i);
            blocks.push(VitBlock {
                norm1: LayerNorm::load(ws, &format!("{p}.layer_norm1"), c, eps, device)?,
                attn: Attention::load(ws, &format!("{p}.attention"), "o_proj", c, heads, device)?,
                norm2: LayerNorm::load(ws, &format!("{p}.layer_norm2"), c, eps, device)?,
                mlp: FeedForward::load(
                    ws,
                    &format!("{p}.mlp"),
                    c,
                    cfg.intermediate_size,
                    true,
                    device,
                )?,
                rope: if global {
                    global_rope.clone()
                } else {
                    window_rope.clone()
                },
                window: if global { 0 } else { cfg.window_size },
            });
        }
        Ok(Self {
            patch_weight,
            pos,
            ln_pre: LayerNorm::load(ws, &format!("{PREFIX}.layer_norm"), c, eps, device)?,
            blocks,
            patch: cfg.patch_size,
            grid,
        })
    }

    /// Patch embedding plus tiled absolute positions, `[B, H, W, C]`.
    pub fn embed(&self, pixel_values: Tensor<4>) -> Tensor<4> {
        let x = conv2d(
            pixel_values,
            self.patch_weight.clone(),
            None,
            ConvOptions::new([self.patch, self.patch], [0, 0], [1, 1], 1),
        );
        x.permute([0, 2, 3, 1]) + self.pos.clone()
    }

    /// Runs the blocks on `ln_pre`'d tokens `[B, H, W, C]`, recording each block output.
    pub fn blocks(&self, mut x: Tensor<4>, mut trace: Option<&mut Vec<Tensor<4>>>) -> Tensor<4> {
        for block in &self.blocks {
            x = block.forward(x);
            if let Some(t) = trace.as_mut() {
                t.push(x.clone());
            }
        }
        x
    }

    /// Full backbone: pixels `[B, 3, S, S]` → features `[B, C, H, W]`.
    pub fn forward(&self, pixel_values: Tensor<4>) -> Tensor<4> {
        let x = self.ln_pre.forward(self.embed(pixel_values));
        self.blocks(x, None).permute([0, 3, 1, 2])
    }

    /// Full backbone with every intermediate kept.
    pub fn forward_traced(&self, pixel_values: Tensor<4>) -> VitTrace {
        let emb = self.embed(pixel_values);
        let [b, h, w, c] = emb.dims();
        let ln_pre = self.ln_pre.forward(emb.clone());
        let mut layers = Vec::new();
        self.blocks(ln_pre.clone(), Some(&mut layers));
        VitTrace {
            embeddings: emb.reshape([b, h * w, c]),
            ln_pre,
            layers,
        }
    }

    /// Side of the token grid.
    pub fn grid(&self) -> usize {
        self.grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn vit_parity() {
        let cfg = tiny_config();
        let vit = Vit::load(&tiny_store(), &cfg.vision_config.backbone_config, &dev()).unwrap();
        let case = case("text");
        let trace = vit.forward_traced(t(&case.inputs, "pixel_values"));
        assert_close(
            "vision.embeddings",
            trace.embeddings,
            t(&case.inter, "vision.embeddings"),
        );
        assert_close(
            "vision.ln_pre",
            trace.ln_pre,
            t(&case.inter, "vision.ln_pre"),
        );
        // Each block fed with the recorded input of that block.
        for i in 0..4 {
            let input = if i == 0 {
                t(&case.inter, "vision.ln_pre")
            } else {
                t(&case.inter, &format!("vision.layers.{}", i - 1))
            };
            let out = vit.blocks[i].forward(input);
            assert_close(
                &format!("vision.layers.{i}"),
                out,
                t(&case.inter, &format!("vision.layers.{i}")),
            );
        }
        for (i, out) in trace.layers.into_iter().enumerate() {
            assert_close(
                &format!("vision.layers.{i} (chained)"),
                out,
                t(&case.inter, &format!("vision.layers.{i}")),
            );
        }
        let last = vit.forward(t(&case.inputs, "pixel_values"));
        let [b, c, h, w] = last.dims();
        assert_close(
            "vision.last_hidden_state",
            last.permute([0, 2, 3, 1]).reshape([b, h * w, c]),
            t(&case.inter, "vision.last_hidden_state"),
        );
    }
}
