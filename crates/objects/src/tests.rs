use super::*;

async fn exercise(objects: &Objects, prefix: &str) {
    let a = format!("{prefix}/a/one.bin");
    let b = format!("{prefix}/a/two.bin");
    objects.put(&a, Bytes::from_static(b"hello")).await.unwrap();
    objects.put(&b, Bytes::from(vec![7u8; 3000])).await.unwrap();
    assert_eq!(objects.get(&a).await.unwrap(), Bytes::from_static(b"hello"));
    assert_eq!(objects.size(&b).await.unwrap(), 3000);
    let mut listed = objects.list(&format!("{prefix}/a")).await.unwrap();
    listed.sort();
    assert_eq!(listed, vec![(a.clone(), 5), (b.clone(), 3000)]);
    assert!(matches!(
        objects.get(&format!("{prefix}/missing")).await,
        Err(ObjectsError::NotFound(_))
    ));
    objects.delete(&a).await.unwrap();
    objects.delete(&a).await.unwrap();
    assert_eq!(
        objects.delete_prefix(&format!("{prefix}/a")).await.unwrap(),
        1
    );
    assert!(objects.list(prefix).await.unwrap().is_empty());
}

#[tokio::test]
async fn filesystem_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::open(&ObjectsConfig::Filesystem {
        root: dir.path().join("objects"),
    })
    .unwrap();
    assert_eq!(objects.backend(), "filesystem");
    exercise(&objects, "t").await;
}

/// Runs against a real S3-compatible server when `VISION_TEST_S3_ENDPOINT` is set
/// (`.ci/run` starts one); the bucket is created by the test.
#[tokio::test]
async fn s3_round_trip() {
    let Ok(endpoint) = std::env::var("VISION_TEST_S3_ENDPOINT") else {
        eprintln!("VISION_TEST_S3_ENDPOINT not set: S3 test skipped");
        return;
    };
    let bucket = testing::create_bucket(&endpoint).await;
    let objects = Objects::open(&testing::s3_config(&endpoint, &bucket)).unwrap();
    exercise(&objects, "t").await;
}
