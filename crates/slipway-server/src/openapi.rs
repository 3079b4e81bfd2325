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

/// A run's own operations, under `/api/v1/runs/{name}` (namespace from `?namespace=`, default
/// `default`) and `/api/v1/namespaces/{namespace}/runs/{name}`.
fn run_paths(
    paths: &mut serde_json::Map<String, Value>,
    name: &Value,
    ns: &Value,
    with: &dyn Fn(Value) -> Value,
) {
    let ns_query = param(
        "namespace",
        "query",
        "The run's namespace (default `default`)",
        "string",
    );
    for (base, place) in [
        ("/api/v1/runs/{name}", ns_query),
        ("/api/v1/namespaces/{namespace}/runs/{name}", ns.clone()),
    ] {
        for (verb, summary) in [
            (
                "cancel",
                "Cancel a run: a queued one ends Cancelled, a running one runs its finally tasks (`?hard=true` stops them too)",
            ),
            ("rerun", "Queue a new run from the same inputs"),
        ] {
            paths.insert(
                format!("{base}/{verb}"),
                json!({"post": {
                "summary": summary, "parameters": [place, name],
                "responses": with(json!({"200": object("The run"), "201": object("The new run")}))}}),
            );
        }
        paths.insert(
            format!("{base}/taskruns"),
            json!({"get": {"summary": "A run's TaskRuns in start order",
                           "parameters": [place, name],
                           "responses": {"200": object("A TaskRunList"), "404": status_ref()}}}),
        );
        paths.insert(
            format!("{base}/logs"),
            json!({"get": {
                "summary": "A run's logs: text, or Server-Sent Events until the run ends",
                "parameters": [
                    place,
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
    }
}

/// The document.
pub fn document() -> Value {
    let ns = param(
        "namespace",
        "path",
        "Namespace (a token limited to namespaces gets 403 outside them)",
        "string",
    );
    let name = param(
        "name",
        "path",
        "Run name, exact uid, or a uid prefix of 8 or more hex digits",
        "string",
    );
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
    let yaml_body = |what: &str| {
        json!({"required": true, "description": what,
               "content": {"application/yaml": {"schema": {"type": "string"}},
                           "application/json": {"schema": {"$ref": "#/components/schemas/Object"}}}})
    };
    let errors = json!({"400": status_ref(), "401": status_ref(), "403": status_ref(),
                        "404": status_ref(), "408": status_ref(), "409": status_ref(),
                        "413": status_ref(), "415": status_ref(), "422": status_ref()});
    let with = |mut responses: Value| {
        for (k, v) in errors.as_object().into_iter().flatten() {
            responses[k] = v.clone();
        }
        responses
    };
    let mut paths = serde_json::Map::new();
    for (kind, plural) in [("PipelineRun", "pipelineruns"), ("TaskRun", "taskruns")] {
        let mut collection = list(kind);
        collection["post"] = json!({
            "summary": format!("Queue a {kind} (stored before the reply; starts when the limits allow)"),
            "parameters": [ns],
            "requestBody": yaml_body(&format!("One {kind}")),
            "responses": with(json!({"201": object(&format!("The {kind}, PipelineRunPending"))})),
        });
        paths.insert(format!("{tekton}/{plural}"), collection);
        let mut item = one(kind);
        if kind == "PipelineRun" {
            item["patch"] = json!({
                "summary": "Cancel (spec.status Cancelled, CancelledRunFinally, StoppedRunFinally) or release a held run (empty)",
                "parameters": [ns, name],
                "requestBody": {"required": true, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
                "responses": with(json!({"200": object("The PipelineRun")})),
            });
        }
        paths.insert(format!("{tekton}/{plural}/{{name}}"), item);
    }
    for k in crate::catalog::KINDS {
        let collection = k.collection("{namespace}");
        paths.insert(collection.clone(), json!({
            "get": {"summary": format!("List {}s", k.kind), "parameters": [ns],
                    "responses": {"200": object(&format!("A {}List", k.kind))}},
            "post": {"summary": format!("Create a {} (409 when it exists)", k.kind), "parameters": [ns],
                     "requestBody": yaml_body(&format!("One {}", k.kind)),
                     "responses": with(json!({"201": object(k.kind)}))},
        }));
        let item_name = param("name", "path", "Object name", "string");
        paths.insert(format!("{collection}/{{name}}"), json!({
            "get": {"summary": format!("Get a {} (as applied with Accept: application/yaml)", k.kind),
                    "parameters": [ns, item_name], "responses": with(json!({"200": object(k.kind)}))},
            "put": {"summary": format!("Create or replace a {}", k.kind), "parameters": [ns, item_name],
                    "requestBody": yaml_body(&format!("The {}", k.kind)),
                    "responses": with(json!({"200": object(k.kind), "201": object(k.kind)}))},
            "delete": {"summary": format!("Delete a {}", k.kind), "parameters": [ns, item_name],
                       "responses": with(json!({"200": object("A Status")}))},
        }));
    }
    for k in slipway_model::kinds::kruise::PrewarmKind::ALL {
        let (kind, plural) = (k.kind(), k.plural());
        let group = "/apis/apps.kruise.io/v1alpha1";
        let (collection, params) = if k.namespaced() {
            (
                format!("{group}/namespaces/{{namespace}}/{plural}"),
                vec![ns.clone()],
            )
        } else {
            (format!("{group}/{plural}"), vec![])
        };
        let item_name = param("name", "path", "Object name", "string");
        let mut with_name = params.clone();
        with_name.push(item_name);
        let patch_body = json!({"required": true, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}});
        paths.insert(collection.clone(), json!({
            "get": {"summary": format!("List {kind}s (?labelSelector=, ?fieldSelector=metadata.name=; also at v1beta1)"),
                    "parameters": params, "responses": with(json!({"200": object(&format!("A {kind}List"))}))},
            "post": {"summary": format!("Create a {kind} (OpenKruise's defaults filled in; 422 when invalid)"),
                     "parameters": params, "requestBody": yaml_body(&format!("One {kind}")),
                     "responses": with(json!({"201": object(kind)}))},
        }));
        paths.insert(format!("{collection}/{{name}}"), json!({
            "get": {"summary": format!("Get a {kind}"), "parameters": with_name, "responses": with(json!({"200": object(kind)}))},
            "put": {"summary": format!("Create or replace a {kind} (its status is kept)"), "parameters": with_name,
                    "requestBody": yaml_body(&format!("The {kind}")),
                    "responses": with(json!({"200": object(kind), "201": object(kind)}))},
            "patch": {"summary": format!("Merge-patch a {kind}"), "parameters": with_name, "requestBody": patch_body,
                      "responses": with(json!({"200": object(kind)}))},
            "delete": {"summary": format!("Delete a {kind}"), "parameters": with_name,
                       "responses": with(json!({"200": object(kind)}))},
        }));
        paths.insert(format!("{collection}/{{name}}/status"), json!({
            "get": {"summary": format!("Get a {kind} with its status"), "parameters": with_name, "responses": with(json!({"200": object(kind)}))},
            "put": {"summary": format!("Replace a {kind}'s status"), "parameters": with_name,
                    "requestBody": yaml_body(&format!("The {kind}")), "responses": with(json!({"200": object(kind)}))},
            "patch": {"summary": format!("Merge-patch a {kind}'s status"), "parameters": with_name, "requestBody": patch_body,
                      "responses": with(json!({"200": object(kind)}))},
        }));
    }
    let node = param("name", "path", "Node name", "string");
    paths.insert("/api/v1/nodes".into(), json!({"get": {
        "summary": "List the nodes pre-warming agents registered (?labelSelector=, ?fieldSelector=)",
        "responses": with(json!({"200": object("A NodeList")}))}}));
    paths.insert("/api/v1/nodes/{name}".into(), json!({
        "get": {"summary": "Get a node", "parameters": [node], "responses": with(json!({"200": object("A Node")}))},
        "put": {"summary": "Register or replace a node (name, labels, status)", "parameters": [node],
                "requestBody": yaml_body("A v1 Node (JSON)"),
                "responses": with(json!({"200": object("A Node"), "201": object("A Node")}))},
        "delete": {"summary": "Delete a node", "parameters": [node], "responses": with(json!({"200": object("A Node")}))},
    }));
    paths.insert("/api/v1/nodes/{name}/status".into(), json!({
        "get": {"summary": "Get a node with its status", "parameters": [node], "responses": with(json!({"200": object("A Node")}))},
        "put": {"summary": "Replace a node's status (its agent's heartbeat)", "parameters": [node],
                "requestBody": yaml_body("A v1 Node (JSON)"), "responses": with(json!({"200": object("A Node")}))},
    }));
    let ns_query = param(
        "namespace",
        "query",
        "Namespace (default `default`)",
        "string",
    );
    paths.insert("/api/v1/apply".into(), json!({"post": {
        "summary": "Apply every document of a multi-document body, all or none (like kubectl apply -f)",
        "parameters": [ns_query], "requestBody": yaml_body("Definitions"),
        "responses": with(json!({"200": object("items: kind, name, action (created, configured, unchanged)")}))}}));
    paths.insert("/api/v1/validate".into(), json!({"post": {
        "summary": "Diagnostics for a body against the stored definitions (always 200)",
        "parameters": [ns_query], "requestBody": yaml_body("Definitions or runs"),
        "responses": {"200": object("diagnostics: severity, message, hint, line, column, endLine, endColumn")}}}));
    paths.insert("/api/v1/runs".into(), json!({"post": {
        "summary": "Queue the runs of a body; Tasks and Pipelines in it are used by these runs only",
        "parameters": [ns_query], "requestBody": yaml_body("Runs and what they refer to"),
        "responses": with(json!({"201": object("A List of the queued runs")}))}}));
    let listener = param("listener", "path", "EventListener name", "string");
    let hook = json!({"post": {
        "summary": "A webhook delivery: the listener's interceptors, bindings and templates make runs; idempotent by X-GitHub-Delivery / X-Gitlab-Event-UUID / X-Request-Id",
        "parameters": [listener],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": with(json!({"200": object("A redelivery: the runs it made before"), "202": object("eventListener, eventID, runs")}))}});
    paths.insert("/hooks/{listener}".into(), hook.clone());
    let mut namespaced = hook;
    if let Some(params) = namespaced["post"]["parameters"].as_array_mut() {
        params.insert(0, ns.clone());
    }
    paths.insert("/hooks/{namespace}/{listener}".into(), namespaced);
    run_paths(&mut paths, &name, &ns, &with);
    for (kind, plural) in [("PipelineRun", "pipelineruns"), ("TaskRun", "taskruns")] {
        paths.insert(
            format!("/apis/tekton.dev/v1/{plural}"),
            json!({"get": {
                "summary": format!("List {kind}s of every namespace (a limited token's namespaces only), newest first"),
                "parameters": [limit],
                "responses": {"200": object(&format!("A {kind}List")), "503": status_ref()}
            }}),
        );
    }
    paths.insert(
        "/api/v1/namespaces".into(),
        json!({"get": {"summary": "The namespaces holding runs or stored objects, and default (a limited token's only)",
                       "responses": {"200": object("A NamespaceList")}}}),
    );
    paths.insert(
        "/api/v1/whoami".into(),
        json!({"get": {
            "summary": "The token's name and scope (`auth: off` on a server run with --no-auth)",
            "responses": {"200": object("{auth, name, scope}"), "401": status_ref()}
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
            json!({"get": {"summary": summary, "security": [],
                           "responses": {"200": {"description": summary,
                                                 "content": {kind: {"schema": {}}}}}}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "slipway", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Definitions, runs through a durable queue, logs, webhooks, health and metrics, in Tekton's shapes"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                           "description": "Every API request needs one unless the server runs with --no-auth: the admin token printed at the first start, or one from `slipway token create`"}},
                       "schemas": {
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
