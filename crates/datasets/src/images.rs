//! Image checks: every image is read once, its size checked from the header against the pixel
//! limit (decompression bombs), decoded in full (corrupt or truncated files), and hashed (SHA-256,
//! for duplicate detection). Runs in parallel on rayon's pool.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::DatasetError;
use crate::tree::{self, Tree};

/// What a sound image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
}

/// Outcome of checking one image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCheck {
    /// Decoded in full.
    Sound(ImageFacts),
    /// Unreadable, with the reason.
    Corrupt(String),
}

/// Refusal of an image over the pixel limit: `(width, height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub u32, pub u32);

/// Checks one image held in memory.
///
/// `Err` only for an image over `max_pixels` (hostile); corrupt data is `Ok(ImageCheck::Corrupt)`.
pub fn check_image(bytes: &[u8], max_pixels: u64) -> Result<ImageCheck, TooLarge> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let reader = match image::ImageReader::new(Cursor::new(bytes)).with_guessed_format() {
        Ok(reader) => reader,
        Err(e) => return Ok(ImageCheck::Corrupt(e.to_string())),
    };
    let Some(format) = reader.format() else {
        return Ok(ImageCheck::Corrupt("not a recognised image format".into()));
    };
    let (width, height) = match reader.into_dimensions() {
        Ok(dims) => dims,
        Err(e) => return Ok(ImageCheck::Corrupt(e.to_string())),
    };
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(TooLarge(width, height));
    }
    if width == 0 || height == 0 {
        return Ok(ImageCheck::Corrupt("image has a zero dimension".into()));
    }
    if let Some(reason) = truncation(bytes, format) {
        return Ok(ImageCheck::Corrupt(reason));
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // Decoded buffer of at most 4 channels of 16 bits, plus decoder working room.
    limits.max_alloc = Some(u64::from(width) * u64::from(height) * 8 + (64 << 20));
    reader.limits(limits);
    match reader.decode() {
        Ok(decoded) if decoded.width() == width && decoded.height() == height => {
            Ok(ImageCheck::Sound(ImageFacts {
                width,
                height,
                sha256,
                bytes: bytes.len() as u64,
            }))
        }
        Ok(decoded) => Ok(ImageCheck::Corrupt(format!(
            "header says {width}x{height}, decoded {}x{}",
            decoded.width(),
            decoded.height()
        ))),
        Err(e) => Ok(ImageCheck::Corrupt(e.to_string())),
    }
}

/// Structural end-of-file checks that lenient decoders may skip: a JPEG ends with the EOI marker,
/// a PNG with its IEND chunk, a RIFF (WebP) or BMP file is at least as long as its header says.
fn truncation(bytes: &[u8], format: image::ImageFormat) -> Option<String> {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    let contains = |needle: &[u8]| tail.windows(needle.len()).any(|w| w == needle);
    match format {
        image::ImageFormat::Jpeg if !contains(&[0xFF, 0xD9]) => {
            Some("truncated JPEG: no end-of-image marker".into())
        }
        image::ImageFormat::Png if !contains(b"IEND") => {
            Some("truncated PNG: no IEND chunk".into())
        }
        image::ImageFormat::WebP if bytes.len() >= 8 => {
            let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            (u64::from(declared) + 8 > bytes.len() as u64)
                .then(|| "truncated WebP: shorter than its RIFF header says".into())
        }
        image::ImageFormat::Bmp if bytes.len() >= 6 => {
            let declared = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
            (u64::from(declared) > bytes.len() as u64)
                .then(|| "truncated BMP: shorter than its header says".into())
        }
        _ => None,
    }
}

/// Every image file of a dataset tree with its check result, plus name look-ups for readers
/// that refer to images by bare file name.
#[derive(Debug, Clone, Default)]
pub struct ImageIndex {
    checks: BTreeMap<String, ImageCheck>,
    by_name: HashMap<String, Vec<String>>,
    by_stem: HashMap<String, Vec<String>>,
}

impl ImageIndex {
    /// Reads, checks and hashes every image of `tree` in parallel.
    pub fn scan(tree: &Tree, max_pixels: u64) -> Result<Self, DatasetError> {
        let files: Vec<&str> = tree.images().collect();
        let checked: Vec<(String, ImageCheck)> = files
            .par_iter()
            .map(|rel| {
                let path = tree.path(rel);
                let bytes = std::fs::read(&path).map_err(|e| DatasetError::io(&path, e))?;
                match check_image(&bytes, max_pixels) {
                    Ok(check) => Ok(((*rel).to_owned(), check)),
                    Err(TooLarge(width, height)) => Err(DatasetError::ImageTooLarge {
                        file: (*rel).to_owned(),
                        width,
                        height,
                        limit: max_pixels,
                    }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::from_checks(checked))
    }

    /// Builds an index from already computed checks.
    pub fn from_checks(checks: impl IntoIterator<Item = (String, ImageCheck)>) -> Self {
        let mut index = Self::default();
        for (rel, check) in checks {
            index
                .by_name
                .entry(tree::file_name(&rel).to_lowercase())
                .or_default()
                .push(rel.clone());
            index
                .by_stem
                .entry(tree::stem(&rel).to_lowercase())
                .or_default()
                .push(rel.clone());
            index.checks.insert(rel, check);
        }
        index
    }

    /// Check result of one image.
    pub fn get(&self, rel: &str) -> Option<&ImageCheck> {
        self.checks.get(rel)
    }

    /// All images with their checks, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ImageCheck)> {
        self.checks.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of image files.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether there is no image file at all.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Finds an image referred to by `name`: the first candidate directory (relative to the root)
    /// where `dir/name` exists, then the only image anywhere with that file name (case-insensitive).
    pub fn resolve(&self, name: &str, dirs: &[&str]) -> Option<String> {
        let name = name.replace('\\', "/");
        let name = name.trim_start_matches("./");
        for dir in dirs {
            let candidate = tree::join(dir, name);
            if self.checks.contains_key(&candidate) {
                return Some(candidate);
            }
        }
        match self.by_name.get(&tree::file_name(name).to_lowercase()) {
            Some(found) if found.len() == 1 => Some(found[0].clone()),
            _ => None,
        }
    }

    /// Images whose file stem is `stem` (case-insensitive), for formats that name images by stem.
    pub fn by_stem(&self, stem: &str) -> &[String] {
        self.by_stem
            .get(&stem.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}
