//! Hostile and broken archives are refused, with the entry named and nothing left behind.

use std::fs;
use std::io::Write;
use std::path::Path;

use datasets::archive::{ArchiveKind, extract};
use datasets::{ArchiveError, DatasetError, Limits, ingest};

fn zip_with(path: &Path, entries: &[(&str, &[u8])], method: zip::CompressionMethod) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

/// A tar with one entry whose raw name and type are set directly in the header (the `tar`
/// builder itself refuses `..`).
fn raw_tar(path: &Path, name: &[u8], kind: tar::EntryType, data: &[u8], link: Option<&str>) {
    let mut builder = tar::Builder::new(fs::File::create(path).unwrap());
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    if let Some(link) = link {
        header.set_link_name(link).unwrap();
    }
    header.set_cksum();
    builder.append(&header, data).unwrap();
    builder.finish().unwrap();
}

/// The target is gone (it did not exist before) and nothing was written next to it.
fn assert_nothing_left(root: &Path) {
    assert!(!root.join("target").exists(), "target dir left behind");
    let leftovers: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.ends_with(".zip")
                && !n.ends_with(".tar")
                && !n.ends_with(".gz")
                && !n.ends_with(".bin")
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn extracts_zip_tar_and_tar_gz_by_magic_not_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    crate::fixtures::write(&src.join("a/b.txt"), "hello");
    crate::fixtures::write(&src.join("c.txt"), "world");
    // Misleading names: the kind comes from the content.
    let zip = tmp.path().join("data.tar.bin");
    crate::fixtures::zip_dir(&src, &zip, "");
    let tar = tmp.path().join("data.zip.bin");
    crate::fixtures::tar_dir(&src, &tar, false);
    let tgz = tmp.path().join("data.bin");
    crate::fixtures::tar_dir(&src, &tgz, true);
    for (archive, kind, prefix) in [
        (&zip, ArchiveKind::Zip, ""),
        (&tar, ArchiveKind::Tar, "dataset/"),
        (&tgz, ArchiveKind::TarGz, "dataset/"),
    ] {
        let target = tmp.path().join(format!("out-{kind:?}"));
        let extracted = extract(archive, &target, &Limits::default()).unwrap();
        assert_eq!(extracted.kind, kind);
        assert_eq!(extracted.files, 2);
        assert_eq!(extracted.bytes, 10);
        assert_eq!(
            fs::read_to_string(target.join(format!("{prefix}a/b.txt"))).unwrap(),
            "hello"
        );
    }
}

#[test]
fn refuses_path_traversal_in_zip_and_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("evil.zip");
    zip_with(
        &zip,
        &[("ok.txt", b"fine"), ("a/../../evil.txt", b"pwned")],
        zip::CompressionMethod::Stored,
    );
    let err = extract(&zip, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::UnsafePath { entry, .. } if entry == "a/../../evil.txt"),
        "{err}"
    );
    assert_nothing_left(tmp.path());
    assert!(!tmp.path().join("evil.txt").exists());

    let tar = tmp.path().join("evil.tar");
    raw_tar(
        &tar,
        b"../evil.txt",
        tar::EntryType::Regular,
        b"pwned",
        None,
    );
    let err = extract(&tar, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::UnsafePath { entry, .. } if entry == "../evil.txt"),
        "{err}"
    );
    assert_eq!(err.entry(), Some("../evil.txt"));
    assert_nothing_left(tmp.path());
}

#[test]
fn refuses_absolute_paths_and_drive_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("abs.tar");
    raw_tar(&tar, b"/tmp/evil.txt", tar::EntryType::Regular, b"x", None);
    let err = extract(&tar, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::UnsafePath { reason, .. } if reason.contains("absolute")),
        "{err}"
    );
    assert_nothing_left(tmp.path());

    let zip = tmp.path().join("drive.zip");
    zip_with(
        &zip,
        &[("C:\\Windows\\evil.txt", b"x")],
        zip::CompressionMethod::Stored,
    );
    let err = extract(&zip, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::UnsafePath { reason, .. } if reason.contains("drive")),
        "{err}"
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn refuses_symlinks_hardlinks_and_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("link.zip");
    {
        let mut w = zip::ZipWriter::new(fs::File::create(&zip).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        w.start_file("a.txt", options).unwrap();
        w.write_all(b"a").unwrap();
        w.add_symlink("passwd", "/etc/passwd", options).unwrap();
        w.finish().unwrap();
    }
    let err = extract(&zip, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::ForbiddenEntryType { entry, kind } if entry == "passwd" && kind == "symlink"),
        "{err}"
    );
    assert_nothing_left(tmp.path());

    for (kind, name) in [
        (tar::EntryType::Symlink, "symlink"),
        (tar::EntryType::Link, "hard link"),
        (tar::EntryType::Char, "device"),
        (tar::EntryType::Fifo, "fifo"),
    ] {
        let tar = tmp.path().join("link.tar");
        raw_tar(&tar, b"images/x.jpg", kind, b"", Some("/etc/passwd"));
        let err = extract(&tar, &tmp.path().join("target"), &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::ForbiddenEntryType { entry, kind } if entry == "images/x.jpg" && kind == name),
            "{err}"
        );
        assert_nothing_left(tmp.path());
    }
}

