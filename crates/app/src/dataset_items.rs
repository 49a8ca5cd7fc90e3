//! A dataset's images one by one: pages of items with their annotations, and the image files and
//! thumbnails behind signed, expiring links (so a browser's `<img>` needs no token).

use api_types::datasets::{DatasetItem, DatasetItemsResponse, ItemAnnotation, ItemsQuery};
use bytes::Bytes;
use chrono::Utc;
use domain::dataset::{ImageEntry, Manifest, Split};
use objects::keys;

use crate::App;
use crate::auth::Principal;
use crate::datasets::{page_within, ready_for};
use crate::error::{AppError, AppResult, FieldError};
use store::Page;

/// Longest side of a thumbnail.
pub const THUMBNAIL_SIDE: u32 = 256;
/// Default page size of `items`.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of `items`.
const MAX_LIMIT: u32 = 200;
/// Links stay valid for one to two hours: `expires` is rounded up to the hour so the same image
/// keeps the same URL (and the browser's cached copy) for an hour.
const LINK_HOURS: i64 = 2;

/// Which file of an item a link serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemFile {
    /// The image as uploaded.
    Image,
    /// A JPEG whose longest side is at most [`THUMBNAIL_SIDE`].
    Thumbnail,
}

impl ItemFile {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemFile::Image => "image",
            ItemFile::Thumbnail => "thumbnail",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(ItemFile::Image),
            "thumbnail" => Some(ItemFile::Thumbnail),
            _ => None,
        }
    }
}

fn subject(owner: &str, dataset_id: &str, item: usize, file: ItemFile) -> String {
    format!(
        "dataset-items/{owner}/{dataset_id}/{item}/{}",
        file.as_str()
    )
}

fn link(
    app: &App,
    owner: &str,
    dataset_id: &str,
    item: usize,
    file: ItemFile,
    expires: i64,
) -> String {
    let signature = app
        .urls
        .sign(&subject(owner, dataset_id, item, file), expires);
    format!(
        "{}/api/v1/datasets/{dataset_id}/items/{item}/{}?owner={owner}&expires={expires}&signature={signature}",
        app.settings.server.public_url.trim_end_matches('/'),
        file.as_str()
    )
}

fn parse_split(split: Option<&str>) -> AppResult<Option<Split>> {
    match split {
        None => Ok(None),
        Some("train") => Ok(Some(Split::Train)),
        Some("val") => Ok(Some(Split::Val)),
        Some("test") => Ok(Some(Split::Test)),
        Some(other) => Err(AppError::Validation(vec![FieldError::new(
            "split",
            format!("'{other}' is not one of train, val, test"),
        )])),
    }
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Val => "val",
        Split::Test => "test",
    }
}

fn annotations(manifest: &Manifest, image: &ImageEntry) -> Vec<ItemAnnotation> {
    let name = |id: usize| manifest.classes.get(id).cloned().unwrap_or_default();
    let label = image.label.map(|class_id| ItemAnnotation {
        class_id,
        class_name: name(class_id),
        bbox: None,
    });
    label
        .into_iter()
        .chain(image.boxes.iter().map(|b| ItemAnnotation {
            class_id: b.class_id,
            class_name: name(b.class_id),
            bbox: Some(b.bbox),
        }))
        .collect()
}

