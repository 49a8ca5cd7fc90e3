//! The state shared by every handler.

use crate::metrics::HttpMetrics;
use app::App;
use std::sync::Arc;

/// Application use-cases plus server-only parts.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use-cases and their backends.
    pub app: App,
    /// HTTP metrics.
    pub metrics: Arc<HttpMetrics>,
}
