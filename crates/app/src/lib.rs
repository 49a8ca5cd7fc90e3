//! Use-cases of the platform as plain async functions over store, objects and ml.
//!
//! [`App`] bundles the configured backends; every use-case takes it and the caller's
//! [`auth::Principal`] so that each query is scoped to the caller.

pub mod auth;
pub mod batches;
pub mod catalogue;
pub mod chat;
pub mod chat_llm;
pub mod client;
pub mod dataset_items;
pub mod datasets;
mod error;
pub mod estimate;
pub mod events;
pub mod fetch;
pub mod hasher;
pub mod inference;
pub mod internal;
pub mod jobs;
pub mod memory;
pub mod projects;
pub mod ratelimit;
pub mod recipe;
pub mod segmentation;
pub mod settings;
pub mod training;
pub mod users;
pub mod workflows;

pub use error::{AppError, AppResult, FieldError, Validator};
pub use settings::Settings;

use objects::Objects;
use ratelimit::{RateLimiter, Window};
use std::sync::Arc;
use store::{SqlStore, Store};

/// Everything a use-case needs: settings, storage, keys and the rate limiter. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// Database repositories.
    pub store: Arc<dyn Store>,
    /// Object storage.
    pub objects: Objects,
    /// Token signing keys.
    pub tokens: Arc<auth::TokenKeys>,
    /// Rate limiter (plan limits, failed logins).
    pub limiter: Arc<RateLimiter>,
    /// Live events (workflow progress, cancellations).
    pub events: Arc<events::EventBus>,
    /// Trained models kept loaded for inference.
    pub models: Arc<inference::ModelCache>,
    /// The SAM3 engine of this process (loaded on first use).
    pub segmenter: Arc<segmentation::Segmenter>,
    /// Signs the URLs of segmentation images and masks.
    pub urls: Arc<segmentation::urls::UrlSigner>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub proxies: Arc<client::TrustedProxies>,
    /// The threads that hash and verify passwords (each hash holds ~19 MiB).
    pub hasher: Arc<hasher::Hasher>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.store.backend())
            .field("objects", &self.objects.backend())
            .field("limiter", &self.limiter.backend())
            .field("events", &self.events.backend())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Connects the database (applying migrations), object storage and rate-limit counters
    /// described by `settings`, and loads or creates the JWT secret.
    pub async fn start(settings: Settings) -> AppResult<Self> {
        let store = connect_store(&settings).await?;
        let objects = Objects::open(&settings.objects_config())?;
        let secret = auth::load_or_create_secret(&settings.auth.jwt_secret, &settings.data_dir)?;
        let tokens = auth::TokenKeys::new(
            &secret,
            settings.auth.access_token_ttl_secs,
            settings.auth.refresh_token_ttl_secs,
        );
        let limiter = if settings.rate_limit.redis_url.is_empty() {
            RateLimiter::in_memory()
        } else {
            RateLimiter::redis(
                &settings.rate_limit.redis_url,
                &settings.rate_limit.namespace,
            )
            .await?
        };
        let events = match store.dialect() {
            store::Dialect::Postgres => {
                events::EventBus::postgres(&settings.database_url()).await?
            }
            store::Dialect::Sqlite => events::EventBus::in_process(),
        };
        let proxies = client::TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|e| AppError::internal(format!("server.trusted_proxies: {e}")))?;
        // One core stays free for serving while a flood of registrations is hashed.
        let hashes = match settings.auth.max_concurrent_hashes {
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        };
        Ok(Self {
            proxies: Arc::new(proxies),
            hasher: Arc::new(hasher::Hasher::new(hashes)),
            models: Arc::new(inference::ModelCache::default()),
            segmenter: Arc::new(segmentation::Segmenter::new(&settings)),
            urls: Arc::new(segmentation::urls::UrlSigner::new(&secret)),
            events: Arc::new(events),
            settings: Arc::new(settings),
            store: Arc::new(store),
            objects,
            tokens: Arc::new(tokens),
            limiter: Arc::new(limiter),
        })
    }

    /// Counts one API request of the caller against the plan's per-minute and per-hour limits;
    /// `None` when rate limiting is disabled.
    pub async fn count_request(&self, principal: &auth::Principal) -> Option<ratelimit::Decision> {
        let limits = principal.plan.limits();
        let windows = [
            Window::per_minute(limits.requests_per_minute),
            Window::per_hour(limits.requests_per_hour),
        ];
        let key = format!("api:{}", principal.user_id);
        if self.settings.rate_limit.enabled {
            Some(self.limiter.hit(&key, &windows).await)
        } else {
            None
        }
    }

    /// Whether the database answers.
    pub async fn database_ok(&self) -> Result<(), String> {
        self.store
            .user_by_id("user_healthcheck")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Connects and migrates the database named by the settings.
pub async fn connect_store(settings: &Settings) -> AppResult<SqlStore> {
    let url = settings.database_url();
    let store = SqlStore::connect(&url, settings.database.max_connections)
        .await
        .map_err(|e| AppError::Unavailable(format!("database {}: {e}", store::redact_url(&url))))?;
    store.migrate().await.map_err(AppError::internal)?;
    Ok(store)
}
