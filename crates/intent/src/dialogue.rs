//! The clarification dialogue: a session accumulates facts over messages, asks for what is
//! missing or wrong, and hands back a complete training config.

use chrono::{DateTime, Utc};
use domain::DatasetStatus;
use domain::dataset::TaskType;
use serde::{Deserialize, Serialize};

use crate::datasets::{DatasetMention, DatasetRef};
use crate::hyper::{Hyperparameters, limit};
use crate::intent::{Command, Extracted, ParseContext, ParsedIntent, parse_answering};
use crate::lang::Language;
use crate::messages;
use crate::models::{closest, display_name};
use crate::reply::{
    Action, ActionType, Clarification, Completion, DatasetConfig, Field, IntentSummary, Question,
    Reply, TrainingConfig,
};

/// How many substitutes a model question suggests.
const MODEL_SUGGESTIONS: usize = 3;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user.
    User,
    /// The platform.
    Assistant,
}

/// One message of the conversation, as `GET /chat/sessions/{id}` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author.
    pub role: Role,
    /// Text.
    pub content: String,
    /// When it was written.
    pub timestamp: DateTime<Utc>,
}

/// A conversation: the facts gathered so far, the questions last asked and the messages.
/// Serialise it (serde JSON) to store it between requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Facts gathered over all messages; later messages override earlier ones.
    pub intent: ParsedIntent,
    /// Language of the replies (the user's latest).
    pub language: Language,
    /// Questions of the last reply; a short answer is read as answering them.
    pub pending: Vec<Question>,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Workflow started from this session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

impl Session {
    /// An empty session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one user message now; see [`Session::handle_at`].
    pub fn handle(&mut self, message: &str, ctx: &ParseContext) -> Reply {
        self.handle_at(message, ctx, Utc::now())
    }

    /// Handles one user message: parses it (short answers are read against the questions last
    /// asked), merges its facts into the session, records both messages and replies.
    pub fn handle_at(&mut self, message: &str, ctx: &ParseContext, now: DateTime<Utc>) -> Reply {
        let parsed = parse_answering(message, ctx, &self.pending_fields());
        self.handle_parsed_at(message, parsed, ctx, now)
    }

    /// The fields of the questions last asked: pass them to [`parse_answering`] (or another
    /// parser) so that short answers are read against them.
    pub fn pending_fields(&self) -> Vec<Field> {
        self.pending.iter().map(|q| q.field).collect()
    }

    /// Like [`Session::handle_at`], for a message already parsed, for instance the rule parser's
    /// result completed by another parser with [`ParsedIntent::fill_missing`].
    pub fn handle_parsed_at(
        &mut self,
        message: &str,
        parsed: ParsedIntent,
        ctx: &ParseContext,
        now: DateTime<Utc>,
    ) -> Reply {
        if let Some(lang) = parsed.language {
            self.language = lang;
        }
        let understood = !parsed.is_empty() || !parsed.commands.is_empty();
        let commands = parsed.commands.clone();
        let stated: Vec<Field> = Field::ALL.into_iter().filter(|f| parsed.has(*f)).collect();
        self.merge(parsed, ctx);
        if commands.contains(&Command::UseDefault) {
            self.take_suggestions(ctx, &stated);
        }
        let mut reply = self.evaluate(ctx);
        match &mut reply {
            Reply::ClarificationNeeded(c) => {
                let prefix = if commands.contains(&Command::Start) {
                    messages::before_start(self.language)
                } else if !understood && !self.messages.is_empty() {
                    messages::not_understood(self.language)
                } else {
                    ""
                };
                c.message.insert_str(0, prefix);
                self.pending = c.questions.clone();
            }
            Reply::IntentComplete(c) => {
                if commands.contains(&Command::Start) {
                    c.start_requested = true;
                    c.message = messages::starting(self.language).to_string();
                } else if commands.contains(&Command::Edit) {
                    c.message = messages::edit(self.language).to_string();
                }
                self.pending.clear();
            }
        }
        self.record(Role::User, message, now);
        self.record(Role::Assistant, reply.message(), now);
        reply
    }

    /// Records that the caller created workflow `workflow_id` for `reply` (a completion whose
    /// `start_requested` was set): the reply carries the id and says so, and so does the history.
    pub fn started(&mut self, reply: &mut Reply, workflow_id: &str) {
        if let Reply::IntentComplete(c) = reply {
            c.workflow_id = Some(workflow_id.to_string());
            c.message = messages::started(self.language, workflow_id);
            if let Some(last) = self
                .messages
                .last_mut()
                .filter(|m| m.role == Role::Assistant)
            {
                last.content = c.message.clone();
            }
        }
        self.workflow_id = Some(workflow_id.to_string());
    }

