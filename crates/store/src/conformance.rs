//! The conformance suite every [`Store`] implementation must pass, run by this crate's tests on
//! SQLite always and on PostgreSQL when `VISION_TEST_DATABASE_URL` is set.

use crate::StoreError;
use crate::traits::{
    CancelOutcome, DatasetDeletion, DatasetOutcome, JobOutcome, NewDataset, NewJob, NewProject,
    NewWorkflow, Page, ProjectChanges, RefreshUse, SegImageRow, SegOutcome, SegTaskRow, Store,
    WorkflowEnd, WorkflowProgress, WorkflowQuery,
};
use chrono::{DateTime, Duration, Utc};
use domain::{DatasetStatus, IdKind, JobStatus, LogLine, MetricPoint, Plan, User, WorkflowStatus};

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
    datasets_and_jobs(store).await?;
    workflows(store).await?;
    workflow_history(store).await?;
    chat_sessions(store).await?;
    segmentation(store).await?;
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

fn new_job<'a>(
    id: &'a str,
    user_id: &'a str,
    subject_id: &'a str,
    now: chrono::DateTime<Utc>,
) -> NewJob<'a> {
    NewJob {
        id,
        kind: "dataset_ingest",
        user_id,
        subject_id,
        payload: "{}",
        max_attempts: 2,
        max_concurrent: None,
        now,
    }
}

async fn datasets_and_jobs(store: &dyn Store) -> Result<(), String> {
    let erin = user("erin@example.com");
    let frank = user("frank@example.com");
    store.insert_user(&erin).await.map_err(err)?;
    store.insert_user(&frank).await.map_err(err)?;
    let now = Utc::now();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let id = format!("ds_{name}");
        let job_id = format!("job_{name}");
        let dataset = NewDataset {
            id: &id,
            user_id: &erin.id,
            project_id: None,
            name,
            description: "",
            format: "auto",
            size_bytes: 100,
            now: now + Duration::milliseconds(i as i64),
        };
        let job = new_job(
            &job_id,
            &erin.id,
            &id,
            now + Duration::milliseconds(i as i64),
        );
        let stored = store
            .insert_dataset_with_job(dataset, job)
            .await
            .map_err(err)?;
        ensure!(
            stored.status == DatasetStatus::Processing,
            "new dataset processing"
        );
    }
    let (page, total) = store
        .list_datasets(&erin.id, Page { page: 1, limit: 2 })
        .await
        .map_err(err)?;
    ensure!(
        total == 3 && page.len() == 2 && page[0].id == "ds_c",
        "page 1: {page:?}"
    );
    let (page2, _) = store
        .list_datasets(&erin.id, Page { page: 2, limit: 2 })
        .await
        .map_err(err)?;
    ensure!(
        page2.len() == 1 && page2[0].id == "ds_a",
        "page 2: {page2:?}"
    );
    ensure!(
        store
            .get_dataset(&frank.id, "ds_a")
            .await
            .map_err(err)?
            .is_none(),
        "scoped dataset get"
    );
    ensure!(
        store
            .list_datasets(&frank.id, Page { page: 1, limit: 10 })
            .await
            .map_err(err)?
            .1
            == 0,
        "scoped list"
    );

    // Jobs are claimed oldest first, once.
    let lease = now + Duration::seconds(30);
    let first = store
        .claim("dataset_ingest", "w1", now, lease)
        .await
        .map_err(err)?
        .ok_or("no job")?;
    ensure!(
        first.id == "job_a" && first.attempts == 1 && first.status == JobStatus::Running,
        "{first:?}"
    );
    let second = store
        .claim("dataset_ingest", "w2", now, lease)
        .await
        .map_err(err)?
        .ok_or("no 2nd")?;
    ensure!(second.id == "job_b", "second claim: {second:?}");
    ensure!(
        store
            .claim("training", "w2", now, lease)
            .await
            .map_err(err)?
            .is_none(),
        "kind filter"
    );
    ensure!(
        store.heartbeat("job_a", "w1", lease).await.map_err(err)?,
        "own heartbeat"
    );
    ensure!(
        !store.heartbeat("job_a", "w2", lease).await.map_err(err)?,
        "foreign heartbeat"
    );

    // A worker shutting down hands its job back: claimable at once, the attempt not counted;
    // only the holder can.
    ensure!(
        !store.release_job("job_b", "w1", now).await.map_err(err)?,
        "foreign release"
    );
    ensure!(
        store.release_job("job_b", "w2", now).await.map_err(err)?,
        "own release"
    );
    let reclaimed = store
        .claim("dataset_ingest", "w2", now, lease)
        .await
        .map_err(err)?
        .ok_or("released job not claimable")?;
    ensure!(
        reclaimed.id == "job_b" && reclaimed.attempts == 1,
        "released attempt counted: {reclaimed:?}"
    );

    // Both workers die: once the leases expire the oldest job is claimed again.
    let later = lease + Duration::seconds(1);
    let retried = store
        .claim("dataset_ingest", "w3", later, later + Duration::seconds(30))
        .await
        .map_err(err)?;
    let retried = retried.ok_or("expired lease not reclaimed")?;
    ensure!(retried.id == "job_a", "reclaim: {retried:?}");
    ensure!(retried.attempts == 2, "attempts counted: {retried:?}");
    let stale = store
        .finish_job("job_a", "w1", JobOutcome::Succeeded, later)
        .await
        .map_err(err)?;
    ensure!(!stale, "a worker that lost its lease cannot finish");
    ensure!(
        store
            .finish_job(&retried.id, "w3", JobOutcome::Failed("boom"), later)
            .await
            .map_err(err)?,
        "finish"
    );
    let job = store
        .job_for_subject(&retried.subject_id)
        .await
        .map_err(err)?
        .ok_or("job gone")?;
    ensure!(
        job.status == JobStatus::Failed && job.last_error.as_deref() == Some("boom"),
        "{job:?}"
    );

    store
        .finish_dataset(
            "ds_c",
            DatasetOutcome::Ready {
                format: "coco",
                file_count: 7,
                statistics: "{}",
                report: "[]",
            },
            later,
        )
        .await
        .map_err(err)?;
    let ready = store
        .get_dataset(&erin.id, "ds_c")
        .await
        .map_err(err)?
        .ok_or("ds_c")?;
    ensure!(
        ready.status == DatasetStatus::Ready && ready.file_count == 7 && ready.format == "coco",
        "{ready:?}"
    );
    store
        .finish_dataset("ds_b", DatasetOutcome::Failed { error: "bad" }, later)
        .await
        .map_err(err)?;
    let failed = store
        .get_dataset(&erin.id, "ds_b")
        .await
        .map_err(err)?
        .ok_or("ds_b")?;
    ensure!(
        failed.status == DatasetStatus::Failed && failed.error.as_deref() == Some("bad"),
        "{failed:?}"
    );

    let deleted = store.delete_dataset(&frank.id, "ds_c").await.map_err(err)?;
    ensure!(
        deleted == DatasetDeletion::NotFound,
        "scoped delete: {deleted:?}"
    );
    let deleted = store.delete_dataset(&erin.id, "ds_c").await.map_err(err)?;
    ensure!(
        deleted == DatasetDeletion::Deleted,
        "own delete: {deleted:?}"
    );
    ensure!(
        store.job_for_subject("ds_c").await.map_err(err)?.is_none(),
        "its jobs are gone"
    );
    dataset_in_use(store, &erin.id, &frank.id, now).await
}

