//! How much memory a training run asks of its worker, and how much a worker may give.
//!
//! The estimate is `FIXED + PARAM_BYTES × parameters + pixel_bytes(model) × batch × side²`:
//!
//! * parameters: weights, their gradients and the two AdamW moments (the default optimizer;
//!   SGD needs less), plus the copies burn's autodiff and the checkpoint writer hold;
//! * activations: what the forward pass keeps for the backward pass, the backward pass's own
//!   temporaries and the prefetched input batches, all proportional to batch × pixels;
//! * a fixed part: the runtime, thread pools and allocator slack.
//!
//! The constants were calibrated against the peak resident memory (`VmHWM`) of one real
//! training epoch of one step (AdamW, CPU backend, synthetic images) of each model in its own
//! process: the ignored test `memory::tests::measure_training_peak_rss`, run once per
//! configuration (dev profile, which optimises `ml` and burn). Measured peaks, MiB, against
//! the estimate with the constants below:
//!
//! | model | batch × side | peak | estimate |
//! |---|---|---|---|
//! | small_cnn | 32 × 128 / 64 × 224 | 313 / 1749 | 391 / 2057 |
//! | resnet18 | 4 × 128 / 8 × 224 / 32 × 224 | 275 / 321 / 904 | 325 / 517 / 1206 |
//! | resnet34 | 4 × 128 / 16 × 128 / 32 × 224 | 469 / 477 / 1325 | 520 / 642 / 1475 |
//! | resnet50 | 4 × 128 / 16 × 128 / 16 × 224 | 517 / 725 / 1844 | 671 / 1027 / 2007 |
//! | yolov8n | 4 × 320 / 8 × 320 / 8 × 640 | 237 / 366 / 1217 | 281 / 438 / 1375 |
//! | yolov8s | 4 × 320 / 8 × 320 / 8 × 640 | 522 / 766 / 2249 | 551 / 824 / 2465 |
//!
//! The per-pixel figures are the measured slopes between batch sizes (ResNet-18 508 B/px at
//! 224², ResNet-34 543, ResNet-50 1104 at 128² rising to ~1800 at 224², YOLOv8n 345 and
//! YOLOv8s 626 at 640², small CNN ~570) rounded up by 5–25 %; the parameter figure covers the
//! floor small batches show (ResNet-18 ≈ 265 MiB ≈ 64 MiB + 11.7 M × 18 B). The process's own
//! baseline before training was ~14 MiB. A GPU device holds most of this in device memory
//! instead, so the estimate over-counts host memory there, which errs on the safe side.
//! Requested batches are not clamped to the dataset size, so whether a configuration is
//! accepted does not depend on the dataset.

use crate::settings::TrainingSettings;
use ml::Architecture;

/// Share of the machine's memory a worker may use when `training.max_memory_bytes` is 0.
pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// What a worker may use when the machine's memory cannot be read (not Linux).
pub const FALLBACK_LIMIT_BYTES: u64 = 4 << 30;

/// Runtime, thread pools and allocator slack of a training process.
const FIXED_BYTES: f64 = 64.0 * MIB;

/// Bytes per parameter: weight, gradient, two optimizer moments and transient copies.
const PARAM_BYTES: f64 = 20.0;

const MIB: f64 = 1024.0 * 1024.0;

/// Bytes of activations (kept for backward, plus backward temporaries and input batches) per
/// input pixel of one image.
fn pixel_bytes(architecture: Architecture) -> f64 {
    match architecture {
        // Full-resolution convolutions before the first pool: more per pixel than ResNet-18.
        Architecture::SmallCnn => 650.0,
        Architecture::Resnet18 => 600.0,
        Architecture::Resnet34 => 650.0,
        Architecture::Resnet50 => 1900.0,
        Architecture::Yolov8n => 400.0,
        Architecture::Yolov8s => 700.0,
    }
}

/// Trainable parameters as trained (classifier heads sized for 1000 classes, detector heads
/// for 80: an upper bound of the heads the platform builds).
fn parameters(architecture: Architecture) -> f64 {
    match architecture {
        Architecture::SmallCnn => 0.12e6,
        Architecture::Resnet18 => 11.7e6,
        Architecture::Resnet34 => 21.8e6,
        Architecture::Resnet50 => 25.6e6,
        Architecture::Yolov8n => 3.2e6,
        Architecture::Yolov8s => 11.2e6,
    }
}

/// Estimated peak memory in bytes of training `architecture` on batches of `batch` images of
/// `image_size`² pixels.
pub fn training_bytes(architecture: Architecture, batch: usize, image_size: usize) -> u64 {
    let pixels = image_size as f64 * image_size as f64;
    let bytes = FIXED_BYTES
        + PARAM_BYTES * parameters(architecture)
        + pixel_bytes(architecture) * batch as f64 * pixels;
    // Saturates at u64::MAX for absurd inputs.
    bytes as u64
}

/// The largest batch of `image_size`² images whose estimate stays within `limit`, if any.
pub fn largest_batch(architecture: Architecture, image_size: usize, limit: u64) -> Option<usize> {
    let fixed = training_bytes(architecture, 0, image_size);
    let per_image = training_bytes(architecture, 1, image_size).saturating_sub(fixed);
    let room = limit.checked_sub(fixed)?;
    let batch = room / per_image.max(1);
    (batch >= 1).then_some(batch as usize)
}

/// The memory a worker may use for one training run: `training.max_memory_bytes`, or when that
/// is 0 [`DEFAULT_MEMORY_SHARE`] of the machine's physical memory (or of the cgroup limit when
/// that is lower), or [`FALLBACK_LIMIT_BYTES`] where neither can be read.
pub fn training_limit(settings: &TrainingSettings) -> u64 {
    if settings.max_memory_bytes > 0 {
        return settings.max_memory_bytes;
    }
    match physical_memory() {
        Some(total) => (total as f64 * DEFAULT_MEMORY_SHARE) as u64,
        None => FALLBACK_LIMIT_BYTES,
    }
}

