//! `/auth/*` bodies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/token` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Account e-mail.
    #[schema(example = "user@example.com")]
    pub email: String,
    /// Account password.
    #[schema(example = "securepassword123")]
    pub password: String,
}

/// `POST /auth/token` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Bearer token for `Authorization: Bearer …`.
    pub access_token: String,
    /// Single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Access token lifetime in seconds.
    #[schema(example = 3600)]
    pub expires_in: u64,
}

/// `POST /auth/refresh` and `POST /auth/revoke` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token from `/auth/token` or a previous refresh.
    pub refresh_token: String,
}

/// `POST /auth/refresh` response. Refresh tokens are single use, so a new one is returned too.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RefreshResponse {
    /// New bearer token.
    pub access_token: String,
    /// Replacement refresh token (the presented one is used up).
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
}

/// `POST /auth/register` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// E-mail address, used to log in (surrounding white space is trimmed).
    #[schema(example = "user@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// Display name, 1–100 characters.
    #[schema(
        example = "홍길동",
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
}

/// `POST /auth/register` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RegisterResponse {
    /// `user_…` id.
    pub user_id: String,
    /// Normalised e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Plan (`free`, `pro`, `enterprise`).
    pub plan: String,
}
