//! Box conventions and conversions between them.
//!
//! * COCO: `[x, y, width, height]` in pixels, top-left corner (the manifest's convention).
//! * YOLO: `[cx, cy, width, height]` normalised by the image size (0..1 inside the image).
//! * Pascal VOC: `[xmin, ymin, xmax, ymax]` in pixels.

/// COCO `xywh` (pixels) → YOLO normalised `cx cy w h`.
pub fn coco_to_yolo(bbox: [f64; 4], image_width: u32, image_height: u32) -> [f64; 4] {
    let (w, h) = (f64::from(image_width), f64::from(image_height));
    let [x, y, bw, bh] = bbox;
    [(x + bw / 2.0) / w, (y + bh / 2.0) / h, bw / w, bh / h]
}

/// YOLO normalised `cx cy w h` → COCO `xywh` (pixels).
pub fn yolo_to_coco(bbox: [f64; 4], image_width: u32, image_height: u32) -> [f64; 4] {
    let (w, h) = (f64::from(image_width), f64::from(image_height));
    let [cx, cy, bw, bh] = bbox;
    let (pw, ph) = (bw * w, bh * h);
    [cx * w - pw / 2.0, cy * h - ph / 2.0, pw, ph]
}

/// COCO `xywh` → VOC `xmin ymin xmax ymax` (pixels).
pub fn coco_to_voc(bbox: [f64; 4]) -> [f64; 4] {
    let [x, y, w, h] = bbox;
    [x, y, x + w, y + h]
}

/// VOC `xmin ymin xmax ymax` → COCO `xywh` (pixels).
pub fn voc_to_coco(bbox: [f64; 4]) -> [f64; 4] {
    let [x0, y0, x1, y1] = bbox;
    [x0, y0, x1 - x0, y1 - y0]
}

/// Smallest COCO box around a polygon given as `x0 y0 x1 y1 …` (pixels or normalised alike).
/// `None` for fewer than one point.
pub fn polygon_bounds(points: &[f64]) -> Option<[f64; 4]> {
    if points.len() < 2 {
        return None;
    }
    let (mut x0, mut y0) = (f64::INFINITY, f64::INFINITY);
    let (mut x1, mut y1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for pair in points.chunks_exact(2) {
        x0 = x0.min(pair[0]);
        x1 = x1.max(pair[0]);
        y0 = y0.min(pair[1]);
        y1 = y1.max(pair[1]);
    }
    Some([x0, y0, x1 - x0, y1 - y0])
}

/// Whether a COCO box has a positive, finite area.
pub fn has_area(bbox: [f64; 4]) -> bool {
    bbox.iter().all(|v| v.is_finite()) && bbox[2] > 0.0 && bbox[3] > 0.0
}

/// Whether a COCO box lies inside a `width`×`height` image (a tolerance of 1e-6 pixel per unit of
/// the image size absorbs rounding of normalised coordinates).
pub fn inside_image(bbox: [f64; 4], width: u32, height: u32) -> bool {
    let (w, h) = (f64::from(width), f64::from(height));
    let tol = 1e-6 * w.max(h).max(1.0);
    let [x, y, bw, bh] = bbox;
    x >= -tol && y >= -tol && x + bw <= w + tol && y + bh <= h + tol
}

/// Whether two boxes agree within `rel` relative tolerance (relative to the larger of the two
/// magnitudes, with an absolute floor of `rel` for values near zero).
pub fn approx_eq(a: [f64; 4], b: [f64; 4], rel: f64) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| (x - y).abs() <= rel * x.abs().max(y.abs()).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn image_and_box() -> impl Strategy<Value = (u32, u32, [f64; 4])> {
        (1u32..8000, 1u32..8000).prop_flat_map(|(w, h)| {
            let (fw, fh) = (f64::from(w), f64::from(h));
            (0.0..fw, 0.0..fh).prop_flat_map(move |(x, y)| {
                (Just(w), Just(h), (0.0..=fw - x, 0.0..=fh - y))
                    .prop_map(move |(w, h, (bw, bh))| (w, h, [x, y, bw, bh]))
            })
        })
    }

    proptest! {
        #[test]
        fn coco_yolo_round_trip((w, h, bbox) in image_and_box()) {
            let yolo = coco_to_yolo(bbox, w, h);
            prop_assert!(yolo.iter().all(|v| (-1e-9..=1.0 + 1e-9).contains(v)), "{yolo:?}");
            let back = yolo_to_coco(yolo, w, h);
            prop_assert!(approx_eq(bbox, back, 1e-9), "{bbox:?} -> {yolo:?} -> {back:?}");
        }

        #[test]
        fn coco_voc_round_trip((_w, _h, bbox) in image_and_box()) {
            let voc = coco_to_voc(bbox);
            prop_assert!(voc[2] >= voc[0] && voc[3] >= voc[1]);
            let back = voc_to_coco(voc);
            prop_assert!(approx_eq(bbox, back, 1e-9), "{bbox:?} -> {voc:?} -> {back:?}");
        }

        #[test]
        fn yolo_voc_agree((w, h, bbox) in image_and_box()) {
            // YOLO → COCO → VOC equals the VOC box computed straight from the original.
            let via_yolo = coco_to_voc(yolo_to_coco(coco_to_yolo(bbox, w, h), w, h));
            prop_assert!(approx_eq(via_yolo, coco_to_voc(bbox), 1e-9));
            prop_assert!(inside_image(yolo_to_coco(coco_to_yolo(bbox, w, h), w, h), w, h));
        }

        #[test]
        fn polygon_bounds_contains_every_point(points in proptest::collection::vec(-1e4f64..1e4, 2..40)) {
            let points = &points[..points.len() / 2 * 2];
            let b = polygon_bounds(points).unwrap();
            for p in points.chunks_exact(2) {
                prop_assert!(p[0] >= b[0] && p[0] <= b[0] + b[2] + 1e-9);
                prop_assert!(p[1] >= b[1] && p[1] <= b[1] + b[3] + 1e-9);
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(
            coco_to_yolo([10.0, 20.0, 30.0, 40.0], 100, 200),
            [0.25, 0.2, 0.3, 0.2]
        );
        assert_eq!(
            coco_to_voc([10.0, 20.0, 30.0, 40.0]),
            [10.0, 20.0, 40.0, 60.0]
        );
        assert!(!has_area([0.0, 0.0, 0.0, 5.0]));
        assert!(!inside_image([90.0, 0.0, 20.0, 5.0], 100, 100));
        assert!(inside_image([80.0, 0.0, 20.0, 5.0], 100, 100));
    }
}
