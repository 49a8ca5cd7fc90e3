//! Evaluation of the parser on a file of utterances with the fields they state
//! (`vision eval-intent <file.jsonl>`).
//!
//! The file is JSON Lines. An optional first line `{"context": {"datasets": [...]}}` gives the
//! caller's datasets (`id`, `name`, `status`, `classes`) and the trainable catalogue is the
//! default one; every other line is a case:
//!
//! ```json
//! {"message": "resnet50으로 3종류 분류", "expected": {"task_type": "classification",
//!  "model": "resnet50", "num_classes": 3, "kind": "clarify"}}
//! ```
//!
//! `expected` holds only the fields the utterance states; `task_type` is the task stated or
//! implied by the model named; `kind` is the reply to the utterance sent as the first message of
//! a session (`clarify` or `complete`). A field is scored when it is expected or when the parser
//! reports it: a value the utterance does not state counts as an error.

use chrono::DateTime;
use domain::DatasetStatus;
use domain::dataset::TaskType;
use serde::{Deserialize, Serialize};

use crate::datasets::{DatasetMention, DatasetRef};
use crate::dialogue::Session;
use crate::hyper::Optimizer;
use crate::intent::{ParseContext, ParsedIntent};
use crate::reply::Reply;

/// The kind of reply expected to a first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// `clarification_needed`.
    Clarify,
    /// `intent_complete`.
    Complete,
}

/// The fields an utterance states; absent means not stated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Task stated, or implied by the model named.
    pub task_type: Option<TaskType>,
    /// Model id (`resnet50`, `efficientnet_v2_s`).
    pub model: Option<String>,
    /// Number of classes.
    pub num_classes: Option<u64>,
    /// Class names (compared without regard to order or case).
    pub class_names: Option<Vec<String>>,
    /// Id of the caller's dataset named.
    pub dataset: Option<String>,
    /// Epochs.
    pub epochs: Option<u64>,
    /// Batch size.
    pub batch_size: Option<u64>,
    /// Learning rate.
    pub learning_rate: Option<f64>,
    /// Optimizer.
    pub optimizer: Option<Optimizer>,
    /// Reply to the utterance as a first message.
    pub kind: Option<ReplyKind>,
}

/// One utterance and what it states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The utterance.
    pub message: String,
    /// What it states.
    pub expected: Expected,
    /// Line in the file (1-based; 0 when not read from a file).
    #[serde(skip)]
    pub line: usize,
}

/// A dataset of the evaluation context, as the file header writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderDataset {
    id: String,
    name: String,
    #[serde(default = "ready")]
    status: String,
    #[serde(default)]
    classes: Vec<String>,
}

fn ready() -> String {
    DatasetStatus::Ready.as_str().to_string()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderContext {
    #[serde(default)]
    datasets: Vec<HeaderDataset>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    context: HeaderContext,
}

/// A case file: its context and cases.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// Catalogue and datasets the cases are parsed against.
    pub context: ParseContext,
    /// The cases.
    pub cases: Vec<Case>,
}

/// Reads a case file (JSON Lines; blank lines are skipped). Errors name the line.
pub fn load_cases(text: &str) -> Result<CaseFile, String> {
    let mut context = ParseContext::default();
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if cases.is_empty() && line.starts_with("{\"context\"") {
            let header: Header =
                serde_json::from_str(line).map_err(|e| format!("line {line_no}: {e}"))?;
            let mut datasets = Vec::new();
            for d in header.context.datasets {
                let status = DatasetStatus::parse(&d.status)
                    .ok_or_else(|| format!("line {line_no}: unknown status {:?}", d.status))?;
                datasets.push(DatasetRef::new(d.id, d.name, status).with_classes(d.classes));
            }
            context = ParseContext::with_datasets(datasets);
            continue;
        }
        let mut case: Case =
            serde_json::from_str(line).map_err(|e| format!("line {line_no}: {e}"))?;
        case.line = line_no;
        cases.push(case);
    }
    Ok(CaseFile { context, cases })
}

/// A field scored by [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalField {
    /// Task.
    TaskType,
    /// Model id.
    Model,
    /// Number of classes.
    NumClasses,
    /// Class names.
    ClassNames,
    /// Dataset.
    Dataset,
    /// Epochs.
    Epochs,
    /// Batch size.
    BatchSize,
    /// Learning rate.
    LearningRate,
    /// Optimizer.
    Optimizer,
}

impl EvalField {
    /// Every scored field, in table order.
    pub const ALL: [EvalField; 9] = [
        EvalField::TaskType,
        EvalField::Model,
        EvalField::NumClasses,
        EvalField::ClassNames,
        EvalField::Dataset,
        EvalField::Epochs,
        EvalField::BatchSize,
        EvalField::LearningRate,
        EvalField::Optimizer,
    ];

