//! Optional LLM for the chat: an OpenAI-compatible `POST {base_url}/chat/completions` asked to
//! extract the intent as JSON (structured output with a JSON schema). Its answer is checked
//! (types, ranges, model names the parser knows, the caller's datasets), turned into an
//! [`intent::ParsedIntent`] and only fills fields the rule parser left empty. On timeout, HTTP
//! error or invalid output the rule parser's answer stands.

use std::sync::LazyLock;
use std::time::Duration;

use domain::dataset::TaskType;
use intent::{
    DatasetMention, Extracted, Field, Optimizer, ParseContext, ParsedIntent, limit, model_id,
    parse_answering,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::settings::ChatLlmSettings;

/// Confidence given to a field only the LLM read.
const LLM_CONFIDENCE: f64 = 0.7;

/// Most class names taken from an answer, and longest name.
const MAX_CLASSES: usize = 1000;
const MAX_CLASS_CHARS: usize = 100;

/// One HTTP client for every request (connection reuse); `None` if it cannot be built.
static CLIENT: LazyLock<Option<reqwest::Client>> =
    LazyLock::new(|| reqwest::Client::builder().build().ok());

/// Why the LLM's answer was not used.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The request failed or timed out.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The answer is not the JSON the schema asks for.
    #[error("invalid answer: {0}")]
    Invalid(String),
}

/// The intent as the schema asks the LLM to write it; every field may be `null`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    task_type: Option<TaskType>,
    model: Option<String>,
    num_classes: Option<u64>,
    class_names: Option<Vec<String>>,
    dataset: Option<String>,
    epochs: Option<u64>,
    batch_size: Option<u64>,
    learning_rate: Option<f64>,
    optimizer: Option<Optimizer>,
    image_size: Option<u64>,
}

/// The JSON schema of [`Answer`] (strict: every property required, `null` when not stated).
fn schema() -> Value {
    let nullable = |t: &str| json!({ "type": [t, "null"] });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": [
            "task_type", "model", "num_classes", "class_names", "dataset", "epochs",
            "batch_size", "learning_rate", "optimizer", "image_size"
        ],
        "properties": {
            "task_type": {
                "type": ["string", "null"],
                "enum": ["classification", "detection", "segmentation", null]
            },
            "model": nullable("string"),
            "num_classes": nullable("integer"),
            "class_names": { "type": ["array", "null"], "items": { "type": "string" } },
            "dataset": nullable("string"),
            "epochs": nullable("integer"),
            "batch_size": nullable("integer"),
            "learning_rate": nullable("number"),
            "optimizer": { "type": ["string", "null"], "enum": ["adam", "adamw", "sgd", null] },
            "image_size": nullable("integer")
        }
    })
}

/// Instructions: what to extract, the models and the caller's datasets.
fn system_prompt(ctx: &ParseContext, answering: &[Field]) -> String {
    let models: Vec<&str> = intent::known_model_ids().collect();
    let datasets: Vec<String> = ctx
        .datasets
        .iter()
        .map(|d| format!("{} ({})", d.name, d.id))
        .collect();
    let asked: Vec<String> = answering
        .iter()
        .filter_map(|f| serde_json::to_value(f).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    format!(
        "You read one chat message (Korean, English or both) from a user who wants to train a \
         computer-vision model and extract the training request as JSON. Fill a field only when \
         the message states it; otherwise null. Never guess.\n\
         - task_type: classification, detection or segmentation.\n\
         - model: a model id, one of: {models}.\n\
         - num_classes, class_names: the classes to learn, names as the user wrote them.\n\
         - dataset: id or name of one of the user's datasets: {datasets}.\n\
         - epochs, batch_size, learning_rate (e.g. 0.001), optimizer (adam, adamw, sgd), \
           image_size (pixels per side).\n\
         The assistant's last questions were about: {asked}.",
        models = models.join(", "),
        datasets = if datasets.is_empty() {
            "none".to_owned()
        } else {
            datasets.join(", ")
        },
        asked = if asked.is_empty() {
            "nothing".to_owned()
        } else {
            asked.join(", ")
        },
    )
}

/// A client of the configured endpoint.
#[derive(Debug, Clone)]
pub struct LlmParser {
    url: String,
    model: String,
    api_key: String,
    timeout: Duration,
}

impl LlmParser {
    /// The configured LLM; `None` when `base_url` is empty.
    pub fn from_settings(settings: &ChatLlmSettings) -> Option<Self> {
        settings.enabled().then(|| Self {
            url: format!(
                "{}/chat/completions",
                settings.base_url.trim().trim_end_matches('/')
            ),
            model: settings.model.clone(),
            api_key: settings.api_key.clone(),
            timeout: Duration::from_millis(settings.timeout_millis.max(1)),
        })
    }

    /// Asks the LLM for the intent of `message` and checks the answer: fields of the wrong type
    /// fail the whole answer, values out of range, unknown models and datasets that are not the
    /// caller's are dropped.
    pub async fn parse(
        &self,
        message: &str,
        ctx: &ParseContext,
        answering: &[Field],
    ) -> Result<ParsedIntent, LlmError> {
        let client = CLIENT
            .as_ref()
            .ok_or_else(|| LlmError::Invalid("no HTTP client".into()))?;
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": system_prompt(ctx, answering) },
                { "role": "user", "content": message }
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": { "name": "training_intent", "strict": true, "schema": schema() }
            }
        });
        let mut request = client.post(&self.url).timeout(self.timeout).json(&body);
        if !self.api_key.is_empty() {
            request = request.bearer_auth(&self.api_key);
        }
        let response: Value = request.send().await?.error_for_status()?.json().await?;
        let content = response["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| LlmError::Invalid("no choices[0].message.content".into()))?;
        let answer: Answer =
            serde_json::from_str(content).map_err(|e| LlmError::Invalid(e.to_string()))?;
        Ok(to_intent(answer, ctx))
    }

    /// The rule parser's reading `rules` with the fields it missed taken from the LLM; on any
    /// failure `rules` unchanged (a warning is logged).
    pub async fn complete(
        &self,
        message: &str,
        ctx: &ParseContext,
        answering: &[Field],
        mut rules: ParsedIntent,
    ) -> ParsedIntent {
        match self.parse(message, ctx, answering).await {
            Ok(llm) => rules.fill_missing(&llm),
            Err(e) => tracing::warn!(error = %e, url = %self.url, "chat LLM not used"),
        }
        rules
    }
}

