//! Small building blocks: linear, layer/group norm, MLPs and multi-head attention, written with
//! burn tensor ops (no burn `nn` modules, so the model is plain data loaded from the checkpoint).

use burn::tensor::activation::relu;
use burn::tensor::module::{conv2d, layer_norm, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::error::Result;
use super::weights::WeightStore;
use crate::models::activation as fast;

/// Plain LayerNorm epsilon used by every `nn.LayerNorm` after the backbones.
pub const LN_EPS: f64 = 1e-5;

/// Additive value that removes a key from the softmax.
pub const MASKED: f32 = -1e9;

/// `y = x W + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
}

impl Linear {
    /// Loads `{prefix}.weight` (`[out, in]`) and `{prefix}.bias`.
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            weight: ws.linear_weight(&format!("{prefix}.weight"), d_in, d_out, device)?,
            bias: Some(ws.tensor(&format!("{prefix}.bias"), [d_out], device)?),
        })
    }

    /// Loads a linear layer without bias.
    pub fn load_no_bias(
        ws: &WeightStore,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            weight: ws.linear_weight(&format!("{prefix}.weight"), d_in, d_out, device)?,
            bias: None,
        })
    }

    /// Applies the layer to the last dimension.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(x, self.weight.clone(), self.bias.clone())
    }
}

/// LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`.
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        dim: usize,
        eps: f64,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            gamma: ws.tensor(&format!("{prefix}.weight"), [dim], device)?,
            beta: ws.tensor(&format!("{prefix}.bias"), [dim], device)?,
            eps,
        })
    }

    /// Normalises the last dimension.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.gamma.clone(), Some(self.beta.clone()), self.eps)
    }
}

/// GroupNorm on NCHW maps.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`.
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        channels: usize,
        groups: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            gamma: ws.tensor(&format!("{prefix}.weight"), [channels], device)?,
            beta: ws.tensor(&format!("{prefix}.bias"), [channels], device)?,
            groups,
            eps: 1e-5,
        })
    }

    /// Normalises each group of channels over channels and space.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let g = x.reshape([b, self.groups, (c / self.groups) * h * w]);
        let (var, mean) = g.clone().var_mean_bias(2);
        let g = (g - mean) / var.add_scalar(self.eps).sqrt();
        let x = g.reshape([b, c, h, w]);
        x * self.gamma.clone().reshape([1, c, 1, 1]) + self.beta.clone().reshape([1, c, 1, 1])
    }
}

/// 2-D convolution with bias.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// Loads `{prefix}.weight` (`[out, in, k, k]`) and optionally `{prefix}.bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            weight: ws.tensor(
                &format!("{prefix}.weight"),
                [c_out, c_in, kernel, kernel],
                device,
            )?,
            bias: if bias {
                Some(ws.tensor(&format!("{prefix}.bias"), [c_out], device)?)
            } else {
                None
            },
            stride,
            padding,
        })
    }

    /// Applies the convolution to an NCHW map.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.weight.clone(),
            self.bias.clone(),
            ConvOptions::new(
                [self.stride, self.stride],
                [self.padding, self.padding],
                [1, 1],
                1,
            ),
        )
    }
}

/// MLP with ReLU between layers (`Sam3DecoderMLP`, the mask embedder).
#[derive(Debug, Clone)]
pub struct ReluMlp {
    layers: Vec<Linear>,
}

impl ReluMlp {
    /// Loads `{prefix}.{names[i]}` layers of sizes `dims[i] → dims[i+1]`.
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        names: &[&str],
        dims: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let layers = names
            .iter()
            .enumerate()
            .map(|(i, n)| Linear::load(ws, &format!("{prefix}.{n}"), dims[i], dims[i + 1], device))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Loads an MLP named `layer1`, `layer2`, ... (transformers' `Sam3DecoderMLP`).
    pub fn load_numbered(
        ws: &WeightStore,
        prefix: &str,
        dims: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let names: Vec<String> = (1..dims.len()).map(|i| format!("layer{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Self::load(ws, prefix, &refs, dims, device)
    }

    /// Applies the layers with ReLU after all but the last.
    pub fn forward<const D: usize>(&self, mut x: Tensor<D>) -> Tensor<D> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i + 1 < n {
                x = relu(x);
            }
        }
        x
    }
}

/// Two-layer feed-forward block `fc2(act(fc1(x)))` (`mlp.fc1`, `mlp.fc2`).
#[derive(Debug, Clone)]
pub struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    gelu: bool,
}

