//! Detection augmentation in Ultralytics' manner: images resized so their long side is the input
//! size, 4-image mosaic on a 2×-size canvas (or a centred letterbox), a random scale + translation
//! warp back to the input size (with Ultralytics' box-candidate filter), and a horizontal flip.
//! Boxes follow every step exactly; padding is grey 114.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use super::assign::GtBox;
use super::postprocess::{Letterbox, Xyxy};
use crate::rng::Rng;

/// Grey of padding (Ultralytics' 114).
pub const PAD: Rgb<u8> = Rgb([114, 114, 114]);

/// Detection training settings (Ultralytics' names and defaults) that classification does not
/// have; horizontal flips use [`crate::train::TrainConfig::augment`]'s `hflip_probability`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionOptions {
    /// Probability of a 4-image mosaic.
    pub mosaic: f64,
    /// Mosaic is switched off for this many final epochs (`close_mosaic`).
    pub close_mosaic_epochs: usize,
    /// Scale jitter: the warp's scale is uniform in `[1 − scale, 1 + scale]`.
    pub scale: f64,
    /// Translation jitter, as a fraction of the input size.
    pub translate: f64,
    /// Box (CIoU) loss gain.
    pub box_gain: f64,
    /// Class (BCE) loss gain.
    pub cls_gain: f64,
    /// DFL loss gain.
    pub dfl_gain: f64,
}

impl Default for DetectionOptions {
    fn default() -> Self {
        Self {
            mosaic: 1.0,
            close_mosaic_epochs: 10,
            scale: 0.5,
            translate: 0.1,
            box_gain: 7.5,
            cls_gain: 0.5,
            dfl_gain: 1.5,
        }
    }
}

/// An image and its boxes (pixels of that image).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Pixels.
    pub image: RgbImage,
    /// Boxes.
    pub boxes: Vec<GtBox>,
}

fn map_boxes(boxes: &[GtBox], f: impl Fn(&Xyxy) -> Xyxy) -> Vec<GtBox> {
    boxes
        .iter()
        .map(|b| GtBox {
            class_id: b.class_id,
            xyxy: f(&b.xyxy),
        })
        .collect()
}

/// Ultralytics' `load_image`: resized (bilinear) so the long side is `size`, aspect kept.
pub fn resize_long_side(sample: Sample, size: u32) -> Sample {
    let (w, h) = sample.image.dimensions();
    let r = size as f64 / w.max(h).max(1) as f64;
    if (r - 1.0).abs() < 1e-12 {
        return sample;
    }
    let nw = ((w as f64 * r).ceil() as u32).clamp(1, size);
    let nh = ((h as f64 * r).ceil() as u32).clamp(1, size);
    let (sx, sy) = (nw as f32 / w as f32, nh as f32 / h as f32);
    Sample {
        image: imageops::resize(&sample.image, nw, nh, FilterType::Triangle),
        boxes: map_boxes(&sample.boxes, |b| {
            [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]
        }),
    }
}

/// The image scaled into a centred `size`² letterbox (boxes follow), and the geometry used.
pub fn letterbox(sample: &Sample, size: u32) -> (Sample, Letterbox) {
    let (w, h) = sample.image.dimensions();
    let lb = Letterbox::new(w, h, size);
    let scaled = if (lb.scaled_width, lb.scaled_height) == (w, h) {
        sample.image.clone()
    } else {
        imageops::resize(
            &sample.image,
            lb.scaled_width,
            lb.scaled_height,
            FilterType::Triangle,
        )
    };
    let mut canvas = RgbImage::from_pixel(size, size, PAD);
    imageops::replace(&mut canvas, &scaled, lb.left as i64, lb.top as i64);
    let boxes = map_boxes(&sample.boxes, |b| lb.to_input(b));
    (
        Sample {
            image: canvas,
            boxes,
        },
        lb,
    )
}

