//! `vision bench abuse`: what an attacker or a careless client can do to `vision serve` with
//! default settings, on loopback only.
//!
//! Starts this binary's `serve` as a child process (its own memory, default settings on a
//! temporary data directory), and while one task asks `/health` every 20 ms and another reads
//! the child's resident memory every 20 ms, runs in turn: a registration flood, a login race
//! on one account, made-up HTTP methods, an oversized body and an oversized declared upload,
//! slow-loris uploads, a COCO annotation bomb, and a thousand WebSockets held open. Each phase
//! prints what the server answered, its peak memory, and whether `/health` stayed fast.

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Options of `vision bench abuse`.
#[derive(Debug, clap::Args)]
pub struct AbuseBenchArgs {
    /// Concurrent registrations of the flood.
    #[arg(long, default_value_t = 300)]
    registrations: usize,
    /// Concurrent wrong passwords for one account.
    #[arg(long, default_value_t = 40)]
    logins: usize,
    /// WebSockets held open at once.
    #[arg(long, default_value_t = 1000)]
    websockets: usize,
    /// Numbers in the COCO bomb's one polygon.
    #[arg(long, default_value_t = 20_000_000)]
    polygon_numbers: usize,
}

/// The server under test: a child `vision serve`.
struct Child {
    process: tokio::process::Child,
    pid: u32,
    base: String,
    _data: tempfile::TempDir,
}

impl Child {
    async fn start() -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let process = tokio::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("VISION__DATA_DIR", data.path())
            .env("VISION__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("VISION__LOG__LEVEL", "error")
            // Datasets are ingested; the workflow the sockets watch stays queued, so training
            // does not take the cores the measurement is about.
            .env("VISION__WORKER__KINDS", "dataset_ingest")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting `vision serve`")?;
        let pid = process.id().context("child pid")?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.get(format!("{base}/health")).send().await.is_err() {
            if Instant::now() > deadline {
                bail!("the server did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            process,
            pid,
            base,
            _data: data,
        })
    }

    fn rss_bytes(&self) -> u64 {
        rss_of(self.pid)
    }
}

fn rss_of(pid: u32) -> u64 {
    app::training::resident_bytes(&pid.to_string())
}

/// `/health` latencies and peak memory, sampled for the whole run and read phase by phase.
struct Watch {
    peak_rss: AtomicU64,
    health: Mutex<Vec<Duration>>,
    stop: AtomicBool,
}

impl Watch {
    /// Clears the samples of the previous phase.
    async fn next_phase(&self, rss_now: u64) {
        self.peak_rss.store(rss_now, Ordering::Relaxed);
        self.health.lock().await.clear();
    }