impl FeedForward {
    /// Loads `{prefix}.fc1` and `{prefix}.fc2`; `gelu` selects exact GELU, otherwise ReLU.
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        dim: usize,
        hidden: usize,
        gelu: bool,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(ws, &format!("{prefix}.fc1"), dim, hidden, device)?,
            fc2: Linear::load(ws, &format!("{prefix}.fc2"), hidden, dim, device)?,
            gelu,
        })
    }

    /// Applies the block.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let h = self.fc1.forward(x);
        let h = if self.gelu { fast::gelu(h) } else { relu(h) };
        self.fc2.forward(h)
    }
}

/// Multi-head attention with separate q/k/v/o projections (`Sam3Attention`, CLIP attention).
#[derive(Debug, Clone)]
pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
}

impl Attention {
    /// Loads `{prefix}.{q,k,v}_proj` and `{prefix}.{out}` (`o_proj` or CLIP's `out_proj`).
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        out: &str,
        dim: usize,
        heads: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            q: Linear::load(ws, &format!("{prefix}.q_proj"), dim, dim, device)?,
            k: Linear::load(ws, &format!("{prefix}.k_proj"), dim, dim, device)?,
            v: Linear::load(ws, &format!("{prefix}.v_proj"), dim, dim, device)?,
            o: Linear::load(ws, &format!("{prefix}.{out}"), dim, dim, device)?,
            heads,
        })
    }

    /// Projects `[B, L, C]` to heads `[B, H, L, D]`.
    fn split(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, c] = x.dims();
        x.reshape([b, l, self.heads, c / self.heads])
            .swap_dims(1, 2)
    }

    /// Projects the query input to `[B, H, Lq, D]`.
    pub fn project_q(&self, x: Tensor<3>) -> Tensor<4> {
        self.split(self.q.forward(x))
    }

    /// Projects the key input to `[B, H, Lk, D]`.
    pub fn project_k(&self, x: Tensor<3>) -> Tensor<4> {
        self.split(self.k.forward(x))
    }

    /// Projects the value input to `[B, H, Lk, D]`.
    pub fn project_v(&self, x: Tensor<3>) -> Tensor<4> {
        self.split(self.v.forward(x))
    }

    /// Merges heads `[B, H, L, D]` and applies the output projection.
    pub fn merge(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, h, l, d] = x.dims();
        self.o.forward(x.swap_dims(1, 2).reshape([b, l, h * d]))
    }

    /// Full attention; `bias` is additive and broadcastable to `[B, H, Lq, Lk]`.
    pub fn forward(
        &self,
        query: Tensor<3>,
        key: Tensor<3>,
        value: Tensor<3>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let q = self.project_q(query);
        let k = self.project_k(key);
        let v = self.project_v(value);
        self.merge(attend(q, k, v, bias))
    }
}

/// Most score elements materialised at once; bigger problems are split over queries.
const MAX_SCORE_ELEMS: usize = 1 << 26;

/// `softmax(q kᵀ / √d + bias) v` on `[B, H, L, D]` heads, chunked over queries so the score
/// matrix stays bounded (global attention of the full ViT would otherwise need 1.7 GB).
pub fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Option<Tensor<4>>) -> Tensor<4> {
    let [b, h, lq, d] = q.dims();
    let lk = k.dims()[2];
    let scale = (d as f64).powf(-0.5);
    let kt = k.swap_dims(2, 3);
    let per_query = (b * h * lk).max(1);
    let chunk = (MAX_SCORE_ELEMS / per_query).clamp(1, lq.max(1));
    if chunk >= lq {
        return attend_chunk(q, kt, v, bias, scale);
    }
    let mut outs = Vec::with_capacity(lq.div_ceil(chunk));
    let mut start = 0;
    while start < lq {
        let end = (start + chunk).min(lq);
        let qc = q.clone().slice_dim(2, start..end);
        let bc = bias.as_ref().map(|bias| {
            if bias.dims()[2] == 1 {
                bias.clone()
            } else {
                bias.clone().slice_dim(2, start..end)
            }
        });
        outs.push(attend_chunk(qc, kt.clone(), v.clone(), bc, scale));
        start = end;
    }
    Tensor::cat(outs, 2)
}

