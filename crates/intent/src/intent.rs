//! The parser: one message in, every fact it states out, each with a confidence.

use std::ops::Range;
use std::sync::LazyLock;

use domain::dataset::TaskType;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::classes;
use crate::datasets::{self, DatasetMention, DatasetRef};
use crate::hyper::Optimizer;
use crate::lang::Language;
use crate::lexicon::{self, Hit, Lexicon};
use crate::models::{ModelRef, ModelRules, default_catalogue, known};
use crate::numbers;
use crate::numeric::{self, NumericRules, Value};
use crate::reply::Field;
use crate::text::Text;

/// A value read from a message, with how sure the rule that read it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extracted<T> {
    /// The value.
    pub value: T,
    /// Confidence in [0, 1].
    pub confidence: f64,
}

impl<T> Extracted<T> {
    /// A value with its confidence.
    pub fn new(value: T, confidence: f64) -> Self {
        Self { value, confidence }
    }
}

/// A request that is not a fact about the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Start training ("시작해줘", "start training", the `start_training` action).
    Start,
    /// Change the configuration (the `edit_config` action).
    Edit,
    /// Take the suggested value ("추천해줘", "default", "아무거나").
    UseDefault,
}

/// What the parser needs to know about the caller: the models the platform can train and the
/// caller's datasets.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// Trainable models.
    pub models: Vec<ModelRef>,
    /// The caller's datasets.
    pub datasets: Vec<DatasetRef>,
}

impl Default for ParseContext {
    /// The default catalogue and no datasets.
    fn default() -> Self {
        Self {
            models: default_catalogue(),
            datasets: Vec::new(),
        }
    }
}

impl ParseContext {
    /// The default catalogue and these datasets.
    pub fn with_datasets(datasets: Vec<DatasetRef>) -> Self {
        Self {
            models: default_catalogue(),
            datasets,
        }
    }

    /// The catalogue entry of a model id.
    pub fn model(&self, id: &str) -> Option<&ModelRef> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The caller's dataset with this id.
    pub fn dataset(&self, id: &str) -> Option<&DatasetRef> {
        self.datasets.iter().find(|d| d.id == id)
    }

    /// The task a model is for: from the catalogue, else from the table of known models.
    pub fn model_task(&self, id: &str) -> Option<TaskType> {
        self.model(id)
            .map(|m| m.task_type)
            .or_else(|| known(id).map(|k| k.task))
    }
}

/// Everything one message says. Fields the message does not mention are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParsedIntent {
    /// Language of the message, when it can be told.
    pub language: Option<Language>,
    /// Task.
    pub task_type: Option<Extracted<TaskType>>,
    /// Model id, also of models the platform cannot train (`efficientnet_v2_s`).
    pub model: Option<Extracted<String>>,
    /// Number of classes.
    pub num_classes: Option<Extracted<u64>>,
    /// Class names.
    pub class_names: Option<Extracted<Vec<String>>>,
    /// Dataset.
    pub dataset: Option<Extracted<DatasetMention>>,
    /// Epochs.
    pub epochs: Option<Extracted<u64>>,
    /// Batch size.
    pub batch_size: Option<Extracted<u64>>,
    /// Learning rate.
    pub learning_rate: Option<Extracted<f64>>,
    /// Optimizer.
    pub optimizer: Option<Extracted<Optimizer>>,
    /// Image size `[width, height]`.
    pub image_size: Option<Extracted<[u64; 2]>>,
    /// Requests (start, edit, take the suggestion).
    #[serde(default)]
    pub commands: Vec<Command>,
    /// Mean confidence of the fields found; 0 when none.
    pub confidence: f64,
}