#[test]
fn refuses_zip_bomb_by_ratio() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("bomb.zip");
    let zeros = vec![0u8; 20 << 20];
    zip_with(
        &zip,
        &[("zeros.bin", &zeros)],
        zip::CompressionMethod::Deflated,
    );
    assert!(fs::metadata(&zip).unwrap().len() < 200_000);
    let err = extract(&zip, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::RatioExceeded { entry, .. } if entry == "zeros.bin"),
        "{err}"
    );
    assert_nothing_left(tmp.path());

    // The same bomb inside a tar.gz: the ratio of the whole stream is checked.
    let src = tmp.path().join("bomb-src");
    crate::fixtures::write(&src.join("zeros.bin"), &zeros);
    let tgz = tmp.path().join("bomb.tar.gz");
    crate::fixtures::tar_dir(&src, &tgz, true);
    fs::remove_dir_all(&src).unwrap();
    let err = extract(&tgz, &tmp.path().join("target"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::RatioExceeded { entry, .. } if entry == "dataset/zeros.bin"),
        "{err}"
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn refuses_archives_over_total_or_entry_size_counting_real_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("big.zip");
    let chunk: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    zip_with(
        &zip,
        &[("a.bin", &chunk), ("b.bin", &chunk), ("c.bin", &chunk)],
        zip::CompressionMethod::Stored,
    );
    let limits = Limits {
        max_total_bytes: 1_000_000,
        ..Limits::default()
    };
    let err = extract(&zip, &tmp.path().join("target"), &limits).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::TotalTooLarge { entry, limit: 1_000_000 } if entry == "c.bin"),
        "{err}"
    );
    assert_nothing_left(tmp.path());

    let limits = Limits {
        max_entry_bytes: 300_000,
        ..Limits::default()
    };
    let err = extract(&zip, &tmp.path().join("target"), &limits).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::EntryTooLarge { entry, .. } if entry == "a.bin"),
        "{err}"
    );
    assert_nothing_left(tmp.path());

    // A tar whose entries are each under the limit on their own but not together.
    let src = tmp.path().join("src");
    for name in ["a.bin", "b.bin", "c.bin"] {
        crate::fixtures::write(&src.join(name), &chunk);
    }
    let tar = tmp.path().join("big.tar");
    crate::fixtures::tar_dir(&src, &tar, false);
    fs::remove_dir_all(&src).unwrap();
    let limits = Limits {
        max_total_bytes: 1_000_000,
        ..Limits::default()
    };
    let err = extract(&tar, &tmp.path().join("target"), &limits).unwrap_err();
    assert!(matches!(err, ArchiveError::TotalTooLarge { .. }), "{err}");
    assert_nothing_left(tmp.path());
}

#[test]
fn refuses_too_many_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("many.zip");
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    zip_with(&zip, &entries, zip::CompressionMethod::Stored);
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = extract(&zip, &tmp.path().join("target"), &limits).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::TooManyEntries { entry, limit: 10 } if entry == "f10.txt"),
        "{err}"
    );
    assert_nothing_left(tmp.path());
    // Exactly at the limit is fine.
    let limits = Limits {
        max_entries: 20,
        ..Limits::default()
    };
    assert_eq!(
        extract(&zip, &tmp.path().join("target"), &limits)
            .unwrap()
            .files,
        20
    );
}

#[test]
fn refuses_non_archives_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "text.zip",
            b"just some text pretending to be a zip".to_vec(),
        ),
        ("image.tar", crate::fixtures::png(4, 4, 1)),
        ("empty.zip", Vec::new()),
        ("plain.gz", {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&[b'x'; 2000]).unwrap();
            gz.finish().unwrap()
        }),
    ];
    for (name, bytes) in cases {
        let path = tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        let err = ingest(
            &path,
            None,
            &tmp.path().join("target"),
            &Limits::default(),
            1,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::Archive(ArchiveError::NotAnArchive { .. })
            ),
            "{name}: {err}"
        );
        assert_eq!(err.code(), "NOT_AN_ARCHIVE");
        assert!(err.to_string().starts_with("not an archive"), "{err}");
        fs::remove_file(&path).unwrap();
        assert_nothing_left(tmp.path());
    }
}

#[test]
fn skips_os_junk_and_refuses_duplicates_and_non_empty_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("mac.zip");
    zip_with(
        &zip,
        &[
            ("a.txt", b"a"),
            ("__MACOSX/._a.txt", b"junk"),
            (".DS_Store", b"junk"),
        ],
        zip::CompressionMethod::Stored,
    );
    let target = tmp.path().join("out");
    let extracted = extract(&zip, &target, &Limits::default()).unwrap();
    assert_eq!((extracted.entries, extracted.files), (3, 1));
    assert!(!target.join("__MACOSX").exists() && !target.join(".DS_Store").exists());
    // The same target again: it is not empty, and it is left as it was.
    let err = extract(&zip, &target, &Limits::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::TargetNotEmpty { .. }), "{err}");
    assert!(target.join("a.txt").exists());

    let dup = tmp.path().join("dup.zip");
    zip_with(
        &dup,
        &[("a.txt", b"a"), ("./a.txt", b"b")],
        zip::CompressionMethod::Stored,
    );
    let err = extract(&dup, &tmp.path().join("dup-out"), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::DuplicateEntry { entry } if entry == "a.txt"),
        "{err}"
    );
    assert!(!tmp.path().join("dup-out").exists());
}

#[test]
fn hostile_dataset_archive_fails_ingest_with_details() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("evil.zip");
    zip_with(
        &zip,
        &[("data.yaml", b"names: [a]"), ("../../etc/cron.d/x", b"x")],
        zip::CompressionMethod::Stored,
    );
    let work = tmp.path().join("work");
    let err = ingest(&zip, None, &work, &Limits::default(), 1).unwrap_err();
    assert_eq!(err.code(), "UNSAFE_ARCHIVE_ENTRY");
    assert_eq!(err.details()["entry"], "../../etc/cron.d/x");
    assert!(!work.exists());
}
