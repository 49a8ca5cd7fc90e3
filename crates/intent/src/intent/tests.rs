#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;
use crate::numbers::{english_words, korean_native, korean_sino};

fn ctx() -> ParseContext {
    ParseContext::with_datasets(vec![
        DatasetRef::new("ds_123", "My Cat Dataset", domain::DatasetStatus::Ready),
        DatasetRef::new("ds_456", "고양이 사진", domain::DatasetStatus::Ready),
        DatasetRef::new(
            "ds_789",
            "my-drive/flowers",
            domain::DatasetStatus::Processing,
        ),
    ])
}

fn p(message: &str) -> ParsedIntent {
    parse(message, &ctx())
}

fn model(message: &str) -> Option<String> {
    p(message).model.map(|m| m.value)
}

fn task(message: &str) -> Option<TaskType> {
    p(message).task_type.map(|t| t.value)
}

fn count(message: &str) -> Option<u64> {
    p(message).num_classes.map(|n| n.value)
}

fn names(message: &str) -> Vec<String> {
    p(message).class_names.map(|c| c.value).unwrap_or_default()
}

fn dataset(message: &str) -> Option<String> {
    match p(message).dataset.map(|d| d.value) {
        Some(DatasetMention::Matched { id }) => Some(id),
        other => other.map(|o| format!("{o:?}")),
    }
}

#[test]
fn spec_example() {
    let i = p("ResNet50으로 고양이 3종류 분류하는 모델 만들어줘");
    assert_eq!(i.task_type.unwrap().value, TaskType::Classification);
    assert_eq!(i.model.unwrap().value, "resnet50");
    assert_eq!(i.num_classes.unwrap().value, 3);
    assert_eq!(i.class_names, None);
    assert_eq!(i.dataset, None);
    assert!(i.confidence >= 0.9, "{}", i.confidence);
    assert_eq!(i.language, Some(Language::Ko));
}

#[test]
fn task_types() {
    use TaskType::*;
    for (m, t) in [
        ("분류 모델", Classification),
        ("image classification please", Classification),
        ("classify these photos", Classification),
        ("헬멧 탐지", Detection),
        ("불량 검출 모델", Detection),
        ("train a detector for helmets", Detection),
        ("detect cars", Detection),
        ("세그멘테이션 해줘", Segmentation),
        ("도로 영역 분할", Segmentation),
        ("semantic segmentation", Segmentation),
    ] {
        assert_eq!(task(m), Some(t), "{m}");
    }
}

#[test]
fn model_names_and_variants() {
    for (m, id) in [
        ("ResNet50으로 해줘", "resnet50"),
        ("resnet-50 please", "resnet50"),
        ("resnet 50", "resnet50"),
        ("레즈넷50으로 분류", "resnet50"),
        ("레스넷50", "resnet50"),
        ("small cnn으로 빠르게", "small_cnn"),
        ("YOLOv8 nano로 탐지", "yolov8n"),
        ("yolov8n", "yolov8n"),
        ("v8n으로", "yolov8n"),
        ("yolov8s 써줘", "yolov8s"),
        ("v8 small", "yolov8s"),
        ("efficientnet_v2_s로 분류", "efficientnet_v2_s"),
        ("use vit_l_16", "vit_l_16"),
        ("convnext_tiny", "convnext_tiny"),
        ("regnety_040 모델", "regnety_040"),
        ("yolo11n으로 탐지", "yolo11n"),
    ] {
        assert_eq!(model(m).as_deref(), Some(id), "{m}");
    }
}

#[test]
fn model_implies_nothing_about_other_fields() {
    let i = p("resnet 50");
    assert_eq!(i.num_classes, None);
    assert_eq!(i.epochs, None);
}

#[test]
fn class_counts() {
    for (m, n) in [
        ("3종류", 3),
        ("세 종류 분류", 3),
        ("네 가지로 나눠줘", 4),
        ("여섯 개 클래스", 6),
        ("10개 클래스", 10),
        ("three classes", 3),
        ("3 categories", 3),
        ("스무 가지", 20),
        ("열두 종류", 12),
        ("twenty-one classes", 21),
        ("binary classification", 2),
        ("이진 분류", 2),
    ] {
        assert_eq!(count(m), Some(n), "{m}");
    }
}

