//! Accounts and tokens: registration, login, refresh-token rotation, access-token verification.

use crate::App;
use crate::error::{AppError, AppResult, FieldError, Validator};
use crate::ratelimit::Window;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{IdKind, Plan, User};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;
use store::RefreshUse;

const ISSUER: &str = "vision-platform";

/// The authenticated caller, taken from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user_…` id.
    pub user_id: String,
    /// Plan at the time the token was issued.
    pub plan: Plan,
}

/// A freshly issued access/refresh token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// Short-lived bearer token.
    pub access_token: String,
    /// Single-use token to obtain the next pair.
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    plan: Plan,
    typ: TokenType,
    iss: String,
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TokenType {
    Access,
    Refresh,
}

/// HS256 signing keys and lifetimes.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// HS256 only, our issuer, `exp`/`sub`/`iss` present; expiry is checked by `verify` itself
    /// so that an expired token gets its own message.
    validation: Validation,
    access_ttl: u64,
    refresh_ttl: u64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("secret", &"***").finish()
    }
}

impl TokenKeys {
    /// Keys from `secret` with the given lifetimes.
    pub fn new(secret: &[u8], access_ttl: u64, refresh_ttl: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation: {
                let mut validation = Validation::new(Algorithm::HS256);
                validation.validate_exp = false;
                validation.set_issuer(&[ISSUER]);
                validation.set_required_spec_claims(&["exp", "sub", "iss"]);
                validation
            },
            access_ttl,
            refresh_ttl,
        }
    }

    fn sign(&self, user: &User, typ: TokenType, now: DateTime<Utc>) -> AppResult<String> {
        let ttl = match typ {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: user.id.clone(),
            plan: user.plan,
            typ,
            iss: ISSUER.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            jti: IdKind::Request
                .new_id()
                .trim_start_matches("req_")
                .to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Verifies signature, algorithm (HS256 only), issuer and token type; expiry is checked here
    /// so the error can say when the token expired.
    fn verify(&self, token: &str, expected: TokenType) -> AppResult<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                tracing::debug!(error = %e, "token rejected");
                AppError::unauthorized("Invalid token")
            })?
            .claims;
        if claims.typ != expected {
            return Err(AppError::unauthorized("Invalid token type"));
        }
        if claims.exp <= Utc::now().timestamp() {
            let expired_at = Utc
                .timestamp_opt(claims.exp, 0)
                .single()
                .unwrap_or_else(Utc::now);
            let message = match expected {
                TokenType::Access => "Access token has expired",
                TokenType::Refresh => "Refresh token has expired",
            };
            return Err(AppError::Unauthorized {
                message: message.into(),
                details: json!({ "expired_at": expired_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }),
            });
        }
        Ok(claims)
    }

    /// Signs an access token for `user` as if issued at `issued_at` (tests, tools).
    pub fn access_token_at(&self, user: &User, issued_at: DateTime<Utc>) -> AppResult<String> {
        self.sign(user, TokenType::Access, issued_at)
    }
}

/// Reads the JWT secret from settings, else from `<data_dir>/jwt_secret`, generating and
/// persisting a random one (owner-only permissions) on first start.
pub fn load_or_create_secret(configured: &str, data_dir: &Path) -> AppResult<Vec<u8>> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir).map_err(AppError::internal)?;
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, &secret).map_err(AppError::internal)?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// Hashes a password with Argon2id on one of the hashing threads.
pub async fn hash_password(app: &App, password: String) -> AppResult<String> {
    app.hasher.hash(password).await
}

/// A valid hash of a random password, verified against when the e-mail is unknown so that
/// unknown and known accounts take the same time to refuse.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn dummy_hash() -> String {
    DUMMY_HASH
        .get_or_init(|| {
            SaltString::encode_b64(b"vision-dummy-salt")
                .ok()
                .and_then(|salt| {
                    let hash = Argon2::default()
                        .hash_password(b"not-a-password", &salt)
                        .ok()?;
                    Some(hash.to_string())
                })
                .unwrap_or_default()
        })
        .clone()
}

/// Lower-cases and trims an e-mail address.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

/// Fields of a new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// E-mail address (normalised before use).
    pub email: String,
    /// Clear-text password (at least 8 characters).
    pub password: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub plan: Plan,
}

/// Creates an account after validating its fields. `Conflict` when the e-mail is taken.
pub async fn create_account(app: &App, account: NewAccount) -> AppResult<User> {
    let email = normalize_email(&account.email);
    Validator::default()
        .check(valid_email(&email), || {
            FieldError::with_value(
                "email",
                "Must be a valid e-mail address",
                json!(account.email),
            )
        })
        .check(
            (8..=256).contains(&account.password.chars().count()),
            || FieldError::new("password", "Must be between 8 and 256 characters"),
        )
        .text("name", &account.name, 1, 100)
        .finish()?;
    let user = User {
        id: IdKind::User.new_id(),
        email,
        name: account.name.trim().to_owned(),
        plan: account.plan,
        password_hash: hash_password(app, account.password).await?,
        created_at: Utc::now(),
    };
    app.store.insert_user(&user).await.map_err(|e| match e {
        store::StoreError::Conflict(_) => AppError::Conflict {
            message: "An account with this e-mail already exists".into(),
            details: json!({ "field": "email" }),
        },
        other => other.into(),
    })?;
    tracing::info!(user_id = %user.id, plan = %user.plan, "account created");
    Ok(user)
}

