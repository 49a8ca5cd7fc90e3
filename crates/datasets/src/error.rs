//! Errors of the crate: hostile or unreadable input that stops an ingest or an export.
//!
//! Recoverable problems (a corrupt image, a box with an unknown class, …) are not errors: they are
//! collected as [`crate::Problem`]s and reported by [`crate::validate()`].

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::DatasetFormat;

/// Why an archive was refused or could not be extracted. Each variant names the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file is not a zip, tar or tar.gz archive (checked by magic bytes, not by name).
    #[error("not an archive: {reason}")]
    NotAnArchive {
        /// What was found instead.
        reason: String,
    },
    /// An entry name escapes the target directory or is otherwise unusable.
    #[error("unsafe path in archive entry `{entry}`: {reason}")]
    UnsafePath {
        /// Entry name as stored in the archive.
        entry: String,
        /// `..` component, absolute path, drive prefix, NUL byte, …
        reason: String,
    },
    /// A symlink, hard link, device or fifo entry.
    #[error("archive entry `{entry}` is a {kind}, which is not allowed")]
    ForbiddenEntryType {
        /// Entry name as stored in the archive.
        entry: String,
        /// `symlink`, `hard link`, `device`, `fifo`, …
        kind: String,
    },
    /// More entries than [`crate::Limits::max_entries`].
    #[error("archive has more than {limit} entries (at `{entry}`)")]
    TooManyEntries {
        /// The first entry over the limit.
        entry: String,
        /// The limit in force.
        limit: u64,
    },
    /// One entry unpacks to more than [`crate::Limits::max_entry_bytes`].
    #[error("archive entry `{entry}` unpacks to more than {limit} bytes")]
    EntryTooLarge {
        /// Entry name.
        entry: String,
        /// The limit in force.
        limit: u64,
    },
    /// The archive unpacks to more than [`crate::Limits::max_total_bytes`].
    #[error("archive unpacks to more than {limit} bytes in total (at `{entry}`)")]
    TotalTooLarge {
        /// Entry being written when the limit was crossed.
        entry: String,
        /// The limit in force.
        limit: u64,
    },
    /// Uncompressed bytes per compressed byte above [`crate::Limits::max_ratio`] (zip bomb).
    #[error("archive entry `{entry}` exceeds the compression ratio limit ({ratio:.0} > {limit})")]
    RatioExceeded {
        /// Entry being written when the limit was crossed.
        entry: String,
        /// Ratio observed so far.
        ratio: f64,
        /// The limit in force.
        limit: f64,
    },
    /// The same path appears twice.
    #[error("archive entry `{entry}` appears more than once")]
    DuplicateEntry {
        /// Entry name.
        entry: String,
    },
    /// The archive structure is broken (bad header, bad checksum, truncated stream).
    #[error("corrupt archive{}: {message}", entry.as_ref().map(|e| format!(" at `{e}`")).unwrap_or_default())]
    Corrupt {
        /// Entry being read, when known.
        entry: Option<String>,
        /// What the decoder reported.
        message: String,
    },
    /// The target directory exists and is not empty.
    #[error("extraction target `{}` is not empty", path.display())]
    TargetNotEmpty {
        /// The target directory.
        path: PathBuf,
    },
    /// Reading the archive or writing the target failed.
    #[error("i/o error{}: {source}", entry.as_ref().map(|e| format!(" at `{e}`")).unwrap_or_default())]
    Io {
        /// Entry being processed, when known.
        entry: Option<String>,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ArchiveError {
    /// Name of the offending entry, when the error is about one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Self::UnsafePath { entry, .. }
            | Self::ForbiddenEntryType { entry, .. }
            | Self::TooManyEntries { entry, .. }
            | Self::EntryTooLarge { entry, .. }
            | Self::TotalTooLarge { entry, .. }
            | Self::RatioExceeded { entry, .. }
            | Self::DuplicateEntry { entry } => Some(entry),
            Self::Corrupt { entry, .. } | Self::Io { entry, .. } => entry.as_deref(),
            Self::NotAnArchive { .. } | Self::TargetNotEmpty { .. } => None,
        }
    }
}

/// A malformed annotation file: JSON, XML, YAML or text, with the position or field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}{}: {message}",
    line.map(|l| format!(":{l}:{}", column.unwrap_or(0))).unwrap_or_default(),
    field.as_ref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