impl ParsedIntent {
    /// Confidences of the fields present.
    fn confidences(&self) -> Vec<f64> {
        [
            self.task_type.as_ref().map(|e| e.confidence),
            self.model.as_ref().map(|e| e.confidence),
            self.num_classes.as_ref().map(|e| e.confidence),
            self.class_names.as_ref().map(|e| e.confidence),
            self.dataset.as_ref().map(|e| e.confidence),
            self.epochs.as_ref().map(|e| e.confidence),
            self.batch_size.as_ref().map(|e| e.confidence),
            self.learning_rate.as_ref().map(|e| e.confidence),
            self.optimizer.as_ref().map(|e| e.confidence),
            self.image_size.as_ref().map(|e| e.confidence),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Sets `confidence` to the mean of the fields' confidences (0 when none).
    pub fn update_confidence(&mut self) {
        let c = self.confidences();
        let mean = if c.is_empty() {
            0.0
        } else {
            c.iter().sum::<f64>() / c.len() as f64
        };
        self.confidence = (mean * 100.0).round() / 100.0;
    }

    /// Takes from `other` every field this intent lacks (for merging a second parser's answer,
    /// such as an LLM's, under the rule parser's), and the commands it adds.
    pub fn fill_missing(&mut self, other: &ParsedIntent) {
        for field in Field::ALL {
            if !self.has(field) && other.has(field) {
                self.copy_field(other, field);
            }
        }
        for c in &other.commands {
            if !self.commands.contains(c) {
                self.commands.push(*c);
            }
        }
        self.language = self.language.or(other.language);
        self.update_confidence();
    }

    /// Whether the message stated no fact at all.
    pub fn is_empty(&self) -> bool {
        self.confidences().is_empty()
    }

    /// Whether the message carries a value for `field`.
    pub fn has(&self, field: Field) -> bool {
        match field {
            Field::TaskType => self.task_type.is_some(),
            Field::ModelName => self.model.is_some(),
            Field::NumClasses => self.num_classes.is_some(),
            Field::ClassNames => self.class_names.is_some(),
            Field::Dataset => self.dataset.is_some(),
            Field::Epochs => self.epochs.is_some(),
            Field::BatchSize => self.batch_size.is_some(),
            Field::LearningRate => self.learning_rate.is_some(),
            Field::Optimizer => self.optimizer.is_some(),
            Field::ImageSize => self.image_size.is_some(),
        }
    }

    /// Sets `field` to its value in `from` (absent there, absent here).
    pub(crate) fn copy_field(&mut self, from: &ParsedIntent, field: Field) {
        match field {
            Field::TaskType => self.task_type = from.task_type.clone(),
            Field::ModelName => self.model = from.model.clone(),
            Field::NumClasses => self.num_classes = from.num_classes.clone(),
            Field::ClassNames => self.class_names = from.class_names.clone(),
            Field::Dataset => self.dataset = from.dataset.clone(),
            Field::Epochs => self.epochs = from.epochs.clone(),
            Field::BatchSize => self.batch_size = from.batch_size.clone(),
            Field::LearningRate => self.learning_rate = from.learning_rate.clone(),
            Field::Optimizer => self.optimizer = from.optimizer.clone(),
            Field::ImageSize => self.image_size = from.image_size.clone(),
        }
    }

    /// Sets a numeric field from a number read for it.
    fn set_number(&mut self, field: Field, value: Value, confidence: f64) {
        match (field, value) {
            (Field::NumClasses, Value::Whole(n)) => {
                self.num_classes = Some(Extracted::new(n, confidence))
            }
            (Field::Epochs, Value::Whole(n)) => self.epochs = Some(Extracted::new(n, confidence)),
            (Field::BatchSize, Value::Whole(n)) => {
                self.batch_size = Some(Extracted::new(n, confidence))
            }
            (Field::LearningRate, Value::Real(v)) => {
                self.learning_rate = Some(Extracted::new(v, confidence));
            }
            (Field::LearningRate, Value::Whole(n)) => {
                self.learning_rate = Some(Extracted::new(n as f64, confidence));
            }
            (Field::ImageSize, Value::Size(s)) => {
                self.image_size = Some(Extracted::new(s, confidence))
            }
            (Field::ImageSize, Value::Whole(n)) => {
                self.image_size = Some(Extracted::new([n, n], confidence))
            }
            _ => {}
        }
    }
}

/// Every rule, compiled once.
struct Rules {
    models: ModelRules,
    numeric: NumericRules,
    tasks: Lexicon<TaskType>,
    optimizers: Lexicon<Optimizer>,
    commands: Lexicon<Command>,
    dataset_words: Lexicon<()>,
    class_count_words: Lexicon<u64>,
    dataset_ids: Regex,
    bare_number: Regex,
}

impl Rules {
    fn new() -> Result<Self, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        Ok(Self {
            models: ModelRules::new().map_err(|e| text(&e))?,
            numeric: NumericRules::new().map_err(|e| text(&e))?,
            tasks: Lexicon::new(lexicon::TASKS).map_err(|e| text(&e))?,
            optimizers: Lexicon::new(lexicon::OPTIMIZERS).map_err(|e| text(&e))?,
            commands: Lexicon::new(lexicon::COMMANDS).map_err(|e| text(&e))?,
            dataset_words: Lexicon::new(lexicon::DATASET_WORDS).map_err(|e| text(&e))?,
            class_count_words: Lexicon::new(lexicon::CLASS_COUNT_WORDS).map_err(|e| text(&e))?,
            dataset_ids: Regex::new(r"\bds_[0-9a-z][0-9a-z_\-]*").map_err(|e| text(&e))?,
            bare_number: Regex::new(&format!(
                r"(?:^|[^0-9a-z._\p{{L}}])(?P<v>\d+\s*[x×*]\s*\d+|{}|{})",
                numbers::DIGITS,
                numbers::words_pattern()
            ))
            .map_err(|e| text(&e))?,
        })
    }
}

static RULES: LazyLock<Result<Rules, String>> = LazyLock::new(Rules::new);

/// Checks that every built-in rule compiles (the parser answers "nothing understood" otherwise);
/// call it once at start-up.
pub fn self_check() -> Result<(), String> {
    RULES.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Parses one message, without any LLM or network, in Korean, English or both.
pub fn parse(message: &str, ctx: &ParseContext) -> ParsedIntent {
    parse_answering(message, ctx, &[])
}

/// The id of the model `name` stands for ("ResNet-50" → `resnet50`), read as the parser reads
/// model names: a catalogue model or a well-known one; `None` for a name it does not know. For
/// checking model names from another source, such as an LLM.
pub fn model_id(name: &str, ctx: &ParseContext) -> Option<String> {
    if ctx.model(name).is_some() || known(name).is_some() {
        return Some(name.to_string());
    }
    parse(name, ctx).model.map(|m| m.value)
}

/// The last hit with the highest confidence.
fn best<T: Clone>(hits: &[Hit<T>]) -> Option<&Hit<T>> {
    hits.iter()
        .rev()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
}

/// Parses a message that may answer the questions about `answering` (see
/// [`Session::pending_fields`](crate::Session::pending_fields)): a bare number then fills the
/// numeric field asked about, bare words the class names, a bare name the dataset.
pub fn parse_answering(message: &str, ctx: &ParseContext, answering: &[Field]) -> ParsedIntent {
    let mut intent = ParsedIntent {
        language: Language::detect(message),
        ..ParsedIntent::default()
    };
    let Ok(rules) = RULES.as_ref() else {
        return intent;
    };
    let text = Text::new(message);
    let mut spans: Vec<Range<usize>> = Vec::new();

    let extra_ids: Vec<&str> = ctx
        .models
        .iter()
        .map(|m| m.id.as_str())
        .filter(|id| known(id).is_none())
        .collect();
    let models = rules.models.find(&text.lower, &extra_ids);
    spans.extend(models.iter().map(|m| m.span.clone()));
    if let Some(m) = models.last() {
        intent.model = Some(Extracted::new(m.id.clone(), m.confidence));
    }

    let masked = text.masked(&spans);
    let dataset_words = rules.dataset_words.find(&masked);
    spans.extend(dataset_words.iter().map(|h| h.span.clone()));
    let answering_dataset = answering.contains(&Field::Dataset);
    let keyword_spans: Vec<Range<usize>> = dataset_words.iter().map(|h| h.span.clone()).collect();
    let dataset = datasets::find(
        &text,
        &rules.dataset_ids,
        &ctx.datasets,
        &keyword_spans,
        answering_dataset,
    );
    if let Some(d) = dataset {
        spans.extend(d.spans);
        intent.dataset = Some(Extracted::new(d.mention, d.confidence));
    }

    let masked = text.masked(&spans);
    for hit in rules.numeric.find(&masked) {
        spans.push(hit.span.clone());
        intent.set_number(hit.field, hit.value, hit.confidence);
    }
    let masked = text.masked(&spans);
    let tasks = rules.tasks.find(&masked);
    let optimizers = rules.optimizers.find(&masked);
    let commands = rules.commands.find(&masked);
    let counts = rules.class_count_words.find(&masked);
    if let Some(t) = best(&tasks) {
        intent.task_type = Some(Extracted::new(t.value, t.confidence));
    }
    if let Some(o) = best(&optimizers) {
        intent.optimizer = Some(Extracted::new(o.value, o.confidence));
    }
    if let (None, Some(c)) = (&intent.num_classes, best(&counts)) {
        intent.num_classes = Some(Extracted::new(c.value, c.confidence));
    }
    intent.commands = commands.iter().map(|c| c.value).collect();
    if is_confirmation(&text.lower) && !intent.commands.contains(&Command::Start) {
        intent.commands.push(Command::Start);
    }
    for hits in [
        tasks.iter().map(|h| h.span.clone()).collect::<Vec<_>>(),
        optimizers.iter().map(|h| h.span.clone()).collect(),
        commands.iter().map(|h| h.span.clone()).collect(),
        counts.iter().map(|h| h.span.clone()).collect(),
    ] {
        spans.extend(hits);
    }

    let masked = text.masked(&spans);
    let answering_classes = answering.contains(&Field::ClassNames);
    if let Some(list) = classes::find_list(&masked, &text, answering_classes) {
        intent.class_names = Some(Extracted::new(list.names, list.confidence));
    }
    if let Some(field) = answering
        .iter()
        .copied()
        .find(|f| numeric::is_numeric(*f) && !intent.has(*f))
        && let Some(v) = rules
            .bare_number
            .captures(&masked)
            .and_then(|c| c.name("v"))
    {
        let value = numeric::read_answer(field, v.as_str());
        if let Some(value) = value {
            intent.set_number(field, value, 0.8);
        }
    }
    intent.update_confidence();
    intent
}

/// Whether the whole message is a confirmation ("네", "ok!").
fn is_confirmation(lower: &str) -> bool {
    let bare = lower.trim_matches(|c: char| !c.is_alphanumeric());
    lexicon::CONFIRMATIONS.contains(&bare)
}

#[cfg(test)]
mod tests;
