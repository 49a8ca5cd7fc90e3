#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;

use super::*;
use crate::hyper::Optimizer;

fn ctx() -> ParseContext {
    ParseContext::with_datasets(vec![
        DatasetRef::new("ds_123", "My Cat Dataset", DatasetStatus::Ready),
        DatasetRef::new("ds_456", "고양이 사진", DatasetStatus::Ready),
        DatasetRef::new("ds_789", "my-drive/flowers", DatasetStatus::Processing),
        DatasetRef::new("ds_cls", "cheese-cats", DatasetStatus::Ready)
            .with_classes(["치즈", "나비", "츄르"]),
    ])
}

/// The datasets of the spec's example.
fn spec_ctx() -> ParseContext {
    ParseContext::with_datasets(vec![
        DatasetRef::new("ds_123", "my-drive/cats", DatasetStatus::Ready),
        DatasetRef::new("ds_124", "uploaded-datasets", DatasetStatus::Ready),
    ])
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 17, 10, 0, 0).unwrap()
}

fn say(session: &mut Session, message: &str) -> Reply {
    session.handle_at(message, &ctx(), at())
}

fn questions(reply: &Reply) -> Vec<Field> {
    match reply {
        Reply::ClarificationNeeded(c) => c.questions.iter().map(|q| q.field).collect(),
        Reply::IntentComplete(_) => vec![],
    }
}

fn question(reply: &Reply, field: Field) -> Question {
    match reply {
        Reply::ClarificationNeeded(c) => c
            .questions
            .iter()
            .find(|q| q.field == field)
            .cloned()
            .unwrap(),
        Reply::IntentComplete(_) => panic!("complete: {reply:?}"),
    }
}

fn config(reply: &Reply) -> TrainingConfig {
    reply
        .training_config()
        .cloned()
        .unwrap_or_else(|| panic!("not complete: {reply:?}"))
}

#[test]
fn spec_conversation_in_korean() {
    let ctx = spec_ctx();
    let mut s = Session::new();
    let say = |s: &mut Session, m: &str| s.handle_at(m, &ctx, at());
    let r = say(&mut s, "ResNet50으로 고양이 3종류 분류하는 모델 만들어줘");
    assert_eq!(questions(&r), [Field::ClassNames, Field::Dataset]);
    assert_eq!(
        r.message(),
        "좋아요! ResNet50으로 3종류 분류 모델을 만들어드릴게요. 몇 가지만 확인할게요."
    );
    assert_eq!(
        question(&r, Field::Dataset).suggestions,
        ["my-drive/cats", "uploaded-datasets"]
    );
    assert!(question(&r, Field::ClassNames).required);
    insta::assert_json_snapshot!("clarification_needed", r);

    let r = say(&mut s, "치즈, 나비, 츄르야");
    assert_eq!(questions(&r), [Field::Dataset]);

    let r = say(&mut s, "ds_123 써줘");
    let c = config(&r);
    assert_eq!(c.model_name, "resnet50");
    assert_eq!(c.model_source, "timm");
    assert_eq!(c.class_names, ["치즈", "나비", "츄르"]);
    assert_eq!(c.num_classes, 3);
    assert_eq!(c.dataset.dataset_id, "ds_123");
    assert_eq!(c.hyperparameters, Hyperparameters::default());
    assert!(!r.start_requested());
    insta::assert_json_snapshot!("intent_complete", r);

    let r = say(&mut s, "에폭은 50으로 바꿔줘");
    assert_eq!(config(&r).hyperparameters.epochs, 50);
    assert_eq!(config(&r).class_names, ["치즈", "나비", "츄르"]);

    let mut r = say(&mut s, "시작해줘");
    assert!(r.start_requested());
    s.started(&mut r, "wf_789xyz");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["workflow_id"], "wf_789xyz");
    assert!(r.message().contains("wf_789xyz"));
    assert_eq!(s.messages.len(), 10);
    assert_eq!(s.messages.last().unwrap().content, r.message());
    assert_eq!(s.workflow_id.as_deref(), Some("wf_789xyz"));
}

#[test]
fn english_conversation_with_default_model() {
    let mut s = Session::new();
    let r = say(&mut s, "train a classifier for cats and dogs");
    assert_eq!(questions(&r), [Field::ModelName, Field::Dataset]);
    assert_eq!(question(&r, Field::ModelName).suggestions[0], "resnet18");
    assert!(
        r.message()
            .starts_with("Great! I'll build a 2-class classification model")
    );

    let r = say(&mut s, "use my cats dataset");
    assert_eq!(questions(&r), [Field::ModelName]);

    let r = say(&mut s, "whatever you recommend");
    let c = config(&r);
    assert_eq!(c.model_name, "resnet18");
    assert_eq!(c.class_names, ["cats", "dogs"]);
    assert_eq!(c.dataset.dataset_id, "ds_123");
    assert_eq!(r.message(), "Everything is set! Shall I start training?");

    let r = say(&mut s, "epochs 20, batch size 16, lr 3e-4, sgd");
    let h = config(&r).hyperparameters;
    assert_eq!(
        (h.epochs, h.batch_size, h.learning_rate, h.optimizer),
        (20, 16, 3e-4, Optimizer::Sgd)
    );

    let r = say(&mut s, "start training");
    assert!(r.start_requested());
}

