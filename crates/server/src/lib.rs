//! HTTP server: axum router, extractors, error envelopes, rate limits, OpenAPI.
