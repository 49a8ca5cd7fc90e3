//! SAM3 configuration, read from a transformers `config.json`.
//!
//! Every field has the default of the released `facebook/sam3` model, so a partial file (or
//! [`Sam3Config::default`]) describes the full-size model.

use std::path::Path;

use serde::Deserialize;

use super::error::{Result, Sam3Error};

/// ViT backbone settings (`vision_config.backbone_config`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct VitConfig {
    /// Token width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Input channels.
    pub num_channels: usize,
    /// Patch size (kernel and stride of the patch embedding).
    pub patch_size: usize,
    /// Input resolution (square).
    pub image_size: usize,
    /// Resolution the absolute position table was trained at.
    pub pretrain_image_size: usize,
    /// Window size (in tokens) of the windowed blocks.
    pub window_size: usize,
    /// Indices of the blocks with global attention.
    pub global_attn_indexes: Vec<usize>,
    /// LayerNorm epsilon of the ViT.
    pub layer_norm_eps: f64,
    /// RoPE settings.
    pub rope_parameters: RopeParameters,
    /// RoPE base as written by older configurations (takes precedence when present).
    pub rope_theta: Option<f64>,
}

impl VitConfig {
    /// The RoPE base.
    pub fn rope_base(&self) -> f64 {
        self.rope_theta.unwrap_or(self.rope_parameters.rope_theta)
    }

    /// Floating-point operations (2 × multiply-adds) of the backbone's products for one image:
    /// the patch embedding, every block's q/k/v/output projections and MLP, and its attention
    /// products (Q·Kᵀ and ·V) over its windows or the whole grid. Norms, RoPE, softmax and GELU
    /// are not counted, as PyTorch's `FlopCounterMode` does not count them either (it gives
    /// 5.399 TFLOP for the default configuration's backbone, as this does).
    pub fn product_flops(&self) -> f64 {
        let grid = (self.image_size / self.patch_size.max(1)) as f64;
        let tokens = grid * grid;
        let c = self.hidden_size as f64;
        let patch = tokens * (self.num_channels * self.patch_size * self.patch_size) as f64 * c;
        let linear = tokens * (4.0 * c * c + 2.0 * c * self.intermediate_size as f64);
        let global = self.global_attn_indexes.len().min(self.num_hidden_layers) as f64;
        let windowed = self.num_hidden_layers as f64 - global;
        // Q·Kᵀ and ·V: 2 · (tokens attended together) · c per token.
        let window_tokens = (self.window_size * self.window_size) as f64;
        let attention = tokens * 2.0 * c * (global * tokens + windowed * window_tokens);
        2.0 * (patch + self.num_hidden_layers as f64 * linear + attention)
    }
}

/// RoPE settings of the ViT.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct RopeParameters {
    /// RoPE base.
    pub rope_theta: f64,
}

impl Default for RopeParameters {
    fn default() -> Self {
        Self {
            rope_theta: 10000.0,
        }
    }
}

impl Default for VitConfig {
    fn default() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4736,
            num_attention_heads: 16,
            num_hidden_layers: 32,
            num_channels: 3,
            patch_size: 14,
            image_size: 1008,
            pretrain_image_size: 336,
            window_size: 24,
            global_attn_indexes: vec![7, 15, 23, 31],
            layer_norm_eps: 1e-6,
            rope_parameters: RopeParameters::default(),
            rope_theta: None,
        }
    }
}

/// Vision model settings (`vision_config`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct VisionConfig {
    /// The ViT.
    pub backbone_config: VitConfig,
    /// Channels of every FPN level.
    pub fpn_hidden_size: usize,
    /// FPN scale factors; the last level is computed by the reference but unused.
    pub scale_factors: Vec<f64>,
}

impl Default for VisionConfig {
    fn default() -> Self {
        Self {
            backbone_config: VitConfig::default(),
            fpn_hidden_size: 256,
            scale_factors: vec![4.0, 2.0, 1.0, 0.5],
        }
    }
}

/// CLIP text encoder settings (`text_config`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct TextConfig {
    /// Token width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Activation of the MLP (`gelu` or `quick_gelu`).
    pub hidden_act: String,
    /// Begin-of-text id.
    pub bos_token_id: i64,
    /// End-of-text id.
    pub eos_token_id: i64,
    /// Padding id.
    pub pad_token_id: i64,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_attention_heads: 16,
            num_hidden_layers: 24,
            max_position_embeddings: 32,
            vocab_size: 49408,
            layer_norm_eps: 1e-5,
            hidden_act: "gelu".into(),
            bos_token_id: 49406,
            eos_token_id: 49407,
            pad_token_id: 49407,
        }
    }
}

/// Settings shared by the transformer stacks after the backbones.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct StackConfig {
    /// Token width.
    pub hidden_size: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Number of layers.
    pub num_layers: usize,
    /// Object queries (decoder only).
    pub num_queries: usize,
    /// ROI-align output size (geometry encoder only).
    pub roi_size: usize,
    /// Pixel-decoder stages (mask decoder only).
    pub num_upsampling_stages: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            hidden_size: 256,
            intermediate_size: 2048,
            num_attention_heads: 8,
            num_layers: 6,
            num_queries: 200,
            roi_size: 7,
            num_upsampling_stages: 3,
        }
    }
}

/// The whole SAM3 image-model configuration (transformers `Sam3Config`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct Sam3Config {
    /// Vision backbone and neck.
    pub vision_config: VisionConfig,
    /// Text encoder.
    pub text_config: TextConfig,
    /// Geometry / exemplar encoder.
    pub geometry_encoder_config: StackConfig,
    /// Fusion (DETR) encoder.
    pub detr_encoder_config: StackConfig,
    /// DETR decoder.
    pub detr_decoder_config: StackConfig,
    /// Mask decoder.
    pub mask_decoder_config: StackConfig,
}

