//! Image transforms: random resized crop, horizontal flip, eval resize + centre crop, and
//! normalisation into a CHW float buffer.

use image::RgbImage;
use image::imageops::{self, FilterType};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Per-channel normalisation `(x/255 − mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Channel means (RGB, in `[0, 1]` units).
    pub mean: [f32; 3],
    /// Channel standard deviations.
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet statistics, what torchvision and timm weights expect.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Plain `x / 255` (what YOLO models expect).
    pub const UNIT: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
    };
}

impl Normalization {
    /// Normalises `image` as it is (no resizing) into CHW floats in `out` (`3·w·h`).
    pub fn to_chw(&self, image: &RgbImage, out: &mut [f32]) {
        let plane = (image.width() * image.height()) as usize;
        let Normalization { mean, std } = *self;
        let scale: [f32; 3] = [
            1.0 / (255.0 * std[0]),
            1.0 / (255.0 * std[1]),
            1.0 / (255.0 * std[2]),
        ];
        let offset: [f32; 3] = [mean[0] / std[0], mean[1] / std[1], mean[2] / std[2]];
        let raw = image.as_raw();
        for c in 0..3 {
            let dst = &mut out[c * plane..(c + 1) * plane];
            for (d, px) in dst.iter_mut().zip(raw.chunks_exact(3)) {
                *d = px[c] as f32 * scale[c] - offset[c];
            }
        }
    }
}

impl Default for Normalization {
    fn default() -> Self {
        Self::IMAGENET
    }
}

/// torchvision's `RandomResizedCrop` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomResizedCrop {
    /// Range of the crop's area as a fraction of the image area.
    pub scale: (f64, f64),
    /// Range of the crop's aspect ratio (width / height).
    pub ratio: (f64, f64),
}

impl Default for RandomResizedCrop {
    fn default() -> Self {
        Self {
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        }
    }
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Random resized crop; `None` resizes the whole image like evaluation does.
    pub random_resized_crop: Option<RandomResizedCrop>,
    /// Probability of a horizontal flip.
    pub hflip_probability: f64,
    /// Random shift of the resized image by up to this fraction of its side in each direction
    /// (uncovered pixels are black); 0 shifts nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub translate: f64,
    /// Random rotation by up to this many degrees either way about the centre (uncovered
    /// pixels are black); 0 rotates nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rotate_degrees: f64,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            random_resized_crop: Some(RandomResizedCrop::default()),
            hflip_probability: 0.5,
            translate: 0.0,
            rotate_degrees: 0.0,
        }
    }
}

impl Augment {
    /// No augmentation at all.
    pub const NONE: Augment = Augment {
        random_resized_crop: None,
        hflip_probability: 0.0,
        translate: 0.0,
        rotate_degrees: 0.0,
    };
}

/// How an image becomes a model input: the part that inference must reproduce exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Side of the square model input.
    pub image_size: usize,
    /// Evaluation: resize the shorter side to `image_size / crop_pct`, then centre-crop
    /// (`1.0` resizes the shorter side to `image_size` and crops the centre square).
    pub crop_pct: f64,
    /// Channel normalisation.
    pub normalization: Normalization,
}

impl Preprocess {
    /// Evaluation transform, written as normalised CHW into `out` (`3·size²` floats).
    pub fn eval_into(&self, image: &RgbImage, out: &mut [f32]) {
        let size = self.image_size as u32;
        let (w, h) = image.dimensions();
        let short = w.min(h).max(1) as f64;
        let resize_short = ((self.image_size as f64) / self.crop_pct.clamp(0.05, 1.0)).round();
        let scale = resize_short / short;
        let new_w = ((w as f64 * scale).round() as u32).max(size);
        let new_h = ((h as f64 * scale).round() as u32).max(size);
        let resized = if (new_w, new_h) == (w, h) {
            image.clone()
        } else {
            imageops::resize(image, new_w, new_h, FilterType::Triangle)
        };
        let x = (new_w - size) / 2;
        let y = (new_h - size) / 2;
        let cropped = imageops::crop_imm(&resized, x, y, size, size).to_image();
        self.normalize_into(&cropped, out);
    }

    /// Training transform: random resized crop and flip drawn from `rng`, then normalisation.
    pub fn train_into(&self, image: &RgbImage, augment: &Augment, rng: &mut Rng, out: &mut [f32]) {
        let size = self.image_size as u32;
        let mut sample = match &augment.random_resized_crop {
            Some(rrc) => {
                let (x, y, w, h) = crop_box(image.width(), image.height(), rrc, rng);
                let crop = imageops::crop_imm(image, x, y, w, h).to_image();
                imageops::resize(&crop, size, size, FilterType::Triangle)
            }
            None => {
                if image.dimensions() == (size, size) {
                    image.clone()
                } else {
                    imageops::resize(image, size, size, FilterType::Triangle)
                }
            }
        };
        if augment.hflip_probability > 0.0 && rng.chance(augment.hflip_probability) {
            imageops::flip_horizontal_in_place(&mut sample);
        }
        let reach = (augment.translate.clamp(0.0, 0.5) * size as f64).round() as i64;
        let (mut dx, mut dy) = (0, 0);
        if reach > 0 {
            let span = (2 * reach + 1) as usize;
            dx = rng.below(span) as i64 - reach;
            dy = rng.below(span) as i64 - reach;
        }
        let degrees = augment.rotate_degrees.clamp(0.0, 180.0);
        let angle = if degrees > 0.0 {
            rng.uniform(-degrees, degrees).to_radians()
        } else {
            0.0
        };
        if angle != 0.0 {
            sample = rotated_shifted(&sample, angle, dx as f64, dy as f64);
        } else if (dx, dy) != (0, 0) {
            sample = shifted(&sample, dx, dy);
        }
        self.normalize_into(&sample, out);
    }

    fn normalize_into(&self, image: &RgbImage, out: &mut [f32]) {
        self.normalization.to_chw(image, out);
    }
}

/// `image` moved by `(dx, dy)` pixels; pixels shifted in from outside are black.
fn shifted(image: &RgbImage, dx: i64, dy: i64) -> RgbImage {
    let (w, h) = (image.width() as i64, image.height() as i64);
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let (sx, sy) = (x as i64 - dx, y as i64 - dy);
        if (0..w).contains(&sx) && (0..h).contains(&sy) {
            *image.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

/// `image` rotated by `angle` radians about its centre, then moved by `(dx, dy)` pixels
/// (bilinear; pixels from outside are black).
fn rotated_shifted(image: &RgbImage, angle: f64, dx: f64, dy: f64) -> RgbImage {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let raw = image.as_raw();
    let at = |x: i64, y: i64, c: usize| -> f64 {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            f64::from(raw[((y * w + x) * 3) as usize + c])
        } else {
            0.0
        }
    };
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        // Inverse map: undo the shift, then rotate back by −angle about the centre.
        let (ux, uy) = (x as f64 - dx - cx, y as f64 - dy - cy);
        let sx = cos * ux + sin * uy + cx;
        let sy = -sin * ux + cos * uy + cy;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let mut px = [0u8; 3];
        for (c, value) in px.iter_mut().enumerate() {
            let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
            let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
            *value = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    })
}

/// torchvision's `RandomResizedCrop.get_params`: up to ten tries, then a centre crop.
fn crop_box(
    width: u32,
    height: u32,
    rrc: &RandomResizedCrop,
    rng: &mut Rng,
) -> (u32, u32, u32, u32) {
    let area = (width as f64) * (height as f64);
    let (log_lo, log_hi) = (rrc.ratio.0.ln(), rrc.ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.uniform(rrc.scale.0, rrc.scale.1);
        let aspect = rng.uniform(log_lo, log_hi).exp();
        let w = (target_area * aspect).sqrt().round() as u32;
        let h = (target_area / aspect).sqrt().round() as u32;
        if w > 0 && h > 0 && w <= width && h <= height {
            let y = rng.below((height - h + 1) as usize) as u32;
            let x = rng.below((width - w + 1) as usize) as u32;
            return (x, y, w, h);
        }
    }
    let in_ratio = width as f64 / height.max(1) as f64;
    let (w, h) = if in_ratio < rrc.ratio.0 {
        (width, ((width as f64) / rrc.ratio.0).round() as u32)
    } else if in_ratio > rrc.ratio.1 {
        (((height as f64) * rrc.ratio.1).round() as u32, height)
    } else {
        (width, height)
    };
    let (w, h) = (w.clamp(1, width.max(1)), h.clamp(1, height.max(1)));
    ((width - w) / 2, (height - h) / 2, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        })
    }

    #[test]
    fn eval_centre_crops_and_normalises() {
        let pre = Preprocess {
            image_size: 8,
            crop_pct: 1.0,
            normalization: Normalization {
                mean: [0.0; 3],
                std: [1.0; 3],
            },
        };
        let mut out = vec![0.0; 3 * 64];
        pre.eval_into(
            &RgbImage::from_pixel(16, 32, image::Rgb([255, 0, 51])),
            &mut out,
        );
        assert!(out[..64].iter().all(|v| (v - 1.0).abs() < 1e-6));
        assert!(out[64..128].iter().all(|v| v.abs() < 1e-6));
        assert!(out[128..].iter().all(|v| (v - 0.2).abs() < 1e-6));
    }

    #[test]
    fn augmentation_is_deterministic_per_seed() {
        let pre = Preprocess {
            image_size: 16,
            crop_pct: 0.875,
            normalization: Normalization::IMAGENET,
        };
        let img = gradient(40, 30);
        let run = |seed| {
            let mut out = vec![0.0; 3 * 256];
            pre.train_into(&img, &Augment::default(), &mut Rng::new(seed), &mut out);
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let shift = Augment {
            translate: 0.25,
            ..Augment::NONE
        };
        let square = gradient(16, 16);
        let moved = (0..20).any(|seed| {
            let mut out = vec![0.0; 3 * 256];
            pre.train_into(&square, &shift, &mut Rng::new(seed), &mut out);
            let mut plain = vec![0.0; 3 * 256];
            pre.train_into(&square, &Augment::NONE, &mut Rng::new(seed), &mut plain);
            out != plain
        });
        assert!(moved, "translation never moved the image");
        let turned = rotated_shifted(&square, 0.0, 2.0, -1.0);
        assert_eq!(
            turned,
            shifted(&square, 2, -1),
            "no rotation: an exact shift"
        );
        let quarter = rotated_shifted(&square, std::f64::consts::FRAC_PI_2, 0.0, 0.0);
        // A quarter turn (clockwise in image coordinates, y down) takes (x, y) to (15 − y, x).
        assert_eq!(quarter.get_pixel(15 - 3, 5), square.get_pixel(5, 3));
        let moved = shifted(&square, 2, -1);
        assert_eq!(moved.get_pixel(5, 5), square.get_pixel(3, 6));
        assert_eq!(moved.get_pixel(0, 0), &image::Rgb([0, 0, 0]));
        assert_eq!(moved.get_pixel(3, 15), &image::Rgb([0, 0, 0]));
        for seed in 0..200 {
            let (x, y, w, h) = crop_box(40, 30, &RandomResizedCrop::default(), &mut Rng::new(seed));
            assert!(w >= 1 && h >= 1 && x + w <= 40 && y + h <= 30);
        }
    }
}
