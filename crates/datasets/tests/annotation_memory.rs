//! Annotation bombs: a COCO polygon or a YOLO label line of millions of numbers must be read
//! without allocating memory in proportion to it. Its own test binary, because the peak is
//! measured by a counting global allocator that other tests running in parallel would disturb.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A counting global allocator is an `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use datasets::{DatasetFormat, Limits, Problem, ingest_dir};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let now = CURRENT.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the peak of `f`, above what was allocated when it started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Numbers in the bomb: 6 million single digits, a 12 MB file.
const NUMBERS: usize = 6_000_000;
/// What an ingest of a dataset with one tiny image may allocate, whatever its annotations.
const BUDGET: usize = 16 << 20;

fn png(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let image = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]));
    image.save(path).unwrap();
}

/// Writes `1,9,1,9,…` (`n` numbers, no trailing comma) with `sep` between them.
fn write_numbers(out: &mut impl Write, n: usize, sep: &str) {
    for i in 0..n {
        let v = if i % 2 == 0 { "1" } else { "9" };
        out.write_all(v.as_bytes()).unwrap();
        if i + 1 < n {
            out.write_all(sep.as_bytes()).unwrap();
        }
    }
}

#[test]
fn annotation_bombs_are_read_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();

    // COCO: one annotation whose box must come from a 3-million-point polygon.
    let coco = tmp.path().join("coco");
    png(&coco.join("images/a.png"));
    let json = coco.join("annotations/instances_train.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&json).unwrap());
    out.write_all(br#"{"images":[{"id":1,"file_name":"a.png","width":32,"height":32}],"categories":[{"id":1,"name":"thing"}],"annotations":[{"id":1,"image_id":1,"category_id":1,"segmentation":[["#).unwrap();
    write_numbers(&mut out, NUMBERS, ",");
    out.write_all(b"]]}]}").unwrap();
    drop(out);

    let (result, peak) = peak_during(|| ingest_dir(&coco, None, &Limits::default(), 1));
    let got = result.unwrap();
    assert_eq!(got.format, DatasetFormat::Coco);
    assert_eq!(got.manifest.images.len(), 1);
    assert!(
        peak < BUDGET,
        "COCO ingest allocated {} MB at its peak for a 12 MB polygon",
        peak >> 20
    );
    assert!(
        got.problems.iter().any(|p| matches!(p,
            Problem::MalformedAnnotation { field: Some(f), reason, .. }
                if f == "annotations[0].segmentation" && reason.contains("points"))),
        "the oversized polygon is reported: {:?}",
        got.problems
    );

    // YOLO: one label line of 6 million numbers.
    let yolo = tmp.path().join("yolo");
    png(&yolo.join("images/a.png"));
    std::fs::write(yolo.join("classes.txt"), "thing\n").unwrap();
    let label = yolo.join("labels/a.txt");
    std::fs::create_dir_all(label.parent().unwrap()).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&label).unwrap());
    out.write_all(b"0 ").unwrap();
    write_numbers(&mut out, NUMBERS, " ");
    out.write_all(b"\n0 0.5 0.5 0.25 0.25\n").unwrap();
    drop(out);

    let (result, peak) =
        peak_during(|| ingest_dir(&yolo, Some(DatasetFormat::Yolo), &Limits::default(), 1));
    let got = result.unwrap();
    assert!(
        peak < BUDGET,
        "YOLO ingest allocated {} MB at its peak for a 12 MB label line",
        peak >> 20
    );
    assert_eq!(got.manifest.images.len(), 1);
    assert_eq!(
        got.manifest.images[0].boxes.len(),
        1,
        "the sound line is kept"
    );
    assert!(
        got.problems
            .iter()
            .any(|p| matches!(p, Problem::MalformedAnnotation { line: Some(1), .. })),
        "the oversized line is reported: {:?}",
        got.problems
    );
}