    fn record(&mut self, role: Role, content: &str, timestamp: DateTime<Utc>) {
        self.messages.push(ChatMessage {
            role,
            content: content.to_string(),
            timestamp,
        });
    }

    /// Merges a newer message's facts: each field it states replaces the old value. Naming a
    /// model of another task drops the old task, and naming another task drops a model of the
    /// old one, unless the message states both.
    fn merge(&mut self, newer: ParsedIntent, ctx: &ParseContext) {
        let old = &mut self.intent;
        let model_task =
            |e: &Option<Extracted<String>>| e.as_ref().and_then(|m| ctx.model_task(&m.value));
        if newer.task_type.is_none()
            && let (Some(t), Some(mt)) = (&old.task_type, model_task(&newer.model))
            && t.value != mt
        {
            old.task_type = None;
        }
        if newer.model.is_none()
            && let (Some(t), Some(mt)) = (&newer.task_type, model_task(&old.model))
            && t.value != mt
        {
            old.model = None;
        }
        for field in Field::ALL.into_iter().filter(|f| newer.has(*f)) {
            old.copy_field(&newer, field);
        }
        old.language = newer.language.or(old.language);
        old.commands = newer.commands;
        old.update_confidence();
    }

    /// "추천해줘" / "default": each pending question the message did not answer, except the
    /// dataset, takes its first suggestion, read as if the user had written it.
    fn take_suggestions(&mut self, ctx: &ParseContext, stated: &[Field]) {
        let pending = std::mem::take(&mut self.pending);
        // The dataset is never picked for the user: it decides what the model learns.
        let open = |q: &&Question| !stated.contains(&q.field) && q.field != Field::Dataset;
        for q in pending.iter().filter(open) {
            let Some(first) = q.suggestions.first() else {
                continue;
            };
            let parsed = parse_answering(first, ctx, &[q.field]);
            let mut only = ParsedIntent::default();
            only.copy_field(&parsed, q.field);
            if only.has(q.field) {
                self.merge(only, ctx);
            }
        }
        self.pending = pending;
    }