/// Physical memory of this machine (`MemTotal` of `/proc/meminfo`), bounded by the cgroup v2
/// memory limit of this process when one is set.
fn physical_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = meminfo_total(&meminfo)?;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    Some(cgroup.map_or(total, |limit| limit.min(total)))
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `bytes` in GiB with one decimal, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * MIB))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_grows_with_batch_size_and_model() {
        for architecture in Architecture::ALL {
            let mut previous = 0;
            for batch in [1, 2, 8, 32, 256, 1024] {
                let now = training_bytes(architecture, batch, 224);
                assert!(now > previous, "{architecture} batch {batch}");
                previous = now;
            }
            let mut previous = 0;
            for size in [16, 32, 64, 224, 640, 1024] {
                let now = training_bytes(architecture, 8, size);
                assert!(now > previous, "{architecture} size {size}");
                previous = now;
            }
        }
        let order = [
            Architecture::SmallCnn,
            Architecture::Resnet18,
            Architecture::Resnet34,
            Architecture::Resnet50,
        ];
        for pair in order.windows(2) {
            assert!(training_bytes(pair[0], 16, 224) < training_bytes(pair[1], 16, 224));
        }
        assert!(
            training_bytes(Architecture::Yolov8n, 16, 640)
                < training_bytes(Architecture::Yolov8s, 16, 640)
        );
    }

    #[test]
    fn the_issue_example_is_far_above_any_worker() {
        let bytes = training_bytes(Architecture::Resnet50, 1024, 1024);
        assert!(bytes > 1 << 40, "{}", gib(bytes));
        // What the defaults ask fits a small worker.
        assert!(training_bytes(Architecture::Resnet50, 32, 224) < 8 << 30);
        assert!(training_bytes(Architecture::SmallCnn, 32, 64) < 1 << 30);
    }

    #[test]
    fn largest_batch_is_the_boundary() {
        let limit = 4 << 30;
        for architecture in Architecture::ALL {
            let batch = largest_batch(architecture, 224, limit).unwrap();
            assert!(training_bytes(architecture, batch, 224) <= limit);
            assert!(training_bytes(architecture, batch + 1, 224) > limit);
        }
        assert_eq!(largest_batch(Architecture::Resnet50, 1024, 1 << 30), None);
    }

    #[test]
    fn limit_is_the_setting_or_a_share_of_the_machine() {
        let mut settings = crate::Settings::defaults().unwrap().training;
        assert_eq!(settings.max_memory_bytes, 0, "the shipped default");
        settings.max_memory_bytes = 3 << 30;
        assert_eq!(training_limit(&settings), 3 << 30);
        settings.max_memory_bytes = 0;
        let limit = training_limit(&settings);
        match physical_memory() {
            Some(total) => assert_eq!(limit, (total as f64 * DEFAULT_MEMORY_SHARE) as u64),
            None => assert_eq!(limit, FALLBACK_LIMIT_BYTES),
        }
        assert_eq!(
            meminfo_total("MemTotal:       24683772 kB\nMemFree: 1 kB\n"),
            Some(24_683_772 * 1024)
        );
    }

    /// Calibration: trains one epoch of one step of `VISION_MEMORY_PROBE=model:batch:size` (a
    /// batch that is a multiple of 4) in this process and prints the peak resident memory next
    /// to the estimate. One configuration per process, since the peak cannot go down:
    /// `VISION_MEMORY_PROBE=resnet18:8:128 cargo test -p app --lib measure_training_peak_rss
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore = "calibration: seconds to minutes of real training"]
    fn measure_training_peak_rss() {
        let probe = std::env::var("VISION_MEMORY_PROBE").unwrap_or("small_cnn:8:64".into());
        let parts: Vec<&str> = probe.split(':').collect();
        let architecture: Architecture = parts[0].parse().unwrap();
        let batch: usize = parts[1].parse().unwrap();
        let size: usize = parts[2].parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        let manifest = if architecture == Architecture::Yolov8n
            || architecture == Architecture::Yolov8s
        {
            ml::data::synthetic::write_detection_dataset(&images, batch, 1, size as u32, 1).unwrap()
        } else {
            ml::data::synthetic::write_shapes_dataset(
                &images,
                batch.div_ceil(4),
                1,
                size as u32,
                1,
            )
            .unwrap();
            ml::cli_support::read_image_folder(&images).unwrap()
        };
        let baseline = current_rss();
        let request = ml::train::TrainRequest {
            manifest,
            image_root: images,
            config: ml::train::TrainConfig {
                model: architecture,
                image_size: Some(size),
                epochs: 1,
                batch_size: batch,
                ..Default::default()
            },
            output_dir: dir.path().join("out"),
            checkpoint_dir: dir.path().join("checkpoints"),
            resume: false,
        };
        let started = std::time::Instant::now();
        ml::train::train(&request, &ml::train::CancelToken::new(), &mut |_| {}).unwrap();
        let peak = ml::bench::peak_rss_bytes().unwrap();
        let estimate = training_bytes(architecture, batch, size);
        println!(
            "probe {architecture} batch {batch} size {size}: baseline {:.0} MiB, peak {:.0} MiB, \
             training {:.0} MiB, estimate {:.0} MiB, {:.1} s",
            baseline as f64 / MIB,
            peak as f64 / MIB,
            peak.saturating_sub(baseline) as f64 / MIB,
            estimate as f64 / MIB,
            started.elapsed().as_secs_f64(),
        );
    }

    fn current_rss() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }
}
