//! Typed settings: embedded `config/default.toml` → optional file → `VISION__SECTION__KEY` env.

use domain::Plan;
use objects::ObjectsConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The whole configuration of a `vision` process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Directory for the SQLite database, local objects and generated secrets.
    pub data_dir: PathBuf,
    /// HTTP server.
    pub server: ServerSettings,
    /// Database.
    pub database: DatabaseSettings,
    /// Object storage.
    pub objects: ObjectsSettings,
    /// Authentication.
    pub auth: AuthSettings,
    /// Rate limiting.
    pub rate_limit: RateLimitSettings,
    /// Job workers.
    pub worker: WorkerSettings,
    /// Training workers.
    pub training: TrainingSettings,
    /// Model serving.
    pub inference: InferenceSettings,
    /// Dataset uploads.
    pub datasets: DatasetSettings,
    /// Internal service API.
    pub internal: InternalSettings,
    /// Chat.
    pub chat: ChatSettings,
    /// Segmentation service (SAM3).
    pub segmentation: SegmentationSettings,
    /// Web console.
    pub console: ConsoleSettings,
    /// Logging.
    pub log: LogSettings,
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on (`host:port`; port 0 picks a free port).
    pub bind: String,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Public base URL for links; empty derives it from the bound address.
    pub public_url: String,
    /// Longest time a request may take (uploads, downloads and WebSockets excepted: they are
    /// bounded by `min_transfer_bytes_per_sec` instead), in seconds.
    pub request_timeout_secs: u64,
    /// Slowest body an upload may send: averaged over `transfer_window_secs`, in bytes per
    /// second (slow-loris uploads are cut off with 408).
    pub min_transfer_bytes_per_sec: u64,
    /// Window over which the transfer rate is judged, in seconds.
    pub transfer_window_secs: u64,
    /// Time given to in-flight requests and running jobs after a shutdown signal, in seconds.
    pub shutdown_grace_secs: u64,
    /// Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` is believed (the
    /// right-most address not in this list is the client); empty: the peer address is the
    /// client.
    pub trusted_proxies: Vec<String>,
}

/// Segmentation service settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentationSettings {
    /// Directory with SAM3's `config.json`, weights and `tokenizer.json`; empty: no model in
    /// this process.
    pub weights_dir: String,
    /// Base URLs of remote `vision segment-backend`s that workers send tasks to instead of
    /// running the model in process (tried in turn).
    pub backends: Vec<String>,
    /// `X-API-Key` of the backend API (required by `vision segment-backend`, sent to remotes).
    pub api_key: String,
    /// Address `vision segment-backend` listens on.
    pub backend_bind: String,
    /// Largest image `POST /upload` accepts, in bytes.
    pub max_upload_bytes: u64,
    /// Longest text prompt, in characters.
    pub max_prompt_chars: usize,
    /// Instances scoring below this are dropped.
    pub score_threshold: f32,
    /// Lifetime of signed image and mask URLs, in seconds.
    pub url_ttl_secs: i64,
    /// Claims of a task whose worker dies before it is marked failed.
    pub max_attempts: i64,
    /// Credits one prompt costs.
    pub credits_per_prompt: i64,
    /// Images whose backbone features the engine keeps for further prompts.
    pub feature_cache_images: usize,
    /// Time limit of a call to a remote backend, in seconds.
    pub backend_timeout_secs: u64,
}

