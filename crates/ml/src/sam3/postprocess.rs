//! Post-processing as the reference processor: `score = sigmoid(logit)·sigmoid(presence)`,
//! threshold, boxes scaled to pixels (not clamped), masks bilinearly upsampled to the original
//! image size (half-pixel centres) and thresholded at 0.5; results as binary masks, COCO RLE and
//! polygons.

use burn::tensor::Tensor;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::error::{Result, Sam3Error};
use super::layers::to_vec;
use super::model::Sam3Output;
use crate::models::activation::sigmoid_one;

/// Selection settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostProcessOptions {
    /// Keep instances whose score is strictly above this (default 0.5).
    pub threshold: f32,
    /// Keep at most this many of the best instances.
    pub top_k: Option<usize>,
}

impl Default for PostProcessOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            top_k: None,
        }
    }
}

/// A binary mask, row-major, 1 = object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryMask {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height × width` values in {0, 1}.
    pub data: Vec<u8>,
}

/// COCO run-length encoding (column-major runs, first run counts zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CocoRle {
    /// `[height, width]`.
    pub size: [usize; 2],
    /// Run lengths.
    pub counts: Vec<u32>,
}

fn runs(values: impl Iterator<Item = u8>) -> Vec<u32> {
    let mut counts = Vec::new();
    let mut current = 0u8;
    let mut run = 0u32;
    for v in values {
        if v == current {
            run += 1;
        } else {
            counts.push(run);
            current = v;
            run = 1;
        }
    }
    counts.push(run);
    counts
}

impl BinaryMask {
    /// 8-bit grayscale PNG (object = 255).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let pixels: Vec<u8> = self
            .data
            .iter()
            .map(|&v| if v != 0 { 255 } else { 0 })
            .collect();
        let img = image::GrayImage::from_raw(self.width as u32, self.height as u32, pixels)
            .ok_or_else(|| Sam3Error::Image("mask size does not match its data".into()))?;
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Sam3Error::Image(e.to_string()))?;
        Ok(png)
    }

    /// Number of object pixels.
    pub fn area(&self) -> usize {
        self.data.iter().filter(|&&v| v != 0).count()
    }

    /// Row-major run lengths, first run counts zeros.
    pub fn rle_row_major(&self) -> Vec<u32> {
        runs(self.data.iter().copied())
    }

    /// COCO RLE (column-major, as pycocotools).
    pub fn coco_rle(&self) -> CocoRle {
        let (w, h) = (self.width, self.height);
        CocoRle {
            size: [h, w],
            counts: runs((0..w * h).map(|i| self.data[(i % h) * w + i / h])),
        }
    }

    fn at(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.width
            && (y as usize) < self.height
            && self.data[y as usize * self.width + x as usize] != 0
    }

    /// Outer boundaries of the mask regions as closed polygons of pixel-corner coordinates
    /// (`[x, y]`, collinear points removed). Boundaries of holes are not reported.
    pub fn polygons(&self) -> Vec<Vec<[f32; 2]>> {
        use std::collections::HashMap;
        let (w, h) = (self.width as i64, self.height as i64);
        // Directed crack edges with the object on the right-hand side (y points down).
        let mut out: HashMap<(i64, i64), Vec<(i64, i64)>> = HashMap::new();
        let mut count = 0usize;
        for y in 0..h {
            for x in 0..w {
                if !self.at(x, y) {
                    continue;
                }
                let mut add = |a: (i64, i64), b: (i64, i64)| {
                    out.entry(a).or_default().push(b);
                    count += 1;
                };
                if !self.at(x, y - 1) {
                    add((x, y), (x + 1, y));
                }
                if !self.at(x + 1, y) {
                    add((x + 1, y), (x + 1, y + 1));
                }
                if !self.at(x, y + 1) {
                    add((x + 1, y + 1), (x, y + 1));
                }
                if !self.at(x - 1, y) {
                    add((x, y + 1), (x, y));
                }
            }
        }
        let mut starts: Vec<(i64, i64)> = out.keys().copied().collect();
        starts.sort_by_key(|&(x, y)| (y, x));
        let mut polys = Vec::new();
        let mut used = 0usize;
        for s in starts {
            while let Some(next) = out.get_mut(&s).and_then(Vec::pop) {
                let mut ring = vec![s];
                let mut cur = next;
                used += 1;
                while cur != s && used <= count {
                    ring.push(cur);
                    match out.get_mut(&cur).and_then(Vec::pop) {
                        Some(n) => {
                            cur = n;
                            used += 1;
                        }
                        None => break,
                    }
                }
                let pts = simplify(&ring);
                // Shoelace in y-down coordinates: outer rings (object on the right) are positive.
                let area: i64 = (0..pts.len())
                    .map(|i| {
                        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                        a.0 * b.1 - b.0 * a.1
                    })
                    .sum();
                if area > 0 {
                    polys.push(pts.iter().map(|&(x, y)| [x as f32, y as f32]).collect());
                }
            }
        }
        polys
    }
}

