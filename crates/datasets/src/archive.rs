//! Safe extraction of `.zip`, `.tar` and `.tar.gz` archives.
//!
//! The kind is detected by magic bytes. Every entry name is checked (no `..`, no absolute path, no
//! drive prefix, no NUL), links and special files are refused, and the limits of [`Limits`] are
//! enforced on the bytes really written, never on the sizes the headers claim. On any refusal the
//! target directory is cleaned, so nothing half-extracted is left behind.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ArchiveError;

/// Below this many bytes written, the compression ratio is not checked: tiny highly compressible
/// files (a blank label file, a small JSON) are harmless.
pub const RATIO_CHECK_FLOOR_BYTES: u64 = 1 << 20;

/// Resource limits applied while extracting an archive and decoding its images.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Maximum number of entries (files, directories, skipped entries alike).
    pub max_entries: u64,
    /// Maximum bytes written for all entries together.
    pub max_total_bytes: u64,
    /// Maximum bytes written for one entry.
    pub max_entry_bytes: u64,
    /// Maximum uncompressed/compressed ratio, per zip entry and for the archive as a whole.
    pub max_ratio: f64,
    /// Maximum `width × height` of one image, checked from its header before decoding.
    pub max_image_pixels: u64,
    /// Largest annotation file the readers open (COCO JSON, VOC XML, YOLO `data.yaml`, split and
    /// class lists), in bytes; a larger one refuses the dataset. YOLO label files are read line by
    /// line instead, each line bounded by [`Limits::max_polygon_points`].
    pub max_annotation_bytes: u64,
    /// Most annotations (COCO `images` or `annotations` entries, VOC objects, YOLO label lines)
    /// in one annotation file; more refuses the dataset.
    pub max_annotations: u64,
    /// Most points of one polygon read as a box (COCO `segmentation` without `bbox`, YOLO
    /// segmentation lines); an annotation with more is dropped as malformed.
    pub max_polygon_points: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 200_000,
            max_total_bytes: 16 << 30,
            max_entry_bytes: 1 << 30,
            max_ratio: 200.0,
            max_image_pixels: 80_000_000,
            max_annotation_bytes: 256 << 20,
            max_annotations: 1_000_000,
            max_polygon_points: 20_000,
        }
    }
}

/// Kind of archive, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// PKZIP (`PK\x03\x04` or an empty archive's `PK\x05\x06`).
    Zip,
    /// POSIX/GNU tar (`ustar` at offset 257).
    Tar,
    /// gzip-compressed tar.
    TarGz,
}

/// What an extraction wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Detected archive kind.
    pub kind: ArchiveKind,
    /// Entries seen (including directories and skipped OS metadata such as `__MACOSX/`).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

fn io_err(entry: Option<&str>, source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        entry: entry.map(str::to_owned),
        source,
    }
}

fn has_tar_magic(block: &[u8]) -> bool {
    block.len() >= 262 && &block[257..262] == b"ustar"
}

/// Detects the archive kind of a file by its magic bytes.
pub fn detect_archive(path: &Path) -> Result<ArchiveKind, ArchiveError> {
    let mut file = File::open(path).map_err(|e| io_err(None, e))?;
    let mut head = Vec::with_capacity(512);
    (&mut file)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| io_err(None, e))?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(ArchiveKind::Zip);
    }
    if has_tar_magic(&head) {
        return Ok(ArchiveKind::Tar);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        file.seek(SeekFrom::Start(0)).map_err(|e| io_err(None, e))?;
        let mut inner = Vec::with_capacity(512);
        flate2::read::GzDecoder::new(BufReader::new(file))
            .take(512)
            .read_to_end(&mut inner)
            .map_err(|e| ArchiveError::Corrupt {
                entry: None,
                message: format!("gzip stream: {e}"),
            })?;
        return if has_tar_magic(&inner) {
            Ok(ArchiveKind::TarGz)
        } else {
            Err(ArchiveError::NotAnArchive {
                reason: "gzip file that does not contain a tar archive".into(),
            })
        };
    }
    let reason = if head.is_empty() {
        "empty file".to_owned()
    } else {
        "unrecognised content (expected .zip, .tar or .tar.gz)".to_owned()
    };
    Err(ArchiveError::NotAnArchive { reason })
}

