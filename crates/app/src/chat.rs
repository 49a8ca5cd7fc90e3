//! The chat: natural language → training configuration, with a clarification dialogue.
//! Parsing and dialogue rules live in crate `intent`; this module stores sessions, gives the
//! parser the caller's datasets and the catalogue, and starts the workflow when asked. When
//! `chat.llm` is configured, an LLM fills the fields the rules missed ([`crate::chat_llm`]).

use crate::auth::Principal;
use crate::chat_llm::LlmParser;
use crate::{App, AppError, AppResult, FieldError, Validator, catalogue};
use api_types::chat::{ChatMessageRequest, ChatMessageView, ChatSessionView};
use api_types::time::rfc3339;
use api_types::workflows::{Hyperparameters, WorkflowConfig};
use chrono::Utc;
use domain::IdKind;
use intent::{DatasetRef, ModelRef, ParseContext, Reply, Role, Session};
use serde_json::{Value, json};
use store::Page;

/// Longest message accepted, in characters.
const MAX_MESSAGE_CHARS: usize = 4000;

/// Datasets offered to the parser (newest first).
const MAX_DATASETS: u32 = 100;

/// What the parser may refer to: the trainable catalogue and the caller's datasets.
async fn context(app: &App, principal: &Principal) -> AppResult<ParseContext> {
    let models = catalogue::models()
        .into_iter()
        .map(|m| ModelRef::new(m.id, m.architecture.task()))
        .collect();
    let (datasets, _) = app
        .store
        .list_datasets(
            &principal.user_id,
            Page {
                page: 1,
                limit: MAX_DATASETS,
            },
        )
        .await?;
    let datasets = datasets
        .into_iter()
        .map(|d| {
            let classes: Vec<String> = d
                .statistics
                .as_deref()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|s| s["classes"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect();
            DatasetRef::new(d.id, d.name, d.status).with_classes(classes)
        })
        .collect();
    Ok(ParseContext { models, datasets })
}

/// Handles one message: the reply (`clarification_needed` or `intent_complete`, with the
/// `session_id`); asking to start training creates the workflow.
pub async fn message(
    app: &App,
    principal: &Principal,
    request: ChatMessageRequest,
) -> AppResult<Value> {
    let text = request.message.trim();
    Validator::default()
        .check(!text.is_empty(), || FieldError::new("message", "Required"))
        .check(request.message.chars().count() <= MAX_MESSAGE_CHARS, || {
            FieldError::new(
                "message",
                format!("Must be at most {MAX_MESSAGE_CHARS} characters"),
            )
        })
        .finish()?;
    let (id, mut session, is_new) = match &request.session_id {
        Some(id) => {
            let (row, session) = stored(app, principal, id).await?;
            (row.id, session, false)
        }
        None => (IdKind::Session.new_id(), Session::new(), true),
    };
    let ctx = context(app, principal).await?;
    let answering = session.pending_fields();
    let mut parsed = intent::parse_answering(text, &ctx, &answering);
    if let Some(llm) = LlmParser::from_settings(&app.settings.chat.llm) {
        parsed = llm.complete(text, &ctx, &answering, parsed).await;
    }
    let mut reply = session.handle_parsed_at(text, parsed, &ctx, Utc::now());
    let recipe = match &mut reply {
        Reply::IntentComplete(completion) => {
            apply_recipe(app, principal, &session, &mut completion.training_config).await
        }
        _ => None,
    };
    if let Reply::IntentComplete(completion) = &reply
        && completion.start_requested
        && session.workflow_id.is_none()
    {
        let config = &completion.training_config;
        let workflow = WorkflowConfig {
            task_type: catalogue::task_name(config.task_type).to_owned(),
            model: config.model_name.clone(),
            dataset_id: config.dataset.dataset_id.clone(),
            // Only what the user said: the workflow's recipe chooses the rest from the dataset,
            // as shown in the completion.
            hyperparameters: stated(&session),
        };
        let name = format!("{} ({})", config.model_name, config.class_names.join(", "));
        let name: String = name.chars().take(200).collect();
        let created =
            crate::workflows::submit(app, principal, &name, "Created from chat", None, &workflow)
                .await?;
        session.started(&mut reply, &created.workflow_id);
    }
    let state = serde_json::to_string(&session).map_err(AppError::internal)?;
    let now = Utc::now();
    if is_new {
        app.store
            .insert_chat_session(&principal.user_id, &id, &state, now)
            .await?;
    } else {
        app.store
            .update_chat_session(&principal.user_id, &id, &state, now)
            .await?;
    }
    let mut body = serde_json::to_value(&reply).map_err(AppError::internal)?;
    body["session_id"] = json!(id);
    if let Some(recipe) = recipe
        && body["training_config"].is_object()
    {
        body["training_config"]["recipe"] = recipe;
    }
    Ok(body)
}

/// The hyper-parameters the user stated in the conversation.
fn stated(session: &Session) -> Hyperparameters {
    let st = &session.intent;
    Hyperparameters {
        epochs: st.epochs.as_ref().map(|e| e.value as i64),
        batch_size: st.batch_size.as_ref().map(|e| e.value as i64),
        learning_rate: st.learning_rate.as_ref().map(|e| e.value),
        optimizer: st
            .optimizer
            .as_ref()
            .and_then(|e| serde_json::to_value(e.value).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        image_size: st.image_size.as_ref().map(|e| e.value[0] as i64),
        ..Default::default()
    }
}

/// Fills `config`'s hyper-parameters the user did not state with the training recipe's choices
/// for its dataset (what the workflow will use) and returns the recipe's choices and reasons;
/// `None` when the model or dataset cannot be read (the workflow's own checks report it).
async fn apply_recipe(
    app: &App,
    principal: &Principal,
    session: &Session,
    config: &mut intent::TrainingConfig,
) -> Option<Value> {
    let model = catalogue::find(&config.model_name)?;
    let manifest = crate::datasets::manifest(app, principal, &config.dataset.dataset_id)
        .await
        .ok()?;
    let resolved = crate::recipe::resolve(model, &stated(session), &manifest);
    let hyper = &mut config.hyperparameters;
    hyper.epochs = u32::try_from(resolved.epochs).unwrap_or(hyper.epochs);
    hyper.batch_size = u32::try_from(resolved.batch_size).unwrap_or(hyper.batch_size);
    hyper.learning_rate = resolved.learning_rate;
    if let Some(optimizer) = serde_json::to_value(resolved.optimizer)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
    {
        hyper.optimizer = optimizer;
    }
    let size = u32::try_from(resolved.image_size()).unwrap_or(0);
    hyper.image_size = hyper.image_size.or(Some([size, size]));
    serde_json::to_value(&resolved.recipe).ok()
}

/// One of the caller's stored sessions and its dialogue state (404 for others').
async fn stored(
    app: &App,
    principal: &Principal,
    id: &str,
) -> AppResult<(store::ChatSessionRow, Session)> {
    let row = app
        .store
        .get_chat_session(&principal.user_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("Session", id))?;
    let session = serde_json::from_str(&row.state).map_err(AppError::internal)?;
    Ok((row, session))
}

/// One of the caller's sessions with its messages.
pub async fn get(app: &App, principal: &Principal, id: &str) -> AppResult<ChatSessionView> {
    let (row, session) = stored(app, principal, id).await?;
    Ok(ChatSessionView {
        session_id: row.id,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        messages: session
            .messages
            .iter()
            .map(|m| ChatMessageView {
                role: match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                }
                .to_owned(),
                content: m.content.clone(),
                timestamp: rfc3339(m.timestamp),
            })
            .collect(),
        status: if session.workflow_id.is_some() {
            "completed"
        } else {
            "active"
        }
        .to_owned(),
        workflow_id: session.workflow_id,
    })
}

/// Deletes one of the caller's sessions.
pub async fn delete(app: &App, principal: &Principal, id: &str) -> AppResult<()> {
    if app
        .store
        .delete_chat_session(&principal.user_id, id)
        .await?
    {
        Ok(())
    } else {
        Err(AppError::not_found("Session", id))
    }
}
