//! API errors: a status code and a JSON body that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
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
    /// The request cannot be understood (not YAML, wrong kind, name mismatch...).
    #[error("{0}")]
    BadRequest(String),
    /// The objects in the request are invalid; `diagnostics` says where (line and column).
    #[error("{message}")]
    Invalid {
        /// A summary.
        message: String,
        /// One entry per problem, from [`crate::diagnostics`].
        diagnostics: Vec<Value>,
    },
    /// The object exists already, or the run is in a state that forbids the request.
    #[error("{0}")]
    Conflict(String),
    /// No token, or an unknown one.
    #[error("{0}")]
    Unauthorized(String),
    /// The token lacks the scope.
    #[error("{0}")]
    Forbidden(String),
    /// This server does not start runs (read-only).
    #[error("this server does not start runs")]
    ReadOnly,
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
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::ReadOnly => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "StoreUnavailable"),
            ApiError::Encode(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        // Kubernetes' Status shape, which kubectl and tkn users read.
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "reason": reason,
            "message": self.to_string(),
            "code": status.as_u16(),
        });
        if let ApiError::Invalid { diagnostics, .. } = &self {
            let causes: Vec<Value> = diagnostics
                .iter()
                .map(|d| {
                    json!({
                        "reason": "FieldValueInvalid",
                        "message": d["message"],
                        "field": format!("{}:{}", d["line"], d["column"]),
                    })
                })
                .collect();
            body["details"] = json!({ "causes": causes });
            body["diagnostics"] = json!(diagnostics);
        }
        (status, Json(body)).into_response()
    }
}
