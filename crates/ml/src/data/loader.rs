//! Batch assembly: parallel decode + transform with rayon, and a prefetching stream that prepares
//! the next batches on a background thread while the model works on the current one.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use super::source::ImageSource;
use super::transform::{Augment, Preprocess};
use crate::error::MlError;
use crate::rng::Rng;

/// A batch of normalised images (`[B, 3, S, S]`, row-major) and their labels.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Pixel values, `B·3·S·S` floats.
    pub images: Vec<f32>,
    /// Class index per image.
    pub labels: Vec<usize>,
    /// Side `S` of each image.
    pub image_size: usize,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images as a `[B, 3, S, S]` tensor on `device`.
    pub fn images_tensor(&self, device: &Device) -> Tensor<4> {
        let s = self.image_size;
        let data = TensorData::new(self.images.clone(), [self.len(), 3, s, s]);
        Tensor::from_data(data, device)
    }

    /// The labels as a `[B]` integer tensor on `device`.
    pub fn labels_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(labels, [self.len()]), device)
    }
}

/// How the images of a batch are transformed.
#[derive(Debug, Clone, Copy)]
pub enum BatchMode {
    /// Augmented with randomness derived from `seed` and the image index (so results do not
    /// depend on thread scheduling).
    Train {
        /// Augmentation settings.
        augment: Augment,
        /// Seed of this epoch's augmentation.
        seed: u64,
    },
    /// Deterministic evaluation transform.
    Eval,
}

/// The order in which an epoch visits the images: shuffled by `seed`, or sequential.
pub fn epoch_order(len: usize, shuffle_seed: Option<u64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if let Some(seed) = shuffle_seed {
        Rng::new(seed).shuffle(&mut order);
    }
    order
}

/// Loads and transforms the images `indices` of `source` in parallel into one batch.
pub fn load_batch(
    source: &dyn ImageSource,
    indices: &[usize],
    preprocess: &Preprocess,
    mode: &BatchMode,
) -> Result<Batch, MlError> {
    let s = preprocess.image_size;
    let per_image = 3 * s * s;
    let mut images = vec![0.0f32; per_image * indices.len()];
    images
        .par_chunks_mut(per_image)
        .zip(indices.par_iter())
        .try_for_each(|(out, &index)| -> Result<(), MlError> {
            let image = source.load(index)?;
            match mode {
                BatchMode::Train { augment, seed } => {
                    let mut rng = Rng::derive(*seed, index as u64);
                    preprocess.train_into(&image, augment, &mut rng, out);
                }
                BatchMode::Eval => preprocess.eval_into(&image, out),
            }
            Ok(())
        })?;
    Ok(Batch {
        images,
        labels: indices.iter().map(|&i| source.label(i)).collect(),
        image_size: s,
    })
}

/// `order` in chunks of `batch_size` (the last may be smaller); with `drop_single` a trailing
/// chunk of one image is left out (BatchNorm cannot train on it).
pub fn batch_chunks(order: &[usize], batch_size: usize, drop_single: bool) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    if drop_single && order.len() > 1 && chunks.last().is_some_and(|c| c.len() == 1) {
        chunks.pop();
    }
    chunks
}

/// Values (batches) prepared ahead of time on a background thread, at most `prefetch` waiting.
pub struct Prefetch<T> {
    receiver: Option<Receiver<Result<T, MlError>>>,
    worker: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetch<T> {
    /// Calls `load` on every chunk in order on a background thread; stops after the first error.
    pub fn spawn<F>(chunks: Vec<Vec<usize>>, prefetch: usize, mut load: F) -> Self
    where
        F: FnMut(&[usize]) -> Result<T, MlError> + Send + 'static,
    {
        let (sender, receiver) = sync_channel(prefetch.max(1));
        let worker = std::thread::Builder::new()
            .name("ml-data".into())
            .spawn(move || {
                for chunk in &chunks {
                    let value = load(chunk);
                    let failed = value.is_err();
                    if sender.send(value).is_err() || failed {
                        break;
                    }
                }
            });
        match worker {
            Ok(handle) => Self {
                receiver: Some(receiver),
                worker: Some(handle),
            },
            Err(e) => {
                let (sender, receiver) = sync_channel(1);
                let _ = sender.send(Err(MlError::io("ml-data thread", e)));
                Self {
                    receiver: Some(receiver),
                    worker: None,
                }
            }
        }
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = Result<T, MlError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.receiver.as_ref()?.recv().ok()
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Closing the channel first lets a blocked producer finish.
        self.receiver.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// An iterator of classification batches prepared ahead of time on a background thread.
pub struct BatchStream(Prefetch<Batch>);

impl BatchStream {
    /// Starts preparing the batches of `order` (chunks of `batch_size`, the last may be smaller;
    /// with `drop_single` a trailing batch of one image is skipped, which BatchNorm cannot train on).
    /// At most `prefetch` batches wait in memory.
    pub fn spawn(
        source: Arc<dyn ImageSource>,
        order: Vec<usize>,
        batch_size: usize,
        drop_single: bool,
        preprocess: Preprocess,
        mode: BatchMode,
        prefetch: usize,
    ) -> Self {
        let chunks = batch_chunks(&order, batch_size, drop_single);
        Self(Prefetch::spawn(chunks, prefetch, move |chunk| {
            load_batch(source.as_ref(), chunk, &preprocess, &mode)
        }))
    }
}

impl Iterator for BatchStream {
    type Item = Result<Batch, MlError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{MemorySource, Normalization};
    use image::RgbImage;

    #[test]
    fn stream_matches_direct_loading_and_is_deterministic() -> Result<(), MlError> {
        let items = (0..10)
            .map(|i| {
                (
                    RgbImage::from_fn(20, 12, |x, y| {
                        image::Rgb([(x * 12) as u8, (y * 20) as u8, i * 20])
                    }),
                    i as usize % 3,
                )
            })
            .collect();
        let source: Arc<dyn ImageSource> = Arc::new(MemorySource::new(items));
        let pre = Preprocess {
            image_size: 8,
            crop_pct: 1.0,
            normalization: Normalization::IMAGENET,
        };
        let mode = BatchMode::Train {
            augment: Augment::default(),
            seed: 5,
        };
        let order = epoch_order(10, Some(3));
        let collect = || -> Result<Vec<Batch>, MlError> {
            BatchStream::spawn(source.clone(), order.clone(), 4, true, pre, mode, 2).collect()
        };
        let a = collect()?;
        let b = collect()?;
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().map(Batch::len).sum::<usize>(), 10);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.images, y.images);
            assert_eq!(x.labels, y.labels);
        }
        let direct = load_batch(source.as_ref(), &order[..4], &pre, &mode)?;
        assert_eq!(direct.images, a[0].images);
        let eleven: Vec<usize> = (0..9).collect();
        let dropped: Vec<Batch> =
            BatchStream::spawn(source, eleven, 4, true, pre, BatchMode::Eval, 1)
                .collect::<Result<_, _>>()?;
        assert_eq!(dropped.len(), 2, "trailing single-image batch is skipped");
        Ok(())
    }
}
