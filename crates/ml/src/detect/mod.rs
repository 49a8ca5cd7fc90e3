//! Object detection: YOLOv8 `n`/`s` in Ultralytics' layout, post-processing (DFL decoding,
//! class-aware NMS), a COCO-style mAP evaluator, the task-aligned assigner and losses, training
//! and inference.

pub mod assign;
pub mod augment;
pub mod bench;
pub mod blocks;
pub mod data;
pub mod engine;
pub mod head;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod postprocess;
pub mod train;
pub mod weights;

pub use augment::DetectionOptions;
pub use engine::{Detection, DetectorEngine, load_artefact};
pub use head::{Anchors, Detect, HeadOutput, REG_MAX, STRIDES};
pub use metrics::{CocoEvaluator, CocoMetrics, EvalBox};
pub use model::{YoloSize, YoloV8};
pub use postprocess::{BoxPrediction, Letterbox, NmsOptions};
pub use train::train_detector;
