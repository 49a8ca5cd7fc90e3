//! `vision migrate`.

use app::Settings;

/// Applies pending migrations to the configured database.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let store = app::connect_store(&settings).await?;
    println!(
        "migrations applied ({} at {})",
        store::Store::backend(&store),
        store::redact_url(&settings.database_url())
    );
    store.close().await;
    Ok(())
}