/// Checks an entry name and turns it into a safe relative path (`/`-separated).
/// `Ok(None)` for names that denote the archive root itself (`./`).
pub fn sanitize_entry_name(name: &str) -> Result<Option<String>, ArchiveError> {
    let unsafe_path = |reason: &str| ArchiveError::UnsafePath {
        entry: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.contains('\0') {
        return Err(unsafe_path("NUL byte in name"));
    }
    let normalised = name.replace('\\', "/");
    if normalised.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    let bytes = normalised.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(unsafe_path("drive prefix"));
    }
    let mut parts = Vec::new();
    for part in normalised.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("parent directory component `..`")),
            other => {
                if other.contains(':') && cfg!(windows) {
                    return Err(unsafe_path("`:` in a path component"));
                }
                parts.push(other);
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// OS metadata that archivers add and that is never part of a dataset.
fn is_os_junk(rel: &str) -> bool {
    let last = rel.rsplit('/').next().unwrap_or(rel);
    rel.split('/').any(|p| p == "__MACOSX")
        || last.starts_with("._")
        || last == ".DS_Store"
        || last.eq_ignore_ascii_case("Thumbs.db")
        || last.eq_ignore_ascii_case("desktop.ini")
}

/// Byte accounting shared by every entry of one extraction.
struct Budget<'a> {
    limits: &'a Limits,
    entries: u64,
    files: u64,
    written: u64,
    /// Compressed bytes of the archive consumed so far (for the overall ratio).
    compressed: Box<dyn Fn() -> u64 + 'a>,
    seen: HashSet<String>,
}

impl Budget<'_> {
    fn count_entry(&mut self, entry: &str) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                entry: entry.to_owned(),
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    fn check_ratio(&self, entry: &str, written: u64, compressed: u64) -> Result<(), ArchiveError> {
        if written < RATIO_CHECK_FLOOR_BYTES {
            return Ok(());
        }
        let ratio = written as f64 / compressed.max(1) as f64;
        if ratio > self.limits.max_ratio {
            return Err(ArchiveError::RatioExceeded {
                entry: entry.to_owned(),
                ratio,
                limit: self.limits.max_ratio,
            });
        }
        Ok(())
    }

    /// Streams one entry to `dest`, counting the bytes really written.
    fn write_entry(
        &mut self,
        entry: &str,
        reader: &mut dyn Read,
        dest: &Path,
        entry_compressed: Option<u64>,
    ) -> Result<(), ArchiveError> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(Some(entry), e))?;
        }
        // `create_new` never follows or overwrites an existing path.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| io_err(Some(entry), e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut entry_written = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| ArchiveError::Corrupt {
                entry: Some(entry.to_owned()),
                message: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            entry_written += n as u64;
            self.written += n as u64;
            if entry_written > self.limits.max_entry_bytes {
                return Err(ArchiveError::EntryTooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_entry_bytes,
                });
            }
            if self.written > self.limits.max_total_bytes {
                return Err(ArchiveError::TotalTooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_total_bytes,
                });
            }
            if let Some(compressed) = entry_compressed {
                self.check_ratio(entry, entry_written, compressed)?;
            }
            self.check_ratio(entry, self.written, (self.compressed)())?;
            out.write_all(&buf[..n])
                .map_err(|e| io_err(Some(entry), e))?;
        }
        self.files += 1;
        Ok(())
    }

    /// Registers a file path, refusing duplicates.
    fn claim(&mut self, rel: &str) -> Result<(), ArchiveError> {
        if !self.seen.insert(rel.to_owned()) {
            return Err(ArchiveError::DuplicateEntry {
                entry: rel.to_owned(),
            });
        }
        Ok(())
    }
}

/// Extracts `archive` into `target` (created if missing; must be empty if present).
///
/// On any error the target directory is emptied (and removed if this call created it).
pub fn extract(archive: &Path, target: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    let kind = detect_archive(archive)?;
    let created = !target.exists();
    if created {
        fs::create_dir_all(target).map_err(|e| io_err(None, e))?;
    } else if fs::read_dir(target)
        .map_err(|e| io_err(None, e))?
        .next()
        .is_some()
    {
        return Err(ArchiveError::TargetNotEmpty {
            path: target.to_owned(),
        });
    }
    let result = match kind {
        ArchiveKind::Zip => extract_zip(archive, target, limits),
        ArchiveKind::Tar => {
            let file = File::open(archive).map_err(|e| io_err(None, e))?;
            extract_tar(BufReader::new(file), target, limits, Box::new(|| 0), false)
        }
        ArchiveKind::TarGz => {
            let file = File::open(archive).map_err(|e| io_err(None, e))?;
            let consumed = Arc::new(AtomicU64::new(0));
            let counting = CountingReader {
                inner: BufReader::new(file),
                count: Arc::clone(&consumed),
            };
            let gz = flate2::read::GzDecoder::new(counting);
            extract_tar(
                gz,
                target,
                limits,
                Box::new(move || consumed.load(Ordering::Relaxed)),
                true,
            )
        }
    };
    match result {
        Ok((entries, files, bytes)) => Ok(Extracted {
            kind,
            entries,
            files,
            bytes,
        }),
        Err(err) => {
            clean_dir(target, created);
            Err(err)
        }
    }
}

