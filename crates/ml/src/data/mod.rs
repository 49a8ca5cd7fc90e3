//! The input pipeline: image sources (dataset manifest + image root, or memory), deterministic
//! augmentation, normalisation and parallel batch assembly.

mod cache;
mod loader;
mod source;
pub mod synthetic;
mod transform;

pub use cache::{CacheBudget, CachedSource, DEFAULT_CACHE_BYTES};
pub use loader::{Batch, BatchMode, BatchStream, Prefetch, batch_chunks, epoch_order, load_batch};
pub use source::{ImageSource, ManifestSource, MemorySource, SubsetSource};
pub use transform::{Augment, Normalization, Preprocess, RandomResizedCrop};