fn attend_chunk(
    q: Tensor<4>,
    kt: Tensor<4>,
    v: Tensor<4>,
    bias: Option<Tensor<4>>,
    scale: f64,
) -> Tensor<4> {
    // Scale the (small) queries instead of the (large) score matrix, and normalise the
    // (small) output instead of the probabilities: two fewer passes over `Lq × Lk`.
    let mut scores = q.mul_scalar(scale).matmul(kt);
    if let Some(bias) = bias {
        scores = scores + bias;
    }
    let max = scores.clone().max_dim(3);
    let weights = fast::exp(scores - max);
    let sums = weights.clone().sum_dim(3);
    weights.matmul(v) / sums
}

/// Additive key-padding bias `[B, 1, 1, L]` from a validity mask (`true` = attend).
pub fn key_padding_bias(valid: &[bool], batch: usize, device: &Device) -> Tensor<4> {
    let l = valid.len() / batch.max(1);
    let values: Vec<f32> = valid
        .iter()
        .map(|&v| if v { 0.0 } else { MASKED })
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, 1, 1, l]), device)
}

/// A boolean mask tensor from host values.
pub fn bool_tensor<const D: usize>(
    values: Vec<bool>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D, Bool> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Reads a float tensor back to the host.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| super::error::Sam3Error::Readback(format!("{e:?}")))
}

/// A pre-norm transformer layer of the fusion and geometry encoders: self-attention (queries and
/// keys optionally offset by a position encoding), cross-attention to a memory, ReLU feed-forward,
/// each with a residual.
#[derive(Debug, Clone)]
pub struct PreNormLayer {
    norm1: LayerNorm,
    self_attn: Attention,
    norm2: LayerNorm,
    cross_attn: Attention,
    norm3: LayerNorm,
    mlp: FeedForward,
}

impl PreNormLayer {
    /// Loads `{prefix}.{layer_norm1,self_attn,layer_norm2,cross_attn,layer_norm3,mlp}`.
    pub fn load(
        ws: &WeightStore,
        prefix: &str,
        dim: usize,
        heads: usize,
        intermediate: usize,
        device: &Device,
    ) -> Result<Self> {
        let ln = |n: &str| LayerNorm::load(ws, &format!("{prefix}.{n}"), dim, LN_EPS, device);
        let attention =
            |n: &str| Attention::load(ws, &format!("{prefix}.{n}"), "o_proj", dim, heads, device);
        Ok(Self {
            norm1: ln("layer_norm1")?,
            self_attn: attention("self_attn")?,
            norm2: ln("layer_norm2")?,
            cross_attn: attention("cross_attn")?,
            norm3: ln("layer_norm3")?,
            mlp: FeedForward::load(
                ws,
                &format!("{prefix}.mlp"),
                dim,
                intermediate,
                false,
                device,
            )?,
        })
    }

    /// One layer over `x` `[B, L, C]` attending to `memory_key`/`memory_value` `[B, M, C]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        pos: Option<Tensor<3>>,
        memory_key: Tensor<3>,
        memory_value: Tensor<3>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let h = self.norm1.forward(x.clone());
        let q = match pos {
            Some(pos) => h.clone() + pos,
            None => h.clone(),
        };
        let x = x + self.self_attn.forward(q.clone(), q, h, None);
        let h = self.norm2.forward(x.clone());
        let x = x + self.cross_attn.forward(h, memory_key, memory_value, bias);
        x.clone() + self.mlp.forward(self.norm3.forward(x))
    }
}
