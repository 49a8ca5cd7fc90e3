//! The reply of `POST /chat/message`, serialised exactly as the platform API spec (§ Chat &
//! Intent) shows: `clarification_needed` or `intent_complete`, told apart by `type`.

use domain::dataset::TaskType;
use serde::{Deserialize, Serialize};

use crate::hyper::{Hyperparameters, Optimizer};

/// A field of the training config a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// `task_type`.
    TaskType,
    /// `model_name`.
    ModelName,
    /// `num_classes`.
    NumClasses,
    /// `class_names`.
    ClassNames,
    /// `dataset`.
    Dataset,
    /// `hyperparameters.epochs`.
    Epochs,
    /// `hyperparameters.batch_size`.
    BatchSize,
    /// `hyperparameters.learning_rate`.
    LearningRate,
    /// `hyperparameters.optimizer`.
    Optimizer,
    /// `hyperparameters.image_size`.
    ImageSize,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 10] = [
        Field::TaskType,
        Field::ModelName,
        Field::NumClasses,
        Field::ClassNames,
        Field::Dataset,
        Field::Epochs,
        Field::BatchSize,
        Field::LearningRate,
        Field::Optimizer,
        Field::ImageSize,
    ];
}

/// A question of a `clarification_needed` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// `q1`, `q2`, … in order.
    pub id: String,
    /// The field the answer fills.
    pub field: Field,
    /// The question, in the user's language.
    pub question: String,
    /// Whether the config cannot be completed without an answer.
    pub required: bool,
    /// Answers the user can send back as they are (dataset names, model ids, values).
    pub suggestions: Vec<String>,
}

/// What the parser has understood so far (`parsed_intent`). `model` is the spec's key;
/// `model_name` and `model_supported` say the same with the training config's name and whether
/// the platform can train it. Absent fields are left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IntentSummary {
    /// Task, stated or implied by the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_type: Option<TaskType>,
    /// Model id as recognised (also unsupported ones such as `efficientnet_v2_s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Same as `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Whether the platform can train `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_supported: Option<bool>,
    /// Number of classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<u64>,
    /// Class names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// Chosen dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
    /// Epochs asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// Batch size asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// Learning rate asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// Optimizer asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<Optimizer>,
    /// Image size asked for, `[width, height]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[u64; 2]>,
    /// Overall confidence in [0, 1].
    pub confidence: f64,
}

/// The `dataset` object of a training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetConfig {
    /// Where the dataset comes from: `uploaded` for the caller's datasets.
    pub source: String,
    /// `ds_…` id.
    pub dataset_id: String,
}

/// The `training_config` of an `intent_complete` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// Task.
    pub task_type: TaskType,
    /// Catalogue model id.
    pub model_name: String,
    /// Framework the model comes from (`timm`, `ultralytics`, `builtin`).
    pub model_source: String,
    /// Number of classes.
    pub num_classes: u32,
    /// Class names, in the dataset's order when the dataset has them.
    pub class_names: Vec<String>,
    /// Dataset trained on.
    pub dataset: DatasetConfig,
    /// Hyper-parameters (defaults filled in).
    pub hyperparameters: Hyperparameters,
}

/// Kind of a follow-up action button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Create the workflow and train.
    StartTraining,
    /// Change the configuration.
    EditConfig,
}

/// A follow-up action of an `intent_complete` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What the action does; sending its name as a message does the same.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// Button label in the user's language.
    pub label: String,
}

/// Body of a `clarification_needed` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clarification {
    /// What has been understood.
    pub parsed_intent: IntentSummary,
    /// What is still needed.
    pub questions: Vec<Question>,
    /// Text to show.
    pub message: String,
}

/// Body of an `intent_complete` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The configuration to train with.
    pub training_config: TrainingConfig,
    /// Text to show.
    pub message: String,
    /// Follow-up actions.
    pub actions: Vec<Action>,
    /// Workflow created for this configuration; set by the caller through
    /// [`Reply::started`] after it created the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Whether the user asked to start training ("시작해줘", "start training", the
    /// `start_training` action): the caller then creates the workflow. Not serialised.
    #[serde(skip)]
    pub start_requested: bool,
}

/// Reply to one chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Something required is missing or wrong; `questions` say what.
    ClarificationNeeded(Clarification),
    /// The configuration is complete.
    IntentComplete(Completion),
}

impl Reply {
    /// The text shown to the user.
    pub fn message(&self) -> &str {
        match self {
            Reply::ClarificationNeeded(c) => &c.message,
            Reply::IntentComplete(c) => &c.message,
        }
    }

    /// The configuration, when complete.
    pub fn training_config(&self) -> Option<&TrainingConfig> {
        match self {
            Reply::IntentComplete(c) => Some(&c.training_config),
            Reply::ClarificationNeeded(_) => None,
        }
    }

    /// Whether the user asked to start training a complete configuration.
    pub fn start_requested(&self) -> bool {
        matches!(self, Reply::IntentComplete(c) if c.start_requested)
    }
}
