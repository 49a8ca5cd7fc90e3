//! Ingest benchmark: `cargo run -p datasets --example bench_ingest -- 10000`.

fn main() -> Result<(), datasets::DatasetError> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let report = datasets::bench_ingest(n)?;
    println!(
        "ingested {} images ({:.1} MiB archive) in {:.2} s: {:.0} images/s, peak RSS {}",
        report.images,
        report.archive_bytes as f64 / (1 << 20) as f64,
        report.seconds,
        report.images_per_sec,
        report
            .peak_rss_bytes
            .map(|b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64))
            .unwrap_or_else(|| "unknown".into()),
    );
    Ok(())
}
