use reqwest::Method;
use serde_json::{Value, json};
use test_support::data::imagefolder_zip;
use test_support::{TestApp, assert_error, spawn_app_with};

async fn say(app: &TestApp, token: &str, session: Option<&str>, message: &str) -> Value {
    let mut body = json!({ "message": message, "context": {} });
    if let Some(id) = session {
        body["session_id"] = json!(id);
    }
    let response = app.post_authed("/api/v1/chat/message", token, &body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// The spec's conversation: Korean request, questions, answers, config, start.
#[tokio::test]
async fn korean_dialogue_ends_in_a_started_workflow() {
    let app = spawn_app_with(|s| s.worker.kinds = vec!["dataset_ingest".into()]).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(
            token,
            imagefolder_zip(&["치즈", "나비", "츄르"], 6),
            "고양이 사진",
        )
        .await;

    let first = say(
        &app,
        token,
        None,
        "ResNet50으로 고양이 3종류 분류하는 모델 만들어줘",
    )
    .await;
    let session = first["session_id"].as_str().unwrap().to_owned();
    assert!(session.starts_with("sess_"), "{first}");
    assert_eq!(first["type"], "clarification_needed", "{first}");
    assert_eq!(first["parsed_intent"]["task_type"], "classification");
    assert_eq!(first["parsed_intent"]["model"], "resnet50");
    assert_eq!(first["parsed_intent"]["num_classes"], 3);
    let questions = first["questions"].as_array().unwrap();
    let dataset_question = questions
        .iter()
        .find(|q| q["field"] == "dataset")
        .unwrap_or_else(|| panic!("asks for the dataset: {first}"));
    assert_eq!(dataset_question["required"], true);
    assert!(
        dataset_question["suggestions"]
            .as_array()
            .unwrap()
            .contains(&json!("고양이 사진")),
        "suggests the caller's real datasets: {dataset_question}"
    );

    let second = say(&app, token, Some(&session), &format!("{dataset} 써줘")).await;
    assert_eq!(second["session_id"], session.as_str());
    assert_eq!(second["type"], "intent_complete", "{second}");
    let config = &second["training_config"];
    assert_eq!(config["model_name"], "resnet50");
    // Hyper-parameters the user did not state come from the training recipe, with reasons.
    assert!(
        config["recipe"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c["field"] == "image_size")),
        "{config}"
    );
    assert_eq!(config["num_classes"], 3);
    assert_eq!(config["dataset"]["dataset_id"], dataset.as_str());
    let mut classes: Vec<&str> = config["class_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    classes.sort_unstable();
    assert_eq!(classes, ["나비", "츄르", "치즈"]);
    let actions: Vec<&str> = second["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["start_training", "edit_config"]);

    let started = say(&app, token, Some(&session), "start_training").await;
    let workflow_id = started["workflow_id"]
        .as_str()
        .unwrap_or_else(|| panic!("workflow started: {started}"));
    let workflow: Value = app
        .get_json(&format!("/api/v1/workflows/{workflow_id}"), token)
        .await;
    assert_eq!(workflow["model"], "resnet50");
    assert_eq!(workflow["dataset_id"], dataset.as_str());
    assert_eq!(workflow["status"], "pending");

    let history: Value = app
        .get_json(&format!("/api/v1/chat/sessions/{session}"), token)
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        6,
        "{history}"
    );
    assert_eq!(history["messages"][0]["role"], "user");
    assert_eq!(history["messages"][1]["role"], "assistant");
    assert_eq!(history["status"], "completed");

    // Sessions are private, deletable, and gone afterwards.
    let other = app.new_user().await;
    let path = format!("/api/v1/chat/sessions/{session}");
    assert_error(app.get(&path, &other.access_token).await, 404, "NOT_FOUND").await;
    let response = app
        .post_authed(
            "/api/v1/chat/message",
            &other.access_token,
            &json!({"session_id": session, "message": "hi"}),
        )
        .await;
    assert_error(response, 404, "NOT_FOUND").await;
    let deleted = app
        .authed(Method::DELETE, &path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(app.get(&path, token).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn english_unsupported_model_and_bad_input() {
    let app = spawn_app_with(|s| s.worker.enabled = false).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let reply = say(
        &app,
        token,
        None,
        "train efficientnet_v2_s to classify apples and pears",
    )
    .await;
    assert_eq!(reply["type"], "clarification_needed", "{reply}");
    assert_eq!(reply["parsed_intent"]["model"], "efficientnet_v2_s");
    let model_question = reply["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["field"] == "model_name")
        .unwrap_or_else(|| panic!("asks for a supported model: {reply}"));
    assert!(!model_question["suggestions"].as_array().unwrap().is_empty());

    let empty = app
        .post_authed("/api/v1/chat/message", token, &json!({"message": "   "}))
        .await;
    assert_error(empty, 422, "VALIDATION_ERROR").await;
    let unknown = app
        .post_authed(
            "/api/v1/chat/message",
            token,
            &json!({"session_id": "sess_nope", "message": "hello"}),
        )
        .await;
    assert_error(unknown, 404, "NOT_FOUND").await;
}

/// An OpenAI-compatible mock answering every chat completion with `content` after `delay`.
async fn mock_llm(content: &str, delay: std::time::Duration) -> wiremock::MockServer {
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(json!({
            "model": "test-model",
            "response_format": { "type": "json_schema" }
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({
                    "choices": [{ "message": { "role": "assistant", "content": content } }]
                }))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

async fn spawn_with_llm(server: &wiremock::MockServer, timeout_millis: u64) -> TestApp {
    let base_url = format!("{}/v1", server.uri());
    spawn_app_with(move |s| {
        s.worker.enabled = false;
        s.chat.llm.base_url = base_url;
        s.chat.llm.model = "test-model".into();
        s.chat.llm.api_key = "sk-test".into();
        s.chat.llm.timeout_millis = timeout_millis;
    })
    .await
}

/// The rules read the model; the LLM adds what they missed but never overrides them.
#[tokio::test]
async fn llm_fills_fields_the_rules_missed() {
    let answer = json!({
        "task_type": "classification", "model": "resnet18", "num_classes": null,
        "class_names": ["siamese", "persian"], "dataset": null, "epochs": 12,
        "batch_size": null, "learning_rate": null, "optimizer": "sgd", "image_size": null
    });
    let server = mock_llm(&answer.to_string(), std::time::Duration::ZERO).await;
    let app = spawn_with_llm(&server, 5000).await;
    let user = app.new_user().await;
    let reply = say(
        &app,
        &user.access_token,
        None,
        "ResNet50 please, a dozen passes over the data with plain momentum descent; siamese vs persian",
    )
    .await;
    let intent = &reply["parsed_intent"];
    assert_eq!(intent["model"], "resnet50", "rules win: {reply}");
    assert_eq!(intent["epochs"], 12, "from the LLM: {reply}");
    assert_eq!(intent["optimizer"], "sgd", "from the LLM: {reply}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// Output that is not the schema's JSON is ignored: the rules' answer stands.
#[tokio::test]
async fn llm_garbage_leaves_the_rules_answer() {
    let server = mock_llm(
        "Sure! Here is your config: epochs=12",
        std::time::Duration::ZERO,
    )
    .await;
    let app = spawn_with_llm(&server, 5000).await;
    let user = app.new_user().await;
    let reply = say(&app, &user.access_token, None, "resnet50, 에폭 20").await;
    assert_eq!(reply["type"], "clarification_needed", "{reply}");
    assert_eq!(reply["parsed_intent"]["model"], "resnet50");
    assert_eq!(reply["parsed_intent"]["epochs"], 20);
    assert!(reply["parsed_intent"]["optimizer"].is_null(), "{reply}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// A slow LLM is cut off after `timeout_millis`; the request still succeeds with the rules' answer.
#[tokio::test]
async fn llm_timeout_leaves_the_rules_answer() {
    let answer = json!({ "epochs": 99 }).to_string();
    let server = mock_llm(&answer, std::time::Duration::from_secs(5)).await;
    let app = spawn_with_llm(&server, 200).await;
    let user = app.new_user().await;
    let started = std::time::Instant::now();
    let reply = say(&app, &user.access_token, None, "yolov8n으로 탐지, 배치 8").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(reply["parsed_intent"]["model"], "yolov8n", "{reply}");
    assert_eq!(reply["parsed_intent"]["batch_size"], 8);
    assert!(reply["parsed_intent"]["epochs"].is_null(), "{reply}");
}
