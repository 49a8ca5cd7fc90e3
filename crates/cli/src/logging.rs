//! tracing subscriber set-up from the `[log]` settings (`RUST_LOG` wins when set).

use app::settings::LogSettings;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; logs go to stderr so command output stays clean.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
