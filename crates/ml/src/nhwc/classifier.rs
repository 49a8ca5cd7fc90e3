//! Channels-last forward of the classifiers (small CNN, ResNet 18/34/50).

use super::{
    Activation, ConvNhwc, FeatureMap, LinearNhwc, MaxPoolNhwc, MlError, global_average_pool,
};
use crate::models::{Classifier, ResNet, SmallCnn};

/// A classifier's folded weights ready for channels-last inference.
#[derive(Debug, Clone)]
pub struct ClassifierNhwc {
    stem: Vec<Stage>,
    blocks: Vec<Block>,
    fc: LinearNhwc,
}

/// A ReLU convolution, optionally followed by max pooling.
#[derive(Debug, Clone)]
struct Stage {
    conv: ConvNhwc,
    pool: Option<MaxPoolNhwc>,
}

/// A residual block: `relu(convs(x) + shortcut(x))`, every convolution but the last with ReLU.
#[derive(Debug, Clone)]
struct Block {
    convs: Vec<ConvNhwc>,
    downsample: Option<ConvNhwc>,
}

impl ClassifierNhwc {
    /// Folds the model's BatchNorms and lays its weights out channels-last.
    pub fn new(model: Classifier) -> Result<Self, MlError> {
        match model.fold_batchnorm() {
            Classifier::SmallCnn(model) => Self::small_cnn(&model),
            Classifier::ResNet(model) => Self::resnet(&model),
        }
    }

    fn small_cnn(model: &SmallCnn) -> Result<Self, MlError> {
        let pool = MaxPoolNhwc::from_burn(&model.pool)?;
        Ok(Self {
            stem: vec![
                Stage {
                    conv: ConvNhwc::from_burn(&model.conv1)?,
                    pool: Some(pool),
                },
                Stage {
                    conv: ConvNhwc::from_burn(&model.conv2)?,
                    pool: Some(pool),
                },
                Stage {
                    conv: ConvNhwc::from_burn(&model.conv3)?,
                    pool: None,
                },
            ],
            blocks: Vec::new(),
            fc: LinearNhwc::from_burn(&model.fc)?,
        })
    }

    fn resnet(model: &ResNet) -> Result<Self, MlError> {
        let blocks = model
            .layer1
            .iter()
            .chain(&model.layer2)
            .chain(&model.layer3)
            .chain(&model.layer4)
            .map(|block| {
                let mut convs = vec![
                    ConvNhwc::from_burn(&block.conv1)?,
                    ConvNhwc::from_burn(&block.conv2)?,
                ];
                if let Some(conv3) = &block.conv3 {
                    convs.push(ConvNhwc::from_burn(conv3)?);
                }
                let downsample = match &block.downsample {
                    Some(down) => Some(ConvNhwc::from_burn(&down.conv)?),
                    None => None,
                };
                Ok(Block { convs, downsample })
            })
            .collect::<Result<Vec<_>, MlError>>()?;
        Ok(Self {
            stem: vec![Stage {
                conv: ConvNhwc::from_burn(&model.conv1)?,
                pool: Some(MaxPoolNhwc::from_burn(&model.maxpool)?),
            }],
            blocks,
            fc: LinearNhwc::from_burn(&model.fc)?,
        })
    }

    /// Logits `[batch, classes]` (row-major) for normalised images.
    pub fn forward(&self, x: &FeatureMap) -> Vec<f32> {
        let mut current: Option<FeatureMap> = None;
        for stage in &self.stem {
            let y = stage
                .conv
                .forward(current.as_ref().unwrap_or(x), Activation::Relu, None);
            current = Some(match &stage.pool {
                Some(pool) => pool.forward(&y),
                None => y,
            });
        }
        for block in &self.blocks {
            current = Some(block.forward(current.as_ref().unwrap_or(x)));
        }
        self.fc
            .forward(&global_average_pool(current.as_ref().unwrap_or(x)))
    }
}

impl Block {
    fn forward(&self, x: &FeatureMap) -> FeatureMap {
        let shortcut = self
            .downsample
            .as_ref()
            .map(|down| down.forward(x, Activation::Identity, None));
        let shortcut = shortcut.as_ref().unwrap_or(x);
        let (last, inner) = match self.convs.split_last() {
            Some(split) => split,
            None => return x.clone(),
        };
        let mut hidden: Option<FeatureMap> = None;
        for conv in inner {
            hidden = Some(conv.forward(hidden.as_ref().unwrap_or(x), Activation::Relu, None));
        }
        last.forward(
            hidden.as_ref().unwrap_or(x),
            Activation::Relu,
            Some(shortcut),
        )
    }
}
