//! A procedurally drawn 4-class image set (circle, square, triangle, cross in random colours,
//! sizes and positions on a noisy background): a quick, dependency-free proof that training works.

use std::path::Path;

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
