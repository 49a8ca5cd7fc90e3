//! One module per subcommand.

pub mod bench;
pub mod config;
pub mod migrate;
pub mod openapi;
pub mod serve;
pub mod user;
