//! Image pre-processing: antialiased bilinear resize of RGB8 images (the triangle filter of
//! PIL / `torch` `antialias=True`, separable, half-pixel centres), rounded back to bytes like a
//! uint8 resize, then scaling to `[-1, 1]` with mean = std = 0.5.

/// Per output index: first input index and normalised weights.
fn axis_weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let inv = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(input);
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| {
                    let x = (j as f64 - center + 0.5) * inv;
                    (1.0 - x.abs()).max(0.0)
                })
                .collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            (lo, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// Resizes a row-major RGB8 image to `out_w × out_h` (antialiased bilinear, rounded to u8).
pub fn resize_rgb(rgb: &[u8], width: usize, height: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    if (width, height) == (out_w, out_h) {
        return rgb.to_vec();
    }
    let wx = axis_weights(width, out_w);
    let wy = axis_weights(height, out_h);
    // Horizontal pass: height × out_w × 3 (f32).
    let mut tmp = vec![0f32; height * out_w * 3];
    for y in 0..height {
        let row = &rgb[y * width * 3..(y + 1) * width * 3];
        for (ox, (lo, ws)) in wx.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (k, w) in ws.iter().enumerate() {
                let p = (lo + k) * 3;
                for c in 0..3 {
                    acc[c] += w * f32::from(row[p + c]);
                }
            }
            tmp[(y * out_w + ox) * 3..(y * out_w + ox) * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass, rounded and clamped to bytes.
    let mut out = vec![0u8; out_h * out_w * 3];
    for (oy, (lo, ws)) in wy.iter().enumerate() {
        for x in 0..out_w * 3 {
            let mut acc = 0f32;
            for (k, w) in ws.iter().enumerate() {
                acc += w * tmp[(lo + k) * out_w * 3 + x];
            }
            out[oy * out_w * 3 + x] = acc.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Planar `[3, h, w]` values in `[-1, 1]` from RGB8 bytes (`(v / 255 − 0.5) / 0.5`).
pub fn normalize_planar(rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
    let plane = width * height;
    let mut planar = vec![0f32; 3 * plane];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            planar[c * plane + i] = (f32::from(px[c]) / 255.0 - 0.5) / 0.5;
        }
    }
    planar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_constant_images_stay_constant() {
        for (i, o) in [(4000, 1008), (112, 1008), (1008, 1008), (7, 3)] {
            for (_, w) in axis_weights(i, o) {
                let s: f32 = w.iter().sum();
                assert!((s - 1.0).abs() < 1e-5);
            }
        }
        let img = vec![77u8; 30 * 20 * 3];
        assert!(resize_rgb(&img, 30, 20, 11, 13).iter().all(|&v| v == 77));
    }

    #[test]
    fn halving_uses_the_triangle_filter() {
        // 1-D ramp 0, 40, 80, ..., halved: output i = 0.125·a + 0.375·b + 0.375·c + 0.125·d.
        let w = 8;
        let img: Vec<u8> = (0..w).flat_map(|x| [(x * 40) as u8; 3]).collect();
        let out = resize_rgb(&img, w, 1, 4, 1);
        let px: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        // Interior samples: 0.125·40 + 0.375·80 + 0.375·120 + 0.125·160 = 100.
        assert_eq!(px[1], 100);
        assert_eq!(px[2], 180);
        // Border: taps 0..3 with weights 0.375, 0.375, 0.125 renormalised → (0 + 15 + 10) / 0.875.
        assert_eq!(px[0], (25.0f32 / 0.875).round() as u8);
    }

    #[test]
    fn normalisation_maps_bytes_to_unit_range() {
        let v = normalize_planar(&[0, 255, 51], 1, 1);
        assert_eq!(v, vec![-1.0, 1.0, -0.6]);
    }
}
