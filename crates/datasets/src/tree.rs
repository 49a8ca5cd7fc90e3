//! The list of files under a dataset root, walked once and shared by detection and the readers.

use std::path::{Path, PathBuf};

use crate::error::DatasetError;

/// Extensions (lower case) of the image files a dataset may hold.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Regular files under a root, as sorted `/`-separated relative paths. Symlinks are not followed.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The dataset root.
    pub root: PathBuf,
    /// Relative file paths, sorted.
    pub files: Vec<String>,
}

/// Lower-case extension of a relative path.
pub fn extension(rel: &str) -> String {
    let name = file_name(rel);
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_lowercase())
        .unwrap_or_default()
}

/// Last component of a relative path.
pub fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// File name without its extension.
pub fn stem(rel: &str) -> &str {
    let name = file_name(rel);
    name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name)
}

/// Directory part of a relative path (`""` at the root).
pub fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// Joins relative path parts with `/`, skipping empty ones.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// Whether a relative path names an image by its extension.
pub fn is_image(rel: &str) -> bool {
    IMAGE_EXTENSIONS.contains(&extension(rel).as_str())
}

impl Tree {
    /// Walks `root`.
    pub fn scan(root: &Path) -> Result<Self, DatasetError> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(root).follow_links(false) {
            let entry = entry.map_err(|e| {
                let path = e
                    .path()
                    .map(Path::to_owned)
                    .unwrap_or_else(|| root.to_owned());
                DatasetError::io(path, e.into())
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push(rel.join("/"));
        }
        files.sort();
        Ok(Self {
            root: root.to_owned(),
            files,
        })
    }

    /// Absolute path of a relative one.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Files with one of the given lower-case extensions.
    pub fn with_extension<'a>(&'a self, exts: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.files
            .iter()
            .map(String::as_str)
            .filter(move |f| exts.contains(&extension(f).as_str()))
    }

    /// Image files.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .map(String::as_str)
            .filter(|f| is_image(f))
    }

    /// Depth of a relative path (number of `/`).
    pub fn depth(rel: &str) -> usize {
        rel.matches('/').count()
    }
}
