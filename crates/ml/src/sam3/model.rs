//! The assembled SAM3 image model: image encoding (ViT + FPN) once per image, then per prompt
//! the geometry encoder, fusion encoder, DETR decoder, scoring and mask head.

use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::Sam3Config;
use super::decoder::{DetrDecoder, cxcywh_to_xyxy};
use super::error::{Result, Sam3Error};
use super::fusion::FusionEncoder;
use super::geometry::{BoxPrompt, GeometryEncoder};
use super::heads::{DotProductScoring, MaskDecoder};
use super::layers::to_vec;
use super::neck::{Neck, sine_position_encoding};
use super::preprocess::{normalize_planar, resize_rgb};
use super::text::{TextEncoder, TextFeatures};
use super::vit::Vit;
use super::weights::WeightStore;

/// How a prompt without boxes is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextOnlyMode {
    /// Meta's model: the geometry encoder always runs and its CLS token is appended to the text
    /// (the official behaviour, default).
    #[default]
    Meta,
    /// transformers' `Sam3Model`: text-only prompts skip the geometry encoder.
    Transformers,
}

/// Image features shared by every prompt on the same image.
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// FPN levels used by the heads, finest first; the last one is the encoder grid.
    pub levels: Vec<Tensor<4>>,
    /// Sine position encoding of the last level, `[1, C, h, w]`.
    pub pos: Tensor<4>,
}

impl ImageFeatures {
    fn grid(&self) -> (usize, usize) {
        let [_, _, h, w] = self.pos.dims();
        (h, w)
    }
}

/// Raw model outputs for one prompt (transformers names and layouts, batch 1).
#[derive(Debug, Clone)]
pub struct Sam3Output {
    /// Query logits `[1, Q]`.
    pub pred_logits: Tensor<2>,
    /// Boxes `[1, Q, 4]`, normalised `(x0, y0, x1, y1)`.
    pub pred_boxes: Tensor<3>,
    /// Mask logits `[1, Q, h, w]` at the finest FPN level (288² for a 1008² input).
    pub pred_masks: Tensor<4>,
    /// Presence logit `[1, 1]`.
    pub presence_logits: Tensor<2>,
    /// Semantic segmentation logits `[1, 1, h, w]`.
    pub semantic_seg: Tensor<4>,
}

/// The SAM3 image model with its weights.
#[derive(Debug, Clone)]
pub struct Sam3Model {
    config: Sam3Config,
    device: Device,
    vit: Vit,
    neck: Neck,
    text: TextEncoder,
    geometry: GeometryEncoder,
    fusion: FusionEncoder,
    decoder: DetrDecoder,
    scoring: DotProductScoring,
    masks: MaskDecoder,
}

