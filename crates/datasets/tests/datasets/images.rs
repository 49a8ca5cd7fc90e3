//! Image checks: formats, corrupt and truncated files, the pixel limit, hashes.

use datasets::images::{ImageCheck, TooLarge, check_image};
use datasets::{DatasetError, DatasetFormat, Limits, Problem, ingest, ingest_dir};

use crate::fixtures;

fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[test]
fn decodes_jpeg_png_webp_bmp_with_sizes_and_hashes() {
    let img = image::RgbImage::from_fn(33, 17, |x, y| image::Rgb([x as u8 * 7, y as u8 * 13, 99]));
    for format in [
        image::ImageFormat::Jpeg,
        image::ImageFormat::Png,
        image::ImageFormat::WebP,
        image::ImageFormat::Bmp,
    ] {
        let bytes = encode(&img, format);
        let ImageCheck::Sound(facts) = check_image(&bytes, 10_000).unwrap() else {
            panic!("{format:?} not sound")
        };
        assert_eq!((facts.width, facts.height), (33, 17), "{format:?}");
        assert_eq!(facts.bytes, bytes.len() as u64);
        assert_eq!(facts.sha256.len(), 64);
    }
}

#[test]
fn truncated_and_garbage_images_are_corrupt() {
    let jpeg = fixtures::jpeg(64, 64, 3);
    let png = fixtures::png(64, 64, 3);
    for (name, bytes) in [
        ("jpeg half", jpeg[..jpeg.len() / 2].to_vec()),
        ("jpeg minus 2", jpeg[..jpeg.len() - 2].to_vec()),
        ("png half", png[..png.len() / 2].to_vec()),
        ("png minus iend", png[..png.len() - 12].to_vec()),
        ("garbage", b"this is not an image at all".to_vec()),
        ("header only", jpeg[..20].to_vec()),
    ] {
        assert!(
            matches!(
                check_image(&bytes, 1 << 20).unwrap(),
                ImageCheck::Corrupt(_)
            ),
            "{name}"
        );
    }
}

#[test]
fn pixel_limit_is_checked_from_the_header_before_decoding() {
    // A 20000x20000 PNG header: a few hundred bytes that would decode to 1.2 GB.
    let header = png_bomb(20_000, 20_000);
    assert_eq!(
        check_image(&header, 50_000_000),
        Err(TooLarge(20_000, 20_000))
    );

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    fixtures::write(&root.join("cats/a.png"), fixtures::png(8, 8, 1));
    fixtures::write(&root.join("cats/bomb.png"), &header);
    let err = ingest_dir(&root, None, &Limits::default(), 1).unwrap_err();
    assert!(
        matches!(&err, DatasetError::ImageTooLarge { file, width: 20_000, .. } if file == "cats/bomb.png"),
        "{err}"
    );
    assert_eq!(err.code(), "IMAGE_TOO_LARGE");
    // Nothing is left of a refused archive.
    let zip = tmp.path().join("bomb.zip");
    fixtures::zip_dir(&root, &zip, "");
    let work = tmp.path().join("work");
    assert!(ingest(&zip, None, &work, &Limits::default(), 1).is_err());
    assert_eq!(std::fs::read_dir(&work).map(|d| d.count()).unwrap_or(0), 0);
}

/// PNG signature, IHDR for a `w`×`h` RGB image, a tiny IDAT and IEND (valid CRCs).
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut zlib, &[0u8; 4096]).unwrap();
    let idat = zlib.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn corrupt_images_become_problems_not_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    let samples = fixtures::samples(6);
    fixtures::write_yolo(&root, &samples, false);
    let victim = root.join(format!("images/train/{}", samples[3].name));
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 3]).unwrap();
    let got = ingest_dir(&root, Some(DatasetFormat::Yolo), &Limits::default(), 1).unwrap();
    assert_eq!(got.manifest.images.len(), 5);
    assert!(got.problems.iter().any(
        |p| matches!(p, Problem::CorruptImage { file, .. } if file.ends_with(&samples[3].name))
    ));
}
