//! API tokens: once any token exists, API requests need `Authorization: Bearer TOKEN`; reads
//! need the `read` or `write` scope, changes `write`. Health, metrics, the OpenAPI document, the
//! UI's files and webhooks (which carry their own secrets) stay open.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// How long a loaded token list is trusted before it is read again (a revoked token stops
/// working within this time).
const FRESH: Duration = Duration::from_secs(2);

/// The token hashes the server accepts, cached.
#[derive(Debug, Default)]
pub struct Tokens {
    cache: Mutex<Option<(Instant, HashMap<String, String>)>>,
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

impl Tokens {
    async fn scopes(&self, state: &AppState) -> Result<HashMap<String, String>, ApiError> {
        if let Ok(c) = self.cache.lock()
            && let Some((at, map)) = c.as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(map.clone());
        }
        let map: HashMap<String, String> = state
            .store
            .tokens()
            .await?
            .into_iter()
            .map(|t| (t.hash, t.scope))
            .collect();
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((Instant::now(), map.clone()));
        }
        Ok(map)
    }
}

/// The middleware.
pub async fn check(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if open_path(req.uri().path()) {
        return next.run(req).await;
    }
    let scopes = match state.tokens.scopes(&state).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if scopes.is_empty() {
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
            "this server needs an API token: send `Authorization: Bearer TOKEN`".into(),
        )
        .into_response();
    };
    let hashed = hash(token);
    let Some(scope) = scopes.get(&hashed) else {
        return ApiError::Unauthorized("the API token is not known (revoked?)".into())
            .into_response();
    };
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reading && scope != "write" {
        return ApiError::Forbidden(format!(
            "the token has the `{scope}` scope; {} needs `write`",
            req.method()
        ))
        .into_response();
    }
    // Tokens limited to namespaces: see `access`.
    if let Err(e) = crate::access::admit(&state, &hashed, &mut req).await {
        return e.into_response();
    }
    next.run(req).await
}