/// Removes everything inside `dir`, and `dir` itself when `remove_self`.
pub(crate) fn clean_dir(dir: &Path, remove_self: bool) {
    if remove_self {
        let _ = fs::remove_dir_all(dir);
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let _ = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

/// Counts the bytes read through it (the compressed side of a gzip stream).
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Counts = (u64, u64, u64);

/// Name of a zip entry: UTF-8 when the bytes are UTF-8 (whatever the flag says), else Korean
/// Windows' code page (CP949/EUC-KR, what Explorer writes on a Korean system), else the zip
/// crate's CP437 reading.
fn zip_entry_name(raw: &[u8], cp437: &str) -> String {
    if let Ok(utf8) = std::str::from_utf8(raw) {
        return utf8.to_owned();
    }
    encoding_rs::EUC_KR
        .decode_without_bom_handling_and_without_replacement(raw)
        .map(|name| name.into_owned())
        .unwrap_or_else(|| cp437.to_owned())
}

fn extract_zip(archive: &Path, target: &Path, limits: &Limits) -> Result<Counts, ArchiveError> {
    let file = File::open(archive).map_err(|e| io_err(None, e))?;
    let archive_len = file.metadata().map_err(|e| io_err(None, e))?.len();
    let mut zip =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|e| ArchiveError::Corrupt {
            entry: None,
            message: e.to_string(),
        })?;
    let mut budget = Budget {
        limits,
        entries: 0,
        files: 0,
        written: 0,
        compressed: Box::new(move || archive_len),
        seen: HashSet::new(),
    };
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(|e| ArchiveError::Corrupt {
            entry: None,
            message: e.to_string(),
        })?;
        let raw_name = zip_entry_name(entry.name_raw(), entry.name());
        budget.count_entry(&raw_name)?;
        let Some(rel) = sanitize_entry_name(&raw_name)? else {
            continue;
        };
        if let Some(mode) = entry.unix_mode() {
            let kind = match mode & 0o170000 {
                0o120000 => Some("symlink"),
                0o020000 | 0o060000 => Some("device"),
                0o010000 => Some("fifo"),
                0o140000 => Some("socket"),
                _ => None,
            };
            if let Some(kind) = kind {
                return Err(ArchiveError::ForbiddenEntryType {
                    entry: raw_name,
                    kind: kind.into(),
                });
            }
        }
        if is_os_junk(&rel) {
            continue;
        }
        let dest = target.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&dest).map_err(|e| io_err(Some(&raw_name), e))?;
            continue;
        }
        if entry.size() > limits.max_entry_bytes {
            return Err(ArchiveError::EntryTooLarge {
                entry: raw_name,
                limit: limits.max_entry_bytes,
            });
        }
        budget.claim(&rel)?;
        let compressed = entry.compressed_size();
        budget.write_entry(&raw_name, &mut entry, &dest, Some(compressed))?;
    }
    Ok((budget.entries, budget.files, budget.written))
}

