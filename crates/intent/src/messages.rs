//! Every sentence the dialogue says, in Korean and English.

use domain::DatasetStatus;
use domain::dataset::TaskType;

use crate::hangul::josa;
use crate::hyper::Limit;
use crate::lang::Language;
use crate::reply::Field;

/// Name of a task.
pub(crate) fn task_name(lang: Language, task: TaskType) -> &'static str {
    match task {
        TaskType::Classification => lang.pick("분류", "classification"),
        TaskType::Detection => lang.pick("탐지", "detection"),
        TaskType::Segmentation => lang.pick("세그멘테이션", "segmentation"),
    }
}

/// Name of a dataset state.
fn status_name(lang: Language, status: DatasetStatus) -> &'static str {
    match status {
        DatasetStatus::Processing => lang.pick("아직 처리 중", "still processing"),
        DatasetStatus::Ready => lang.pick("준비됨", "ready"),
        DatasetStatus::Failed => lang.pick("처리에 실패한 상태", "failed"),
    }
}

/// Name of a field in a sentence.
fn field_name(lang: Language, field: Field) -> &'static str {
    match field {
        Field::TaskType => lang.pick("작업 종류", "task"),
        Field::ModelName => lang.pick("모델", "model"),
        Field::NumClasses => lang.pick("클래스 수", "number of classes"),
        Field::ClassNames => lang.pick("클래스 이름", "class names"),
        Field::Dataset => lang.pick("데이터셋", "dataset"),
        Field::Epochs => lang.pick("에폭", "epochs"),
        Field::BatchSize => lang.pick("배치 크기", "batch size"),
        Field::LearningRate => lang.pick("학습률", "learning rate"),
        Field::Optimizer => lang.pick("옵티마이저", "optimizer"),
        Field::ImageSize => lang.pick("이미지 크기", "image size"),
    }
}

/// Opening line of a clarification: what will be built, as far as known.
pub(crate) fn summary(
    lang: Language,
    model: Option<&str>,
    num_classes: Option<u64>,
    task: Option<TaskType>,
) -> String {
    let Some(task) = task else {
        return lang
            .pick("몇 가지만 확인할게요.", "A few questions first.")
            .to_string();
    };
    match lang {
        Language::Ko => {
            let model = model
                .map(|m| format!("{} ", josa(m, "으로", "로", true)))
                .unwrap_or_default();
            let count = num_classes.map(|n| format!("{n}종류 ")).unwrap_or_default();
            let task = task_name(lang, task);
            format!("좋아요! {model}{count}{task} 모델을 만들어드릴게요. 몇 가지만 확인할게요.")
        }
        Language::En => {
            let count = num_classes
                .map(|n| format!("{n}-class "))
                .unwrap_or_default();
            let model = model.map(|m| format!(" with {m}")).unwrap_or_default();
            let task = task_name(lang, task);
            format!("Great! I'll build a {count}{task} model{model}. A few questions first.")
        }
    }
}

/// Which task.
pub(crate) fn ask_task(lang: Language) -> String {
    lang.pick(
        "어떤 작업을 할까요? 이미지 분류와 객체 탐지를 학습할 수 있어요.",
        "What should the model do? I can train image classification and object detection.",
    )
    .to_string()
}

/// Which model, none named.
pub(crate) fn ask_model(lang: Language, task: TaskType, suggestions: &[String]) -> String {
    let list = suggestions.join(", ");
    match lang {
        Language::Ko => format!(
            "어떤 모델을 쓸까요? {} 모델로는 {} 추천해요.",
            task_name(lang, task),
            josa(&list, "을", "를", false)
        ),
        Language::En => {
            format!(
                "Which model should I use? For {} I recommend {list}.",
                task_name(lang, task)
            )
        }
    }
}

/// The named model cannot be trained.
pub(crate) fn ask_supported_model(lang: Language, model: &str, suggestions: &[String]) -> String {
    let list = suggestions.join(", ");
    match lang {
        Language::Ko => format!(
            "{} 아직 학습할 수 없어요. 지원되는 비슷한 모델 중에서 골라 주세요: {list}",
            josa(model, "은", "는", false)
        ),
        Language::En => format!(
            "{model} cannot be trained on this platform yet. Please pick a supported model instead: {list}"
        ),
    }
}