    /// Name as in the case file.
    pub fn name(self) -> &'static str {
        match self {
            EvalField::TaskType => "task_type",
            EvalField::Model => "model",
            EvalField::NumClasses => "num_classes",
            EvalField::ClassNames => "class_names",
            EvalField::Dataset => "dataset",
            EvalField::Epochs => "epochs",
            EvalField::BatchSize => "batch_size",
            EvalField::LearningRate => "learning_rate",
            EvalField::Optimizer => "optimizer",
        }
    }
}

/// Correct decisions out of all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Score {
    /// Correct.
    pub correct: usize,
    /// Scored.
    pub total: usize,
}

impl Score {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        self.correct += usize::from(ok);
    }

    /// Fraction correct; 1 when nothing was scored.
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// A wrong field or reply kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    /// Line of the case.
    pub line: usize,
    /// The utterance.
    pub message: String,
    /// Field (`kind` for the reply kind).
    pub field: &'static str,
    /// Expected value (JSON; `null` when not stated).
    pub expected: String,
    /// Value found (JSON; `null` when none).
    pub got: String,
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Cases evaluated.
    pub cases: usize,
    /// Per field, in [`EvalField::ALL`] order.
    pub fields: Vec<(EvalField, Score)>,
    /// All fields together.
    pub overall: Score,
    /// Clarify vs complete.
    pub kind: Score,
    /// Every wrong decision.
    pub misses: Vec<Miss>,
}

/// What the parser read for one field, as JSON, with the expected value in the same form.
fn values(field: EvalField, e: &Expected, got: &Found) -> (Option<String>, Option<String>) {
    match field {
        EvalField::TaskType => (e.task_type.as_ref().map(json), got.task.as_ref().map(json)),
        EvalField::Model => (e.model.as_ref().map(json), got.model.as_ref().map(json)),
        EvalField::NumClasses => (
            e.num_classes.as_ref().map(json),
            got.num_classes.as_ref().map(json),
        ),
        EvalField::ClassNames => (
            e.class_names.as_deref().map(normalised_names),
            got.class_names.as_deref().map(normalised_names),
        ),
        EvalField::Dataset => (e.dataset.as_ref().map(json), got.dataset.as_ref().map(json)),
        EvalField::Epochs => (e.epochs.as_ref().map(json), got.epochs.as_ref().map(json)),
        EvalField::BatchSize => (
            e.batch_size.as_ref().map(json),
            got.batch_size.as_ref().map(json),
        ),
        EvalField::LearningRate => (e.learning_rate.map(rate), got.learning_rate.map(rate)),
        EvalField::Optimizer => (
            e.optimizer.as_ref().map(json),
            got.optimizer.as_ref().map(json),
        ),
    }
}

/// Class names lowercased and sorted, as JSON.
fn normalised_names(names: &[String]) -> String {
    let mut v: Vec<String> = names.iter().map(|n| n.trim().to_lowercase()).collect();
    v.sort();
    serde_json::to_string(&v).unwrap_or_default()
}

/// A learning rate in a form that compares equal for equal values (`1e-3` = `0.001`).
fn rate(v: f64) -> String {
    format!("{v:e}")
}

/// A value as JSON.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The values scored for one message.
struct Found {
    task: Option<TaskType>,
    model: Option<String>,
    num_classes: Option<u64>,
    class_names: Option<Vec<String>>,
    dataset: Option<String>,
    epochs: Option<u64>,
    batch_size: Option<u64>,
    learning_rate: Option<f64>,
    optimizer: Option<Optimizer>,
}

impl Found {
    fn new(p: &ParsedIntent, ctx: &ParseContext) -> Self {
        let model = p.model.as_ref().map(|m| m.value.clone());
        Self {
            task: p
                .task_type
                .as_ref()
                .map(|t| t.value)
                .or_else(|| model.as_deref().and_then(|m| ctx.model_task(m))),
            model,
            num_classes: p.num_classes.as_ref().map(|n| n.value),
            class_names: p.class_names.as_ref().map(|c| c.value.clone()),
            dataset: match p.dataset.as_ref().map(|d| &d.value) {
                Some(DatasetMention::Matched { id }) => Some(id.clone()),
                _ => None,
            },
            epochs: p.epochs.as_ref().map(|e| e.value),
            batch_size: p.batch_size.as_ref().map(|e| e.value),
            learning_rate: p.learning_rate.as_ref().map(|e| e.value),
            optimizer: p.optimizer.as_ref().map(|e| e.value),
        }
    }
}

