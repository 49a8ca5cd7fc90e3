//! Core types of the platform: ids, plans and limits, entities. No I/O.

pub mod dataset;
