//! Decode once per run: images kept in memory, reduced to the size the transforms need, within a
//! byte budget shared by a run's sources. Later epochs read them instead of decoding the files
//! again (a PNG or JPEG decode costs more than the whole augmentation of a small image).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use domain::dataset::BoxAnnotation;
use image::RgbImage;
use image::imageops::{self, FilterType};

use super::source::ImageSource;
use crate::error::MlError;

/// Bytes of decoded images a training run keeps in memory by default.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// A byte allowance that several caches draw from.
#[derive(Debug)]
pub struct CacheBudget {
    left: AtomicUsize,
}

impl CacheBudget {
    /// An allowance of `bytes`.
    pub fn new(bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(bytes),
        })
    }

    /// Takes `bytes` from the allowance if that many are left.
    fn take(&self, bytes: usize) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    /// Bytes still free.
    pub fn left(&self) -> usize {
        self.left.load(Ordering::Relaxed)
    }
}

/// `inner`'s images, decoded on first use and kept (while the budget lasts) with the shorter
/// side reduced to at most `max_short_side`; images over the budget are decoded every time.
pub struct CachedSource {
    inner: Arc<dyn ImageSource>,
    max_short_side: u32,
    slots: Vec<OnceLock<RgbImage>>,
    budget: Arc<CacheBudget>,
}

impl CachedSource {
    /// A cache over `inner` drawing on `budget`.
    pub fn new(inner: Arc<dyn ImageSource>, max_short_side: u32, budget: Arc<CacheBudget>) -> Self {
        let slots = (0..inner.len()).map(|_| OnceLock::new()).collect();
        Self {
            inner,
            max_short_side: max_short_side.max(1),
            slots,
            budget,
        }
    }

    /// Images held in memory now.
    pub fn cached(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }

    /// `image` with its shorter side at most `max_short_side` (aspect kept).
    fn reduced(&self, image: RgbImage) -> RgbImage {
        let (w, h) = image.dimensions();
        let short = w.min(h);
        if short <= self.max_short_side {
            return image;
        }
        let scale = f64::from(self.max_short_side) / f64::from(short);
        let nw = ((f64::from(w) * scale).round() as u32).max(self.max_short_side);
        let nh = ((f64::from(h) * scale).round() as u32).max(self.max_short_side);
        let (nw, nh) = if w <= h {
            (self.max_short_side, nh)
        } else {
            (nw, self.max_short_side)
        };
        imageops::resize(&image, nw, nh, FilterType::Triangle)
    }
}

impl ImageSource for CachedSource {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn label(&self, index: usize) -> usize {
        self.inner.label(index)
    }

    fn boxes(&self, index: usize) -> Vec<BoxAnnotation> {
        self.inner.boxes(index)
    }

    fn load(&self, index: usize) -> Result<RgbImage, MlError> {
        let slot = &self.slots[index];
        if let Some(image) = slot.get() {
            return Ok(image.clone());
        }
        let image = self.reduced(self.inner.load(index)?);
        if self.budget.take(image.as_raw().len()) {
            // Another thread may have filled the slot meanwhile; its copy is the same image.
            let _ = slot.set(image.clone());
        }
        Ok(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::MemorySource;
    use std::sync::atomic::AtomicUsize;

    /// Counts decodes of an inner source.
    struct Counting(MemorySource, AtomicUsize);

    impl ImageSource for Counting {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn label(&self, index: usize) -> usize {
            self.0.label(index)
        }
        fn load(&self, index: usize) -> Result<RgbImage, MlError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.load(index)
        }
    }

    #[test]
    fn images_are_decoded_once_reduced_and_kept_within_the_budget() -> Result<(), MlError> {
        let items = (0..4)
            .map(|i| (RgbImage::from_pixel(100, 50, image::Rgb([i * 10, 0, 0])), 0))
            .collect();
        let inner = Arc::new(Counting(MemorySource::new(items), AtomicUsize::new(0)));
        // Room for three reduced images (40 × 20 × 3 bytes each).
        let budget = CacheBudget::new(3 * 40 * 20 * 3 + 10);
        let cache = CachedSource::new(inner.clone(), 20, budget.clone());
        for _ in 0..3 {
            for i in 0..4 {
                let image = cache.load(i)?;
                assert_eq!(image.dimensions(), (40, 20));
                assert_eq!(image.get_pixel(5, 5)[0], i as u8 * 10);
            }
        }
        assert_eq!(cache.cached(), 3);
        assert_eq!(budget.left(), 10);
        // Three decoded once, the fourth every time.
        assert_eq!(inner.1.load(Ordering::Relaxed), 3 + 3);
        let small = CachedSource::new(inner, 64, CacheBudget::new(1 << 20));
        assert_eq!(small.load(0)?.dimensions(), (100, 50), "never enlarged");
        Ok(())
    }
}
