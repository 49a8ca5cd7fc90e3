//! Channels-last forward of YOLOv8 (layers 0–21 and the head's branches; decoding stays with
//! [`crate::detect::Detect`]).

use burn::tensor::{Device, Tensor};

use super::{
    Activation, ConvNhwc, FeatureMap, MaxPoolNhwc, MlError, concat_channels, upsample_nearest,
};
use crate::detect::YoloV8;
use crate::detect::blocks::{C2f, ConvBnSilu, Sppf};
use crate::detect::head::HeadLayer;
use crate::detect::model::Layer;

/// A detector's folded weights ready for channels-last inference.
#[derive(Debug, Clone)]
pub struct YoloNhwc {
    layers: Vec<LayerPlan>,
    /// Per level: box branch and class branch, each `[Conv+SiLU, Conv+SiLU, prediction]`.
    head: Vec<[Vec<(ConvNhwc, Activation)>; 2]>,
}

#[derive(Debug, Clone)]
enum LayerPlan {
    Conv(ConvNhwc),
    C2f {
        cv1: ConvNhwc,
        cv2: ConvNhwc,
        /// Bottlenecks: two convolutions and whether the input is added.
        m: Vec<(ConvNhwc, ConvNhwc, bool)>,
        hidden: usize,
    },
    Sppf {
        cv1: ConvNhwc,
        cv2: ConvNhwc,
        pool: MaxPoolNhwc,
    },
    Upsample(usize),
    Concat,
}

fn conv(block: &ConvBnSilu) -> Result<ConvNhwc, MlError> {
    ConvNhwc::from_burn(&block.conv)
}

impl YoloNhwc {
    /// Folds the model's BatchNorms and lays its weights out channels-last.
    pub fn new(model: YoloV8) -> Result<Self, MlError> {
        let model = model.fold_batchnorm();
        let layers = model
            .layers
            .iter()
            .map(|layer| {
                Ok(match layer {
                    Layer::Conv(block) => LayerPlan::Conv(conv(block)?),
                    Layer::C2f(C2f {
                        cv1,
                        cv2,
                        m,
                        hidden,
                    }) => LayerPlan::C2f {
                        cv1: conv(cv1)?,
                        cv2: conv(cv2)?,
                        m: m.iter()
                            .map(|b| Ok((conv(&b.cv1)?, conv(&b.cv2)?, b.add)))
                            .collect::<Result<_, MlError>>()?,
                        hidden: *hidden,
                    },
                    Layer::Sppf(Sppf { cv1, cv2, m }) => LayerPlan::Sppf {
                        cv1: conv(cv1)?,
                        cv2: conv(cv2)?,
                        pool: MaxPoolNhwc::from_burn(m)?,
                    },
                    Layer::Upsample(factor) => LayerPlan::Upsample(*factor),
                    Layer::Concat(_) => LayerPlan::Concat,
                })
            })
            .collect::<Result<Vec<_>, MlError>>()?;
        let branch = |layers: &Vec<HeadLayer>| {
            layers
                .iter()
                .map(|layer| match layer {
                    HeadLayer::Conv(block) => Ok((conv(block)?, Activation::Silu)),
                    HeadLayer::Pred(pred) => Ok((ConvNhwc::from_burn(pred)?, Activation::Identity)),
                })
                .collect::<Result<Vec<_>, MlError>>()
        };
        let head = model
            .detect
            .cv2
            .iter()
            .zip(&model.detect.cv3)
            .map(|(boxes, classes)| Ok([branch(boxes)?, branch(classes)?]))
            .collect::<Result<Vec<_>, MlError>>()?;
        Ok(Self { layers, head })
    }

    /// Raw outputs of P3, P4, P5 as [`YoloV8::forward`] gives them (`[B, 64 + classes, H/s,
    /// W/s]` on `device`) for images `x` (RGB in `[0, 1]`, sides multiples of 32).
    pub fn forward(&self, x: &FeatureMap, device: &Device) -> Vec<Tensor<4>> {
        let l = |i: usize, x: &FeatureMap| self.layer(i, x);
        let cat = |a: &FeatureMap, b: &FeatureMap| concat_channels(&[a, b]);
        let mut y = l(0, x);
        for i in 1..4 {
            y = l(i, &y);
        }
        let p3 = l(4, &y);
        let p4 = l(6, &l(5, &p3));
        let p5 = l(9, &l(8, &l(7, &p4)));
        let h4 = l(12, &cat(&l(10, &p5), &p4));
        let n3 = l(15, &cat(&l(13, &h4), &p3));
        let n4 = l(18, &cat(&l(16, &n3), &h4));
        let n5 = l(21, &cat(&l(19, &n4), &p5));
        [n3, n4, n5]
            .iter()
            .zip(&self.head)
            .map(|(features, [boxes, classes])| {
                let run = |branch: &[(ConvNhwc, Activation)]| {
                    let mut y: Option<FeatureMap> = None;
                    for (conv, act) in branch {
                        y = Some(conv.forward(y.as_ref().unwrap_or(features), *act, None));
                    }
                    y.unwrap_or_else(|| features.clone())
                };
                concat_channels(&[&run(boxes), &run(classes)]).to_nchw(device)
            })
            .collect()
    }

    /// Layer `i` on its (single) input; concatenations are done by [`YoloNhwc::forward`].
    fn layer(&self, i: usize, x: &FeatureMap) -> FeatureMap {
        let silu = Activation::Silu;
        match &self.layers[i] {
            LayerPlan::Conv(conv) => conv.forward(x, silu, None),
            LayerPlan::C2f {
                cv1,
                cv2,
                m,
                hidden,
            } => {
                let y = cv1.forward(x, silu, None);
                let mut outputs: Vec<FeatureMap> = Vec::with_capacity(m.len());
                for (a, b, add) in m {
                    let out = match outputs.last() {
                        Some(last) => {
                            let inner = a.forward(last, silu, None);
                            b.forward(&inner, silu, add.then_some(last))
                        }
                        // The first bottleneck reads the second half of `cv1`'s output.
                        None => {
                            let inner = a.forward_channels(&y, *hidden..2 * hidden, silu, None);
                            let second = add.then(|| y.channel_slice(*hidden..2 * hidden));
                            b.forward(&inner, silu, second.as_ref())
                        }
                    };
                    outputs.push(out);
                }
                let mut parts: Vec<&FeatureMap> = vec![&y];
                parts.extend(outputs.iter());
                cv2.forward(&concat_channels(&parts), silu, None)
            }
            LayerPlan::Sppf { cv1, cv2, pool } => {
                let y0 = cv1.forward(x, silu, None);
                let y1 = pool.forward(&y0);
                let y2 = pool.forward(&y1);
                let y3 = pool.forward(&y2);
                cv2.forward(&concat_channels(&[&y0, &y1, &y2, &y3]), silu, None)
            }
            LayerPlan::Upsample(factor) => upsample_nearest(x, *factor),
            LayerPlan::Concat => x.clone(),
        }
    }
}
