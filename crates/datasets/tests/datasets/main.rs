//! Integration tests of the `datasets` crate: real datasets in every format, built on the fly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod archives;
mod bench;
mod fixtures;
mod formats;
mod images;
mod roundtrip;
mod validation;
