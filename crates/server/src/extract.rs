//! Extractors: JSON bodies with field-level errors, the authenticated caller, the client address.

use crate::error::ApiError;
use app::auth::Principal;
use app::{AppError, FieldError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::net::SocketAddr;

/// A JSON body. Malformed JSON is a 400 `INVALID_REQUEST` with line and column; missing fields,
/// unknown fields and wrong types are a 422 `VALIDATION_ERROR` naming the field; bodies over the
/// limit are a 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_content = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !json_content {
            return Err(ApiError::invalid_request(
                "Expected a JSON body",
                json!({ "field": "Content-Type", "reason": "must be application/json" }),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson).map_err(ApiError::from)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // The limit is not carried by the rejection; the message states it generally.
        ApiError::new(
            rejection.status(),
            "PAYLOAD_TOO_LARGE",
            "Request body is too large",
            json!({ "reason": rejection.body_text() }),
        )
    } else {
        ApiError::invalid_request(
            "Cannot read request body",
            json!({ "reason": rejection.body_text() }),
        )
    }
}

/// Deserialises `bytes` as `T`, classifying failures as the API reports them.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        classify(error.into_inner(), path)
    })?;
    deserializer
        .end()
        .map_err(|e| classify(e, ".".to_owned()))?;
    // Every body is a JSON object, as the document says; serde would also fill a struct from
    // an array of its fields in order (`[null, null]`), which no client means.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::Validation(vec![FieldError::new(
            "body",
            "invalid type: sequence, expected a JSON object",
        )]));
    }
    Ok(value)
}

fn classify(error: serde_json::Error, path: String) -> AppError {
    if error.is_syntax() || error.is_eof() {
        return AppError::InvalidRequest {
            message: "Malformed JSON".into(),
            details: json!({ "reason": error.to_string(), "line": error.line(), "column": error.column() }),
        };
    }
    let message = strip_position(&error.to_string());
    let field = named_field(&message)
        .map(|name| match path.as_str() {
            "." => name.to_owned(),
            // Unknown fields are already the last segment of the path.
            p if p == name || p.ends_with(&format!(".{name}")) => path.clone(),
            _ => format!("{path}.{name}"),
        })
        .unwrap_or_else(|| if path == "." { "body".to_owned() } else { path });
    AppError::Validation(vec![FieldError::new(field, message)])
}

/// serde's "missing field `x`" / "unknown field `x`, expected …" name the field in backticks.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned()
}

/// The caller, authenticated by the API guard.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| AppError::unauthorized("Missing bearer token").into())
    }
}

/// The client's address: the TCP peer, or what a trusted proxy reports in `X-Forwarded-For`
/// (resolved once per request by [`crate::context::request_context`]; `unknown` when not
/// served over TCP).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    /// Resolves the client of a request from its connection and headers.
    pub fn resolve(proxies: &app::client::TrustedProxies, parts: &Parts) -> Self {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Self("unknown".to_owned());
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Self(proxies.client(peer, &forwarded).to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .cloned()
            .unwrap_or_else(|| ClientAddr("unknown".to_owned())))
    }
}

/// A query string. One that does not parse (a letter where a number belongs, a number out of
/// the type's range) is a 400 `INVALID_REQUEST` in the error envelope, where axum's own
/// rejection would be plain text.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| ApiQuery(query))
            .map_err(|rejection| {
                ApiError::invalid_request(
                    "Invalid query string",
                    json!({ "reason": rejection.body_text() }),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        count: u32,
    }

    fn field_of(result: Result<Body, AppError>) -> String {
        match result {
            Err(AppError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn classifies_json_failures() {
        assert!(parse_json::<Body>(br#"{"email":"a","count":1}"#).is_ok());
        assert!(matches!(
            parse_json::<Body>(b"{\"email\":"),
            Err(AppError::InvalidRequest { .. })
        ));
        assert!(matches!(
            parse_json::<Body>(b"not json"),
            Err(AppError::InvalidRequest { .. })
        ));
        assert_eq!(field_of(parse_json(br#"{"email":"a"}"#)), "count");
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","count":"x"}"#)),
            "count"
        );
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","count":1,"zz":2}"#)),
            "zz"
        );
        assert_eq!(field_of(parse_json(br#""text""#)), "body");
    }
}