impl Sam3Model {
    /// Loads `config.json` and the safetensors checkpoint from a directory.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        let config = Sam3Config::from_file(&dir.join("config.json"))?;
        let store = WeightStore::open_dir(dir)?;
        Self::from_store(config, &store, device)
    }

    /// Builds the model from an opened checkpoint.
    pub fn from_store(config: Sam3Config, ws: &WeightStore, device: &Device) -> Result<Self> {
        config.validate().map_err(Sam3Error::Config)?;
        let d = config.detr_encoder_config.hidden_size;
        Ok(Self {
            vit: Vit::load(ws, &config.vision_config.backbone_config, device)?,
            neck: Neck::load(ws, &config.vision_config, device)?,
            text: TextEncoder::load(ws, &config.text_config, d, device)?,
            geometry: GeometryEncoder::load(ws, &config.geometry_encoder_config, device)?,
            fusion: FusionEncoder::load(ws, &config.detr_encoder_config, device)?,
            decoder: DetrDecoder::load(ws, &config.detr_decoder_config, device)?,
            scoring: DotProductScoring::load(ws, &config, device)?,
            masks: MaskDecoder::load(ws, &config.mask_decoder_config, device)?,
            device: device.clone(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Sam3Config {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the ViT and the neck on normalised pixels `[1, 3, S, S]` (S = model resolution).
    pub fn encode_image(&self, pixel_values: Tensor<4>) -> Result<ImageFeatures> {
        let s = self.config.image_size();
        let dims = pixel_values.dims();
        if dims != [1, 3, s, s] {
            return Err(Sam3Error::InvalidInput(format!(
                "pixel_values must be [1, 3, {s}, {s}], got {dims:?}"
            )));
        }
        let x = self.vit.forward(pixel_values);
        // The last FPN level (scalp) is unused by the image model.
        let used = self.neck.num_levels().saturating_sub(1).max(1);
        let levels = self.neck.forward(x, used);
        let last = levels
            .last()
            .cloned()
            .ok_or_else(|| Sam3Error::Config("no FPN level".into()))?;
        let [_, c, h, w] = last.dims();
        Ok(ImageFeatures {
            pos: sine_position_encoding(c, h, w, &self.device),
            levels,
        })
    }

    /// Encodes padded token ids (see [`super::tokenizer::ClipTokenizer`]).
    pub fn encode_text(&self, ids: &[i64], valid: &[bool]) -> Result<TextFeatures> {
        self.text.encode(ids, valid)
    }

    /// Prompt tokens (text, then geometry) and their validity.
    pub fn prompt_tokens(
        &self,
        image: &ImageFeatures,
        text: &TextFeatures,
        boxes: &[BoxPrompt],
        mode: TextOnlyMode,
    ) -> Result<(Tensor<3>, Vec<bool>)> {
        let mut valid = text.valid.clone();
        if boxes.is_empty() && mode == TextOnlyMode::Transformers {
            return Ok((text.features.clone(), valid));
        }
        let last = image
            .levels
            .last()
            .cloned()
            .ok_or_else(|| Sam3Error::InvalidInput("image features have no levels".into()))?;
        let geo = self.geometry.forward(boxes, last, image.pos.clone())?;
        valid.extend(std::iter::repeat_n(true, geo.dims()[1]));
        Ok((Tensor::cat(vec![text.features.clone(), geo], 1), valid))
    }

    /// Runs the prompt-dependent part of the model.
    pub fn predict(
        &self,
        image: &ImageFeatures,
        text: &TextFeatures,
        boxes: &[BoxPrompt],
        mode: TextOnlyMode,
    ) -> Result<Sam3Output> {
        let (prompt, valid) = self.prompt_tokens(image, text, boxes, mode)?;
        let (h, w) = image.grid();
        let last = image
            .levels
            .last()
            .cloned()
            .ok_or_else(|| Sam3Error::InvalidInput("image features have no levels".into()))?;
        let c = last.dims()[1];
        let tokens = last.reshape([1, c, h * w]).swap_dims(1, 2);
        let pos = image.pos.clone().reshape([1, c, h * w]).swap_dims(1, 2);
        let memory = self
            .fusion
            .forward(tokens, pos.clone(), prompt.clone(), &valid);
        let dec = self
            .decoder
            .forward(memory.clone(), pos, prompt.clone(), &valid, h, w);
        let (hidden, boxes_cxcywh, presence) = match (
            dec.hidden.last(),
            dec.boxes_cxcywh.last(),
            dec.presence_logits.last(),
        ) {
            (Some(a), Some(b), Some(p)) => (a.clone(), b.clone(), p.clone()),
            _ => return Err(Sam3Error::Config("the decoder has no layers".into())),
        };
        let pv = self.scoring.prompt_vector(prompt.clone(), &valid);
        let pred_logits = self.scoring.logits(hidden.clone(), pv);
        let fine = &image.levels[..image.levels.len() - 1];
        let (_, pixel) = self.masks.pixel_embed(fine, memory, (h, w), prompt, &valid);
        let (pred_masks, _, _) = self.masks.masks(hidden, pixel.clone());
        Ok(Sam3Output {
            pred_logits,
            pred_boxes: cxcywh_to_xyxy(boxes_cxcywh),
            pred_masks,
            presence_logits: presence,
            semantic_seg: self.masks.semantic(pixel),
        })
    }

    /// Resizes an RGB8 image (row-major `h × w × 3`) to the model resolution (antialiased
    /// bilinear, as PIL / torchvision) and normalises to `[-1, 1]`: `[1, 3, S, S]`.
    pub fn preprocess(&self, rgb: &[u8], width: usize, height: usize) -> Result<Tensor<4>> {
        if width == 0 || height == 0 || rgb.len() != width * height * 3 {
            return Err(Sam3Error::InvalidInput(format!(
                "expected {width}×{height}×3 RGB bytes, got {}",
                rgb.len()
            )));
        }
        let s = self.config.image_size();
        let resized = resize_rgb(rgb, width, height, s, s);
        let planar = normalize_planar(&resized, s, s);
        Ok(Tensor::from_data(
            TensorData::new(planar, [1, 3, s, s]),
            &self.device,
        ))
    }
}

/// Host copies of [`Sam3Output`] for post-processing.
#[derive(Debug, Clone)]
pub struct HostOutput {
    /// `Q` logits.
    pub logits: Vec<f32>,
    /// `Q × 4` normalised xyxy boxes.
    pub boxes: Vec<[f32; 4]>,
    /// Presence logit.
    pub presence: f32,
    /// Mask logits `[1, Q, h, w]` (kept on the device for upsampling).
    pub masks: Tensor<4>,
}

impl Sam3Output {
    /// Reads the small outputs back to the host.
    pub fn to_host(&self) -> Result<HostOutput> {
        let logits = to_vec(self.pred_logits.clone())?;
        let boxes = to_vec(self.pred_boxes.clone())?
            .chunks_exact(4)
            .map(|b| [b[0], b[1], b[2], b[3]])
            .collect();
        let presence = to_vec(self.presence_logits.clone())?
            .first()
            .copied()
            .ok_or_else(|| Sam3Error::Readback("empty presence".into()))?;
        Ok(HostOutput {
            logits,
            boxes,
            presence,
            masks: self.pred_masks.clone(),
        })
    }

    /// Mask probabilities `sigmoid(pred_masks)`.
    pub fn mask_probs(&self) -> Tensor<4> {
        sigmoid(self.pred_masks.clone())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    pub(crate) fn tiny_model() -> Sam3Model {
        Sam3Model::from_store(tiny_config(), &tiny_store(), &dev()).unwrap()
    }

    pub(crate) fn run_case(model: &Sam3Model, name: &str) -> (Case, Sam3Output) {
        let case = case(name);
        let mode = if name == "text" {
            TextOnlyMode::Transformers
        } else {
            TextOnlyMode::Meta
        };
        let ids = ints(&case.inputs, "input_ids");
        let valid: Vec<bool> = ints(&case.inputs, "attention_mask")
            .iter()
            .map(|&m| m == 1)
            .collect();
        let image = model.encode_image(t(&case.inputs, "pixel_values")).unwrap();
        let text = model.encode_text(&ids, &valid).unwrap();
        let out = model
            .predict(&image, &text, &case_boxes(&case), mode)
            .unwrap();
        (case, out)
    }

    #[test]
    fn end_to_end_parity_all_cases() {
        let model = tiny_model();
        for name in ["text", "text-box", "box", "meta-text"] {
            let (case, out) = run_case(&model, name);
            let o = &case.outputs;
            assert_close(
                &format!("{name} pred_logits"),
                out.pred_logits,
                t(o, "pred_logits"),
            );
            assert_close(
                &format!("{name} pred_boxes"),
                out.pred_boxes,
                t(o, "pred_boxes"),
            );
            assert_close(
                &format!("{name} presence_logits"),
                out.presence_logits,
                t(o, "presence_logits"),
            );
            assert_close(
                &format!("{name} pred_masks"),
                out.pred_masks,
                t(o, "pred_masks"),
            );
            assert_close(
                &format!("{name} semantic_seg"),
                out.semantic_seg,
                t(o, "semantic_seg"),
            );
        }
    }

    #[test]
    fn meta_and_transformers_text_only_modes_differ() {
        // The two semantics must give different results (the fixture shows ~2.8 on masks).
        let model = tiny_model();
        let case = case("text");
        let ids = ints(&case.inputs, "input_ids");
        let valid: Vec<bool> = ints(&case.inputs, "attention_mask")
            .iter()
            .map(|&m| m == 1)
            .collect();
        let image = model.encode_image(t(&case.inputs, "pixel_values")).unwrap();
        let text = model.encode_text(&ids, &valid).unwrap();
        let meta = model
            .predict(&image, &text, &[], TextOnlyMode::Meta)
            .unwrap();
        let hf = model
            .predict(&image, &text, &[], TextOnlyMode::Transformers)
            .unwrap();
        let diff = (meta.pred_masks - hf.pred_masks)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff > 0.1, "{diff}");
    }

    #[test]
    fn sharded_prefixed_checkpoint_gives_the_same_model() {
        // The tiny checkpoint rewritten as the hub's video layout: `detector_model.` prefix,
        // tracker tensors to ignore, two shards and an index, plus config.json.
        let store = tiny_store();
        let names = store.names();
        let (first, second) = names.split_at(names.len() / 2);
        let dir = tempfile::tempdir().unwrap();
        let mut map = serde_json::Map::new();
        for (i, part) in [first, second].iter().enumerate() {
            let file = format!("model-0000{}-of-00002.safetensors", i + 1);
            let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = part
                .iter()
                .map(|n| {
                    let (v, shape) = store.f32_vec(n).unwrap();
                    (format!("detector_model.{n}"), shape, v)
                })
                .collect();
            tensors.push((format!("tracker_model.dummy{i}"), vec![2], vec![0.0, 1.0]));
            for (n, _, _) in &tensors {
                map.insert(n.clone(), serde_json::Value::String(file.clone()));
            }
            let refs: Vec<(&str, Vec<usize>, Vec<f32>)> = tensors
                .iter()
                .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
                .collect();
            let bytes = crate::sam3::weights::tests::write_safetensors(&refs, "F32");
            std::fs::write(dir.path().join(file), bytes).unwrap();
        }
        let index = serde_json::json!({ "metadata": {}, "weight_map": map });
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        let config = std::fs::read_to_string(fixture_dir().join("config.json")).unwrap();
        let video_config =
            format!(r#"{{"model_type": "sam3_video", "detector_config": {config}}}"#);
        std::fs::write(dir.path().join("config.json"), video_config).unwrap();

        let sharded = Sam3Model::load_dir(dir.path(), &dev()).unwrap();
        let (case, reference) = run_case(&tiny_model(), "text-box");
        let ids = ints(&case.inputs, "input_ids");
        let valid: Vec<bool> = ints(&case.inputs, "attention_mask")
            .iter()
            .map(|&m| m == 1)
            .collect();
        let image = sharded
            .encode_image(t(&case.inputs, "pixel_values"))
            .unwrap();
        let text = sharded.encode_text(&ids, &valid).unwrap();
        let out = sharded
            .predict(&image, &text, &case_boxes(&case), TextOnlyMode::Meta)
            .unwrap();
        assert_close("sharded pred_masks", out.pred_masks, reference.pred_masks);
        assert_close(
            "sharded pred_logits",
            out.pred_logits,
            reference.pred_logits,
        );

        // Removing a tensor from the index makes loading fail with its name.
        std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
        let only_first = crate::sam3::weights::WeightStore::open_files(&[dir
            .path()
            .join("model-00001-of-00002.safetensors")])
        .unwrap();
        let err = Sam3Model::from_store(tiny_config(), &only_first, &dev()).unwrap_err();
        match err {
            Sam3Error::MissingTensor(name) => assert!(second.contains(&name), "{name}"),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn rejects_wrong_image_size() {
        let model = tiny_model();
        let err = model
            .encode_image(Tensor::zeros([1, 3, 64, 64], &dev()))
            .unwrap_err();
        assert!(matches!(err, Sam3Error::InvalidInput(_)));
    }
}
