//! `vision segment`: text-prompted segmentation of one image with SAM3 weights from disk.

use anyhow::Context;
use ml::sam3::{
    EngineOptions, PostProcessOptions, PromptSpec, RgbImage, Sam3Engine, SegmentRequest,
};
use std::path::PathBuf;
use std::time::Instant;

/// Options of `vision segment`.
#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// Directory with the SAM3 checkpoint (`config.json`, `model*.safetensors`, `tokenizer.json`).
    #[arg(long)]
    weights: PathBuf,
    /// Image to segment (PNG, JPEG, WebP).
    #[arg(long)]
    image: PathBuf,
    /// Text prompt; repeat for several prompts on the same image (one backbone pass).
    #[arg(long, required = true)]
    prompt: Vec<String>,
    /// Score threshold (sigmoid(logit) × sigmoid(presence)).
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Where to write the mask PNG (union of every instance of every prompt).
    #[arg(long, default_value = "mask.png")]
    out: PathBuf,
    /// Compute device: cpu, cuda:0, tch-cpu.
    #[arg(long, default_value = "cpu")]
    device: ml::DeviceSpec,
}

/// Loads the weights, segments the image, prints the instances and writes the mask.
pub fn run(args: SegmentArgs) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let started = Instant::now();
    let engine = Sam3Engine::load(&args.weights, &device, EngineOptions::default())
        .with_context(|| format!("loading SAM3 weights from {}", args.weights.display()))?;
    println!(
        "loaded {} in {:.1} s",
        args.weights.display(),
        started.elapsed().as_secs_f64()
    );
    let image =
        RgbImage::open(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let (width, height) = (image.width, image.height);
    let request = SegmentRequest {
        image,
        prompts: args
            .prompt
            .iter()
            .map(|text| PromptSpec {
                text: text.clone(),
                boxes: Vec::new(),
            })
            .collect(),
        options: PostProcessOptions {
            threshold: args.threshold,
            ..PostProcessOptions::default()
        },
    };
    let started = Instant::now();
    let response = engine.segment(request)?;
    println!("segmented in {:.1} s", started.elapsed().as_secs_f64());
    let mut union = vec![0u8; width * height];
    for (prompt, result) in args.prompt.iter().zip(&response.results) {
        println!(
            "prompt {prompt:?}: presence {:.3}, {} instance(s)",
            result.presence,
            result.instances.len()
        );
        for (i, instance) in result.instances.iter().enumerate() {
            let [x0, y0, x1, y1] = instance.box_xyxy;
            println!(
                "  #{i}: score {:.3}, box [{x0:.0}, {y0:.0}, {x1:.0}, {y1:.0}], area {} px",
                instance.score,
                instance.mask.area()
            );
            for (u, m) in union.iter_mut().zip(&instance.mask.data) {
                *u |= *m;
            }
        }
    }
    let mask = ml::sam3::BinaryMask {
        width,
        height,
        data: union,
    };
    std::fs::write(&args.out, mask.to_png()?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