/// Self-service registration with the configured default plan, unless disabled. Each client
/// address may register `auth.registrations_per_client_per_hour` times an hour: an open
/// endpoint that costs an Argon2 hash per call, and whose 409 for a taken e-mail answers
/// "does this address have an account" (unavoidable without an e-mail round trip, so it is
/// made slow to ask).
pub async fn register(
    app: &App,
    email: String,
    password: String,
    name: String,
    client: &str,
) -> AppResult<User> {
    if !app.settings.auth.allow_registration {
        return Err(AppError::Forbidden(
            "Registration is disabled on this server".into(),
        ));
    }
    let window = [Window::per_hour(
        app.settings.auth.registrations_per_client_per_hour,
    )];
    app.limiter
        .hit(&format!("register:client:{client}"), &window)
        .await
        .into_result()?;
    let plan = app.settings.auth.default_plan;
    create_account(
        app,
        NewAccount {
            email,
            password,
            name,
            plan,
        },
    )
    .await
}

async fn issue_pair(app: &App, user: &User) -> AppResult<TokenPair> {
    let now = Utc::now();
    let access_token = app.tokens.sign(user, TokenType::Access, now)?;
    let refresh_token = app.tokens.sign(user, TokenType::Refresh, now)?;
    let expires_at = now + Duration::seconds(i64::try_from(app.tokens.refresh_ttl).unwrap_or(0));
    app.store
        .insert_refresh_token(&token_hash(&refresh_token), &user.id, expires_at)
        .await?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: app.tokens.access_ttl,
    })
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Exchanges e-mail and password for a token pair. Attempts are limited per account and per
/// client address: each is counted *before* the password is checked (atomically, so
/// concurrent guesses cannot overrun the limit) and handed back when it succeeds, so only
/// failures use up the allowance.
pub async fn login(app: &App, email: &str, password: String, client: &str) -> AppResult<TokenPair> {
    let email = normalize_email(email);
    let auth = &app.settings.auth;
    // The account's own limit is counted per client, so one guesser does not lock the owner
    // out from elsewhere; the account as a whole allows ten times as many, which stops guessing
    // spread over many addresses.
    let counters = [
        (
            format!("login:account:{email}:{client}"),
            [Window::per_minute(auth.login_failures_per_minute)],
        ),
        (
            format!("login:account:{email}"),
            [Window::per_minute(
                auth.login_failures_per_minute.saturating_mul(10),
            )],
        ),
        (
            format!("login:client:{client}"),
            [Window::per_minute(
                auth.login_failures_per_client_per_minute,
            )],
        ),
    ];
    for (i, (key, window)) in counters.iter().enumerate() {
        if let Err(refused) = app.limiter.hit(key, window).await.into_result() {
            // The attempts counted on the other keys did not happen.
            for (key, window) in &counters[..i] {
                app.limiter.refund(key, window).await;
            }
            tracing::info!("login refused: too many failed attempts");
            return Err(refused);
        }
    }
    let user = app.store.user_by_email(&email).await?;
    let hash = user
        .as_ref()
        .map_or_else(dummy_hash, |u| u.password_hash.clone());
    let verified = app.hasher.verify(password, hash).await?;
    match user {
        Some(user) if verified => {
            for (key, window) in &counters {
                app.limiter.refund(key, window).await;
            }
            issue_pair(app, &user).await
        }
        _ => {
            tracing::info!("login refused");
            Err(AppError::unauthorized("Invalid email or password"))
        }
    }
}

/// Rotates a refresh token: the presented one is used up and a new pair is issued. Presenting a
/// used or revoked token revokes all of its owner's refresh tokens.
pub async fn refresh(app: &App, refresh_token: &str) -> AppResult<TokenPair> {
    let claims = app.tokens.verify(refresh_token, TokenType::Refresh)?;
    match app
        .store
        .use_refresh_token(&token_hash(refresh_token), Utc::now())
        .await?
    {
        RefreshUse::Accepted(user_id) if user_id == claims.sub => {
            let user = app
                .store
                .user_by_id(&user_id)
                .await?
                .ok_or_else(|| AppError::unauthorized("Account no longer exists"))?;
            issue_pair(app, &user).await
        }
        RefreshUse::Replayed(user_id) => {
            tracing::warn!(%user_id, "refresh token replayed: all refresh tokens revoked");
            Err(AppError::unauthorized(
                "Refresh token has already been used or revoked",
            ))
        }
        _ => Err(AppError::unauthorized("Invalid refresh token")),
    }
}

/// Revokes one of the caller's refresh tokens (logout).
pub async fn revoke(app: &App, principal: &Principal, refresh_token: &str) -> AppResult<()> {
    if app
        .store
        .revoke_refresh_token(&principal.user_id, &token_hash(refresh_token))
        .await?
    {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            "refresh_token",
            "Not a live refresh token of this account",
        ))
    }
}

/// Verifies a bearer access token.
pub fn authenticate(app: &App, access_token: &str) -> AppResult<Principal> {
    let claims = app.tokens.verify(access_token, TokenType::Access)?;
    Ok(Principal {
        user_id: claims.sub,
        plan: claims.plan,
    })
}