pub struct ParseError {
    /// File path relative to the dataset root.
    pub file: String,
    /// 1-based line, when the parser reports one.
    pub line: Option<usize>,
    /// 1-based column, when the parser reports one.
    pub column: Option<usize>,
    /// Path of the field at fault (`annotations[3].bbox`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Everything that stops an ingest or an export.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The archive was refused (hostile or broken).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An annotation file could not be parsed.
    #[error("malformed annotation file {0}")]
    Parse(#[from] ParseError),
    /// An image is larger than [`crate::Limits::max_image_pixels`] (decompression bomb).
    #[error("image `{file}` is {width}x{height} pixels, more than the limit of {limit}")]
    ImageTooLarge {
        /// Image path relative to the dataset root.
        file: String,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The pixel limit in force.
        limit: u64,
    },
    /// An annotation file is larger than [`crate::Limits::max_annotation_bytes`].
    #[error("annotation file `{file}` is {bytes} bytes, more than the limit of {limit}")]
    AnnotationFileTooLarge {
        /// File path relative to the dataset root.
        file: String,
        /// Its size.
        bytes: u64,
        /// The limit in force.
        limit: u64,
    },
    /// An annotation file holds more than [`crate::Limits::max_annotations`] entries.
    #[error("annotation file `{file}` has more than {limit} {what}")]
    TooManyAnnotations {
        /// File path relative to the dataset root.
        file: String,
        /// What was counted (`annotations`, `images`, `objects`, `label lines`).
        what: String,
        /// The limit in force.
        limit: u64,
    },
    /// No known dataset layout was found.
    #[error("could not recognise the dataset format: {reason}")]
    UnknownFormat {
        /// What was looked for.
        reason: String,
    },
    /// The requested format's files are not there.
    #[error("not a {format} dataset: {reason}")]
    NotThisFormat {
        /// The requested format.
        format: DatasetFormat,
        /// What is missing.
        reason: String,
    },
    /// The dataset holds no usable image.
    #[error("the dataset contains no readable image")]
    NoImages,
    /// A format name that is not one of `coco`, `yolo`, `voc`, `imagefolder`, `auto`.
    #[error("unknown dataset format `{0}` (expected coco, yolo, voc, imagefolder or auto)")]
    UnknownFormatName(String),
    /// The manifest cannot be written in the requested format.
    #[error("cannot export a {task} dataset as {format}")]
    ExportUnsupported {
        /// Target format.
        format: DatasetFormat,
        /// Task of the manifest (`classification`, `detection`, …).
        task: String,
    },
    /// A file could not be read or written.
    #[error("i/o error on `{}`: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl DatasetError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Stable machine-readable code, for the API error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Archive(ArchiveError::NotAnArchive { .. }) => "NOT_AN_ARCHIVE",
            Self::Archive(ArchiveError::UnsafePath { .. })
            | Self::Archive(ArchiveError::ForbiddenEntryType { .. }) => "UNSAFE_ARCHIVE_ENTRY",
            Self::Archive(
                ArchiveError::TooManyEntries { .. }
                | ArchiveError::EntryTooLarge { .. }
                | ArchiveError::TotalTooLarge { .. }
                | ArchiveError::RatioExceeded { .. },
            ) => "ARCHIVE_LIMIT_EXCEEDED",
            Self::Archive(_) => "INVALID_ARCHIVE",
            Self::Parse(_) => "MALFORMED_ANNOTATIONS",
            Self::ImageTooLarge { .. } => "IMAGE_TOO_LARGE",
            Self::AnnotationFileTooLarge { .. } | Self::TooManyAnnotations { .. } => {
                "ANNOTATION_LIMIT_EXCEEDED"
            }
            Self::UnknownFormat { .. }
            | Self::NotThisFormat { .. }
            | Self::UnknownFormatName(_) => "UNSUPPORTED_FORMAT",
            Self::NoImages => "NO_IMAGES",
            Self::ExportUnsupported { .. } => "EXPORT_UNSUPPORTED",
            Self::Io { .. } => "IO_ERROR",
        }
    }

    /// Structured details for the API error envelope: the file, entry, line/column or field at fault.
    pub fn details(&self) -> Value {
        match self {
            Self::Archive(err) => {
                let mut details = json!({ "reason": err.to_string() });
                if let Some(entry) = err.entry() {
                    details["entry"] = json!(entry);
                }
                details
            }
            Self::Parse(err) => json!({
                "file": err.file,
                "line": err.line,
                "column": err.column,
                "field": err.field,
                "reason": err.message,
            }),
            Self::ImageTooLarge {
                file,
                width,
                height,
                limit,
            } => json!({ "file": file, "width": width, "height": height, "max_pixels": limit }),
            Self::AnnotationFileTooLarge { file, bytes, limit } => {
                json!({ "file": file, "bytes": bytes, "max_bytes": limit })
            }
            Self::TooManyAnnotations { file, what, limit } => {
                json!({ "file": file, "counted": what, "limit": limit })
            }
            Self::NotThisFormat { format, reason } => {
                json!({ "format": format.as_str(), "reason": reason })
            }
            Self::ExportUnsupported { format, task } => {
                json!({ "format": format.as_str(), "task": task })
            }
            other => json!({ "reason": other.to_string() }),
        }
    }
}