/// A dataset that a queued or running workflow uses is kept (and named in the answer) until
/// that workflow ends; other users' workflows never count.
async fn dataset_in_use(
    store: &dyn Store,
    owner: &str,
    other: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    for (user_id, name, i) in [(owner, "use1", 0), (owner, "use2", 1), (other, "use3", 2)] {
        let id = format!("wf_{name}");
        let job_id = format!("job_{name}");
        let at = now + Duration::milliseconds(i);
        let workflow = NewWorkflow {
            id: &id,
            user_id,
            project_id: None,
            name,
            description: "",
            task_type: "classification",
            model: "small_cnn",
            dataset_id: "ds_b",
            config: "{}",
            total_epochs: 1,
            estimated_seconds: 1.0,
            now: at,
        };
        let job = NewJob {
            id: &job_id,
            kind: "training_in_use_check",
            user_id,
            subject_id: &id,
            payload: "{}",
            max_attempts: 1,
            max_concurrent: None,
            now: at,
        };
        store
            .insert_workflow_with_job(workflow, job)
            .await
            .map_err(err)?;
    }
    ensure!(
        store.start_workflow("wf_use2", now).await.map_err(err)?,
        "start use2"
    );
    let kept = store.delete_dataset(owner, "ds_b").await.map_err(err)?;
    ensure!(
        kept == DatasetDeletion::InUse(vec!["wf_use1".into(), "wf_use2".into()]),
        "queued and running workflows keep the dataset: {kept:?}"
    );
    ensure!(
        store
            .get_dataset(owner, "ds_b")
            .await
            .map_err(err)?
            .is_some(),
        "still there"
    );
    let foreign = store.delete_dataset(other, "ds_b").await.map_err(err)?;
    ensure!(
        foreign == DatasetDeletion::NotFound,
        "another user's delete: {foreign:?}"
    );
    let outcome = store
        .cancel_workflow(owner, "wf_use1", now)
        .await
        .map_err(err)?;
    ensure!(
        matches!(outcome, CancelOutcome::Cancelled(_)),
        "cancel use1: {outcome:?}"
    );
    let kept = store.delete_dataset(owner, "ds_b").await.map_err(err)?;
    ensure!(
        kept == DatasetDeletion::InUse(vec!["wf_use2".into()]),
        "the running one still keeps it: {kept:?}"
    );
    ensure!(
        store
            .finish_workflow("wf_use2", WorkflowEnd::Failed("boom"), now)
            .await
            .map_err(err)?,
        "finish use2"
    );
    let deleted = store.delete_dataset(owner, "ds_b").await.map_err(err)?;
    ensure!(
        deleted == DatasetDeletion::Deleted,
        "no live workflow left: {deleted:?}"
    );
    Ok(())
}

