//! Object storage for the platform's bytes (datasets, images, checkpoints, models, masks):
//! the local filesystem by default, any S3-compatible store by configuration.

pub mod keys;
pub mod testing;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Where objects live.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectsConfig {
    /// A directory on the local filesystem.
    Filesystem {
        /// Root directory (created when missing).
        root: PathBuf,
    },
    /// An S3-compatible service (AWS S3, MinIO, Ceph, R2, …).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Endpoint URL for non-AWS services; empty for AWS.
        #[serde(default)]
        endpoint: String,
        /// Region (any value for most S3-compatible services).
        #[serde(default = "default_region")]
        region: String,
        /// Access key id.
        #[serde(default)]
        access_key_id: String,
        /// Secret access key.
        #[serde(default)]
        secret_access_key: String,
        /// Allow plain-HTTP endpoints (local MinIO, test servers).
        #[serde(default)]
        allow_http: bool,
    },
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// Failures of object storage.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// The object does not exist.
    #[error("object not found: {0}")]
    NotFound(String),
    /// The configuration cannot be used.
    #[error("object store configuration: {0}")]
    Config(String),
    /// Any other failure of the backend.
    #[error("object store: {0}")]
    Backend(object_store::Error),
}

impl From<object_store::Error> for ObjectsError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { path, .. } => ObjectsError::NotFound(path),
            other => ObjectsError::Backend(other),
        }
    }
}

/// Shorthand for object storage results.
pub type ObjectsResult<T> = Result<T, ObjectsError>;

/// A handle on the configured object store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Objects {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
}

impl Objects {
    /// Opens the store described by `config`.
    pub fn open(config: &ObjectsConfig) -> ObjectsResult<Self> {
        match config {
            ObjectsConfig::Filesystem { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    ObjectsError::Config(format!("cannot create {}: {e}", root.display()))
                })?;
                let fs = LocalFileSystem::new_with_prefix(root)?.with_automatic_cleanup(true);
                Ok(Self {
                    inner: Arc::new(fs),
                    backend: "filesystem",
                })
            }
            ObjectsConfig::S3 {
                bucket,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_allow_http(*allow_http);
                if !endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_virtual_hosted_style_request(false);
                }
                if !access_key_id.is_empty() {
                    builder = builder
                        .with_access_key_id(access_key_id)
                        .with_secret_access_key(secret_access_key);
                }
                Ok(Self {
                    inner: Arc::new(builder.build()?),
                    backend: "s3",
                })
            }
        }
    }

    /// `filesystem` or `s3`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The underlying `object_store` handle, for streaming uploads and downloads.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Stores `bytes` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> ObjectsResult<()> {
        self.inner
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Reads the whole object at `key`.
    pub async fn get(&self, key: &str) -> ObjectsResult<Bytes> {
        Ok(self
            .inner
            .get(&ObjectPath::from(key))
            .await?
            .bytes()
            .await?)
    }

    /// Size in bytes of the object at `key`.
    pub async fn size(&self, key: &str) -> ObjectsResult<u64> {
        Ok(self.inner.head(&ObjectPath::from(key)).await?.size)
    }

    /// Deletes the object at `key`; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> ObjectsResult<()> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys under `prefix` with their sizes.
    pub async fn list(&self, prefix: &str) -> ObjectsResult<Vec<(String, u64)>> {
        let prefix = ObjectPath::from(prefix);
        let metas: Vec<_> = self.inner.list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect())
    }

    /// Deletes every object under `prefix`; returns how many were deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> ObjectsResult<usize> {
        let prefix = ObjectPath::from(prefix);
        let locations = self
            .inner
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .boxed();
        let deleted: Vec<_> = self.inner.delete_stream(locations).try_collect().await?;
        Ok(deleted.len())
    }
}

#[cfg(test)]
mod tests;