/// Drops vertices that lie on a straight line between their neighbours.
fn simplify(ring: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let n = ring.len();
    (0..n)
        .filter(|&i| {
            let (p, c, q) = (ring[(i + n - 1) % n], ring[i], ring[(i + 1) % n]);
            (c.0 - p.0) * (q.1 - c.1) != (c.1 - p.1) * (q.0 - c.0)
        })
        .map(|i| ring[i])
        .collect()
}

/// One detected instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Query index in the model output.
    pub query: usize,
    /// `sigmoid(logit) · sigmoid(presence)`.
    pub score: f32,
    /// `(x0, y0, x1, y1)` in pixels of the original image (not clamped).
    pub box_xyxy: [f32; 4],
    /// Binary mask at the original size.
    pub mask: BinaryMask,
}

/// Scores of every query.
pub fn scores(output: &Sam3Output) -> Result<Vec<f32>> {
    let host = output.to_host()?;
    let p = sigmoid_one(host.presence);
    Ok(host.logits.iter().map(|&l| sigmoid_one(l) * p).collect())
}

/// Selects instances and produces pixel-space boxes and masks for an image of
/// `width × height`. Instances are ordered by decreasing score (ties in query order).
pub fn post_process(
    output: &Sam3Output,
    width: usize,
    height: usize,
    options: &PostProcessOptions,
) -> Result<Vec<Instance>> {
    let host = output.to_host()?;
    let presence = sigmoid_one(host.presence);
    let mut picked: Vec<(usize, f32)> = host
        .logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, sigmoid_one(l) * presence))
        .filter(|(_, s)| *s > options.threshold)
        .collect();
    picked.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some(k) = options.top_k {
        picked.truncate(k);
    }
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    // Upsample a few masks at a time: at photo sizes one plane is tens of MB of f32.
    let plane = width * height;
    let per_chunk = (MASK_CHUNK_ELEMS / plane.max(1)).max(1);
    let mut instances = Vec::with_capacity(picked.len());
    for chunk in picked.chunks(per_chunk) {
        let queries: Vec<usize> = chunk.iter().map(|p| p.0).collect();
        let probs = mask_probabilities(output, &queries, width, height)?;
        for (k, &(q, score)) in chunk.iter().enumerate() {
            let b = host.boxes[q];
            instances.push(Instance {
                query: q,
                score,
                box_xyxy: [
                    b[0] * width as f32,
                    b[1] * height as f32,
                    b[2] * width as f32,
                    b[3] * height as f32,
                ],
                mask: BinaryMask {
                    width,
                    height,
                    data: probs[k * plane..(k + 1) * plane]
                        .iter()
                        .map(|&p| u8::from(p > 0.5))
                        .collect(),
                },
            });
        }
    }
    Ok(instances)
}

/// Most upsampled mask values held at once by [`post_process`].
const MASK_CHUNK_ELEMS: usize = 1 << 25;