    /// The reply for the facts gathered so far.
    pub fn evaluate(&self, ctx: &ParseContext) -> Reply {
        let lang = self.language;
        let st = &self.intent;
        let mut asks: Vec<Ask> = Vec::new();

        // Task and model.
        let model_id = st.model.as_ref().map(|m| m.value.as_str());
        let model = model_id.and_then(|id| ctx.model(id));
        let stated_task = st.task_type.as_ref().map(|t| t.value);
        let task = stated_task.or_else(|| model_id.and_then(|id| ctx.model_task(id)));
        let suggest = |wanted: Option<&str>, task: Option<TaskType>| -> Vec<String> {
            closest(wanted, task, &ctx.models, MODEL_SUGGESTIONS)
                .into_iter()
                .map(|m| m.id.clone())
                .collect()
        };
        let trainable = |t: TaskType| ctx.models.iter().any(|m| m.task_type == t);
        // For a task the platform trains, only its models; otherwise whatever is closest.
        let suggest_for = |t: TaskType| -> Vec<String> {
            let same: Vec<String> = ctx
                .models
                .iter()
                .filter(|m| m.task_type == t)
                .map(|m| m.id.clone())
                .collect();
            let ranked = suggest(None, Some(t));
            if same.is_empty() {
                ranked
            } else {
                ranked.into_iter().filter(|id| same.contains(id)).collect()
            }
        };
        match (task, model_id, model) {
            (None, None, _) => {
                let mut tasks: Vec<TaskType> = Vec::new();
                for m in &ctx.models {
                    if !tasks.contains(&m.task_type) {
                        tasks.push(m.task_type);
                    }
                }
                let suggestions = tasks
                    .iter()
                    .map(|t| messages::task_name(lang, *t).to_string())
                    .collect();
                asks.push(Ask::new(
                    Field::TaskType,
                    messages::ask_task(lang),
                    suggestions,
                ));
            }
            (Some(t), None, _) => {
                let s = suggest_for(t);
                let q = if trainable(t) {
                    messages::ask_model(lang, t, &s)
                } else {
                    messages::ask_trainable_task(lang, t, &s)
                };
                asks.push(Ask::new(Field::ModelName, q, s));
            }
            (t, Some(id), None) => {
                let s = suggest(Some(id), t);
                let q = messages::ask_supported_model(lang, display_name(id), &s);
                asks.push(Ask::new(Field::ModelName, q, s));
            }
            (Some(t), Some(id), Some(m)) if m.task_type != t => {
                let s = suggest_for(t);
                let q = if trainable(t) {
                    messages::ask_model_for_task(lang, display_name(id), m.task_type, t, &s)
                } else {
                    messages::ask_trainable_task(lang, t, &s)
                };
                asks.push(Ask::new(Field::ModelName, q, s));
            }
            _ => {}
        }

        // Dataset.
        let ready_names: Vec<String> = ctx
            .datasets
            .iter()
            .filter(|d| d.status == DatasetStatus::Ready)
            .map(|d| d.name.clone())
            .collect();
        let mut dataset: Option<&DatasetRef> = None;
        let dataset_ask = match st.dataset.as_ref().map(|d| &d.value) {
            None => Some(messages::ask_dataset(lang, !ready_names.is_empty())),
            Some(DatasetMention::NotFound { text }) => {
                Some(messages::ask_dataset_not_found(lang, text))
            }
            Some(DatasetMention::Ambiguous { ids }) => {
                let names: Vec<String> = ids
                    .iter()
                    .filter_map(|id| ctx.dataset(id))
                    .map(|d| d.name.clone())
                    .collect();
                Some(messages::ask_dataset_ambiguous(lang, &names))
            }
            Some(DatasetMention::Matched { id }) => match ctx.dataset(id) {
                None => Some(messages::ask_dataset_not_found(lang, id)),
                Some(d) if d.status != DatasetStatus::Ready => {
                    Some(messages::ask_dataset_ready(lang, &d.name, d.status))
                }
                Some(d) => {
                    dataset = Some(d);
                    None
                }
            },
        };

        // Classes.
        let names = st.class_names.as_ref().map(|c| c.value.clone());
        let count = st.num_classes.as_ref().map(|n| n.value);
        let mut class_names: Option<Vec<String>> = None;
        match dataset.filter(|d| !d.classes.is_empty()) {
            Some(d) => {
                let same = names.as_ref().is_none_or(|n| same_classes(n, &d.classes));
                if !same {
                    let q = messages::ask_dataset_classes(
                        lang,
                        &d.name,
                        &d.classes,
                        names.as_deref().unwrap_or_default(),
                    );
                    asks.push(Ask::new(Field::ClassNames, q, vec![d.classes.join(", ")]));
                } else if count.is_some_and(|n| n != d.classes.len() as u64) {
                    let q = messages::ask_dataset_count(
                        lang,
                        &d.name,
                        &d.classes,
                        count.unwrap_or_default(),
                    );
                    asks.push(Ask::new(
                        Field::NumClasses,
                        q,
                        vec![d.classes.len().to_string()],
                    ));
                } else {
                    class_names = Some(d.classes.clone());
                }
            }
            None => match (names, count) {
                (Some(n), Some(k)) if n.len() as u64 != k => {
                    let q = messages::ask_count_mismatch(lang, k, &n);
                    asks.push(Ask::new(Field::NumClasses, q, vec![n.len().to_string()]));
                }
                (Some(n), _) if n.len() < 2 && task == Some(TaskType::Classification) => {
                    asks.push(Ask::new(
                        Field::ClassNames,
                        messages::ask_more_classes(lang),
                        vec![],
                    ));
                }
                (Some(n), _) => class_names = Some(n),
                (None, k) => {
                    // Choosing a dataset that knows its classes answers this too.
                    let dataset_would_tell =
                        dataset.is_none() && ctx.datasets.iter().any(|d| !d.classes.is_empty());
                    let mut ask = Ask::new(
                        Field::ClassNames,
                        messages::ask_class_names(lang, k),
                        vec![],
                    );
                    ask.required = !dataset_would_tell;
                    asks.push(ask);
                }
            },
        }
        if let Some(q) = dataset_ask {
            asks.push(Ask::new(Field::Dataset, q, ready_names));
        }

        // Ranges.
        let numbers: [(Field, Option<f64>); 5] = [
            (Field::NumClasses, count.map(|n| n as f64)),
            (Field::Epochs, st.epochs.as_ref().map(|e| e.value as f64)),
            (
                Field::BatchSize,
                st.batch_size.as_ref().map(|e| e.value as f64),
            ),
            (
                Field::LearningRate,
                st.learning_rate.as_ref().map(|e| e.value),
            ),
            (
                Field::ImageSize,
                st.image_size
                    .as_ref()
                    .map(|e| e.value[0].min(e.value[1]) as f64),
            ),
        ];
        let defaults = model.map(|m| m.defaults.clone()).unwrap_or_default();
        for (field, value) in numbers {
            let (Some(value), Some(l)) = (value, limit(field)) else {
                continue;
            };
            let too_big = field == Field::ImageSize
                && st
                    .image_size
                    .as_ref()
                    .is_some_and(|e| e.value[0].max(e.value[1]) as f64 > l.max);
            if !l.contains(value) || too_big {
                let shown = match (field, &st.image_size) {
                    (Field::ImageSize, Some(e)) => format!("{}x{}", e.value[0], e.value[1]),
                    _ => value.to_string(),
                };
                let suggestion = default_of(&defaults, field);
                asks.push(Ask::new(
                    field,
                    messages::ask_in_range(lang, &l, &shown),
                    suggestion,
                ));
            }
        }

        let summary = self.summary(ctx, task);
        if asks.iter().any(|a| a.required) {
            let questions = asks
                .into_iter()
                .enumerate()
                .map(|(i, a)| Question {
                    id: format!("q{}", i + 1),
                    field: a.field,
                    question: a.question,
                    required: a.required,
                    suggestions: a.suggestions,
                })
                .collect();
            let shown_model = model.map(|m| display_name(&m.id));
            let shown_count = summary.num_classes;
            let message = messages::summary(lang, shown_model, shown_count, summary.task_type);
            return Reply::ClarificationNeeded(Clarification {
                parsed_intent: summary,
                questions,
                message,
            });
        }

        // No required question means a supported model, a ready dataset and class names; the
        // fallback below cannot be reached.
        let (Some(model), Some(dataset), Some(class_names)) = (model, dataset, class_names) else {
            return Reply::ClarificationNeeded(Clarification {
                parsed_intent: summary,
                questions: vec![],
                message: messages::summary(lang, None, None, None),
            });
        };
        let hyperparameters = Hyperparameters {
            epochs: st
                .epochs
                .as_ref()
                .map_or(defaults.epochs, |e| e.value as u32),
            batch_size: st
                .batch_size
                .as_ref()
                .map_or(defaults.batch_size, |e| e.value as u32),
            learning_rate: st
                .learning_rate
                .as_ref()
                .map_or(defaults.learning_rate, |e| e.value),
            optimizer: st
                .optimizer
                .as_ref()
                .map_or(defaults.optimizer, |e| e.value),
            image_size: st
                .image_size
                .as_ref()
                .map(|e| [e.value[0] as u32, e.value[1] as u32])
                .or(defaults.image_size),
        };
        let training_config = TrainingConfig {
            task_type: model.task_type,
            model_name: model.id.clone(),
            model_source: model.framework.clone(),
            num_classes: class_names.len() as u32,
            class_names,
            dataset: DatasetConfig {
                source: "uploaded".to_string(),
                dataset_id: dataset.id.clone(),
            },
            hyperparameters,
        };
        Reply::IntentComplete(Completion {
            training_config,
            message: messages::complete(lang).to_string(),
            actions: vec![
                Action {
                    kind: ActionType::StartTraining,
                    label: messages::start_label(lang).to_string(),
                },
                Action {
                    kind: ActionType::EditConfig,
                    label: messages::edit_label(lang).to_string(),
                },
            ],
            workflow_id: None,
            start_requested: false,
        })
    }

