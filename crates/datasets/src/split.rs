//! Deterministic, seeded, class-stratified 80/15/5 splits for archives that carry none.

use std::collections::BTreeMap;

use domain::dataset::{ImageEntry, Manifest, Split};

/// Fractions of the generated split: train, val, test.
pub const SPLIT_FRACTIONS: (f64, f64, f64) = (0.80, 0.15, 0.05);

/// SplitMix64: a tiny generator whose output is fixed forever (unlike library RNGs whose
/// algorithms may change between versions), so a seed always gives the same split.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth caring about for dataset sizes.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Stratum of an image: its class (classification) or its most frequent box class, ties to the
/// lowest id (detection); `None` for images without any label.
pub fn stratum(image: &ImageEntry) -> Option<usize> {
    if let Some(label) = image.label {
        return Some(label);
    }
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for b in &image.boxes {
        *counts.entry(b.class_id).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(class, _)| class)
}

/// Assigns every image of `manifest` to train/val/test: 80/15/5 within each stratum, shuffled by
/// `seed`. The result depends only on the seed and the set of (file, labels), not on image order.
/// Rounding is carried across strata, so the totals are as close to 80/15/5 as possible.
pub fn assign_splits(manifest: &mut Manifest, seed: u64) {
    let mut strata: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
    for (i, image) in manifest.images.iter().enumerate() {
        strata.entry(stratum(image)).or_default().push(i);
    }
    let mut rng = SplitMix64(seed);
    let (_, val_fraction, test_fraction) = SPLIT_FRACTIONS;
    let (mut seen, mut val_given, mut test_given) = (0usize, 0usize, 0usize);
    for members in strata.values_mut() {
        members.sort_by(|a, b| manifest.images[*a].file.cmp(&manifest.images[*b].file));
        for i in (1..members.len()).rev() {
            let j = rng.below(i + 1);
            members.swap(i, j);
        }
        seen += members.len();
        let val_target = (seen as f64 * val_fraction).round() as usize;
        let test_target = (seen as f64 * test_fraction).round() as usize;
        let n_val = val_target.saturating_sub(val_given).min(members.len());
        let n_test = test_target
            .saturating_sub(test_given)
            .min(members.len() - n_val);
        val_given += n_val;
        test_given += n_test;
        for (k, &index) in members.iter().enumerate() {
            manifest.images[index].split = if k < n_val {
                Split::Val
            } else if k < n_val + n_test {
                Split::Test
            } else {
                Split::Train
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::dataset::{BoxAnnotation, TaskType};

    fn manifest(n: usize, classes: usize) -> Manifest {
        Manifest {
            task: TaskType::Classification,
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            images: (0..n)
                .map(|i| ImageEntry {
                    file: format!("img_{i:05}.jpg"),
                    width: 10,
                    height: 10,
                    split: Split::Train,
                    label: Some(i % classes),
                    boxes: Vec::new(),
                })
                .collect(),
        }
    }

    fn counts(m: &Manifest) -> (usize, usize, usize) {
        (
            m.split(Split::Train).count(),
            m.split(Split::Val).count(),
            m.split(Split::Test).count(),
        )
    }

    #[test]
    fn proportions_and_stratification() {
        let mut m = manifest(1000, 4);
        assign_splits(&mut m, 7);
        assert_eq!(counts(&m), (800, 150, 50));
        for class in 0..4 {
            let val = m
                .split(Split::Val)
                .filter(|i| i.label == Some(class))
                .count();
            let test = m
                .split(Split::Test)
                .filter(|i| i.label == Some(class))
                .count();
            assert!((37..=38).contains(&val), "class {class}: {val} val");
            assert!((12..=13).contains(&test), "class {class}: {test} test");
        }
    }

    #[test]
    fn deterministic_by_seed_and_independent_of_order() {
        let mut a = manifest(200, 3);
        let mut b = manifest(200, 3);
        b.images.reverse();
        assign_splits(&mut a, 42);
        assign_splits(&mut b, 42);
        let key = |m: &Manifest| {
            let mut v: Vec<(String, Split)> =
                m.images.iter().map(|i| (i.file.clone(), i.split)).collect();
            v.sort_by(|x, y| x.0.cmp(&y.0));
            v
        };
        assert_eq!(key(&a), key(&b));
        let mut c = manifest(200, 3);
        assign_splits(&mut c, 43);
        assert_ne!(key(&a), key(&c));
    }

    #[test]
    fn detection_stratum_is_most_frequent_class() {
        let b = |class_id| BoxAnnotation {
            class_id,
            bbox: [0.0, 0.0, 1.0, 1.0],
        };
        let image = ImageEntry {
            file: "a.jpg".into(),
            width: 1,
            height: 1,
            split: Split::Train,
            label: None,
            boxes: vec![b(2), b(1), b(1), b(2), b(0)],
        };
        assert_eq!(stratum(&image), Some(1));
    }
}