/// The named model is for another task.
pub(crate) fn ask_model_for_task(
    lang: Language,
    model: &str,
    model_task: TaskType,
    task: TaskType,
    suggestions: &[String],
) -> String {
    let list = suggestions.join(", ");
    let (mt, t) = (task_name(lang, model_task), task_name(lang, task));
    match lang {
        Language::Ko => format!(
            "{} {mt} 모델이라 {t}에는 쓸 수 없어요. 어떤 모델로 할까요? ({list})",
            josa(model, "은", "는", false)
        ),
        Language::En => {
            format!("{model} is a {mt} model, not a {t} one. Which model should I use? ({list})")
        }
    }
}

/// The task has no trainable model.
pub(crate) fn ask_trainable_task(lang: Language, task: TaskType, suggestions: &[String]) -> String {
    let list = suggestions.join(", ");
    match lang {
        Language::Ko => format!(
            "{} 모델 학습은 아직 지원하지 않아요. 학습할 수 있는 모델: {list}",
            task_name(lang, task)
        ),
        Language::En => format!(
            "Training {} models is not supported yet. Models I can train: {list}",
            task_name(lang, task)
        ),
    }
}

/// Which classes.
pub(crate) fn ask_class_names(lang: Language, num_classes: Option<u64>) -> String {
    match (lang, num_classes) {
        (Language::Ko, Some(n)) => {
            format!("{n}종류가 구체적으로 어떤 클래스인가요? 쉼표로 구분해 알려 주세요. (예: 사과, 배, 귤)")
        }
        (Language::Ko, None) => {
            "어떤 클래스로 나눌까요? 쉼표로 구분해 알려 주세요. (예: 사과, 배, 귤)".to_string()
        }
        (Language::En, Some(n)) => {
            format!("Which are the {n} classes? Please list them, separated by commas (e.g. cat, dog, bird).")
        }
        (Language::En, None) => {
            "Which classes should the model tell apart? Please list them, separated by commas (e.g. cat, dog, bird).".to_string()
        }
    }
}

/// A classifier needs two classes.
pub(crate) fn ask_more_classes(lang: Language) -> String {
    lang.pick(
        "분류하려면 클래스가 2개 이상 필요해요. 어떤 클래스들인가요?",
        "A classifier needs at least two classes. Which classes are there?",
    )
    .to_string()
}

/// The count and the names disagree.
pub(crate) fn ask_count_mismatch(lang: Language, num_classes: u64, names: &[String]) -> String {
    let (k, list) = (names.len(), names.join(", "));
    match lang {
        Language::Ko => format!(
            "{num_classes}종류라고 하셨는데 클래스 이름은 {k}개({list})예요. 클래스 이름을 모두 알려 주시거나, {k}종류로 진행할까요?"
        ),
        Language::En => format!(
            "You said {num_classes} classes but named {k} ({list}). Please list all the classes, or shall I use {k}?"
        ),
    }
}

/// The names differ from the dataset's classes.
pub(crate) fn ask_dataset_classes(
    lang: Language,
    dataset: &str,
    classes: &[String],
    names: &[String],
) -> String {
    let (dc, given) = (classes.join(", "), names.join(", "));
    match lang {
        Language::Ko => format!(
            "데이터셋 '{dataset}'의 클래스는 {dc}예요. 말씀하신 클래스({given})와 달라요. 데이터셋의 클래스로 학습할까요?"
        ),
        Language::En => format!(
            "Dataset '{dataset}' has the classes {dc}, not {given}. Shall I train on the dataset's classes?"
        ),
    }
}

/// The count differs from the dataset's classes.
pub(crate) fn ask_dataset_count(
    lang: Language,
    dataset: &str,
    classes: &[String],
    num_classes: u64,
) -> String {
    let (k, dc) = (classes.len(), classes.join(", "));
    match lang {
        Language::Ko => format!(
            "데이터셋 '{dataset}'에는 클래스가 {k}개({dc}) 있어요. {num_classes}종류로 하시려면 다른 데이터셋을 골라 주세요. {k}종류로 진행할까요?"
        ),
        Language::En => format!(
            "Dataset '{dataset}' has {k} classes ({dc}), not {num_classes}. Shall I use {k}, or will you pick another dataset?"
        ),
    }
}