#[test]
fn class_lists() {
    for (m, expected) in [
        ("치즈, 나비, 츄르", vec!["치즈", "나비", "츄르"]),
        ("치즈, 나비, 츄르야", vec!["치즈", "나비", "츄르"]),
        ("apples and pears", vec!["apples", "pears"]),
        ("사자랑 호랑이", vec!["사자", "호랑이"]),
        ("cats, dogs, and birds", vec!["cats", "dogs", "birds"]),
        (
            "classify apples and pears with resnet18",
            vec!["apples", "pears"],
        ),
        (
            "고양이 치즈, 나비, 츄르 3종류 분류해줘",
            vec!["치즈", "나비", "츄르"],
        ),
        (
            "Persian, Siamese, Sphynx",
            vec!["Persian", "Siamese", "Sphynx"],
        ),
    ] {
        assert_eq!(names(m), expected, "{m}");
    }
}

#[test]
fn hyperparameters() {
    let i = p("50 에폭, 배치 16, 학습률 0.0003, 아담, 이미지 크기 128");
    assert_eq!(i.epochs.unwrap().value, 50);
    assert_eq!(i.batch_size.unwrap().value, 16);
    assert_eq!(i.learning_rate.unwrap().value, 0.0003);
    assert_eq!(i.optimizer.unwrap().value, Optimizer::Adam);
    assert_eq!(i.image_size.unwrap().value, [128, 128]);

    let i = p("epochs 20, batch size 32, lr=3e-4, adamw, 224x224");
    assert_eq!(i.epochs.unwrap().value, 20);
    assert_eq!(i.batch_size.unwrap().value, 32);
    assert_eq!(i.learning_rate.unwrap().value, 3e-4);
    assert_eq!(i.optimizer.unwrap().value, Optimizer::AdamW);
    assert_eq!(i.image_size.unwrap().value, [224, 224]);

    assert_eq!(p("20 epochs with sgd").epochs.unwrap().value, 20);
    assert_eq!(
        p("20 epochs with sgd").optimizer.unwrap().value,
        Optimizer::Sgd
    );
    assert_eq!(p("learning rate 1e-3").learning_rate.unwrap().value, 1e-3);
    assert_eq!(p("0.001로 해줘").learning_rate.unwrap().value, 0.001);
    assert_eq!(p("에폭은 50으로 바꿔줘").epochs.unwrap().value, 50);
    assert_eq!(p("epochs 20으로 바꿔줘").epochs.unwrap().value, 20);
}

#[test]
fn datasets_by_id_and_name() {
    assert_eq!(dataset("ds_123 써줘").as_deref(), Some("ds_123"));
    assert_eq!(dataset("use my cats dataset").as_deref(), Some("ds_123"));
    assert_eq!(dataset("고양이 데이터셋으로").as_deref(), Some("ds_456"));
    assert!(dataset("ds_999로 해줘").unwrap().contains("NotFound"));
    assert_eq!(dataset("ResNet50으로 고양이 3종류 분류"), None);
}

#[test]
fn mixed_korean_and_english() {
    let i = p("resnet18로 cats, dogs, birds 3 classes 분류, epochs 30, ds_123 써줘");
    assert_eq!(i.model.unwrap().value, "resnet18");
    assert_eq!(i.num_classes.unwrap().value, 3);
    assert_eq!(i.class_names.unwrap().value, ["cats", "dogs", "birds"]);
    assert_eq!(i.epochs.unwrap().value, 30);
    assert_eq!(i.task_type.unwrap().value, TaskType::Classification);
    assert!(matches!(i.dataset.unwrap().value, DatasetMention::Matched { id } if id == "ds_123"));
}

#[test]
fn unsupported_model_is_kept() {
    let i = p("EfficientNetV2-S로 꽃 5종류 분류");
    assert_eq!(i.model.unwrap().value, "efficientnet_v2_s");
    assert_eq!(i.num_classes.unwrap().value, 5);
}

