//! Helpers for tests against a real S3-compatible server (`VISION_TEST_S3_ENDPOINT`).

use crate::ObjectsConfig;

/// Configuration for `bucket` on the test server at `endpoint` (static test credentials).
pub fn s3_config(endpoint: &str, bucket: &str) -> ObjectsConfig {
    ObjectsConfig::S3 {
        bucket: bucket.to_owned(),
        endpoint: endpoint.to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: "test".to_owned(),
        secret_access_key: "test".to_owned(),
        allow_http: true,
    }
}

/// Creates a new bucket with a unique name on the test server (path-style `PUT /bucket`) and
/// returns its name. Panics when the server refuses: this is a test-only helper.
pub async fn create_bucket(endpoint: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = format!("vision-test-{}", std::process::id()) + &unique_suffix();
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = match tokio::net::TcpStream::connect(&authority).await {
        Ok(s) => s,
        Err(e) => panic!("S3 test server at {endpoint} unreachable: {e}"),
    };
    let request = format!(
        "PUT /{name} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let ok = stream.write_all(request.as_bytes()).await.is_ok()
        && stream.read_to_string(&mut response).await.is_ok();
    assert!(
        ok && response.starts_with("HTTP/1.1 200"),
        "create bucket {name}: {response}"
    );
    name
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "-{}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed),
        chrono_free_nanos()
    )
}

fn chrono_free_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or(0)
}
