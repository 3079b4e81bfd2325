//! Request bodies: only the types the API reads, no larger than it reads, and sent without long
//! pauses.
//!
//! Refusing other types also closes the door that `<form>` posts and `text/plain` fetches leave
//! open (a browser sends those cross-site without asking the server first). Bodies are read
//! whole here, before the handler, so that a client that stops sending gets a `408` after
//! [`crate::ServeOptions::body_timeout`] instead of holding the handler.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body_util::BodyExt;

use crate::{ApiError, AppState};

/// The largest body read (axum's default limit, which the API always had).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// The media types a request to `path` with `method` may carry.
fn accepted(method: &Method, path: &str) -> &'static [&'static str] {
    if path.starts_with("/hooks/") {
        // GitHub's form-encoded deliveries reach the handler, which says how to switch them
        // to JSON.
        return &["application/json", "application/x-www-form-urlencoded"];
    }
    if *method == Method::PATCH {
        // kubectl's patch types that mean a merge for the fields slipway patches.
        return &[
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json",
        ];
    }
    &["application/json", "application/yaml"]
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The middleware.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.size_hint().exact() == Some(0) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let accepted = accepted(&parts.method, parts.uri.path());
    let given = media_type(&parts.headers);
    if !given.as_deref().is_some_and(|t| accepted.contains(&t)) {
        return ApiError::UnsupportedMediaType(format!(
            "{} {} takes a body of type {}, not {}: set Content-Type",
            parts.method,
            parts.uri.path(),
            accepted.join(" or "),
            given.map_or_else(
                || "one without a Content-Type".to_string(),
                |t| format!("`{t}`")
            ),
        ))
        .into_response();
    }
    if body.size_hint().lower() > MAX_BODY as u64 {
        return too_large().into_response();
    }
    match read(body, state.body_timeout).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => e.into_response(),
    }
}

/// Reads a body whole: at most [`MAX_BODY`] bytes, each part within `pause` of the last.
async fn read(mut body: Body, pause: Duration) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    loop {
        let frame = match tokio::time::timeout(pause, body.frame()).await {
            Err(_) => {
                return Err(ApiError::Timeout(format!(
                    "the request's body stopped arriving for {}: send it whole without pauses",
                    humantime::format_duration(pause)
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::BadRequest(format!(
                    "failed to read the request's body: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "the request's body is larger than {} MiB, the most this server reads: split the definitions into several requests",
        MAX_BODY / (1024 * 1024)
    ))
}
