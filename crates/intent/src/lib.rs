//! Natural language → training configuration, for the chat API (`POST /api/v1/chat/message`).
//!
//! * [`parse`] reads one message — Korean, English or both, no LLM, no network — into a
//!   [`ParsedIntent`]: task, model (also models the platform cannot train), number and names of
//!   classes, dataset, epochs, batch size, learning rate, optimizer, image size, each with a
//!   confidence.
//! * [`Session`] carries a conversation: [`Session::handle`] merges each message's facts and
//!   returns a [`Reply`] — `clarification_needed` with questions, or `intent_complete` with the
//!   training config — serialised exactly as the platform API spec shows.
//!
//! The rules are data: phrase tables in `lexicon`, numerals in `numbers`, numeric keywords in
//! `numeric`, model families in `models`, Korean particles in `hangul`. Text is NFKC-normalised
//! and lowercased first, so full-width forms, decomposed Hangul and capitals all match.

#![warn(missing_docs)]

mod classes;
mod datasets;
mod dialogue;
pub mod eval;
mod hangul;
mod hyper;
mod intent;
mod lang;
mod lexicon;
mod messages;
mod models;
mod numbers;
mod numeric;
mod pattern;
mod reply;
mod text;

pub use datasets::{DatasetMention, DatasetRef};
pub use dialogue::{ChatMessage, Role, Session};
pub use domain::DatasetStatus;
pub use domain::dataset::TaskType;
pub use hyper::{Hyperparameters, LIMITS, Limit, Optimizer, limit};
pub use intent::{
    Command, Extracted, ParseContext, ParsedIntent, model_id, parse, parse_answering, self_check,
};
pub use lang::Language;
pub use models::{ModelRef, default_catalogue, known_model_ids};
pub use numbers::{english_words, korean_native, korean_sino};
pub use reply::{
    Action, ActionType, Clarification, Completion, DatasetConfig, Field, IntentSummary, Question,
    Reply, TrainingConfig,
};
