//! The web UI: static pages from `assets/`, embedded in release builds.
//!
//! Debug builds read the files from disk at each request (rust-embed's default), so the pages can
//! be edited without rebuilding; release builds carry them, so running slipway needs no Node.js.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

/// `/` redirects to the UI; `/ui/...` serves its files, and unknown paths under it get the app
/// page so that links into the app (`/ui/runs/NAME`) survive a reload.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{*path}",
            get(|Path(p): Path<String>| async move { asset(&p) }),
        )
}

fn asset(path: &str) -> Response {
    let file = match Assets::get(path) {
        Some(f) => f,
        // A path without an extension is a page of the app, not a file.
        None if !path.rsplit('/').next().unwrap_or("").contains('.') => {
            match Assets::get("index.html") {
                Some(f) => f,
                None => return StatusCode::NOT_FOUND.into_response(),
            }
        }
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let mime = file.metadata.mimetype().to_string();
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
