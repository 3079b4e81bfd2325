//! API errors: a status code and a JSON body that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use slipway_store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing by that name.
    #[error("{kind} `{name}` not found")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The history could not be read.
    #[error("failed to read the run history: {0}")]
    Store(#[from] StoreError),
    /// A response could not be written.
    #[error("failed to encode the response: {0}")]
    Encode(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, reason) = match &self {
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "StoreUnavailable"),
            ApiError::Encode(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        // Kubernetes' Status shape, which kubectl and tkn users read.
        let body = json!({
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "reason": reason,
            "message": self.to_string(),
            "code": status.as_u16(),
        });
        (status, Json(body)).into_response()
    }
}