impl SegmentationSettings {
    /// Whether this deployment can segment at all (weights here or remote backends).
    pub fn available(&self) -> bool {
        !self.weights_dir.is_empty() || !self.backends.is_empty()
    }
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; empty means `<data_dir>/vision.db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

/// Object storage settings (flat, as written in TOML).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectsSettings {
    /// `filesystem` or `s3`.
    pub kind: String,
    /// Filesystem root; empty means `<data_dir>/objects`.
    pub root: String,
    /// S3 bucket.
    pub bucket: String,
    /// S3 endpoint for non-AWS services.
    pub endpoint: String,
    /// S3 region.
    pub region: String,
    /// S3 access key id.
    pub access_key_id: String,
    /// S3 secret access key.
    pub secret_access_key: String,
    /// Allow plain-HTTP S3 endpoints.
    pub allow_http: bool,
}

/// Authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    /// HS256 secret; empty means generated and kept in `<data_dir>/jwt_secret`.
    pub jwt_secret: String,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_token_ttl_secs: u64,
    /// Whether `POST /auth/register` is open.
    pub allow_registration: bool,
    /// Plan given to self-registered users.
    pub default_plan: Plan,
    /// Failed logins allowed per minute per account from one client (ten times as many per
    /// account from all clients together).
    pub login_failures_per_minute: u64,
    /// Failed logins allowed per minute per client address.
    pub login_failures_per_client_per_minute: u64,
    /// `POST /auth/register` calls allowed per hour per client address.
    pub registrations_per_client_per_hour: u64,
    /// Threads hashing passwords, i.e. hashes computed at once (each Argon2 hash holds
    /// ~19 MiB); 0: one fewer than the cores (at least one).
    pub max_concurrent_hashes: usize,
}

/// Rate limiting settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitSettings {
    /// Whether plan limits are enforced.
    pub enabled: bool,
    /// Redis URL for shared counters; empty keeps them in memory.
    pub redis_url: String,
    /// Prefix of every counter key (several deployments can share one Redis).
    pub namespace: String,
}

/// Job worker settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSettings {
    /// Run a worker inside `vision serve`.
    pub enabled: bool,
    /// Lease length of a claimed job.
    pub lease_secs: u64,
    /// Pause between polls of an empty queue.
    pub poll_millis: u64,
    /// Job kinds to run (empty: every kind).
    pub kinds: Vec<String>,
}

/// Training worker settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingSettings {
    /// Compute device (`cpu`, `cuda:N`, `tch-cpu`).
    pub device: String,
    /// Scratch directory (empty: `<data_dir>/work`).
    pub work_dir: String,
    /// Claims of a training job before it is given up.
    pub max_attempts: i64,
    /// Least time between two live progress reports.
    pub progress_interval_millis: u64,
    /// Most memory one training run may be estimated to need, in bytes; a workflow asking
    /// for more is refused when it is created. 0: half of this machine's physical memory.
    #[serde(default)]
    pub max_memory_bytes: u64,
}

/// Model serving settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceSettings {
    /// Weight bytes of loaded models kept in memory.
    pub cache_bytes: u64,
    /// Largest image accepted.
    pub max_image_bytes: u64,
    /// Time limit of an `image_url` download.
    pub fetch_timeout_secs: u64,
    /// Redirects followed by an `image_url` download.
    pub max_redirects: usize,
    /// Allow `image_url`s on private, loopback and link-local addresses.
    pub allow_private_urls: bool,
    /// Detection models: lowest class probability of a reported object.
    pub detection_score_threshold: f32,
    /// Detection models: a box overlapping a more confident box of its class by more than this
    /// IoU is suppressed.
    pub detection_iou_threshold: f32,
    /// Detection models: most objects reported per image.
    pub detection_max_objects: usize,
}

/// Dataset upload and unpacking limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetSettings {
    /// Largest archive accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Most entries in an archive.
    pub max_entries: u64,
    /// Most bytes once unpacked.
    pub max_uncompressed_bytes: u64,
    /// Largest single entry once unpacked.
    pub max_entry_bytes: u64,
    /// Largest unpacked/packed ratio of an entry.
    pub max_compression_ratio: f64,
    /// Largest image, in pixels.
    pub max_image_pixels: u64,
    /// Largest annotation file read whole (COCO JSON, VOC XML, YOLO `data.yaml` and lists), in
    /// bytes; a larger one fails the dataset. YOLO label files are read line by line.
    pub max_annotation_bytes: u64,
    /// Seed of generated splits.
    pub split_seed: u64,
}

/// Internal API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InternalSettings {
    /// `X-Internal-Auth` token; empty disables the internal API.
    pub token: String,
}

/// Chat settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatSettings {
    /// Optional LLM that completes the rule parser's reading of a message.
    pub llm: ChatLlmSettings,
}

/// An OpenAI-compatible chat-completions endpoint used as a second intent parser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatLlmSettings {
    /// API base, e.g. `http://localhost:11434/v1` (`{base_url}/chat/completions` is called);
    /// empty means no LLM.
    pub base_url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Bearer token; empty sends none.
    pub api_key: String,
    /// Time limit of one request; past it the rule parser's answer stands.
    pub timeout_millis: u64,
}

impl ChatLlmSettings {
    /// Whether an LLM is configured.
    pub fn enabled(&self) -> bool {
        !self.base_url.trim().is_empty()
    }
}

