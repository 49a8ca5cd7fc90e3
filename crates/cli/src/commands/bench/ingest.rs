//! `vision bench datasets`: ingest of an archive of small JPEGs (images/s, peak RSS).

/// Options of `vision bench datasets`.
#[derive(Debug, clap::Args)]
pub struct IngestBenchArgs {
    /// Images in the generated archive.
    #[arg(long, default_value_t = 10_000)]
    images: usize,
}

/// Builds the archive, ingests it and prints the figures.
pub fn run(args: &IngestBenchArgs) -> anyhow::Result<()> {
    let report = datasets::bench_ingest(args.images)?;
    println!(
        "ingest of {} JPEGs ({:.1} MiB archive): {:.1} s, {:.0} images/s, peak RSS {}, {} cores",
        report.images,
        report.archive_bytes as f64 / 1_048_576.0,
        report.seconds,
        report.images_per_sec,
        report.peak_rss_bytes.map_or("?".to_owned(), |b| format!(
            "{:.1} MiB",
            b as f64 / 1_048_576.0
        )),
        super::cores()
    );
    Ok(())
}
