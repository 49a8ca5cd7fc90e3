//! Reading annotation files with bounded memory: whole files only up to
//! [`Limits::max_annotation_bytes`], label files line by line with a bounded line length, and
//! format sniffing on a fixed-size window.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::archive::Limits;
use crate::error::DatasetError;
use crate::tree::Tree;

/// Bytes read per step when sniffing a file.
const SNIFF_CHUNK: usize = 64 * 1024;

/// Refuses an annotation file larger than [`Limits::max_annotation_bytes`]; opens it otherwise.
pub(crate) fn open_annotation(
    tree: &Tree,
    rel: &str,
    limits: &Limits,
) -> Result<File, DatasetError> {
    let path = tree.path(rel);
    let file = File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| DatasetError::io(&path, e))?
        .len();
    if bytes > limits.max_annotation_bytes {
        return Err(DatasetError::AnnotationFileTooLarge {
            file: rel.to_owned(),
            bytes,
            limit: limits.max_annotation_bytes,
        });
    }
    Ok(file)
}

/// The text of an annotation file (lossy UTF-8), refused above [`Limits::max_annotation_bytes`].
pub(crate) fn read_text(tree: &Tree, rel: &str, limits: &Limits) -> Result<String, DatasetError> {
    Ok(String::from_utf8_lossy(&read_bytes(tree, rel, limits)?).into_owned())
}

/// The bytes of an annotation file, refused above [`Limits::max_annotation_bytes`].
pub(crate) fn read_bytes(tree: &Tree, rel: &str, limits: &Limits) -> Result<Vec<u8>, DatasetError> {
    let mut file = open_annotation(tree, rel, limits)?;
    let mut bytes = Vec::new();
    // The size was checked on open; `take` also bounds a file that grows meanwhile.
    (&mut file)
        .take(limits.max_annotation_bytes)
        .read_to_end(&mut bytes)
        .map_err(|e| DatasetError::io(tree.path(rel), e))?;
    Ok(bytes)
}

/// Whether `needle` occurs in bytes `start..start + len` of the file, read in small chunks.
fn window_contains(file: &mut File, start: u64, len: u64, needle: &[u8]) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(start))?;
    let mut reader = file.take(len);
    let mut buf = vec![0u8; SNIFF_CHUNK + needle.len()];
    let mut kept = 0usize;
    loop {
        let n = reader.read(&mut buf[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let filled = kept + n;
        if buf[..filled].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        // Keep the tail so a needle across two chunks is still found.
        kept = (needle.len() - 1).min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// Whether every group of `needles` has one member in the first or last `window` bytes of the
/// file; reads at most `2 × window` bytes through a small buffer.
pub(crate) fn sniff(path: &Path, window: u64, needles: &[&[&[u8]]]) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let tail_start = size.saturating_sub(window);
    needles.iter().all(|group| {
        group.iter().any(|needle| {
            window_contains(&mut file, 0, window, needle).unwrap_or(false)
                || (tail_start > 0
                    && window_contains(&mut file, tail_start, window, needle).unwrap_or(false))
        })
    })
}

/// One line of a label file.
pub(crate) enum Line<'a> {
    /// The line's text (without the line break), lossy UTF-8.
    Text(std::borrow::Cow<'a, str>),
    /// The line is longer than the bound; it was skipped.
    TooLong,
}

/// Reads a text file line by line, never holding more than `max_line` bytes of one line.
pub(crate) struct Lines {
    reader: BufReader<File>,
    max_line: usize,
    buf: Vec<u8>,
}

impl Lines {
    /// Opens `rel` (any size) for reading lines of at most `max_line` bytes.
    pub(crate) fn open(tree: &Tree, rel: &str, max_line: usize) -> Result<Self, DatasetError> {
        let path = tree.path(rel);
        let file = File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
        Ok(Self {
            reader: BufReader::new(file),
            max_line,
            buf: Vec::new(),
        })
    }

    /// The next line, `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let limit = self.max_line as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > self.max_line {
            self.reader.skip_until(b'\n')?;
            return Ok(Some(Line::TooLong));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Line::Text(String::from_utf8_lossy(&self.buf))))
    }
}

/// Bytes a YOLO label line may need for `points` polygon points (generous: 24 bytes a number).
pub(crate) fn max_label_line(limits: &Limits) -> usize {
    usize::try_from(
        limits
            .max_polygon_points
            .saturating_mul(48)
            .saturating_add(256),
    )
    .unwrap_or(usize::MAX)
}