/// Sends each case as the first message of a new session and scores the fields read and the
/// kind of reply.
pub fn evaluate(cases: &[Case], ctx: &ParseContext) -> Report {
    let mut report = Report {
        cases: cases.len(),
        fields: EvalField::ALL
            .iter()
            .map(|f| (*f, Score::default()))
            .collect(),
        ..Report::default()
    };
    let now = DateTime::UNIX_EPOCH;
    for case in cases {
        let mut session = Session::new();
        let reply = session.handle_at(&case.message, ctx, now);
        let found = Found::new(&session.intent, ctx);
        for (field, score) in &mut report.fields {
            let (expected, got) = values(*field, &case.expected, &found);
            if expected.is_none() && got.is_none() {
                continue;
            }
            let ok = expected == got;
            score.add(ok);
            report.overall.add(ok);
            if !ok {
                report.misses.push(miss(case, field.name(), expected, got));
            }
        }
        if let Some(kind) = case.expected.kind {
            let got = match reply {
                Reply::ClarificationNeeded(_) => ReplyKind::Clarify,
                Reply::IntentComplete(_) => ReplyKind::Complete,
            };
            report.kind.add(kind == got);
            if kind != got {
                let name = |k: ReplyKind| serde_json::to_string(&k).unwrap_or_default();
                report
                    .misses
                    .push(miss(case, "kind", Some(name(kind)), Some(name(got))));
            }
        }
    }
    report
}

fn miss(case: &Case, field: &'static str, expected: Option<String>, got: Option<String>) -> Miss {
    let shown = |v: Option<String>| v.unwrap_or_else(|| "null".to_string());
    Miss {
        line: case.line,
        message: case.message.clone(),
        field,
        expected: shown(expected),
        got: shown(got),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"context": {"datasets": [{"id": "ds_cats", "name": "cats", "classes": ["cheese", "nabi"]}]}}
{"message": "resnet50으로 cheese, nabi 분류해줘 cats 데이터셋", "expected": {"task_type": "classification", "model": "resnet50", "class_names": ["nabi", "cheese"], "dataset": "ds_cats", "kind": "complete"}}

{"message": "train yolov8n for 20 epochs", "expected": {"task_type": "detection", "model": "yolov8n", "epochs": 20, "learning_rate": 0.01, "kind": "complete"}}
"#;

    #[test]
    fn loads_the_context_and_scores_fields_and_kinds() {
        let file = load_cases(FILE).unwrap();
        assert_eq!(file.context.datasets.len(), 1);
        assert_eq!(file.context.datasets[0].status, DatasetStatus::Ready);
        assert_eq!(file.cases.len(), 2);
        assert_eq!(file.cases[1].line, 4);
        let report = evaluate(&file.cases, &file.context);
        // First case: 4 fields right, complete. Second: 3 right, learning rate expected but
        // not stated (wrong), and clarify (no dataset) where complete was expected.
        assert_eq!(
            report.overall,
            Score {
                correct: 7,
                total: 8
            }
        );
        assert_eq!(
            report.kind,
            Score {
                correct: 1,
                total: 2
            }
        );
        let lr = report
            .fields
            .iter()
            .find(|(f, _)| *f == EvalField::LearningRate)
            .unwrap()
            .1;
        assert_eq!(
            lr,
            Score {
                correct: 0,
                total: 1
            }
        );
        assert_eq!(report.misses.len(), 2);
        assert_eq!(report.misses[0].field, "learning_rate");
        assert_eq!(report.misses[0].got, "null");
    }

    #[test]
    fn a_value_not_stated_counts_as_wrong_and_rates_compare_by_value() {
        let cases = vec![Case {
            message: "lr 1e-3, adam".into(),
            expected: Expected {
                learning_rate: Some(0.001),
                ..Expected::default()
            },
            line: 0,
        }];
        let report = evaluate(&cases, &ParseContext::default());
        assert_eq!(
            report.overall,
            Score {
                correct: 1,
                total: 2
            }
        );
        assert_eq!(report.misses[0].field, "optimizer");
    }

    #[test]
    fn the_committed_utterances_reach_the_goal() {
        let file = load_cases(include_str!("../eval/utterances.jsonl")).unwrap();
        assert!(file.cases.len() >= 80);
        let report = evaluate(&file.cases, &file.context);
        assert!(report.overall.accuracy() >= 0.95, "{:#?}", report.misses);
        assert!(report.kind.accuracy() >= 0.9, "{:#?}", report.misses);
    }

    #[test]
    fn errors_name_the_line() {
        let err = load_cases("{\"message\": \"x\"}\n{oops").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
