//! One module per subcommand.

pub mod bench;
pub mod config;
pub mod eval_intent;
pub mod migrate;
pub mod openapi;
pub mod segment;
pub mod segment_backend;
pub mod serve;
pub mod train;
pub mod user;
pub mod worker;
