//! Ingest benchmark: builds an archive of small JPEGs and ingests it, timing the ingest and
//! reading the process's peak resident memory.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::error::DatasetError;
use crate::{DatasetFormat, Limits, ingest};

/// Result of [`bench_ingest`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Images ingested.
    pub images: usize,
    /// Size of the archive.
    pub archive_bytes: u64,
    /// Wall time of the ingest (extraction, decoding, hashing, parsing, splitting), seconds.
    pub seconds: f64,
    /// `images / seconds`.
    pub images_per_sec: f64,
    /// Peak resident set size of this process so far (`VmHWM`), when `/proc` has it.
    pub peak_rss_bytes: Option<u64>,
}

/// Peak resident set size of this process (`VmHWM` of `/proc/self/status`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A small JPEG whose content depends on `i` (so no two are duplicates), with one box.
fn jpeg(i: usize, size: u32) -> Result<Vec<u8>, image::ImageError> {
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        let v = (i as u32).wrapping_mul(2_654_435_761);
        image::Rgb([
            ((x + v) % 256) as u8,
            ((y + (v >> 8)) % 256) as u8,
            (((x ^ y) + (v >> 16)) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img)?;
    Ok(out)
}

/// Writes a YOLO zip of `n` 64×64 JPEGs (4 classes, one box each, no split) to `path`.
pub fn write_bench_archive(path: &Path, n: usize) -> Result<u64, DatasetError> {
    let io = |e: std::io::Error| DatasetError::io(path, e);
    let zip_err = |e: zip::result::ZipError| DatasetError::io(path, std::io::Error::other(e));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("bench/data.yaml", deflated)
        .map_err(zip_err)?;
    zip.write_all(b"names: [a, b, c, d]\n").map_err(io)?;
    for i in 0..n {
        let bytes = jpeg(i, 64).map_err(|e| io(std::io::Error::other(e)))?;
        zip.start_file(format!("bench/images/{i:06}.jpg"), stored)
            .map_err(zip_err)?;
        zip.write_all(&bytes).map_err(io)?;
        zip.start_file(format!("bench/labels/{i:06}.txt"), deflated)
            .map_err(zip_err)?;
        writeln!(zip, "{} 0.5 0.5 0.25 0.25", i % 4).map_err(io)?;
    }
    zip.finish().map_err(zip_err)?;
    std::fs::metadata(path).map(|m| m.len()).map_err(io)
}

/// Builds an archive of `n_images` small JPEGs in a temporary directory and ingests it.
pub fn bench_ingest(n_images: usize) -> Result<BenchReport, DatasetError> {
    let temp = tempfile::tempdir().map_err(|e| DatasetError::io(std::env::temp_dir(), e))?;
    let archive = temp.path().join("bench.zip");
    let archive_bytes = write_bench_archive(&archive, n_images)?;
    let start = Instant::now();
    let ingested = ingest(
        &archive,
        Some(DatasetFormat::Yolo),
        &temp.path().join("work"),
        &Limits::default(),
        1,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let images = ingested.manifest.images.len();
    Ok(BenchReport {
        images,
        archive_bytes,
        seconds,
        images_per_sec: images as f64 / seconds.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
    })
}