#[test]
fn commands() {
    assert_eq!(p("시작해줘").commands, [Command::Start]);
    assert_eq!(p("start training").commands, [Command::Start]);
    assert_eq!(p("start_training").commands, [Command::Start]);
    assert_eq!(p("네").commands, [Command::Start]);
    assert_eq!(p("edit_config").commands, [Command::Edit]);
    assert_eq!(p("추천해줘").commands, [Command::UseDefault]);
    assert!(p("네 가지 분류").commands.is_empty());
    assert!(p("어떻게 시작하면 될까요?").commands.is_empty());
    assert!(p("how do I start?").commands.is_empty());
    assert_eq!(p("학습 시작").commands, [Command::Start]);
    assert_eq!(p("시작!").commands, [Command::Start]);
}

#[test]
fn nothing_understood() {
    let i = p("안녕하세요");
    assert!(i.is_empty());
    assert_eq!(i.confidence, 0.0);
}

#[test]
fn fill_missing_keeps_own_fields() {
    let mut rules = p("resnet18로 분류");
    let mut other = p("resnet50, 3 classes, start training");
    other.model = Some(Extracted::new("resnet50".into(), 0.99));
    rules.fill_missing(&other);
    assert_eq!(rules.model.unwrap().value, "resnet18");
    assert_eq!(rules.num_classes.unwrap().value, 3);
    assert_eq!(rules.commands, [Command::Start]);
}

#[test]
fn rules_compile() {
    self_check().unwrap();
}

#[test]
fn numbers_round_trip_by_counter() {
    for n in 1..=99u64 {
        assert_eq!(count(&format!("{n}종류")), Some(n), "{n}종류");
        assert_eq!(
            count(&format!("{} 종류", korean_native(n))),
            Some(n),
            "{}",
            korean_native(n)
        );
        assert_eq!(
            count(&format!("{} classes", english_words(n))),
            Some(n),
            "{}",
            english_words(n)
        );
        if n >= 10 {
            assert_eq!(
                count(&format!("{} 가지", korean_sino(n))),
                Some(n),
                "{}",
                korean_sino(n)
            );
        }
    }
}

proptest! {
    #[test]
    fn never_panics(message in "\\PC{0,200}") {
        let i = parse(&message, &ctx());
        prop_assert!((0.0..=1.0).contains(&i.confidence));
    }

    #[test]
    fn never_panics_on_near_miss_text(
        message in "[a-z0-9가-힣ㄱ-ㅎ ,._=:x×\\-]{0,80}"
    ) {
        let _ = parse(&message, &ctx());
    }

    #[test]
    fn counts_round_trip(n in 1u64..=99, form in 0usize..4) {
        let message = match form {
            0 => format!("{n}개 클래스"),
            1 => format!("{} 가지로 분류", korean_native(n)),
            2 => format!("{} categories", english_words(n)),
            _ => format!("{n} classes"),
        };
        prop_assert_eq!(count(&message), Some(n), "{}", message);
    }

    #[test]
    fn epochs_round_trip(n in 1u64..=1000) {
        prop_assert_eq!(p(&format!("{n} 에폭")).epochs.map(|e| e.value), Some(n));
        prop_assert_eq!(p(&format!("epochs {n}")).epochs.map(|e| e.value), Some(n));
    }
}

#[test]
fn model_ids_from_names() {
    let ctx = ctx();
    assert_eq!(model_id("resnet50", &ctx).as_deref(), Some("resnet50"));
    assert_eq!(model_id("ResNet-50", &ctx).as_deref(), Some("resnet50"));
    assert_eq!(model_id("YOLOv8 nano", &ctx).as_deref(), Some("yolov8n"));
    assert_eq!(
        model_id("convnext_tiny", &ctx).as_deref(),
        Some("convnext_tiny")
    );
    assert_eq!(model_id("my-own-net", &ctx), None);
    assert!(crate::known_model_ids().any(|id| id == "efficientnet_v2_s"));
}
