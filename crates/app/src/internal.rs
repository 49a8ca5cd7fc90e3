//! The internal service API: workflow creation on behalf of a user and model preparation.

use crate::auth::Principal;
use crate::{App, AppError, AppResult, FieldError, catalogue};
use api_types::workflows::{
    CreateWorkflowResponse, OrchestratorCreateRequest, PrepareModelRequest, PrepareModelResponse,
};
use serde_json::json;

/// Checks an `X-Internal-Auth` value against the configured token in constant time.
pub fn check_token(app: &App, presented: Option<&str>) -> AppResult<()> {
    check_secret(&app.settings.internal.token, presented, "X-Internal-Auth")
}

/// Checks a shared secret presented in `header` in constant time; an empty `expected` accepts
/// nothing.
pub fn check_secret(expected: &str, presented: Option<&str>, header: &str) -> AppResult<()> {
    let Some(presented) = presented else {
        return Err(AppError::unauthorized(format!("Missing {header} header")));
    };
    let (expected, presented) = (expected.as_bytes(), presented.as_bytes());
    let same = !expected.is_empty()
        && presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(AppError::unauthorized(format!("Invalid {header}")))
    }
}

/// Submits a workflow for `request.user_id` exactly as `POST /workflows` would.
pub async fn create_workflow(
    app: &App,
    request: OrchestratorCreateRequest,
) -> AppResult<CreateWorkflowResponse> {
    let user = app
        .store
        .user_by_id(&request.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("User", &request.user_id))?;
    let name = request.experiment_name.trim();
    crate::Validator::default()
        .text("experiment_name", &request.experiment_name, 1, 200)
        .finish()?;
    let principal = Principal {
        user_id: user.id,
        plan: user.plan,
    };
    crate::workflows::submit(app, &principal, name, "", None, &request.training_config).await
}

/// Builds the model a training run would start from and reports its size.
pub async fn prepare_model(request: PrepareModelRequest) -> AppResult<PrepareModelResponse> {
    let model = match catalogue::find(&request.model_name) {
        Some(model) if model.task_type == request.task_type => model,
        Some(model) => {
            return Err(AppError::Validation(vec![FieldError::with_value(
                "task_type",
                format!("Model '{}' serves {}", model.id, model.task_type),
                json!(request.task_type),
            )]));
        }
        None => {
            return Err(AppError::InvalidRequest {
                message: "Invalid model name".into(),
                details: json!({
                    "field": "model_name",
                    "reason": format!("Model '{}' not found in registry", request.model_name),
                    "available_models": catalogue::models().iter().map(|m| m.id).collect::<Vec<_>>(),
                }),
            });
        }
    };
    let num_classes = request
        .config
        .get("num_classes")
        .map(|v| v.as_u64().filter(|n| (2..=100_000).contains(n)))
        .unwrap_or(Some(1000));
    let Some(num_classes) = num_classes else {
        return Err(AppError::Validation(vec![FieldError::with_value(
            "config.num_classes",
            "Must be an integer between 2 and 100000",
            request
                .config
                .get("num_classes")
                .cloned()
                .unwrap_or_default(),
        )]));
    };
    let architecture = model.architecture;
    let parameters = tokio::task::spawn_blocking(move || {
        let device = ml::DeviceSpec::Cpu.device()?;
        // A detector is a YOLOv8 of the model's size, a classifier its backbone with a head.
        match architecture.task() {
            domain::dataset::TaskType::Detection => ml::detect::YoloSize::of(architecture)
                .map(|size| ml::detect::YoloV8::new(size, num_classes as usize, &device))
                .map(|model| model.num_params() as u64),
            _ => ml::Classifier::new(architecture, num_classes as usize, &device)
                .map(|model| model.num_trainable_params() as u64),
        }
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    Ok(PrepareModelResponse {
        model_name: model.id.to_owned(),
        task_type: model.task_type.to_owned(),
        parameters,
        num_classes: num_classes as usize,
        input_size: architecture.default_image_size(),
        device: "cpu".into(),
        status: "ready".into(),
    })
}