    async fn report(&self, phase: &str, outcome: &str) {
        let mut health = self.health.lock().await.clone();
        health.sort();
        let p99 = health
            .get((health.len().saturating_sub(1) as f64 * 0.99).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        let max = health.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        println!(
            "{phase:<22} {:>8.0} MB  health p99 {p99:>6.1} ms (max {max:>6.1}, {} probes) {}  {outcome}",
            self.peak_rss.load(Ordering::Relaxed) as f64 / 1e6,
            health.len(),
            if p99 < 100.0 { "ok  " } else { "SLOW" },
        );
    }
}

fn watch(child: &Child) -> Arc<Watch> {
    let watch = Arc::new(Watch {
        peak_rss: AtomicU64::new(child.rss_bytes()),
        health: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let pid = child.pid;
    let probe = watch.clone();
    let url = format!("{}/health", child.base);
    tokio::spawn(async move {
        // Its own connection, as a load balancer's health check would have.
        let client = reqwest::Client::new();
        while !probe.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let latency = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => started.elapsed(),
                _ => Duration::from_secs(10),
            };
            probe.health.lock().await.push(latency);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let memory = watch.clone();
    std::thread::spawn(move || {
        while !memory.stop.load(Ordering::Relaxed) {
            memory.peak_rss.fetch_max(rss_of(pid), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    watch
}

fn tally(codes: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for code in codes {
        *counts.entry(*code).or_default() += 1;
    }
    counts
        .iter()
        .map(|(code, n)| format!("{n}×{code}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs every phase against a fresh child server.
pub async fn run(args: AbuseBenchArgs) -> anyhow::Result<()> {
    let child = Child::start().await?;
    let base = child.base.clone();
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{base}/api/v1{path}");
    println!(
        "`vision serve` (pid {}, default settings) at {base}, {} cores; start {:.0} MB",
        child.pid,
        super::cores(),
        child.rss_bytes() as f64 / 1e6
    );
    let watch = watch(&child);
    println!(
        "{:<22} {:>11}  {:<58} outcome",
        "phase", "peak RSS", "/health while it ran"
    );

    // The bench's own account, made before the flood uses up this address's registrations.
    let email = format!("abuse-{}@example.com", std::process::id());
    let password = "abuse-password-123";
    let registered = client
        .post(api("/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Bench"}))
        .send()
        .await?;
    if registered.status() != 201 {
        bail!("cannot register the bench user: {}", registered.status());
    }
    let tokens: Value = client
        .post(api("/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = tokens["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();

    watch.next_phase(child.rss_bytes()).await;
    let flood: Vec<Value> = (0..args.registrations)
        .map(|i| json!({"email": format!("flood{i}@example.com"), "password": "securepassword123", "name": "F"}))
        .collect();
    let codes = post_all(&client, &api("/auth/register"), &flood).await;
    watch
        .report(
            "register flood",
            &format!("{} (limit 20/h per client)", tally(&codes)),
        )
        .await;

    watch.next_phase(child.rss_bytes()).await;
    let guesses = vec![json!({"email": email, "password": "wrong-password"}); args.logins];
    let codes = post_all(&client, &api("/auth/token"), &guesses).await;
    watch
        .report(
            "login race",
            &format!("{} (limit 10/min per account)", tally(&codes)),
        )
        .await;

    watch.next_phase(child.rss_bytes()).await;
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes())?;
        let _ = client
            .request(method, format!("{base}/health"))
            .send()
            .await;
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("vision_http_requests_total{"))
        .count();
    watch
        .report(
            "300 made-up methods",
            &format!("{series} request series in /metrics"),
        )
        .await;

    watch.next_phase(child.rss_bytes()).await;
    let big_json = client
        .post(api("/projects"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![b' '; 8 << 20])
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    let declared = client
        .post(api("/datasets/upload"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", (64u64 << 30).to_string())
        .body(vec![0u8; 1024])
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    watch
        .report(
            "oversized bodies",
            &format!("8 MB JSON → {big_json}, 64 GiB declared upload → {declared}"),
        )
        .await;

    watch.next_phase(child.rss_bytes()).await;
    let started = Instant::now();
    let slow = (0..20).map(|_| {
        let body = futures::stream::iter(0..10_000).then(|_| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<_, std::io::Error>(vec![b'-'; 10])
        });
        client
            .post(api("/datasets/upload"))
            .bearer_auth(&token)
            .header("content-type", "multipart/form-data; boundary=x")
            .body(reqwest::Body::wrap_stream(body))
            .send()
    });
    let codes = codes_of(futures::future::join_all(slow).await);
    watch
        .report(
            "20 slow-loris uploads",
            &format!(
                "{} after {:.0} s (min 8 KiB/s over 20 s)",
                tally(&codes),
                started.elapsed().as_secs_f64()
            ),
        )
        .await;

    watch.next_phase(child.rss_bytes()).await;
    let bomb = coco_bomb(args.polygon_numbers)?;
    let bomb_len = bomb.len();
    let (status, detail) = upload_and_wait(&client, &api, &token, bomb, "bomb.tar.gz").await?;
    watch
        .report(
            "COCO annotation bomb",
            &format!(
                "{:.1} MB tar.gz, {} numbers → {status}: {detail}",
                bomb_len as f64 / 1e6,
                args.polygon_numbers
            ),
        )
        .await;

    watch.next_phase(child.rss_bytes()).await;
    let (ds_status, dataset) =
        upload_and_wait(&client, &api, &token, small_imagefolder()?, "digits.zip").await?;
    if ds_status != "ready" {
        bail!("the small dataset was not ingested: {ds_status} {dataset}");
    }
    let created: Value = client
        .post(api("/workflows"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "watched", "config": {"task_type": "classification",
            "model": "small_cnn", "dataset_id": dataset,
            "hyperparameters": {"epochs": 1, "image_size": 32}}}),
        )
        .send()
        .await?
        .json()
        .await?;
    let workflow = created["workflow_id"]
        .as_str()
        .with_context(|| format!("no workflow: {created}"))?
        .to_owned();
    let url = format!(
        "ws{}/api/v1/ws/workflows/{workflow}?token={token}",
        base.trim_start_matches("http")
    );
    let mut sockets = Vec::with_capacity(args.websockets);
    let mut refused = 0usize;
    for chunk in (0..args.websockets).collect::<Vec<_>>().chunks(100) {
        let opened = futures::future::join_all(
            chunk
                .iter()
                .map(|_| tokio_tungstenite::connect_async(url.clone())),
        )
        .await;
        for socket in opened {
            match socket {
                Ok((socket, _)) => sockets.push(socket),
                Err(_) => refused += 1,
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = sockets.len();
    watch
        .report(
            "WebSockets held open",
            &format!("{open} open, {refused} refused"),
        )
        .await;
    drop(sockets);

    watch.stop.store(true, Ordering::Relaxed);
    let mut process = child.process;
    let _ = process.start_kill();
    Ok(())
}

/// POSTs every body to `url` at once; the statuses (0 for a failed connection).
async fn post_all(client: &reqwest::Client, url: &str, bodies: &[Value]) -> Vec<u16> {
    let posts = bodies.iter().map(|body| client.post(url).json(body).send());
    codes_of(futures::future::join_all(posts).await)
}

fn codes_of(responses: Vec<reqwest::Result<reqwest::Response>>) -> Vec<u16> {
    responses
        .into_iter()
        .map(|r| r.map_or(0, |r| r.status().as_u16()))
        .collect()
}

/// Uploads an archive and waits for its ingest: the final status and the error or the id.
async fn upload_and_wait(
    client: &reqwest::Client,
    api: &impl Fn(&str) -> String,
    token: &str,
    bytes: Vec<u8>,
    file_name: &str,
) -> anyhow::Result<(String, String)> {
    let form = reqwest::multipart::Form::new()
        .text("name", file_name.to_owned())
        .text("format", "auto")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
        );
    let uploaded: Value = client
        .post(api("/datasets/upload"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?
        .json()
        .await?;
    let id = uploaded["dataset_id"]
        .as_str()
        .with_context(|| format!("upload refused: {uploaded}"))?
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let detail: Value = client
            .get(api(&format!("/datasets/{id}")))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let status = detail["status"].as_str().unwrap_or("?").to_owned();
        if status != "processing" && status != "uploading" {
            let said = if status == "ready" {
                id.clone()
            } else {
                detail["error"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(90)
                    .collect()
            };
            return Ok((status, said));
        }
        if Instant::now() > deadline {
            bail!("dataset {id} still {status} after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A tar.gz holding one image and a COCO file whose one polygon has `numbers` coordinates.
fn coco_bomb(numbers: usize) -> anyhow::Result<Vec<u8>> {
    let mut json = Vec::with_capacity(numbers * 2 + 512);
    json.extend_from_slice(
        br#"{"images":[{"id":1,"file_name":"a.png","width":16,"height":16}],"categories":[{"id":1,"name":"thing"}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,1,8,8],"segmentation":[["#,
    );
    // Pseudo-random coordinates: compressible like real ones (~4:1), under the archive's
    // ratio limit, unlike a run of one digit.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..numbers {
        if i > 0 {
            json.push(b',');
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        json.extend_from_slice((state % 1000).to_string().as_bytes());
    }
    json.extend_from_slice(b"]]}]}");
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(encoder);
    append(&mut tar, "annotations/instances_train.json", &json)?;
    append(&mut tar, "images/a.png", &png(16, [200, 30, 30])?)?;
    Ok(tar.into_inner()?.finish()?)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, path, bytes)?;
    Ok(())
}

fn png(size: u32, rgb: [u8; 3]) -> anyhow::Result<Vec<u8>> {
    let image = image::RgbImage::from_pixel(size, size, image::Rgb(rgb));
    let mut bytes = Vec::new();
    image.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}

/// Two classes of ten small images, as an ImageFolder zip.
fn small_imagefolder() -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (class, rgb) in [("red", [220, 20, 20]), ("blue", [20, 20, 220])] {
        for i in 0..10u8 {
            zip.start_file(
                format!("{class}/{i}.png"),
                zip::write::SimpleFileOptions::default(),
            )?;
            zip.write_all(&png(16, [rgb[0], rgb[1].saturating_add(i), rgb[2]])?)?;
        }
    }
    Ok(zip.finish()?.into_inner())
}
