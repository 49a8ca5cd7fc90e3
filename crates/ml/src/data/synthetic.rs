//! Procedurally drawn shapes (circle, square, triangle, cross in random colours, sizes and
//! positions on a noisy background): a 4-class classification set and a detection set with several
//! shapes per image and their exact boxes — quick, dependency-free proofs that training works.

use std::path::Path;

use domain::dataset::{BoxAnnotation, ImageEntry, Manifest, Split, TaskType};
use image::{Rgb, RgbImage};

use crate::error::MlError;
use crate::rng::Rng;

/// Class names of the generated set, in label order.
pub const SHAPE_CLASSES: [&str; 4] = ["circle", "square", "triangle", "cross"];

fn inside(shape: usize, dx: f64, dy: f64, r: f64) -> bool {
    match shape {
        0 => dx * dx + dy * dy <= r * r,
        1 => dx.abs() <= r * 0.8 && dy.abs() <= r * 0.8,
        2 => {
            // Upward triangle with apex at (0, -r) and base at y = +r.
            dy <= r && dy >= -r && dx.abs() <= (dy + r) * 0.5
        }
        _ => (dx.abs() <= r * 0.3 && dy.abs() <= r) || (dy.abs() <= r * 0.3 && dx.abs() <= r),
    }
}

/// Draws one image of class `shape` (index into [`SHAPE_CLASSES`]).
pub fn draw_shape(shape: usize, size: u32, rng: &mut Rng) -> RgbImage {
    let background = [
        rng.below(100) as u8,
        rng.below(100) as u8,
        rng.below(100) as u8,
    ];
    let foreground = [
        (130 + rng.below(126)) as u8,
        (130 + rng.below(126)) as u8,
        (130 + rng.below(126)) as u8,
    ];
    let s = size as f64;
    let r = s * rng.uniform(0.22, 0.4);
    let cx = rng.uniform(r, s - r);
    let cy = rng.uniform(r, s - r);
    let mut image = RgbImage::new(size, size);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let dx = x as f64 + 0.5 - cx;
        let dy = y as f64 + 0.5 - cy;
        let base = if inside(shape, dx, dy, r) {
            foreground
        } else {
            background
        };
        let noise = rng.below(31) as i32 - 15;
        *pixel = Rgb(base.map(|c| (c as i32 + noise).clamp(0, 255) as u8));
    }
    image
}

/// `per_class` images of every class, interleaved by class, drawn from `seed`.
pub fn shapes(per_class: usize, size: u32, seed: u64) -> Vec<(RgbImage, usize)> {
    let mut rng = Rng::new(seed);
    (0..per_class)
        .flat_map(|_| 0..SHAPE_CLASSES.len())
        .map(|class| (draw_shape(class, size, &mut rng), class))
        .collect()
}