/// A page of one of the caller's ready datasets' images, optionally only one split and one class.
pub async fn items(
    app: &App,
    principal: &Principal,
    dataset_id: &str,
    query: &ItemsQuery,
) -> AppResult<DatasetItemsResponse> {
    let split = parse_split(query.split.as_deref())?;
    let Page { page, limit } = page_within(query.page, query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let (_, manifest) = ready_for(app, &principal.user_id, dataset_id).await?;
    let class =
        match query.class.as_deref() {
            None => None,
            Some(name) => Some(manifest.classes.iter().position(|c| c == name).ok_or_else(
                || {
                    AppError::Validation(vec![FieldError::new(
                        "class",
                        format!("the dataset has no class '{name}'"),
                    )])
                },
            )?),
        };
    let matching = manifest.images.iter().enumerate().filter(|(_, image)| {
        split.is_none_or(|s| image.split == s)
            && class.is_none_or(|c| {
                image.label == Some(c) || image.boxes.iter().any(|b| b.class_id == c)
            })
    });
    let expires = (Utc::now().timestamp() / 3600 + LINK_HOURS) * 3600;
    let owner = principal.user_id.as_str();
    let skip = (page as usize - 1).saturating_mul(limit as usize);
    let mut total = 0;
    let mut items = Vec::new();
    for (id, image) in matching {
        total += 1;
        if total <= skip || items.len() >= limit as usize {
            continue;
        }
        items.push(DatasetItem {
            id,
            file_name: image.file.clone(),
            width: image.width,
            height: image.height,
            split: split_name(image.split).to_owned(),
            annotations: annotations(&manifest, image),
            thumbnail_url: link(app, owner, dataset_id, id, ItemFile::Thumbnail, expires),
            image_url: link(app, owner, dataset_id, id, ItemFile::Image, expires),
        });
    }
    Ok(DatasetItemsResponse {
        items,
        total,
        page,
        limit,
    })
}

/// The content type of an image file by its extension.
fn image_type(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("bmp") => "image/bmp",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

/// A JPEG of `bytes` whose longest side is at most [`THUMBNAIL_SIDE`].
fn thumbnail(bytes: &[u8]) -> AppResult<Bytes> {
    let image = image::load_from_memory(bytes).map_err(AppError::internal)?;
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).into_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&small)
        .map_err(AppError::internal)?;
    Ok(Bytes::from(out))
}

/// The file behind a signed item link: `(content type, bytes)`. A wrong or expired signature
/// is 403; an item that does not exist (any more) 404. Thumbnails are made on first request and
/// kept beside the dataset's images (deleted with it).
pub async fn file(
    app: &App,
    owner: &str,
    dataset_id: &str,
    item: usize,
    file: ItemFile,
    expires: i64,
    signature: &str,
) -> AppResult<(&'static str, Bytes)> {
    let valid = app.urls.verify_subject(
        &subject(owner, dataset_id, item, file),
        expires,
        signature,
        Utc::now().timestamp(),
    );
    if !valid {
        return Err(AppError::Forbidden(
            "The link is invalid or has expired".into(),
        ));
    }
    let (_, manifest) = ready_for(app, owner, dataset_id).await?;
    let image = manifest
        .images
        .get(item)
        .ok_or_else(|| AppError::not_found("Dataset item", item.to_string()))?;
    let image_key = keys::dataset_image(owner, dataset_id, &image.file);
    match file {
        ItemFile::Image => Ok((image_type(&image.file), app.objects.get(&image_key).await?)),
        ItemFile::Thumbnail => {
            let key = keys::dataset_thumbnail(owner, dataset_id, item);
            if let Ok(bytes) = app.objects.get(&key).await {
                return Ok(("image/jpeg", bytes));
            }
            let original = app.objects.get(&image_key).await?;
            let small = tokio::task::spawn_blocking(move || thumbnail(&original))
                .await
                .map_err(AppError::internal)??;
            app.objects.put(&key, small.clone()).await?;
            Ok(("image/jpeg", small))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_keep_the_aspect_within_the_side() -> AppResult<()> {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(1000, 400, image::Rgb([200, 10, 10]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(AppError::internal)?;
        let jpeg = thumbnail(&png)?;
        let small = image::load_from_memory(&jpeg).map_err(AppError::internal)?;
        assert_eq!((small.width(), small.height()), (256, 102));
        assert!(thumbnail(b"not an image").is_err());
        Ok(())
    }

    #[test]
    fn item_files_round_trip_their_names() {
        for file in [ItemFile::Image, ItemFile::Thumbnail] {
            assert_eq!(ItemFile::parse(file.as_str()), Some(file));
        }
        assert_eq!(ItemFile::parse("archive"), None);
        assert_eq!(image_type("a/B.JPG"), "image/jpeg");
    }
}
