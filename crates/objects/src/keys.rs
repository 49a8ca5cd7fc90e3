//! Every object key the platform writes, in one place.
//!
//! Keys start with the owner's id so a user's bytes can be listed, measured and deleted together.

/// The uploaded archive of a dataset.
pub fn dataset_archive(user_id: &str, dataset_id: &str) -> String {
    format!("users/{user_id}/datasets/{dataset_id}/archive")
}

/// Everything stored for a dataset.
pub fn dataset_prefix(user_id: &str, dataset_id: &str) -> String {
    format!("users/{user_id}/datasets/{dataset_id}/")
}

/// The normalised manifest of a dataset.
pub fn dataset_manifest(user_id: &str, dataset_id: &str) -> String {
    format!("{}manifest.json", dataset_prefix(user_id, dataset_id))
}

/// One image of a dataset (`file` as in its manifest).
pub fn dataset_image(user_id: &str, dataset_id: &str, file: &str) -> String {
    format!("{}images/{file}", dataset_prefix(user_id, dataset_id))
}

/// The thumbnail of a dataset's image `item` (its position in the manifest).
pub fn dataset_thumbnail(user_id: &str, dataset_id: &str, item: usize) -> String {
    format!(
        "{}thumbnails/{item}.jpg",
        dataset_prefix(user_id, dataset_id)
    )
}

/// Everything stored for a workflow (checkpoints, final model).
pub fn workflow_prefix(user_id: &str, workflow_id: &str) -> String {
    format!("users/{user_id}/workflows/{workflow_id}/")
}

/// Everything a user owns.
pub fn user_prefix(user_id: &str) -> String {
    format!("users/{user_id}/")
}
