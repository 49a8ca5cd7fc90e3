//! Runs the conformance suite on SQLite, and on PostgreSQL when `VISION_TEST_DATABASE_URL` is set.

use store::SqlStore;

#[tokio::test]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/vision.db", dir.path().display());
    let store = SqlStore::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    store::conformance::run(&store).await.unwrap();
}

#[tokio::test]
async fn postgres_conformance() {
    let Some(url) = store::testing::fresh_postgres_url().await else {
        eprintln!("VISION_TEST_DATABASE_URL not set: PostgreSQL conformance skipped");
        return;
    };
    let store = SqlStore::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    store::conformance::run(&store).await.unwrap();
}
