//! The ingest benchmark runs end to end (the CLI runs it with 10 000 images).

#[test]
fn bench_ingest_reports_throughput_and_peak_rss() {
    let report = datasets::bench_ingest(60).unwrap();
    assert_eq!(report.images, 60);
    assert!(report.images_per_sec > 0.0 && report.seconds > 0.0);
    assert!(report.archive_bytes > 60 * 500);
    let rss = report.peak_rss_bytes.unwrap();
    assert!(rss > 1 << 20, "{rss}");
}