/// `sigmoid` mask probabilities of the given queries, upsampled to `width × height`
/// (row-major, one plane per query).
pub fn mask_probabilities(
    output: &Sam3Output,
    queries: &[usize],
    width: usize,
    height: usize,
) -> Result<Vec<f32>> {
    let device = output.pred_masks.device();
    let idx: Vec<i64> = queries.iter().map(|&q| q as i64).collect();
    let idx = Tensor::<1, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(idx, [queries.len()]),
        &device,
    );
    let sel = output.mask_probs().select(1, idx).swap_dims(0, 1); // [k, 1, h, w]
    let up = interpolate(
        sel,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([height, width]),
    );
    to_vec(up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::model::tests::{run_case, tiny_model};
    use crate::sam3::testutil::*;
    use crate::sam3::weights::WeightStore;

    #[test]
    fn rle_and_polygons() {
        // 4×3 mask with an L shape.
        let m = BinaryMask {
            width: 4,
            height: 3,
            data: vec![0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
        };
        assert_eq!(m.area(), 3);
        let png = image::load_from_memory(&m.to_png().unwrap())
            .unwrap()
            .to_luma8();
        assert_eq!(png.dimensions(), (4, 3));
        assert_eq!(png.get_pixel(1, 1).0, [255]);
        assert_eq!(png.get_pixel(0, 0).0, [0]);
        assert_eq!(m.rle_row_major(), vec![1, 1, 3, 2, 5]);
        // Column-major: col0 000, col1 110, col2 010, col3 000.
        assert_eq!(m.coco_rle().counts, vec![3, 2, 2, 1, 4]);
        let polys = m.polygons();
        assert_eq!(polys.len(), 1);
        let mut p = polys[0].clone();
        p.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut expected = vec![
            [1.0, 0.0],
            [2.0, 0.0],
            [2.0, 1.0],
            [3.0, 1.0],
            [3.0, 2.0],
            [1.0, 2.0],
        ];
        expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(p, expected);
        let two = BinaryMask {
            width: 5,
            height: 1,
            data: vec![1, 0, 0, 1, 1],
        };
        assert_eq!(two.polygons().len(), 2);
    }

    #[test]
    fn postprocessed_json_parity() {
        let model = tiny_model();
        for name in ["text", "text-box", "box", "meta-text"] {
            let (_, out) = run_case(&model, name);
            let dir = fixture_dir().join(name);
            let json: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join("postprocessed.json")).unwrap(),
            )
            .unwrap();
            let pp = WeightStore::open_files(&[dir.join("postprocessed.safetensors")]).unwrap();
            for sel in ["threshold_0.5", "top3"] {
                let spec = &json[sel];
                let opts = PostProcessOptions {
                    threshold: spec["score_threshold"].as_f64().unwrap() as f32,
                    top_k: spec["top_k"].as_u64().map(|k| k as usize),
                };
                let got = post_process(&out, 112, 112, &opts).unwrap();
                let queries: Vec<usize> = spec["query_indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                assert_eq!(
                    got.iter().map(|i| i.query).collect::<Vec<_>>(),
                    queries,
                    "{name} {sel}"
                );
                if queries.is_empty() {
                    continue;
                }
                let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
                let scores: Vec<f32> = spec["scores"].as_array().unwrap().iter().map(f).collect();
                assert_close_vec(
                    &format!("{name} {sel} scores"),
                    &got.iter().map(|i| i.score).collect::<Vec<_>>(),
                    &scores,
                );
                let boxes: Vec<f32> = spec["boxes_xyxy_pixels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|b| b.as_array().unwrap().iter().map(f).collect::<Vec<_>>())
                    .collect();
                assert_close_vec(
                    &format!("{name} {sel} boxes"),
                    &got.iter().flat_map(|i| i.box_xyxy).collect::<Vec<_>>(),
                    &boxes,
                );
                // Mask probabilities, then binary masks with flips allowed only where the
                // reference probability is within tolerance of 0.5.
                let (ref_probs, _) = pp.f32_vec(&format!("{sel}.mask_probs")).unwrap();
                let probs = mask_probabilities(&out, &queries, 112, 112).unwrap();
                assert_close_vec(&format!("{name} {sel} mask_probs"), &probs, &ref_probs);
                let (ref_masks, _) = pp.i64_vec(&format!("{sel}.masks")).unwrap();
                let plane = 112 * 112;
                let mut flips = 0;
                for (k, inst) in got.iter().enumerate() {
                    for p in 0..plane {
                        let r = ref_masks[k * plane + p] as u8;
                        if inst.mask.data[p] != r {
                            assert!(
                                (ref_probs[k * plane + p] - 0.5).abs() < 2e-4,
                                "{name} {sel} flip"
                            );
                            flips += 1;
                        }
                    }
                    if flips == 0 {
                        let rle: Vec<u32> = spec["mask_rle"][k]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_u64().unwrap() as u32)
                            .collect();
                        assert_eq!(inst.mask.rle_row_major(), rle, "{name} {sel} rle {k}");
                        assert_eq!(
                            inst.mask.area() as u64,
                            spec["mask_area"][k].as_u64().unwrap(),
                            "{name} {sel} area {k}"
                        );
                    }
                }
                eprintln!(
                    "parity {name} {sel}: {} instances, {flips} borderline mask flips",
                    got.len()
                );
            }
        }
    }
}