    /// `parsed_intent` of a reply: the facts gathered, the task implied by the model.
    fn summary(&self, ctx: &ParseContext, task: Option<TaskType>) -> IntentSummary {
        let st = &self.intent;
        let model = st.model.as_ref().map(|m| m.value.clone());
        let class_names = st.class_names.as_ref().map(|c| c.value.clone());
        IntentSummary {
            task_type: task,
            model_supported: model.as_ref().map(|m| ctx.model(m).is_some()),
            model_name: model.clone(),
            model,
            num_classes: st
                .num_classes
                .as_ref()
                .map(|n| n.value)
                .or(class_names.as_ref().map(|c| c.len() as u64)),
            class_names,
            dataset_id: match st.dataset.as_ref().map(|d| &d.value) {
                Some(DatasetMention::Matched { id }) => Some(id.clone()),
                _ => None,
            },
            epochs: st.epochs.as_ref().map(|e| e.value),
            batch_size: st.batch_size.as_ref().map(|e| e.value),
            learning_rate: st.learning_rate.as_ref().map(|e| e.value),
            optimizer: st.optimizer.as_ref().map(|e| e.value),
            image_size: st.image_size.as_ref().map(|e| e.value),
            confidence: st.confidence,
        }
    }
}

/// A question before it gets its id.
struct Ask {
    field: Field,
    question: String,
    required: bool,
    suggestions: Vec<String>,
}

impl Ask {
    fn new(field: Field, question: String, suggestions: Vec<String>) -> Self {
        Self {
            field,
            question,
            required: true,
            suggestions,
        }
    }
}

/// Whether two class lists name the same classes (any order, any case).
fn same_classes(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.trim().to_lowercase()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// The default value of a numeric field, as a suggestion.
fn default_of(defaults: &Hyperparameters, field: Field) -> Vec<String> {
    match field {
        Field::Epochs => vec![defaults.epochs.to_string()],
        Field::BatchSize => vec![defaults.batch_size.to_string()],
        Field::LearningRate => vec![defaults.learning_rate.to_string()],
        Field::ImageSize => vec!["224x224".to_string()],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests;
