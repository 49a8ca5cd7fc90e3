//! Object storage (local filesystem or S3-compatible) and object key layout.
