//! The OpenAPI 3.1 document of the API, served at `/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

fn status_ref() -> Value {
    json!({"description": "A Kubernetes Status naming the problem",
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}})
}

fn object(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Object"}}}})
}

fn param(name: &str, place: &str, description: &str, kind: &str) -> Value {
    json!({"name": name, "in": place, "required": place == "path",
           "description": description, "schema": {"type": kind}})
}

/// The document.
pub fn document() -> Value {
    let ns = param(
        "namespace",
        "path",
        "Namespace (runs are not namespaced locally; any name works)",
        "string",
    );
    let name = param("name", "path", "Run name, uid or uid prefix", "string");
    let limit = param(
        "limit",
        "query",
        "Most items to return (default 500)",
        "integer",
    );
    let list = |kind: &str| {
        json!({"get": {
            "summary": format!("List {kind}s, newest first"),
            "parameters": [ns, limit],
            "responses": {"200": object(&format!("A {kind}List")), "503": status_ref()}
        }})
    };
    let one = |kind: &str| {
        json!({"get": {
            "summary": format!("Get one {kind}"),
            "parameters": [ns, name],
            "responses": {"200": object(kind), "404": status_ref()}
        }})
    };
    let tekton = "/apis/tekton.dev/v1/namespaces/{namespace}";
    let mut paths = serde_json::Map::new();
    paths.insert(format!("{tekton}/pipelineruns"), list("PipelineRun"));
    paths.insert(
        format!("{tekton}/pipelineruns/{{name}}"),
        one("PipelineRun"),
    );
    paths.insert(format!("{tekton}/taskruns"), list("TaskRun"));
    paths.insert(format!("{tekton}/taskruns/{{name}}"), one("TaskRun"));
    paths.insert(
        "/api/v1/runs/{name}/taskruns".into(),
        json!({"get": {"summary": "A run's TaskRuns in start order",
                       "parameters": [name],
                       "responses": {"200": object("A TaskRunList"), "404": status_ref()}}}),
    );
    paths.insert(
        "/api/v1/runs/{name}/logs".into(),
        json!({"get": {
            "summary": "A run's logs: text, or Server-Sent Events until the run ends",
            "parameters": [
                name,
                param("task", "query", "Only this pipeline task (or TaskRun)", "string"),
                param("step", "query", "Only this step", "string"),
                param("follow", "query", "Stream `log` events live, then one `end` event", "boolean"),
            ],
            "responses": {
                "200": {"description": "`[task/step] line` per line, or an event stream",
                        "content": {"text/plain": {"schema": {"type": "string"}},
                                    "text/event-stream": {"schema": {"type": "string"}}}},
                "404": status_ref()
            }
        }}),
    );
    for (path, summary, kind) in [
        ("/healthz", "The process answers", "text/plain"),
        ("/readyz", "The run history can be read", "text/plain"),
        (
            "/metrics",
            "Prometheus metrics",
            "application/openmetrics-text",
        ),
        ("/openapi.json", "This document", "application/json"),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {"summary": summary,
                           "responses": {"200": {"description": summary,
                                                 "content": {kind: {"schema": {}}}}}}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "slipway", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Runs in Tekton's shapes, logs, health and metrics"},
        "paths": paths,
        "components": {"schemas": {
            "Object": {"type": "object", "description": "A Tekton object or list, as Tekton serves it"},
            "Status": {"type": "object", "required": ["kind", "status", "reason", "message", "code"],
                       "properties": {"kind": {"const": "Status"}, "status": {"const": "Failure"},
                                      "reason": {"type": "string"}, "message": {"type": "string"},
                                      "code": {"type": "integer"}}}
        }}
    })
}

/// `GET /openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}