fn extract_tar<R: Read>(
    reader: R,
    target: &Path,
    limits: &Limits,
    compressed: Box<dyn Fn() -> u64 + '_>,
    check_overall_ratio: bool,
) -> Result<Counts, ArchiveError> {
    let mut tar = tar::Archive::new(reader);
    let compressed: Box<dyn Fn() -> u64 + '_> = if check_overall_ratio {
        compressed
    } else {
        // A plain tar has no compression: the ratio is meaningless.
        Box::new(|| u64::MAX)
    };
    let mut budget = Budget {
        limits,
        entries: 0,
        files: 0,
        written: 0,
        compressed,
        seen: HashSet::new(),
    };
    let entries = tar.entries().map_err(|e| ArchiveError::Corrupt {
        entry: None,
        message: e.to_string(),
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Corrupt {
            entry: None,
            message: e.to_string(),
        })?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        budget.count_entry(&raw_name)?;
        let entry_type = entry.header().entry_type();
        let forbidden = match entry_type {
            tar::EntryType::Symlink => Some("symlink"),
            tar::EntryType::Link => Some("hard link"),
            tar::EntryType::Char | tar::EntryType::Block => Some("device"),
            tar::EntryType::Fifo => Some("fifo"),
            _ => None,
        };
        if let Some(kind) = forbidden {
            return Err(ArchiveError::ForbiddenEntryType {
                entry: raw_name,
                kind: kind.into(),
            });
        }
        if matches!(
            entry_type,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        }
        let Some(rel) = sanitize_entry_name(&raw_name)? else {
            continue;
        };
        let dest = target.join(&rel);
        match entry_type {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(|e| io_err(Some(&raw_name), e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if is_os_junk(&rel) {
                    continue;
                }
                let declared = entry.header().size().unwrap_or(0);
                if declared > limits.max_entry_bytes {
                    return Err(ArchiveError::EntryTooLarge {
                        entry: raw_name,
                        limit: limits.max_entry_bytes,
                    });
                }
                budget.claim(&rel)?;
                budget.write_entry(&raw_name, &mut entry, &dest, None)?;
            }
            other => {
                return Err(ArchiveError::ForbiddenEntryType {
                    entry: raw_name,
                    kind: format!("{other:?} entry"),
                });
            }
        }
    }
    Ok((budget.entries, budget.files, budget.written))
}

/// Directory that actually holds the dataset: descends through single wrapping folders
/// (`my_dataset.zip` → `my_dataset/…`).
pub fn dataset_root(extracted: &Path) -> io::Result<PathBuf> {
    let mut root = extracted.to_owned();
    loop {
        let mut dirs = Vec::new();
        let mut has_files = false;
        for entry in fs::read_dir(&root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_os_junk(&name) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            } else {
                has_files = true;
            }
        }
        if has_files || dirs.len() != 1 {
            return Ok(root);
        }
        let only = dirs.remove(0);
        let name = only.file_name().map(|n| n.to_string_lossy().to_lowercase());
        // Never descend into a folder that is itself part of a layout (`images/`, `train/`, …).
        if matches!(
            name.as_deref(),
            Some(
                "images"
                    | "labels"
                    | "annotations"
                    | "train"
                    | "val"
                    | "valid"
                    | "validation"
                    | "test"
                    | "jpegimages"
            )
        ) {
            return Ok(root);
        }
        root = only;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_accepts_and_refuses() {
        assert_eq!(
            sanitize_entry_name("a/b.jpg").unwrap().as_deref(),
            Some("a/b.jpg")
        );
        assert_eq!(
            sanitize_entry_name("./a//b.jpg").unwrap().as_deref(),
            Some("a/b.jpg")
        );
        assert_eq!(
            sanitize_entry_name("a\\b.jpg").unwrap().as_deref(),
            Some("a/b.jpg")
        );
        assert_eq!(sanitize_entry_name("./").unwrap(), None);
        assert_eq!(
            sanitize_entry_name("고양이/치즈.jpg").unwrap().as_deref(),
            Some("고양이/치즈.jpg")
        );
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "\\\\server\\x",
            "C:/x",
            "c:x",
            "a\0b",
        ] {
            assert!(
                matches!(
                    sanitize_entry_name(bad),
                    Err(ArchiveError::UnsafePath { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn zip_names_in_korean_code_page_are_decoded() {
        let (cp949, _, _) = encoding_rs::EUC_KR.encode("고양이/치즈.jpg");
        assert_eq!(zip_entry_name(&cp949, "mojibake"), "고양이/치즈.jpg");
        assert_eq!(zip_entry_name("나비.jpg".as_bytes(), "x"), "나비.jpg");
        assert_eq!(zip_entry_name(&[0x80, 0xFF, 0x41], "cp437"), "cp437");
    }

    #[test]
    fn junk_is_recognised() {
        assert!(is_os_junk("__MACOSX/a/._b.jpg"));
        assert!(is_os_junk("a/.DS_Store"));
        assert!(!is_os_junk("a/b.jpg"));
    }
}