/// A whole number within the limit of `field`.
fn whole_in_range(field: Field, value: Option<u64>) -> Option<Extracted<u64>> {
    let v = value?;
    let ok = limit(field).is_none_or(|l| l.contains(v as f64));
    ok.then(|| Extracted::new(v, LLM_CONFIDENCE))
}

/// The checked answer as a parsed intent.
fn to_intent(a: Answer, ctx: &ParseContext) -> ParsedIntent {
    let mut p = ParsedIntent {
        task_type: a.task_type.map(|t| Extracted::new(t, LLM_CONFIDENCE)),
        model: a
            .model
            .and_then(|m| model_id(m.trim(), ctx))
            .map(|m| Extracted::new(m, LLM_CONFIDENCE)),
        num_classes: whole_in_range(Field::NumClasses, a.num_classes),
        class_names: a.class_names.and_then(|names| {
            let mut clean: Vec<String> = Vec::new();
            for n in names.iter().map(|n| n.trim()) {
                let fits = !n.is_empty() && n.chars().count() <= MAX_CLASS_CHARS;
                if fits && !clean.iter().any(|c| c.eq_ignore_ascii_case(n)) {
                    clean.push(n.to_owned());
                }
            }
            let ok = !clean.is_empty() && clean.len() <= MAX_CLASSES;
            ok.then(|| Extracted::new(clean, LLM_CONFIDENCE))
        }),
        // Read as the rule parser reads an answer to the dataset question; only one of the
        // caller's datasets is taken.
        dataset: a
            .dataset
            .and_then(|d| parse_answering(&d, ctx, &[Field::Dataset]).dataset)
            .filter(|d| matches!(d.value, DatasetMention::Matched { .. }))
            .map(|d| Extracted::new(d.value, LLM_CONFIDENCE)),
        epochs: whole_in_range(Field::Epochs, a.epochs),
        batch_size: whole_in_range(Field::BatchSize, a.batch_size),
        learning_rate: a
            .learning_rate
            .filter(|v| limit(Field::LearningRate).is_none_or(|l| l.contains(*v)))
            .map(|v| Extracted::new(v, LLM_CONFIDENCE)),
        optimizer: a.optimizer.map(|o| Extracted::new(o, LLM_CONFIDENCE)),
        image_size: whole_in_range(Field::ImageSize, a.image_size)
            .map(|e| Extracted::new([e.value, e.value], e.confidence)),
        ..ParsedIntent::default()
    };
    p.update_confidence();
    p
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use intent::{DatasetRef, DatasetStatus};

    fn ctx() -> ParseContext {
        ParseContext::with_datasets(vec![DatasetRef::new("ds_1", "cats", DatasetStatus::Ready)])
    }

    #[test]
    fn answers_are_checked() {
        let answer: Answer = serde_json::from_value(json!({
            "task_type": "classification", "model": "ResNet-50", "num_classes": 0,
            "class_names": [" cat ", "Cat", "", "dog"], "dataset": "cats", "epochs": 5000,
            "batch_size": 16, "learning_rate": 0.001, "optimizer": "sgd", "image_size": 224
        }))
        .unwrap();
        let p = to_intent(answer, &ctx());
        assert_eq!(p.model.unwrap().value, "resnet50");
        assert!(p.num_classes.is_none(), "0 classes is out of range");
        assert_eq!(p.class_names.unwrap().value, vec!["cat", "dog"]);
        assert_eq!(
            p.dataset.unwrap().value,
            DatasetMention::Matched { id: "ds_1".into() }
        );
        assert!(p.epochs.is_none(), "5000 epochs is out of range");
        assert_eq!(p.batch_size.unwrap().value, 16);
        assert_eq!(p.image_size.unwrap().value, [224, 224]);

        let unknown: Answer =
            serde_json::from_value(json!({ "model": "my-own-net", "dataset": "dogs" })).unwrap();
        let p = to_intent(unknown, &ctx());
        assert!(p.model.is_none() && p.dataset.is_none() && p.is_empty());
        assert!(serde_json::from_value::<Answer>(json!({ "epochs": "ten" })).is_err());
        assert!(serde_json::from_value::<Answer>(json!({ "optimizer": "rmsprop" })).is_err());
    }

    #[test]
    fn disabled_without_base_url() {
        let mut s = ChatLlmSettings {
            base_url: " ".into(),
            model: "m".into(),
            api_key: String::new(),
            timeout_millis: 100,
        };
        assert!(LlmParser::from_settings(&s).is_none());
        s.base_url = "http://h/v1/".into();
        assert_eq!(
            LlmParser::from_settings(&s).unwrap().url,
            "http://h/v1/chat/completions"
        );
    }
}