/// Web console settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleSettings {
    /// Serve the web console at `/`.
    pub enabled: bool,
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSettings {
    /// tracing `EnvFilter` directive.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

/// Settings could not be read or are inconsistent.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Built-in defaults only.
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::build(None, false)
    }

    /// Defaults, then `file` when given, then `VISION__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::build(file, true)
    }

    fn build(file: Option<&Path>, env: bool) -> Result<Self, SettingsError> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        if env {
            builder = builder.add_source(
                Environment::with_prefix("VISION")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("worker.kinds")
                    .with_list_parse_key("segmentation.backends")
                    .with_list_parse_key("server.trusted_proxies"),
            );
        }
        let settings: Settings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| SettingsError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if !matches!(self.objects.kind.as_str(), "filesystem" | "s3") {
            return Err(SettingsError(format!(
                "objects.kind must be \"filesystem\" or \"s3\", not \"{}\"",
                self.objects.kind
            )));
        }
        if self.objects.kind == "s3" && self.objects.bucket.is_empty() {
            return Err(SettingsError(
                "objects.bucket is required when objects.kind = \"s3\"".into(),
            ));
        }
        if !self.auth.jwt_secret.is_empty() && self.auth.jwt_secret.len() < 32 {
            return Err(SettingsError(
                "auth.jwt_secret must be at least 32 characters".into(),
            ));
        }
        if let Err(e) = crate::client::TrustedProxies::parse(&self.server.trusted_proxies) {
            return Err(SettingsError(format!("server.trusted_proxies: {e}")));
        }
        let known: Vec<&str> = crate::jobs::handlers().iter().map(|h| h.kind()).collect();
        if let Some(kind) = self
            .worker
            .kinds
            .iter()
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(SettingsError(format!(
                "worker.kinds: unknown job kind \"{kind}\" (known: {})",
                known.join(", ")
            )));
        }
        if let Err(e) = self.training.device.parse::<ml::DeviceSpec>() {
            return Err(SettingsError(format!("training.device: {e}")));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(SettingsError(
                "log.format must be \"text\" or \"json\"".into(),
            ));
        }
        Ok(())
    }

    /// Settings for a self-contained instance rooted at `data_dir` (tests, benchmarks).
    pub fn for_data_dir(data_dir: &Path) -> Result<Self, SettingsError> {
        let mut settings = Self::defaults()?;
        settings.data_dir = data_dir.to_path_buf();
        Ok(settings)
    }

    /// The effective training scratch directory.
    pub fn work_dir(&self) -> PathBuf {
        if self.training.work_dir.is_empty() {
            self.data_dir.join("work")
        } else {
            PathBuf::from(&self.training.work_dir)
        }
    }

    /// The effective database URL.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("vision.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// The effective object storage configuration.
    pub fn objects_config(&self) -> ObjectsConfig {
        let o = &self.objects;
        if o.kind == "s3" {
            ObjectsConfig::S3 {
                bucket: o.bucket.clone(),
                endpoint: o.endpoint.clone(),
                region: o.region.clone(),
                access_key_id: o.access_key_id.clone(),
                secret_access_key: o.secret_access_key.clone(),
                allow_http: o.allow_http,
            }
        } else if o.root.is_empty() {
            ObjectsConfig::Filesystem {
                root: self.data_dir.join("objects"),
            }
        } else {
            ObjectsConfig::Filesystem {
                root: PathBuf::from(&o.root),
            }
        }
    }

    /// The effective settings as TOML with every secret replaced by `***`.
    pub fn to_redacted_toml(&self) -> Result<String, SettingsError> {
        let mut value = toml::Value::try_from(self).map_err(|e| SettingsError(e.to_string()))?;
        redact(&mut value, "");
        if let Some(url) = value.get_mut("database").and_then(|d| d.get_mut("url")) {
            *url = toml::Value::String(store::redact_url(&self.database_url()));
        }
        toml::to_string_pretty(&value).map_err(|e| SettingsError(e.to_string()))
    }
}

fn redact(value: &mut toml::Value, key: &str) {
    const SECRET_WORDS: [&str; 5] = ["secret", "password", "token", "redis_url", "api_key"];
    match value {
        toml::Value::Table(table) => table.iter_mut().for_each(|(k, v)| redact(v, k)),
        toml::Value::String(s) if !s.is_empty() && SECRET_WORDS.iter().any(|w| key.contains(w)) => {
            *s = if key == "redis_url" {
                store::redact_url(s)
            } else {
                "***".to_owned()
            };
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_complete_and_local() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8000");
        assert_eq!(s.database_url(), "sqlite://./data/vision.db");
        assert_eq!(
            s.objects_config(),
            ObjectsConfig::Filesystem {
                root: "./data/objects".into()
            }
        );
        assert_eq!(s.auth.default_plan, Plan::Free);
        assert_eq!(s.auth.access_token_ttl_secs, 3600);
    }

    #[test]
    fn file_overrides_defaults_and_secrets_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[auth]\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
             [database]\nurl = \"postgres://u:pw@h/db\"\n[internal]\ntoken = \"tok\"\n\
             [chat.llm]\napi_key = \"sk-llm-key\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.auth.jwt_secret.len(), 32);
        let printed = s.to_redacted_toml().unwrap();
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(!printed.contains("pw@"), "{printed}");
        assert!(!printed.contains("\"tok\""), "{printed}");
        assert!(!printed.contains("sk-llm-key"), "{printed}");
        assert!(printed.contains("postgres://u:***@h/db"), "{printed}");
    }

    #[test]
    fn rejects_short_secret_and_unknown_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[auth]\njwt_secret = \"short\"\n").unwrap();
        assert!(Settings::load(Some(&file)).is_err());
        std::fs::write(&file, "[objects]\nkind = \"ftp\"\n").unwrap();
        assert!(Settings::load(Some(&file)).is_err());
    }
}
