//! Detection batches: images from an [`ImageSource`] with their boxes, augmented (training) or
//! letterboxed (evaluation) into `[B, 3, S, S]` floats in `[0, 1]`, decoded in parallel with
//! rayon. Training randomness derives from (epoch seed, image index) only.

use burn::tensor::{Device, Tensor, TensorData};
use domain::dataset::BoxAnnotation;
use rayon::prelude::*;

use super::assign::GtBox;
use super::augment::{self, DetectionOptions, Sample};
use super::postprocess::Letterbox;
use crate::data::{ImageSource, Normalization};
use crate::error::MlError;
use crate::rng::Rng;

/// A batch of model inputs and their boxes.
#[derive(Debug, Clone)]
pub struct DetectionBatch {
    /// Pixels `[B, 3, S, S]` in `[0, 1]`, row-major.
    pub images: Vec<f32>,
    /// Boxes per image in input pixels.
    pub targets: Vec<Vec<GtBox>>,
    /// How each original image sits in the input (evaluation; the identity for training batches).
    pub letterboxes: Vec<Letterbox>,
    /// Source indices of the images.
    pub indices: Vec<usize>,
    /// Side `S`.
    pub image_size: usize,
}

impl DetectionBatch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The images as a `[B, 3, S, S]` tensor on `device`.
    pub fn images_tensor(&self, device: &Device) -> Tensor<4> {
        let s = self.image_size;
        Tensor::from_data(
            TensorData::new(self.images.clone(), [self.len(), 3, s, s]),
            device,
        )
    }
}

/// How the images of a batch are made.
#[derive(Debug, Clone, Copy)]
pub enum DetectionMode {
    /// Augmented.
    Train {
        /// Mosaic, scale and translation settings.
        options: DetectionOptions,
        /// Whether mosaic is on this epoch (it is closed for the last epochs).
        mosaic: bool,
        /// Probability of a horizontal flip.
        hflip: f64,
        /// Seed of this epoch's augmentation.
        seed: u64,
    },
    /// Letterboxed, nothing random.
    Eval,
}

/// Corners of `[x, y, w, h]` boxes.
pub fn to_gt(boxes: &[BoxAnnotation]) -> Vec<GtBox> {
    boxes
        .iter()
        .map(|b| {
            let [x, y, w, h] = b.bbox;
            GtBox {
                class_id: b.class_id,
                xyxy: [x as f32, y as f32, (x + w) as f32, (y + h) as f32],
            }
        })
        .collect()
}

fn load_sample(source: &dyn ImageSource, index: usize) -> Result<Sample, MlError> {
    Ok(Sample {
        image: source.load(index)?,
        boxes: to_gt(&source.boxes(index)),
    })
}

/// One training sample of image `index`.
fn train_sample(
    source: &dyn ImageSource,
    index: usize,
    size: u32,
    options: &DetectionOptions,
    mosaic: bool,
    hflip: f64,
    rng: &mut Rng,
) -> Result<Sample, MlError> {
    let resized = |i: usize| -> Result<Sample, MlError> {
        Ok(augment::resize_long_side(load_sample(source, i)?, size))
    };
    let canvas = if mosaic && options.mosaic > 0.0 && rng.chance(options.mosaic) {
        let n = source.len();
        let others = [rng.below(n), rng.below(n), rng.below(n)];
        let samples = [
            resized(index)?,
            resized(others[0])?,
            resized(others[1])?,
            resized(others[2])?,
        ];
        augment::mosaic(samples, size, rng)
    } else {
        augment::letterbox(&resized(index)?, size).0
    };
    let mut sample = augment::random_affine(&canvas, size, options.scale, options.translate, rng);
    if hflip > 0.0 && rng.chance(hflip) {
        augment::hflip(&mut sample);
    }
    Ok(sample)
}

/// Loads and transforms the images `indices` of `source` in parallel into one batch.
pub fn load_detection_batch(
    source: &dyn ImageSource,
    indices: &[usize],
    image_size: usize,
    mode: &DetectionMode,
) -> Result<DetectionBatch, MlError> {
    let s = image_size as u32;
    let per_image = 3 * image_size * image_size;
    let mut images = vec![0.0f32; per_image * indices.len()];
    let made: Vec<(Vec<GtBox>, Letterbox)> = images
        .par_chunks_mut(per_image)
        .zip(indices.par_iter())
        .map(
            |(out, &index)| -> Result<(Vec<GtBox>, Letterbox), MlError> {
                let (sample, letterbox) = match mode {
                    DetectionMode::Train {
                        options,
                        mosaic,
                        hflip,
                        seed,
                    } => {
                        let mut rng = Rng::derive(*seed, index as u64);
                        let sample =
                            train_sample(source, index, s, options, *mosaic, *hflip, &mut rng)?;
                        (sample, Letterbox::new(s, s, s))
                    }
                    DetectionMode::Eval => augment::letterbox(&load_sample(source, index)?, s),
                };
                Normalization::UNIT.to_chw(&sample.image, out);
                Ok((sample.boxes, letterbox))
            },
        )
        .collect::<Result<_, _>>()?;
    let (targets, letterboxes) = made.into_iter().unzip();
    Ok(DetectionBatch {
        images,
        targets,
        letterboxes,
        indices: indices.to_vec(),
        image_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::MemorySource;
    use image::{Rgb, RgbImage};

    fn source() -> MemorySource {
        let items = (0..6)
            .map(|i| {
                let image = RgbImage::from_pixel(40 + 4 * i, 30, Rgb([10 * i as u8, 50, 90]));
                let boxes = vec![BoxAnnotation {
                    class_id: i as usize % 2,
                    bbox: [5.0, 5.0, 20.0, 15.0],
                }];
                (image, boxes)
            })
            .collect();
        MemorySource::with_boxes(items)
    }

    #[test]
    fn batches_are_deterministic_and_boxes_stay_inside() -> Result<(), MlError> {
        let source = source();
        let mode = DetectionMode::Train {
            options: DetectionOptions::default(),
            mosaic: true,
            hflip: 0.5,
            seed: 11,
        };
        let a = load_detection_batch(&source, &[0, 3, 5], 32, &mode)?;
        let b = load_detection_batch(&source, &[0, 3, 5], 32, &mode)?;
        assert_eq!(a.images, b.images);
        assert_eq!(a.targets, b.targets);
        assert_eq!(a.images.len(), 3 * 3 * 32 * 32);
        assert!(a.images.iter().all(|v| (0.0..=1.0).contains(v)));
        for boxes in &a.targets {
            for b in boxes {
                assert!(b.xyxy.iter().all(|v| (0.0..=32.0).contains(v)));
            }
        }
        let eval = load_detection_batch(&source, &[1], 32, &DetectionMode::Eval)?;
        let lb = eval.letterboxes[0];
        assert_eq!((lb.width, lb.height), (44, 30));
        let back = lb.to_original(&eval.targets[0][0].xyxy);
        for (x, y) in back.iter().zip([5.0, 5.0, 25.0, 20.0]) {
            assert!((x - y).abs() < 1e-3, "{back:?}");
        }
        Ok(())
    }
}