/// Writes the set as an ImageFolder tree: `dir/train/<class>/<n>.png` and `dir/val/<class>/<n>.png`.
pub fn write_shapes_dataset(
    dir: &Path,
    train_per_class: usize,
    val_per_class: usize,
    size: u32,
    seed: u64,
) -> Result<(), MlError> {
    for (split, count, split_seed) in [
        ("train", train_per_class, seed),
        ("val", val_per_class, seed.wrapping_add(1)),
    ] {
        for (n, (image, class)) in shapes(count, size, split_seed).into_iter().enumerate() {
            let folder = dir.join(split).join(SHAPE_CLASSES[class]);
            std::fs::create_dir_all(&folder).map_err(|e| MlError::io(&folder, e))?;
            let path = folder.join(format!("{n:05}.png"));
            image.save(&path).map_err(|e| MlError::Image {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// One detection image: 1–3 non-overlapping shapes of random classes (indices into
/// [`SHAPE_CLASSES`]), colours and sizes on a noisy background; each box is the tight bound of
/// its shape's pixels (`[x, y, w, h]`).
pub fn draw_detection_image(size: u32, rng: &mut Rng) -> (RgbImage, Vec<BoxAnnotation>) {
    let background = [
        rng.below(100) as u8,
        rng.below(100) as u8,
        rng.below(100) as u8,
    ];
    let s = size as f64;
    let wanted = 1 + rng.below(3);
    // (shape, centre x, centre y, radius, colour)
    let mut shapes: Vec<(usize, f64, f64, f64, [u8; 3])> = Vec::new();
    for _ in 0..wanted * 20 {
        if shapes.len() == wanted {
            break;
        }
        let r = s * rng.uniform(0.08, 0.2);
        let cx = rng.uniform(r, s - r);
        let cy = rng.uniform(r, s - r);
        let clear = shapes
            .iter()
            .all(|&(_, x, y, q, _)| (x - cx).abs() > r + q + 2.0 || (y - cy).abs() > r + q + 2.0);
        if clear {
            let colour = [
                (130 + rng.below(126)) as u8,
                (130 + rng.below(126)) as u8,
                (130 + rng.below(126)) as u8,
            ];
            shapes.push((rng.below(SHAPE_CLASSES.len()), cx, cy, r, colour));
        }
    }
    let mut bounds: Vec<Option<[u32; 4]>> = vec![None; shapes.len()];
    let mut image = RgbImage::new(size, size);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let mut base = background;
        for (i, &(shape, cx, cy, r, colour)) in shapes.iter().enumerate() {
            if inside(shape, x as f64 + 0.5 - cx, y as f64 + 0.5 - cy, r) {
                base = colour;
                bounds[i] = Some(match bounds[i] {
                    None => [x, y, x + 1, y + 1],
                    Some(b) => [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)],
                });
            }
        }
        let noise = rng.below(31) as i32 - 15;
        *pixel = Rgb(base.map(|c| (c as i32 + noise).clamp(0, 255) as u8));
    }
    let boxes = shapes
        .iter()
        .zip(bounds)
        .filter_map(|(&(shape, ..), b)| {
            b.map(|b| BoxAnnotation {
                class_id: shape,
                bbox: [
                    b[0] as f64,
                    b[1] as f64,
                    (b[2] - b[0]) as f64,
                    (b[3] - b[1]) as f64,
                ],
            })
        })
        .collect();
    (image, boxes)
}

/// `count` detection images drawn from `seed`.
pub fn detection_shapes(count: usize, size: u32, seed: u64) -> Vec<(RgbImage, Vec<BoxAnnotation>)> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| draw_detection_image(size, &mut rng))
        .collect()
}

/// Writes a detection set as PNGs under `dir/{train,val}/` and returns its manifest (image paths
/// relative to `dir`).
pub fn write_detection_dataset(
    dir: &Path,
    train: usize,
    val: usize,
    size: u32,
    seed: u64,
) -> Result<Manifest, MlError> {
    let mut images = Vec::new();
    for (split, name, count, split_seed) in [
        (Split::Train, "train", train, seed),
        (Split::Val, "val", val, seed.wrapping_add(1)),
    ] {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|e| MlError::io(&folder, e))?;
        for (n, (image, boxes)) in detection_shapes(count, size, split_seed)
            .into_iter()
            .enumerate()
        {
            let file = format!("{name}/{n:05}.png");
            let path = dir.join(&file);
            image.save(&path).map_err(|e| MlError::Image {
                path: path.clone(),
                message: e.to_string(),
            })?;
            images.push(ImageEntry {
                file,
                width: size,
                height: size,
                split,
                label: None,
                boxes,
            });
        }
    }
    Ok(Manifest {
        task: TaskType::Detection,
        classes: SHAPE_CLASSES.iter().map(|c| c.to_string()).collect(),
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_boxes_bound_their_shapes() {
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let (image, boxes) = draw_detection_image(64, &mut rng);
            assert!(!boxes.is_empty() && boxes.len() <= 3);
            for b in &boxes {
                let [x, y, w, h] = b.bbox;
                assert!(
                    w >= 4.0 && h >= 4.0 && x + w <= 64.0 && y + h <= 64.0,
                    "{b:?}"
                );
                // The box's centre row has bright (foreground) pixels.
                let row = (y + h / 2.0) as u32;
                let bright = (x as u32..(x + w) as u32)
                    .filter(|&px| image.get_pixel(px, row).0.iter().all(|&c| c >= 115))
                    .count();
                assert!(bright > 0, "{b:?}");
            }
        }
    }
}
