//! API tokens: API requests need `Authorization: Bearer TOKEN` (unless the server runs with
//! `--no-auth`); reads need the `read` or `write` scope, changes `write`. Health, metrics, the
//! OpenAPI document, the UI's files and webhooks (which carry their own secrets) stay open.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Whether the API asks for tokens. Fixed when the server starts: revoking the last token
/// leaves an API nobody can use, never an open one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Every API request needs a known token (no token known: nobody gets in).
    #[default]
    Tokens,
    /// No token is asked for (`slipway serve --no-auth`).
    Off,
}

/// The token a request came with, for handlers that hold on (log streams re-check it).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's hash, as stored.
    pub hash: String,
    /// Its name.
    pub name: String,
    /// Its scope.
    pub scope: String,
}

/// The hex SHA-256 of a token, as stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token: `slw_` and 64 hex digits from the OS's random source.
pub fn generate() -> String {
    format!(
        "slw_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn open_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/healthz" | "/readyz" | "/metrics" | "/openapi.json"
    ) || path == "/ui"
        || path.starts_with("/ui/")
        || path.starts_with("/hooks/")
}

/// The stored token with this hash, read now: a token revoked by another process (`slipway
/// token revoke` writes the same SQLite file) stops working at the next request.
async fn lookup(state: &AppState, hash: &str) -> Result<Option<Principal>, ApiError> {
    Ok(state
        .store
        .tokens()
        .await?
        .into_iter()
        .find(|t| t.hash == hash)
        .map(|t| Principal {
            hash: t.hash,
            name: t.name,
            scope: t.scope,
        }))
}

/// Whether `principal`'s token is still stored (a store error counts as no).
pub async fn still_valid(state: &AppState, principal: &Principal) -> bool {
    matches!(lookup(state, &principal.hash).await, Ok(Some(_)))
}

/// The middleware.
pub async fn check(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if state.auth == Mode::Off || open_path(req.uri().path()) {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::Unauthorized(
            "this server needs an API token: send `Authorization: Bearer TOKEN` (the admin token was printed when the server first started; make another with `slipway token create NAME`)".into(),
        )
        .into_response();
    };
    let hashed = hash(token);
    let principal = match lookup(&state, &hashed).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return ApiError::Unauthorized(
                "the API token is not known (revoked, or mistyped); `slipway token list` on the server shows the valid ones".into(),
            )
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reading && principal.scope != "write" {
        return ApiError::Forbidden(format!(
            "the token has the `{}` scope; {} needs `write`",
            principal.scope,
            req.method()
        ))
        .into_response();
    }
    // Tokens limited to namespaces: see `access`.
    if let Err(e) = crate::access::admit(&state, &hashed, &mut req).await {
        return e.into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// `GET /api/v1/whoami`: the token's name and scope (what the web UI's login checks).
pub async fn whoami(State(state): State<AppState>, req: Request) -> Json<Value> {
    Json(match req.extensions().get::<Principal>() {
        Some(p) => json!({ "auth": "token", "name": p.name, "scope": p.scope }),
        None if state.auth == Mode::Off => json!({ "auth": "off", "scope": "write" }),
        None => json!({ "auth": "token" }),
    })
}