#[test]
fn unsupported_model_gets_closest_supported() {
    let mut s = Session::new();
    let r = say(&mut s, "efficientnet_v2_s로 꽃 5종류 분류하고 싶어");
    let Reply::ClarificationNeeded(c) = &r else {
        panic!()
    };
    assert_eq!(c.parsed_intent.model.as_deref(), Some("efficientnet_v2_s"));
    assert_eq!(c.parsed_intent.model_supported, Some(false));
    assert_eq!(c.parsed_intent.task_type, Some(TaskType::Classification));
    let q = question(&r, Field::ModelName);
    assert_eq!(q.suggestions, ["resnet34", "resnet50", "resnet18"]);
    assert!(
        q.question
            .contains("EfficientNetV2-S는 아직 학습할 수 없어요"),
        "{}",
        q.question
    );

    let r = say(&mut s, "resnet34로 할게");
    assert!(!questions(&r).contains(&Field::ModelName));

    let mut s = Session::new();
    let r = say(&mut s, "detect helmets with yolo11n");
    assert_eq!(
        question(&r, Field::ModelName).suggestions[..2],
        ["yolov8n", "yolov8s"]
    );
    for m in ["vit_l_16", "convnext_tiny", "regnety_040"] {
        let r = Session::new().handle_at(&format!("{m}로 분류"), &ctx(), at());
        let q = question(&r, Field::ModelName);
        assert!(
            q.suggestions
                .iter()
                .all(|s| s.starts_with("resnet") || s == "small_cnn"),
            "{m}"
        );
    }
}

#[test]
fn dataset_classes_fill_class_names() {
    let mut s = Session::new();
    let r = say(&mut s, "resnet18로 cheese-cats 데이터셋 분류해줘");
    let c = config(&r);
    assert_eq!(c.class_names, ["치즈", "나비", "츄르"]);
    assert_eq!(c.dataset.dataset_id, "ds_cls");

    let r = say(&mut s, "4종류로 할게");
    assert_eq!(questions(&r), [Field::NumClasses]);
    assert_eq!(question(&r, Field::NumClasses).suggestions, ["3"]);
    let r = say(&mut s, "3");
    assert_eq!(config(&r).num_classes, 3);

    let r = say(&mut s, "클래스는 사자, 호랑이, 곰");
    assert_eq!(questions(&r), [Field::ClassNames]);
    assert_eq!(
        question(&r, Field::ClassNames).suggestions,
        ["치즈, 나비, 츄르"]
    );
    let r = say(&mut s, "응 데이터셋 클래스로 해줘");
    assert_eq!(
        questions(&r),
        [Field::ClassNames],
        "a plain yes does not pick a suggestion"
    );
    let r = say(&mut s, "기본값으로");
    assert_eq!(config(&r).class_names, ["치즈", "나비", "츄르"]);
}

#[test]
fn count_and_names_must_agree() {
    let mut s = Session::new();
    let r = say(&mut s, "resnet18로 3종류 분류: 치즈, 나비. ds_123");
    assert_eq!(questions(&r), [Field::NumClasses]);
    let q = question(&r, Field::NumClasses);
    assert!(
        q.question.contains("3종류라고 하셨는데 클래스 이름은 2개"),
        "{}",
        q.question
    );
    let r = say(&mut s, "치즈, 나비, 츄르");
    assert_eq!(config(&r).num_classes, 3);
}

#[test]
fn out_of_range_values_are_questions() {
    let mut s = Session::new();
    let r = say(
        &mut s,
        "resnet18, ds_123, cats and dogs, epochs 5000, batch 0",
    );
    assert_eq!(questions(&r), [Field::Epochs, Field::BatchSize]);
    let q = question(&r, Field::Epochs);
    assert!(q.question.contains("between 1 and 1000"), "{}", q.question);
    assert_eq!(q.suggestions, ["10"]);
    let r = say(&mut s, "epochs 20으로 바꿔줘");
    assert_eq!(questions(&r), [Field::BatchSize]);
    let r = say(&mut s, "32");
    assert_eq!(config(&r).hyperparameters.batch_size, 32);
    assert_eq!(config(&r).hyperparameters.epochs, 20);
}

