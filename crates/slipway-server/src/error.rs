//! API errors: a status code and a JSON body that names the problem.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
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
    /// The request's body is of a type this endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request's body is larger than the server reads.
    #[error("{0}")]
    TooLarge(String),
    /// The client stopped sending its request.
    #[error("{0}")]
    Timeout(String),
    /// No endpoint has this path (`details.kind` is `route`, so that a client can tell a
    /// missing endpoint from a missing object).
    #[error("{0}")]
    NoRoute(String),
    /// Any other refusal with its own status code: the router's and extractors' (405, a bad
    /// query or path), reshaped into a `Status`.
    #[error("{message}")]
    Rejected {
        /// The code the refusal had.
        code: StatusCode,
        /// What it said.
        message: String,
    },
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
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "Timeout"),
            ApiError::Rejected { code, .. } => (*code, reason_of(*code)),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "NotFound"),
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
        if let ApiError::NoRoute(_) = &self {
            body["details"] = json!({ "kind": "route" });
        }
        if let ApiError::Invalid { diagnostics, .. } = &self {
            let causes: Vec<Value> = diagnostics
                .iter()
                .map(|d| {
                    json!({
                        "reason": "FieldValueInvalid",
                        "message": d["message"],
                        // Kubernetes names the field; the position is there too.
                        "field": d["field"].as_str().map(str::to_string)
                            .unwrap_or_else(|| format!("{}:{}", d["line"], d["column"])),
                    })
                })
                .collect();
            body["details"] = json!({ "causes": causes });
            body["diagnostics"] = json!(diagnostics);
        }
        (status, Json(body)).into_response()
    }
}

/// Kubernetes' `reason` for a status code.
fn reason_of(code: StatusCode) -> &'static str {
    match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::NOT_ACCEPTABLE => "NotAcceptable",
        StatusCode::REQUEST_TIMEOUT => "Timeout",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::GONE => "Gone",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        c if c.is_client_error() => "BadRequest",
        _ => "InternalError",
    }
}

/// The largest plain-text refusal read to be reshaped; the framework's are a line long.
const REFUSAL_TEXT: usize = 16 * 1024;

/// Middleware: every error answer is a `Status`. The API's own errors already are; what the
/// router and the extractors answer (an empty 405, a plain-text 400 for `?limit=abc`, a 413)
/// is reshaped here, keeping its code, its message and headers such as `Allow`.
pub async fn as_status(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let code = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(code.is_client_error() || code.is_server_error()) || json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REFUSAL_TEXT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match code {
        _ if !text.is_empty() => text,
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "{path} does not take {method}{}",
            parts
                .headers
                .get(header::ALLOW)
                .and_then(|a| a.to_str().ok())
                .map(|a| format!("; it takes {a}"))
                .unwrap_or_default()
        ),
        StatusCode::NOT_FOUND => format!("{path} not found"),
        _ => code.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut shaped = ApiError::Rejected { code, message }.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in parts.headers.iter() {
        shaped.headers_mut().insert(name.clone(), value.clone());
    }
    shaped
}

/// The answer to a path no route takes.
pub async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(format!(
        "no endpoint {} {}: the API's paths are listed in /openapi.json, the web UI is at /ui/",
        req.method(),
        req.uri().path()
    ))
}
