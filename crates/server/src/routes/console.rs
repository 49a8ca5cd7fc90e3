//! The web console: plain ES modules from `crates/server/console/`, embedded at compile time
//! (read from disk in debug builds, so edits need no rebuild).
//!
//! `/` serves `index.html` with `{{BASE}}` replaced by `/console/<hash>`, where `<hash>` is
//! derived from every embedded file's sha256: asset URLs change whenever any file does, so
//! assets are served as immutable and `index.html` is never cached. The console talks only to
//! this origin, which its Content-Security-Policy enforces.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "console/"]
struct Files;

/// Prefix of asset URLs.
const PREFIX: &str = "/console/";

/// The console's policy: nothing but this origin, no inline script or style, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The console's routes (`/` and `/console/{hash}/{*path}`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/console/{build}/{*path}", get(asset))
        .layer(tower_http::compression::CompressionLayer::new())
}

/// A hash of every embedded file (names and contents), computed once.
fn build_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut names: Vec<_> = Files::iter().collect();
        names.sort();
        let mut hasher = Sha256::new();
        for name in names {
            hasher.update(name.as_bytes());
            if let Some(file) = Files::get(&name) {
                hasher.update(file.metadata.sha256_hash());
            }
        }
        hex::encode(&hasher.finalize()[..6])
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn index() -> Response {
    let Some(file) = Files::get("index.html") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let base = format!("{PREFIX}{}", build_hash());
    let html = String::from_utf8_lossy(&file.data).replace("{{BASE}}", &base);
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

async fn asset(Path((build, path)): Path<(String, String)>) -> Response {
    let Some(file) = Files::get(&path).filter(|_| path != "index.html") else {
        return crate::envelope::error_for_path(
            &format!("{PREFIX}{build}/{path}"),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No console file {path}"),
            serde_json::json!({ "path": path }),
        );
    };
    // An old page asking for another build's file gets today's, but must not keep it.
    let immutable = build == build_hash() && !cfg!(debug_assertions);
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", hex::encode(file.metadata.sha256_hash())))
            .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_embedded() {
        let index = Files::get("index.html").expect("index.html is embedded");
        let html = String::from_utf8_lossy(&index.data);
        let named: Vec<&str> = html
            .split("{{BASE}}/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(named.contains(&"js/main.js"), "{named:?}");
        for path in named {
            assert!(Files::get(path).is_some(), "{path} is not embedded");
        }
        assert_eq!(build_hash().len(), 12);
    }
}