/// Ultralytics' `Mosaic` (4 images): a `2·size` canvas split at a random centre in
/// `[size/2, 3·size/2)²`, the images (long side `size`) placed top-left, top-right, bottom-left,
/// bottom-right of it and cropped; boxes shifted and clipped to the canvas.
pub fn mosaic(samples: [Sample; 4], size: u32, rng: &mut Rng) -> Sample {
    let s = size as i64;
    let xc = rng.uniform(s as f64 / 2.0, 1.5 * s as f64) as i64;
    let yc = rng.uniform(s as f64 / 2.0, 1.5 * s as f64) as i64;
    let mut canvas = RgbImage::from_pixel(2 * size, 2 * size, PAD);
    let mut boxes = Vec::new();
    for (i, sample) in samples.into_iter().enumerate() {
        let (w, h) = (sample.image.width() as i64, sample.image.height() as i64);
        // Destination rectangle (a) and source rectangle (b), as in Ultralytics.
        let (x1a, y1a, x2a, y2a, x1b, y1b) = match i {
            0 => {
                let (x1a, y1a) = ((xc - w).max(0), (yc - h).max(0));
                (x1a, y1a, xc, yc, w - (xc - x1a), h - (yc - y1a))
            }
            1 => {
                let (y1a, x2a) = ((yc - h).max(0), (xc + w).min(2 * s));
                (xc, y1a, x2a, yc, 0, h - (yc - y1a))
            }
            2 => {
                let (x1a, y2a) = ((xc - w).max(0), (yc + h).min(2 * s));
                (x1a, yc, xc, y2a, w - (xc - x1a), 0)
            }
            _ => (xc, yc, (xc + w).min(2 * s), (yc + h).min(2 * s), 0, 0),
        };
        let (cw, ch) = (x2a - x1a, y2a - y1a);
        if cw > 0 && ch > 0 {
            let crop =
                imageops::crop_imm(&sample.image, x1b as u32, y1b as u32, cw as u32, ch as u32);
            imageops::replace(&mut canvas, &*crop, x1a, y1a);
        }
        let (dx, dy) = ((x1a - x1b) as f32, (y1a - y1b) as f32);
        let limit = 2.0 * size as f32;
        boxes.extend(map_boxes(&sample.boxes, |b| {
            [
                (b[0] + dx).clamp(0.0, limit),
                (b[1] + dy).clamp(0.0, limit),
                (b[2] + dx).clamp(0.0, limit),
                (b[3] + dy).clamp(0.0, limit),
            ]
        }));
    }
    Sample {
        image: canvas,
        boxes,
    }
}

/// One axis of an integer-exact placement: source pixels `[src0, src1)` land on destination
/// pixels `[dst0, dst1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    src0: u32,
    src1: u32,
    dst0: u32,
    dst1: u32,
}

impl Span {
    /// The visible part of `x ↦ scale·x + offset` for a source of `len` pixels in `size`.
    fn new(len: u32, scale: f64, offset: f64, size: u32) -> Option<Self> {
        let d0 = offset.max(0.0).round();
        let d1 = (offset + scale * len as f64).min(size as f64).round();
        if d1 <= d0 {
            return None;
        }
        let s0 = ((d0 - offset) / scale).round().max(0.0);
        let s1 = ((d1 - offset) / scale).round().min(len as f64);
        (s1 > s0).then_some(Self {
            src0: s0 as u32,
            src1: s1 as u32,
            dst0: d0 as u32,
            dst1: d1 as u32,
        })
    }

    /// Where a source coordinate lands (the exact transform the resize performs).
    fn map(&self, x: f32) -> f32 {
        let scale = (self.dst1 - self.dst0) as f32 / (self.src1 - self.src0) as f32;
        (x - self.src0 as f32) * scale + self.dst0 as f32
    }
}

/// Ultralytics' `box_candidates`: kept boxes are wider and taller than 2 px, keep more than 10 %
/// of their (scaled) area and have an aspect ratio below 100.
fn box_candidate(before: &Xyxy, scale: f32, after: &Xyxy) -> bool {
    let eps = 1e-16f32;
    let (w1, h1) = (
        (before[2] - before[0]) * scale,
        (before[3] - before[1]) * scale,
    );
    let (w2, h2) = (after[2] - after[0], after[3] - after[1]);
    let ar = (w2 / (h2 + eps)).max(h2 / (w2 + eps));
    w2 > 2.0 && h2 > 2.0 && w2 * h2 / (w1 * h1 + eps) > 0.1 && ar < 100.0
}

/// Ultralytics' `RandomPerspective` without rotation, shear or perspective: the canvas centre
/// moves to a random point of `[0.5 ± translate]·size`, scaled by a random factor in
/// `[1 − scale, 1 + scale]`; the result is `size`² with boxes clipped and filtered.
pub fn random_affine(
    sample: &Sample,
    size: u32,
    scale: f64,
    translate: f64,
    rng: &mut Rng,
) -> Sample {
    let factor = rng.uniform(1.0 - scale, 1.0 + scale).max(1e-3);
    let tx = rng.uniform(0.5 - translate, 0.5 + translate) * size as f64;
    let ty = rng.uniform(0.5 - translate, 0.5 + translate) * size as f64;
    let (w, h) = sample.image.dimensions();
    let ox = tx - factor * w as f64 / 2.0;
    let oy = ty - factor * h as f64 / 2.0;
    let mut out = RgbImage::from_pixel(size, size, PAD);
    let spans = (
        Span::new(w, factor, ox, size),
        Span::new(h, factor, oy, size),
    );
    let (Some(sx), Some(sy)) = spans else {
        return Sample {
            image: out,
            boxes: Vec::new(),
        };
    };
    let crop = imageops::crop_imm(
        &sample.image,
        sx.src0,
        sy.src0,
        sx.src1 - sx.src0,
        sy.src1 - sy.src0,
    );
    let resized = imageops::resize(
        &*crop,
        sx.dst1 - sx.dst0,
        sy.dst1 - sy.dst0,
        FilterType::Triangle,
    );
    imageops::replace(&mut out, &resized, sx.dst0 as i64, sy.dst0 as i64);
    let limit = size as f32;
    let boxes = sample
        .boxes
        .iter()
        .filter_map(|b| {
            let x = &b.xyxy;
            let moved = [
                sx.map(x[0]).clamp(0.0, limit),
                sy.map(x[1]).clamp(0.0, limit),
                sx.map(x[2]).clamp(0.0, limit),
                sy.map(x[3]).clamp(0.0, limit),
            ];
            box_candidate(x, factor as f32, &moved).then_some(GtBox {
                class_id: b.class_id,
                xyxy: moved,
            })
        })
        .collect();
    Sample { image: out, boxes }
}