#[test]
fn dataset_must_exist_and_be_ready() {
    let mut s = Session::new();
    let r = say(&mut s, "resnet18로 사자랑 호랑이 분류, ds_789");
    let q = question(&r, Field::Dataset);
    assert!(q.question.contains("아직 처리 중"), "{}", q.question);
    assert_eq!(
        q.suggestions,
        ["My Cat Dataset", "고양이 사진", "cheese-cats"]
    );
    let r = say(&mut s, "ds_999");
    assert!(question(&r, Field::Dataset).question.contains("ds_999"));
    let r = say(&mut s, "고양이 사진");
    assert_eq!(config(&r).dataset.dataset_id, "ds_456");
    assert_eq!(config(&r).class_names, ["사자", "호랑이"]);
}

#[test]
fn detection_and_task_conflicts() {
    let mut s = Session::new();
    let r = say(
        &mut s,
        "YOLOv8 nano로 helmet, head 탐지. ds_123, image size 640",
    );
    let c = config(&r);
    assert_eq!(c.task_type, TaskType::Detection);
    assert_eq!(c.model_source, "ultralytics");
    assert_eq!(c.hyperparameters.image_size, Some([640, 640]));

    let r = say(&mut s, "resnet50으로 바꿔줘");
    assert_eq!(
        config(&r).task_type,
        TaskType::Classification,
        "a new model brings its task"
    );

    let mut s = Session::new();
    let r = say(&mut s, "resnet50으로 탐지");
    let q = question(&r, Field::ModelName);
    assert!(
        q.question.contains("분류 모델이라 탐지에는 쓸 수 없어요"),
        "{}",
        q.question
    );
    assert_eq!(q.suggestions, ["yolov8n", "yolov8s"]);

    let r = Session::new().handle_at("세그멘테이션 모델 만들어줘", &ctx(), at());
    assert!(
        question(&r, Field::ModelName)
            .question
            .contains("아직 지원하지 않아요")
    );

    let r = Session::new().handle_at("모델 하나 만들어줘", &ctx(), at());
    assert_eq!(question(&r, Field::TaskType).suggestions, ["분류", "탐지"]);
}

#[test]
fn actions_sent_as_messages() {
    let mut s = Session::new();
    let r = say(&mut s, "yolov8s로 helmet, head 탐지, ds_123 데이터셋");
    assert!(matches!(r, Reply::IntentComplete(_)));
    let r = say(&mut s, "edit_config");
    assert!(
        r.message().starts_with("어떤 설정을 바꿀까요?"),
        "{}",
        r.message()
    );
    assert!(!r.start_requested());
    let r = say(&mut s, "배치 8");
    assert_eq!(config(&r).hyperparameters.batch_size, 8);
    let r = say(&mut s, "start_training");
    assert!(r.start_requested());
    assert_eq!(r.message(), "학습을 시작할게요!");
}

#[test]
fn suggestions_answer_questions() {
    let mut s = Session::new();
    let r = say(&mut s, "탐지 모델 만들어줘");
    assert_eq!(
        question(&r, Field::ModelName).suggestions,
        ["yolov8n", "yolov8s"]
    );
    let r = say(&mut s, "추천해줘");
    assert!(!questions(&r).contains(&Field::ModelName));
    let Reply::ClarificationNeeded(c) = &r else {
        panic!()
    };
    assert_eq!(c.parsed_intent.model.as_deref(), Some("yolov8n"));
    let r = say(&mut s, "사람, 자동차");
    assert_eq!(questions(&r), [Field::Dataset]);
    let r = say(&mut s, "My Cat Dataset");
    assert_eq!(config(&r).class_names, ["사람", "자동차"]);
}

#[test]
fn language_follows_the_user() {
    let mut s = Session::new();
    let r = say(&mut s, "classify apples and pears");
    assert!(r.message().starts_with("Great!"));
    let r = say(&mut s, "resnet18");
    assert!(
        r.message().starts_with("Great!"),
        "a bare model name keeps the language"
    );
    let r = say(&mut s, "데이터셋은 고양이 사진");
    assert!(r.message().starts_with("모든 설정이"), "{}", r.message());
}

#[test]
fn start_before_complete_and_gibberish() {
    let mut s = Session::new();
    let r = say(&mut s, "resnet18로 분류 시작해줘");
    assert!(
        r.message().starts_with("학습을 시작하기 전에"),
        "{}",
        r.message()
    );
    let r = say(&mut s, "음...");
    assert!(
        r.message().starts_with("잘 이해하지 못했어요"),
        "{}",
        r.message()
    );
}

#[test]
fn session_round_trips_as_json() {
    let mut s = Session::new();
    say(&mut s, "ResNet50으로 고양이 3종류 분류하는 모델 만들어줘");
    let json = serde_json::to_string(&s).unwrap();
    let mut back: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let r = say(&mut back, "치즈, 나비, 츄르야");
    assert_eq!(questions(&r), [Field::Dataset]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["messages"][0]["role"], "user");
    assert_eq!(v["messages"][0]["timestamp"], "2025-10-17T10:00:00Z");
}