/// Submits workflow `wf_{name}` of `user_id` with a training job capped at `cap` per user.
async fn submit(
    store: &dyn Store,
    user_id: &str,
    name: &str,
    cap: i64,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let id = format!("wf_{name}");
    let job_id = format!("job_{name}");
    let workflow = NewWorkflow {
        id: &id,
        user_id,
        project_id: None,
        name,
        description: "",
        task_type: "classification",
        model: "small_cnn",
        dataset_id: "ds_x",
        config: "{}",
        total_epochs: 3,
        estimated_seconds: 60.0,
        now,
    };
    let job = NewJob {
        id: &job_id,
        kind: "training",
        user_id,
        subject_id: &id,
        payload: "{}",
        max_attempts: 3,
        max_concurrent: Some(cap),
        now,
    };
    let stored = store
        .insert_workflow_with_job(workflow, job)
        .await
        .map_err(err)?;
    ensure!(
        stored.status == WorkflowStatus::Pending && stored.total_epochs == 3,
        "new workflow: {stored:?}"
    );
    Ok(())
}

async fn workflows(store: &dyn Store) -> Result<(), String> {
    let gina = user("gina@example.com");
    let hank = user("hank@example.com");
    store.insert_user(&gina).await.map_err(err)?;
    store.insert_user(&hank).await.map_err(err)?;
    let now = Utc::now();
    // Gina queues three (cap 1), then Hank one (cap 1).
    for (i, name) in ["g1", "g2", "g3"].iter().enumerate() {
        submit(
            store,
            &gina.id,
            name,
            1,
            now + Duration::milliseconds(i as i64),
        )
        .await?;
    }
    submit(store, &hank.id, "h1", 1, now + Duration::milliseconds(10)).await?;
    let position = store.queue_position("wf_h1").await.map_err(err)?;
    ensure!(position == Some(4), "queue position {position:?}");

    let lease = now + Duration::seconds(30);
    let claim = |owner: &'static str| store.claim("training", owner, now, lease);
    let first = claim("w1").await.map_err(err)?.ok_or("no first claim")?;
    ensure!(first.subject_id == "wf_g1", "oldest first: {first:?}");
    // Gina is at her cap: Hank's job goes next although it is younger.
    let second = claim("w2").await.map_err(err)?.ok_or("no second claim")?;
    ensure!(
        second.subject_id == "wf_h1",
        "cap and fair share: {second:?}"
    );
    ensure!(
        claim("w3").await.map_err(err)?.is_none(),
        "every user at the cap: nothing claimable"
    );
    ensure!(
        store.queue_position("wf_g2").await.map_err(err)? == Some(1),
        "g2 first in line"
    );
    ensure!(
        store.start_workflow("wf_g1", now).await.map_err(err)?,
        "start"
    );

    let page = Page { page: 1, limit: 10 };
    let (training, total) = store
        .list_workflows(
            &gina.id,
            WorkflowQuery {
                status: Some(WorkflowStatus::Training),
                page,
                newest_first: true,
            },
        )
        .await
        .map_err(err)?;
    ensure!(
        total == 1 && training[0].id == "wf_g1" && training[0].started_at.is_some(),
        "status filter: {training:?}"
    );
    let (oldest, total) = store
        .list_workflows(
            &gina.id,
            WorkflowQuery {
                status: None,
                page: Page { page: 1, limit: 2 },
                newest_first: false,
            },
        )
        .await
        .map_err(err)?;
    ensure!(
        total == 3 && oldest.len() == 2 && oldest[0].id == "wf_g1",
        "oldest first listing: {oldest:?}"
    );
    ensure!(
        store
            .get_workflow(&hank.id, "wf_g1")
            .await
            .map_err(err)?
            .is_none(),
        "scoped get"
    );

    store
        .update_workflow_progress(
            "wf_g1",
            WorkflowProgress {
                current_epoch: 1,
                step: 5,
                total_steps: 15,
                metrics: Some(r#"{"loss":1.0}"#),
                resources: Some(r#"{"device":"cpu"}"#),
                estimated_seconds: Some(30.0),
            },
            now,
        )
        .await
        .map_err(err)?;
    let g1 = store
        .workflow_by_id("wf_g1")
        .await
        .map_err(err)?
        .ok_or("g1")?;
    ensure!(
        g1.current_epoch == 1 && g1.step == 5 && g1.metrics.as_deref() == Some(r#"{"loss":1.0}"#),
        "progress: {g1:?}"
    );

    // Cancelling the running one frees Gina's slot; its worker can no longer heartbeat.
    let outcome = store
        .cancel_workflow(&gina.id, "wf_g1", now)
        .await
        .map_err(err)?;
    ensure!(
        matches!(&outcome, CancelOutcome::Cancelled(w) if w.status == WorkflowStatus::Cancelled && w.cancelled_at.is_some()),
        "cancel: {outcome:?}"
    );
    ensure!(
        !store.heartbeat(&first.id, "w1", lease).await.map_err(err)?,
        "cancelled job loses its lease"
    );
    ensure!(
        !store
            .finish_workflow("wf_g1", WorkflowEnd::Completed { exported_epoch: 1 }, now)
            .await
            .map_err(err)?,
        "a cancelled workflow stays cancelled"
    );
    ensure!(
        matches!(
            store
                .cancel_workflow(&gina.id, "wf_g1", now)
                .await
                .map_err(err)?,
            CancelOutcome::Finished(_)
        ),
        "second cancel"
    );
    ensure!(
        matches!(
            store
                .cancel_workflow(&hank.id, "wf_g2", now)
                .await
                .map_err(err)?,
            CancelOutcome::NotFound
        ),
        "foreign cancel"
    );
    let third = claim("w3").await.map_err(err)?.ok_or("slot not freed")?;
    ensure!(third.subject_id == "wf_g2", "next of gina: {third:?}");
    ensure!(
        store
            .finish_workflow("wf_h1", WorkflowEnd::Failed("boom"), now)
            .await
            .map_err(err)?,
        "finish"
    );
    let h1 = store
        .get_workflow(&hank.id, "wf_h1")
        .await
        .map_err(err)?
        .ok_or("h1")?;
    ensure!(
        h1.status == WorkflowStatus::Failed && h1.error.as_deref() == Some("boom"),
        "failed: {h1:?}"
    );
    Ok(())
}

async fn workflow_history(store: &dyn Store) -> Result<(), String> {
    let ivy = user("ivy@example.com");
    store.insert_user(&ivy).await.map_err(err)?;
    let now = Utc::now();
    submit(store, &ivy.id, "i1", 5, now).await?;
    for epoch in 1..=3 {
        let point = MetricPoint {
            timestamp: now + Duration::seconds(epoch),
            epoch,
            step: epoch * 10,
            values: format!(r#"{{"loss":{}}}"#, 1.0 / epoch as f64),
        };
        store.add_metric("wf_i1", &point).await.map_err(err)?;
    }
    // A resumed run reports epoch 3 again: replaced, not duplicated.
    let again = MetricPoint {
        timestamp: now + Duration::seconds(9),
        epoch: 3,
        step: 30,
        values: r#"{"loss":0.3}"#.into(),
    };
    store.add_metric("wf_i1", &again).await.map_err(err)?;
    let all = store.metrics("wf_i1", None).await.map_err(err)?;
    ensure!(
        all.len() == 3 && all[2].values == r#"{"loss":0.3}"#,
        "metrics: {all:?}"
    );
    let recent = store
        .metrics("wf_i1", Some(now + Duration::seconds(2)))
        .await
        .map_err(err)?;
    ensure!(
        recent.len() == 2 && recent[0].epoch == 2,
        "since: {recent:?}"
    );

    for i in 0..5 {
        let line = LogLine {
            timestamp: now,
            level: "INFO".into(),
            message: format!("line {i}"),
        };
        store.add_log("wf_i1", &line).await.map_err(err)?;
    }
    let (tail, total) = store.logs("wf_i1", 2).await.map_err(err)?;
    ensure!(
        total == 5 && tail.len() == 2 && tail[0].message == "line 3" && tail[1].message == "line 4",
        "logs tail: {tail:?}"
    );

    ensure!(
        store
            .throughput("small_cnn", "cpu", 32)
            .await
            .map_err(err)?
            .is_none(),
        "no throughput yet"
    );
    for ips in [100.0, 200.0] {
        store
            .record_throughput("small_cnn", "cpu", 32, ips, now)
            .await
            .map_err(err)?;
    }
    let mean = store
        .throughput("small_cnn", "cpu", 32)
        .await
        .map_err(err)?;
    ensure!(mean == Some(150.0), "running mean: {mean:?}");
    Ok(())
}

async fn chat_sessions(store: &dyn Store) -> Result<(), String> {
    let jo = user("jo@example.com");
    let kim = user("kim@example.com");
    store.insert_user(&jo).await.map_err(err)?;
    store.insert_user(&kim).await.map_err(err)?;
    let now = Utc::now();
    store
        .insert_chat_session(&jo.id, "sess_1", r#"{"n":1}"#, now)
        .await
        .map_err(err)?;
    ensure!(
        !store
            .update_chat_session(&kim.id, "sess_1", "{}", now)
            .await
            .map_err(err)?,
        "foreign update"
    );
    ensure!(
        store
            .update_chat_session(&jo.id, "sess_1", r#"{"n":2}"#, now + Duration::seconds(1))
            .await
            .map_err(err)?,
        "own update"
    );
    let row = store
        .get_chat_session(&jo.id, "sess_1")
        .await
        .map_err(err)?
        .ok_or("session")?;
    ensure!(
        row.state == r#"{"n":2}"# && row.updated_at > row.created_at,
        "{row:?}"
    );
    ensure!(
        store
            .get_chat_session(&kim.id, "sess_1")
            .await
            .map_err(err)?
            .is_none(),
        "foreign get"
    );
    ensure!(
        !store
            .delete_chat_session(&kim.id, "sess_1")
            .await
            .map_err(err)?,
        "foreign delete"
    );
    ensure!(
        store
            .delete_chat_session(&jo.id, "sess_1")
            .await
            .map_err(err)?,
        "own delete"
    );
    Ok(())
}

fn seg_task(user_id: &str, id: &str, image_id: Option<&str>, now: DateTime<Utc>) -> SegTaskRow {
    SegTaskRow {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        project_id: None,
        image_id: image_id.map(str::to_owned),
        source_image_url: "https://example.com/cat.png".to_owned(),
        text_prompt: "cat".to_owned(),
        box_prompt: Some("[1.0,2.0,3.0,4.0]".to_owned()),
        status: "pending".to_owned(),
        error_message: None,
        credits: 1,
        labels: "[]".to_owned(),
        instances: "[]".to_owned(),
        mask_key: None,
        inference_time_ms: None,
        confidence: None,
        model_version: None,
        created_at: now,
        updated_at: now,
    }
}

fn seg_job<'a>(id: &'a str, user_id: &'a str, now: DateTime<Utc>) -> NewJob<'a> {
    NewJob {
        id,
        kind: "segmentation",
        user_id,
        subject_id: id,
        payload: "{}",
        max_attempts: 3,
        max_concurrent: None,
        now,
    }
}

async fn segmentation(store: &dyn Store) -> Result<(), String> {
    let mut ann = user("seg-ann@example.com");
    ann.plan = Plan::Free;
    let bob = user("seg-bob@example.com");
    store.insert_user(&ann).await.map_err(err)?;
    store.insert_user(&bob).await.map_err(err)?;
    let granted = i64::from(Plan::Free.limits().segmentation_credits);
    ensure!(
        store.credits(&ann.id).await.map_err(err)? == granted,
        "a new user holds the plan's credits"
    );
    ensure!(
        store.add_credits(&ann.id, 2 - granted).await.map_err(err)? == Some(2),
        "set the balance to 2"
    );
    ensure!(
        store
            .add_credits("user_nobody", 5)
            .await
            .map_err(err)?
            .is_none(),
        "unknown user"
    );
    // Millisecond precision, as stored.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).ok_or("clock")?;
    let image = SegImageRow {
        id: "img-1".to_owned(),
        user_id: ann.id.clone(),
        project_id: None,
        object_key: "users/ann/seg/img-1".to_owned(),
        content_type: "image/png".to_owned(),
        size_bytes: 10,
        width: 4,
        height: 3,
        created_at: now,
    };
    store.insert_seg_image(&image).await.map_err(err)?;
    ensure!(
        store.get_seg_image(&ann.id, "img-1").await.map_err(err)? == Some(image.clone()),
        "image round trip"
    );
    ensure!(
        store
            .get_seg_image(&bob.id, "img-1")
            .await
            .map_err(err)?
            .is_none(),
        "foreign image"
    );

    for (i, id) in ["t1", "t2"].into_iter().enumerate() {
        let at = now + Duration::seconds(i as i64);
        let ok = store
            .insert_seg_task_with_job(
                &seg_task(&ann.id, id, Some("img-1"), at),
                seg_job(id, &ann.id, at),
            )
            .await
            .map_err(err)?;
        ensure!(ok, "task {id} within the balance");
    }
    let refused = store
        .insert_seg_task_with_job(
            &seg_task(&ann.id, "t3", None, now),
            seg_job("t3", &ann.id, now),
        )
        .await
        .map_err(err)?;
    ensure!(!refused, "no overdraft");
    ensure!(
        store.credits(&ann.id).await.map_err(err)? == 0,
        "both credits reserved"
    );
    ensure!(
        store.seg_task_by_id("t3").await.map_err(err)?.is_none()
            && store.job_for_subject("t3").await.map_err(err)?.is_none(),
        "a refused task leaves nothing behind"
    );

    let (page, total) = store
        .list_seg_tasks(&ann.id, None, Page { page: 1, limit: 1 })
        .await
        .map_err(err)?;
    ensure!(
        total == 2 && page.len() == 1 && page[0].id == "t2",
        "newest first: {page:?}"
    );
    let (none, total) = store
        .list_seg_tasks(&ann.id, Some("proj_other"), Page { page: 1, limit: 10 })
        .await
        .map_err(err)?;
    ensure!(none.is_empty() && total == 0, "project filter");
    ensure!(
        store
            .get_seg_task(&bob.id, "t1")
            .await
            .map_err(err)?
            .is_none(),
        "foreign task"
    );

    ensure!(store.start_seg_task("t1", now).await.map_err(err)?, "start");
    ensure!(
        store.start_seg_task("t1", now).await.map_err(err)?,
        "restart after a crash"
    );
    let outcome = SegOutcome {
        labels: r#"["cat"]"#,
        instances: "[{}]",
        mask_key: "mask.png",
        inference_time_ms: 12.5,
        confidence: 0.9,
        model_version: "sam3-tiny",
        now: now + Duration::seconds(5),
    };
    ensure!(
        store.finish_seg_task("t1", outcome).await.map_err(err)?,
        "finish"
    );
    ensure!(
        !store.fail_seg_task("t1", "late", now).await.map_err(err)?,
        "a done task cannot fail"
    );
    ensure!(
        !store.start_seg_task("t1", now).await.map_err(err)?,
        "nor start again"
    );
    let done = store
        .get_seg_task(&ann.id, "t1")
        .await
        .map_err(err)?
        .ok_or("t1")?;
    ensure!(
        done.status == "done"
            && done.labels == r#"["cat"]"#
            && done.mask_key.as_deref() == Some("mask.png")
            && done.confidence == Some(0.9)
            && done.updated_at > done.created_at,
        "done fields: {done:?}"
    );

    ensure!(
        store.fail_seg_task("t2", "boom", now).await.map_err(err)?,
        "fail"
    );
    ensure!(
        !store.fail_seg_task("t2", "boom", now).await.map_err(err)?,
        "fail once"
    );
    ensure!(
        store.credits(&ann.id).await.map_err(err)? == 1,
        "exactly one refund"
    );
    let failed = store.seg_task_by_id("t2").await.map_err(err)?.ok_or("t2")?;
    ensure!(
        failed.status == "error" && failed.error_message.as_deref() == Some("boom"),
        "error fields: {failed:?}"
    );
    ensure!(
        !store.finish_seg_task("t2", outcome).await.map_err(err)?,
        "a failed task cannot finish"
    );
    ensure!(
        store.add_credits(&ann.id, -5).await.map_err(err)? == Some(0),
        "never below zero"
    );
    Ok(())
}
