//! `vision config`.

use app::Settings;

/// Prints the effective settings as TOML with secrets redacted.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    print!("{}", settings.to_redacted_toml()?);
    Ok(())
}