/// Mirrors the sample left–right.
pub fn hflip(sample: &mut Sample) {
    imageops::flip_horizontal_in_place(&mut sample.image);
    let w = sample.image.width() as f32;
    for b in &mut sample.boxes {
        b.xyxy = [w - b.xyxy[2], b.xyxy[1], w - b.xyxy[0], b.xyxy[3]];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey image with one white rectangle and its box.
    fn marked(w: u32, h: u32, r: [u32; 4]) -> Sample {
        let image = RgbImage::from_fn(w, h, |x, y| {
            if x >= r[0] && x < r[2] && y >= r[1] && y < r[3] {
                Rgb([255, 255, 255])
            } else {
                Rgb([20, 20, 20])
            }
        });
        Sample {
            image,
            boxes: vec![GtBox {
                class_id: 3,
                xyxy: [r[0] as f32, r[1] as f32, r[2] as f32, r[3] as f32],
            }],
        }
    }

    /// Tight box of the bright pixels.
    fn bright_box(image: &RgbImage) -> Option<Xyxy> {
        let mut b: Option<Xyxy> = None;
        for (x, y, p) in image.enumerate_pixels() {
            if p.0[0] > 200 && p.0[1] > 200 {
                let (x, y) = (x as f32, y as f32);
                b = Some(match b {
                    None => [x, y, x + 1.0, y + 1.0],
                    Some(b) => [
                        b[0].min(x),
                        b[1].min(y),
                        b[2].max(x + 1.0),
                        b[3].max(y + 1.0),
                    ],
                });
            }
        }
        b
    }

    fn assert_box_follows_pixels(sample: &Sample, tolerance: f32) {
        let found = bright_box(&sample.image);
        match (found, sample.boxes.first()) {
            (Some(px), Some(b)) => {
                for (p, q) in px.iter().zip(b.xyxy) {
                    assert!(
                        (p - q).abs() <= tolerance,
                        "pixels {px:?} vs box {:?}",
                        b.xyxy
                    );
                }
            }
            (None, None) => {}
            other => panic!("box and pixels disagree: {other:?}"),
        }
    }

    #[test]
    fn boxes_follow_the_pixels_through_every_transform() {
        let mut rng = Rng::new(5);
        for _ in 0..20 {
            let sample = marked(90, 60, [20, 10, 50, 40]);
            let resized = resize_long_side(sample, 64);
            assert_eq!(resized.image.dimensions(), (64, 43));
            assert_box_follows_pixels(&resized, 1.0);
            let (boxed, lb) = letterbox(&resized, 64);
            assert_eq!((lb.left, lb.top), (0, 10));
            assert_box_follows_pixels(&boxed, 1.0);
            let mut warped = random_affine(&boxed, 64, 0.5, 0.1, &mut rng);
            assert_box_follows_pixels(&warped, 1.5);
            hflip(&mut warped);
            assert_box_follows_pixels(&warped, 1.5);
        }
    }

    #[test]
    fn mosaic_places_four_images_and_their_boxes() {
        let mut rng = Rng::new(9);
        for _ in 0..10 {
            let samples = [
                marked(32, 32, [4, 4, 12, 12]),
                marked(32, 20, [10, 2, 20, 10]),
                marked(20, 32, [2, 20, 12, 30]),
                marked(32, 32, [20, 20, 30, 30]),
            ];
            let m = mosaic(samples, 32, &mut rng);
            assert_eq!(m.image.dimensions(), (64, 64));
            assert_eq!(m.boxes.len(), 4);
            // Every fully visible box covers bright pixels only.
            for b in &m.boxes {
                let [x1, y1, x2, y2] = b.xyxy;
                if x2 - x1 >= 1.0 && y2 - y1 >= 1.0 {
                    let p = m
                        .image
                        .get_pixel(((x1 + x2) / 2.0) as u32, ((y1 + y2) / 2.0) as u32);
                    assert_eq!(p.0, [255, 255, 255], "{:?}", b.xyxy);
                }
            }
            let out = random_affine(&m, 32, 0.5, 0.1, &mut rng);
            assert_eq!(out.image.dimensions(), (32, 32));
            for b in &out.boxes {
                assert!(b.xyxy.iter().all(|v| (0.0..=32.0).contains(v)));
                assert!(b.xyxy[2] - b.xyxy[0] > 2.0 && b.xyxy[3] - b.xyxy[1] > 2.0);
            }
        }
    }
}
