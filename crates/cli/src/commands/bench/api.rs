//! Load test of the authenticated API path (JWT check, rate limiter, database read, JSON).
//!
//! Starts the real server in-process on a temporary data directory, creates enough enterprise
//! users that the plan limits are not the bottleneck, then sends `GET /api/v1/user/profile` at a
//! fixed rate (open loop: latency counts from the scheduled send time, so a stalled server shows
//! up in the percentiles), and finally as fast as the concurrency allows (closed loop).

use anyhow::Context;
use app::auth::NewAccount;
use app::{App, Settings};
use domain::Plan;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Options of `vision bench api`.
#[derive(Debug, clap::Args)]
pub struct ApiBenchArgs {
    /// Target request rate of the open-loop phase.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Latencies of one load phase.
pub(super) struct Sample {
    pub(super) latencies: Vec<Duration>,
    pub(super) errors: usize,
    pub(super) elapsed: Duration,
}

impl Sample {
    /// No requests yet.
    pub(super) fn empty() -> Self {
        Self {
            latencies: Vec::new(),
            errors: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Counts one request: answered after `Some(latency)`, or failed.
    pub(super) fn record(&mut self, outcome: Option<Duration>) {
        match outcome {
            Some(latency) => self.latencies.push(latency),
            None => self.errors += 1,
        }
    }

    /// Closes a phase that began at `start`: its duration, latencies sorted.
    pub(super) fn finish(mut self, start: Instant) -> Self {
        self.elapsed = start.elapsed();
        self.latencies.sort();
        self
    }

    /// Adds the requests of `other`, a later phase of the same measurement.
    pub(super) fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    /// Requests answered per second.
    pub(super) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile in milliseconds.
    pub(super) fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }

    fn print(&self, label: &str) {
        let ok = self.latencies.len();
        println!(
            "{label:<24} {:>9.0} {:>8} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            ok as f64 / self.elapsed.as_secs_f64(),
            ok,
            self.errors,
            self.percentile(0.50),
            self.percentile(0.90),
            self.percentile(0.99),
            self.percentile(1.0),
        );
    }
}

/// Runs the benchmark and prints one line per phase.
pub async fn run(base: Settings, args: ApiBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::for_data_dir(dir.path())?;
    settings.server.bind = "127.0.0.1:0".into();
    settings.log = base.log;
    let app = App::start(settings).await?;
    let server = server::Server::bind(app.clone()).await?;
    let url = format!("http://{}/api/v1/user/profile", server.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    // Enough users that each stays under 80 % of the enterprise per-minute limit.
    let per_user = Plan::Enterprise.limits().requests_per_minute as f64 * 0.8 / 60.0;
    let users = ((f64::from(args.rate).max(1000.0)) / per_user).ceil() as usize;
    let tokens = Arc::new(create_tokens(&app, users).await?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    println!(
        "GET /api/v1/user/profile, {users} enterprise users, concurrency {}, {} s per phase, {} cores",
        args.concurrency,
        args.seconds,
        super::cores()
    );
    println!(
        "{:<24} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "phase", "req/s", "ok", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let duration = Duration::from_secs(args.seconds);
    // Warm-up: connection pool, SQLite page cache.
    let make = get_with_tokens(&client, &url, &tokens);
    load(&make, Some(100), args.concurrency, Duration::from_secs(1)).await;
    let open = load(&make, Some(args.rate), args.concurrency, duration).await;
    open.print(&format!("fixed {} req/s", args.rate));
    let closed = load(&make, None, args.concurrency, duration).await;
    closed.print("max throughput");
    println!(
        "target: p99 < 10 ms at 500 req/s — {}",
        if open.percentile(0.99) < 10.0 && open.errors == 0 {
            "met"
        } else {
            "NOT met"
        }
    );

    let _ = stop.send(());
    serving.await.context("server task")??;
    Ok(())
}

/// Creates `users` enterprise accounts and an access token for each.
pub(super) async fn create_tokens(app: &App, users: usize) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(users);
    for i in 0..users {
        let account = NewAccount {
            email: format!("bench{i}@example.com"),
            password: "benchmark-password".into(),
            name: format!("Bench {i}"),
            plan: Plan::Enterprise,
        };
        let user = app::auth::create_account(app, account)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        tokens.push(
            app.tokens
                .access_token_at(&user, chrono::Utc::now())
                .map_err(|e| anyhow::anyhow!(e))?,
        );
    }
    Ok(tokens)
}

/// Builds request number `n`.
pub(super) type MakeRequest = Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>;

/// `GET url` with the users' tokens in turn.
fn get_with_tokens(client: &reqwest::Client, url: &str, tokens: &Arc<Vec<String>>) -> MakeRequest {
    let (client, url, tokens) = (client.clone(), url.to_owned(), tokens.clone());
    Arc::new(move |n| client.get(&url).bearer_auth(&tokens[n % tokens.len()]))
}

/// Sends requests for `duration`: at `rate` per second when given, else back to back.
pub(super) async fn load(
    make: &MakeRequest,
    rate: Option<u32>,
    concurrency: usize,
    duration: Duration,
) -> Sample {
    let permits = Arc::new(Semaphore::new(concurrency));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Option<Duration>>();
    let start = Instant::now();
    let interval = rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    let mut sent = 0usize;
    while start.elapsed() < duration {
        // Open loop (a rate): latency counts from when the request was due, so a slow server
        // cannot hide its queue. Closed loop: from when a slot frees and the request leaves.
        let due = match interval {
            Some(step) => {
                let at = start + step * u32::try_from(sent).unwrap_or(u32::MAX);
                tokio::time::sleep_until(at.into()).await;
                Some(at)
            }
            None => None,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let scheduled = due.unwrap_or_else(Instant::now);
        let (request, tx) = (make(sent), tx.clone());
        tokio::spawn(async move {
            let ok = match request.send().await {
                // The body is read so that the connection goes back to the pool.
                Ok(response) => {
                    let success = response.status().is_success();
                    response.bytes().await.is_ok() && success
                }
                Err(_) => false,
            };
            let _ = tx.send(ok.then(|| scheduled.elapsed()));
            drop(permit);
        });
        sent += 1;
    }
    drop(tx);
    collect(rx, start).await
}

/// Gathers the outcomes sent on `rx` (a latency, or `None` for an error) into a sorted sample.
pub(super) async fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Option<Duration>>,
    start: Instant,
) -> Sample {
    let mut sample = Sample::empty();
    while let Some(outcome) = rx.recv().await {
        sample.record(outcome);
    }
    sample.finish(start)
}
