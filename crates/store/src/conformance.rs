//! The conformance suite every [`Store`] implementation must pass, run by this crate's tests on
//! SQLite always and on PostgreSQL when `VISION_TEST_DATABASE_URL` is set.

use crate::StoreError;
use crate::traits::{NewProject, ProjectChanges, RefreshUse, Store};
use chrono::{Duration, Utc};
use domain::{IdKind, Plan, User};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn user(email: &str) -> User {
    User {
        id: IdKind::User.new_id(),
        email: email.to_owned(),
        name: "Tester".to_owned(),
        plan: Plan::Pro,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: Utc::now(),
    }
}

fn err(e: StoreError) -> String {
    e.to_string()
}

/// Runs every check against `store`; the error names the first check that failed.
/// The store must be freshly migrated and empty.
pub async fn run(store: &dyn Store) -> Result<(), String> {
    users(store).await?;
    refresh_tokens(store).await?;
    projects(store).await?;
    Ok(())
}

async fn users(store: &dyn Store) -> Result<(), String> {
    let alice = user("alice@example.com");
    store.insert_user(&alice).await.map_err(err)?;
    let again = store.insert_user(&user("alice@example.com")).await;
    ensure!(
        matches!(again, Err(StoreError::Conflict(_))),
        "duplicate e-mail must conflict: {again:?}"
    );

    let by_email = store
        .user_by_email("alice@example.com")
        .await
        .map_err(err)?;
    ensure!(
        by_email.as_ref().map(|u| &u.id) == Some(&alice.id),
        "user_by_email: {by_email:?}"
    );
    let by_id = store
        .user_by_id(&alice.id)
        .await
        .map_err(err)?
        .ok_or("user_by_id: none")?;
    ensure!(
        by_id.plan == Plan::Pro && by_id.name == "Tester",
        "user fields: {by_id:?}"
    );
    ensure!(
        by_id.created_at.timestamp_millis() == alice.created_at.timestamp_millis(),
        "created_at round trip"
    );
    ensure!(
        store
            .user_by_email("nobody@example.com")
            .await
            .map_err(err)?
            .is_none(),
        "unknown e-mail"
    );

    let usage = store.usage(&alice.id).await.map_err(err)?;
    ensure!(
        usage.compute_seconds == 0.0 && usage.storage_bytes == 0,
        "fresh usage: {usage:?}"
    );
    store
        .add_usage(&alice.id, 1800.0, 1024)
        .await
        .map_err(err)?;
    store.add_usage(&alice.id, 900.5, -24).await.map_err(err)?;
    let usage = store.usage(&alice.id).await.map_err(err)?;
    ensure!(
        (usage.compute_seconds - 2700.5).abs() < 1e-9 && usage.storage_bytes == 1000,
        "accumulated usage: {usage:?}"
    );
    Ok(())
}

async fn refresh_tokens(store: &dyn Store) -> Result<(), String> {
    let bob = user("bob@example.com");
    store.insert_user(&bob).await.map_err(err)?;
    let now = Utc::now();
    store
        .insert_refresh_token("h1", &bob.id, now + Duration::hours(1))
        .await
        .map_err(err)?;
    store
        .insert_refresh_token("h2", &bob.id, now + Duration::hours(1))
        .await
        .map_err(err)?;
    store
        .insert_refresh_token("old", &bob.id, now - Duration::seconds(1))
        .await
        .map_err(err)?;

    let expired = store.use_refresh_token("old", now).await.map_err(err)?;
    ensure!(expired == RefreshUse::Rejected, "expired: {expired:?}");
    let first = store.use_refresh_token("h1", now).await.map_err(err)?;
    ensure!(
        first == RefreshUse::Accepted(bob.id.clone()),
        "first use: {first:?}"
    );
    let replay = store.use_refresh_token("h1", now).await.map_err(err)?;
    ensure!(
        replay == RefreshUse::Replayed(bob.id.clone()),
        "replay: {replay:?}"
    );
    // The replay revoked the whole family, including the unused h2.
    let h2 = store.use_refresh_token("h2", now).await.map_err(err)?;
    ensure!(
        h2 == RefreshUse::Replayed(bob.id.clone()),
        "family revoked: {h2:?}"
    );
    let unknown = store.use_refresh_token("nope", now).await.map_err(err)?;
    ensure!(unknown == RefreshUse::Rejected, "unknown: {unknown:?}");

    store
        .insert_refresh_token("h3", &bob.id, now + Duration::hours(1))
        .await
        .map_err(err)?;
    ensure!(
        !store
            .revoke_refresh_token("user_other", "h3")
            .await
            .map_err(err)?,
        "foreign revoke"
    );
    ensure!(
        store
            .revoke_refresh_token(&bob.id, "h3")
            .await
            .map_err(err)?,
        "own revoke"
    );
    let revoked = store.use_refresh_token("h3", now).await.map_err(err)?;
    ensure!(
        matches!(revoked, RefreshUse::Replayed(_)),
        "revoked token refused: {revoked:?}"
    );
    Ok(())
}

fn new_project<'a>(
    id: &'a str,
    user_id: &'a str,
    name: &'a str,
    now: chrono::DateTime<Utc>,
) -> NewProject<'a> {
    NewProject {
        id,
        user_id,
        name,
        description: "d",
        now,
    }
}

async fn projects(store: &dyn Store) -> Result<(), String> {
    let carol = user("carol@example.com");
    let dave = user("dave@example.com");
    store.insert_user(&carol).await.map_err(err)?;
    store.insert_user(&dave).await.map_err(err)?;
    let now = Utc::now();
    let new = |id, owner, name| new_project(id, owner, name, now);
    let (carol_id, dave_id) = (carol.id.as_str(), dave.id.as_str());

    let p1 = store
        .insert_project(new("proj_1", carol_id, "cats"))
        .await
        .map_err(err)?;
    ensure!(
        p1.workflow_count == 0 && p1.dataset_count == 0,
        "counts start at zero"
    );
    store
        .insert_project(new("proj_2", carol_id, "dogs"))
        .await
        .map_err(err)?;
    let dup = store.insert_project(new("proj_3", carol_id, "cats")).await;
    ensure!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "duplicate name must conflict: {dup:?}"
    );
    store
        .insert_project(new("proj_4", dave_id, "cats"))
        .await
        .map_err(err)?;

    let listed = store.list_projects(carol_id).await.map_err(err)?;
    ensure!(listed.len() == 2, "carol sees her two projects: {listed:?}");
    ensure!(
        store
            .get_project(dave_id, "proj_1")
            .await
            .map_err(err)?
            .is_none(),
        "scoped get"
    );

    let changes = ProjectChanges {
        name: Some("kittens"),
        description: None,
    };
    let updated = store
        .update_project(carol_id, "proj_1", changes, now)
        .await
        .map_err(err)?;
    let updated = updated.ok_or("update returned none")?;
    ensure!(
        updated.name == "kittens" && updated.description == "d",
        "update: {updated:?}"
    );
    let foreign = store
        .update_project(dave_id, "proj_1", ProjectChanges::default(), now)
        .await
        .map_err(err)?;
    ensure!(foreign.is_none(), "scoped update");

    ensure!(
        !store.delete_project(dave_id, "proj_1").await.map_err(err)?,
        "scoped delete"
    );
    ensure!(
        store
            .delete_project(carol_id, "proj_1")
            .await
            .map_err(err)?,
        "own delete"
    );
    ensure!(
        store
            .get_project(carol_id, "proj_1")
            .await
            .map_err(err)?
            .is_none(),
        "deleted"
    );
    Ok(())
}