/// Which dataset.
pub(crate) fn ask_dataset(lang: Language, any_ready: bool) -> String {
    match (lang, any_ready) {
        (Language::Ko, true) => "데이터셋은 어디에 있나요? 업로드한 데이터셋 중에서 골라 주세요.",
        (Language::Ko, false) => {
            "데이터셋은 어디에 있나요? 아직 준비된 데이터셋이 없어요. 먼저 데이터셋을 업로드해 주세요 (POST /api/v1/datasets/upload)."
        }
        (Language::En, true) => "Which dataset should I train on? Pick one of your uploaded datasets.",
        (Language::En, false) => {
            "Which dataset should I train on? You have no ready dataset yet; please upload one first (POST /api/v1/datasets/upload)."
        }
    }
    .to_string()
}

/// The named dataset does not exist.
pub(crate) fn ask_dataset_not_found(lang: Language, written: &str) -> String {
    match lang {
        Language::Ko => format!("'{written}' 데이터셋을 찾을 수 없어요. 어떤 데이터셋을 쓸까요?"),
        Language::En => format!("I can't find a dataset '{written}'. Which dataset should I use?"),
    }
}

/// Several datasets fit.
pub(crate) fn ask_dataset_ambiguous(lang: Language, names: &[String]) -> String {
    let list = names.join(", ");
    match lang {
        Language::Ko => format!("여러 데이터셋이 해당돼요: {list}. 어느 것을 쓸까요?"),
        Language::En => format!("Several datasets match: {list}. Which one should I use?"),
    }
}

/// The dataset cannot be trained on yet.
pub(crate) fn ask_dataset_ready(lang: Language, name: &str, status: DatasetStatus) -> String {
    let state = status_name(lang, status);
    match lang {
        Language::Ko => format!(
            "데이터셋 {} {state}이에요. 준비된(ready) 데이터셋을 골라 주세요.",
            josa(&format!("'{name}'"), "은", "는", false)
        ),
        Language::En => format!("Dataset '{name}' is {state}. Please pick a ready dataset."),
    }
}

/// A value is out of range.
pub(crate) fn ask_in_range(lang: Language, limit: &Limit, value: &str) -> String {
    let name = field_name(lang, limit.field);
    let (min, max) = (limit.min, limit.max);
    match lang {
        Language::Ko => format!(
            "{} {min}~{max} 사이여야 해요 (받은 값: {value}). 얼마로 할까요?",
            josa(name, "은", "는", false)
        ),
        Language::En => {
            format!("The {name} must be between {min} and {max} (got {value}). What should it be?")
        }
    }
}

/// The configuration is complete.
pub(crate) fn complete(lang: Language) -> &'static str {
    lang.pick(
        "모든 설정이 완료되었습니다! 학습을 시작하시겠어요?",
        "Everything is set! Shall I start training?",
    )
}

/// Training is about to start.
pub(crate) fn starting(lang: Language) -> &'static str {
    lang.pick("학습을 시작할게요!", "Starting training!")
}

/// Training started as this workflow.
pub(crate) fn started(lang: Language, workflow_id: &str) -> String {
    match lang {
        Language::Ko => {
            format!("학습을 시작했어요! 워크플로우 {workflow_id}에서 진행 상황을 볼 수 있어요.")
        }
        Language::En => format!("Training started! Follow its progress in workflow {workflow_id}."),
    }
}

/// What to edit.
pub(crate) fn edit(lang: Language) -> &'static str {
    lang.pick(
        "어떤 설정을 바꿀까요? 예: '에폭 50으로 바꿔줘', '배치 16', '학습률 0.0003'",
        "What would you like to change? For example: 'epochs 50', 'batch size 16', 'lr 3e-4'.",
    )
}

/// Said before the questions when the message was not understood.
pub(crate) fn not_understood(lang: Language) -> &'static str {
    lang.pick("잘 이해하지 못했어요. ", "Sorry, I didn't catch that. ")
}

/// Said before the questions when the user asked to start too early.
pub(crate) fn before_start(lang: Language) -> &'static str {
    lang.pick(
        "학습을 시작하기 전에 확인할 것이 있어요. ",
        "Before training can start, a few things are missing. ",
    )
}

/// Label of the start action.
pub(crate) fn start_label(lang: Language) -> &'static str {
    lang.pick("학습 시작", "Start training")
}

/// Label of the edit action.
pub(crate) fn edit_label(lang: Language) -> &'static str {
    lang.pick("설정 수정", "Edit settings")
}