impl Default for Sam3Config {
    fn default() -> Self {
        Self {
            vision_config: VisionConfig::default(),
            text_config: TextConfig::default(),
            geometry_encoder_config: StackConfig {
                num_layers: 3,
                ..StackConfig::default()
            },
            detr_encoder_config: StackConfig::default(),
            detr_decoder_config: StackConfig::default(),
            mask_decoder_config: StackConfig::default(),
        }
    }
}

impl Sam3Config {
    /// Parses a `config.json` string. Accepts the image-model layout (`Sam3Config`) and the
    /// video-model layout of the hub checkpoint (`Sam3VideoConfig`, whose `detector_config`
    /// holds the image model).
    pub fn from_json_str(text: &str) -> std::result::Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let detector = value
            .get("detector_config")
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or(value);
        let config: Sam3Config = serde_json::from_value(detector).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `config.json` from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Sam3Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text).map_err(|message| Sam3Error::Json {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Checks the invariants the port relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let vit = &self.vision_config.backbone_config;
        if vit.patch_size == 0 || !vit.image_size.is_multiple_of(vit.patch_size) {
            return Err("vit image_size must be a multiple of patch_size".into());
        }
        let grid = vit.image_size / vit.patch_size;
        if vit.window_size == 0 || !grid.is_multiple_of(vit.window_size) {
            return Err(format!(
                "token grid {grid} must be a multiple of window_size {}",
                vit.window_size
            ));
        }
        let head_dim = vit.hidden_size / vit.num_attention_heads.max(1);
        if head_dim * vit.num_attention_heads != vit.hidden_size || !head_dim.is_multiple_of(4) {
            return Err("vit head_dim must divide hidden_size and be a multiple of 4".into());
        }
        if !vit.pretrain_image_size.is_multiple_of(vit.patch_size) {
            return Err("pretrain_image_size must be a multiple of patch_size".into());
        }
        let scales = &self.vision_config.scale_factors;
        if scales.len() < 2 {
            return Err("at least two FPN scale factors are needed".into());
        }
        for s in scales {
            if ![4.0, 2.0, 1.0, 0.5].contains(s) {
                return Err(format!("unsupported FPN scale factor {s}"));
            }
        }
        let d = self.detr_encoder_config.hidden_size;
        for (name, c) in [
            ("geometry", &self.geometry_encoder_config),
            ("detr_decoder", &self.detr_decoder_config),
            ("mask_decoder", &self.mask_decoder_config),
        ] {
            if c.hidden_size != d {
                return Err(format!("{name} hidden_size differs from the encoder's"));
            }
        }
        if self.vision_config.fpn_hidden_size != d {
            return Err("fpn_hidden_size must equal the DETR hidden size".into());
        }
        if !d.is_multiple_of(8) {
            return Err("hidden size must be a multiple of 8 (GroupNorm)".into());
        }
        Ok(())
    }

    /// Side of the ViT token grid (72 for the released model).
    pub fn grid_size(&self) -> usize {
        let vit = &self.vision_config.backbone_config;
        vit.image_size / vit.patch_size
    }

    /// Input resolution of the model (1008 for the released model).
    pub fn image_size(&self) -> usize {
        self.vision_config.backbone_config.image_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::fixture_dir;

    #[test]
    fn counts_the_backbone_products_as_pytorch() {
        // `FlopCounterMode` on transformers' `Sam3Model(Sam3Config())`: backbone 5.399 TFLOP,
        // its windowed blocks 0.156 and its global blocks 0.254 TFLOP each.
        let vit = VitConfig::default();
        let flops = vit.product_flops();
        assert!((flops / 1e12 - 5.399).abs() < 5e-4, "{flops}");
        let one_block = |global: bool| VitConfig {
            num_hidden_layers: 1,
            num_channels: 0,
            global_attn_indexes: if global { vec![0] } else { vec![] },
            ..VitConfig::default()
        };
        assert!((one_block(false).product_flops() / 1e12 - 0.156).abs() < 5e-4);
        assert!((one_block(true).product_flops() / 1e12 - 0.254).abs() < 5e-4);
    }

    #[test]
    fn reads_tiny_config() {
        let c = Sam3Config::from_file(&fixture_dir().join("config.json")).unwrap();
        assert_eq!(c.vision_config.backbone_config.hidden_size, 32);
        assert_eq!(
            c.vision_config.backbone_config.global_attn_indexes,
            vec![1, 3]
        );
        assert_eq!(c.vision_config.backbone_config.window_size, 4);
        assert_eq!(c.detr_decoder_config.num_queries, 10);
        assert_eq!(c.geometry_encoder_config.num_layers, 1);
        assert_eq!(c.grid_size(), 8);
        assert_eq!(c.text_config.vocab_size, 49408);
    }

    #[test]
    fn default_is_full_size_and_video_layout_is_accepted() {
        let c = Sam3Config::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.grid_size(), 72);
        let wrapped = r#"{"detector_config": {"detr_decoder_config": {"num_queries": 7}}}"#;
        let c = Sam3Config::from_json_str(wrapped).unwrap();
        assert_eq!(c.detr_decoder_config.num_queries, 7);
        assert_eq!(c.detr_decoder_config.num_layers, 6);
        assert_eq!(c.vision_config.backbone_config.rope_base(), 10000.0);
        let old = r#"{"vision_config": {"backbone_config": {"rope_theta": 500.0}}}"#;
        let c = Sam3Config::from_json_str(old).unwrap();
        assert_eq!(c.vision_config.backbone_config.rope_base(), 500.0);
        assert!(
            Sam3Config::from_json_str(r#"{"vision_config": {"scale_factors": [3.0, 1.0]}}"#)
                .is_err()
        );
    }
}
