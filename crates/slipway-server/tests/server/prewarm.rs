//! OpenKruise's pre-warming kinds at their Kubernetes paths: verbs, versions and generations,
//! the status subresource, selectors, validation (422, nothing stored), `/api/v1/apply`, and
//! what tokens limited to namespaces may see and change.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::Server;

const V1A1: &str = "/apis/apps.kruise.io/v1alpha1";

fn job(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata:\n  name: {name}\n  labels: {{team: web}}\nspec:\n  image: 127.0.0.1:5000/app:1.0\n  selector: {{names: [node-1, node-2]}}\n{extra}"
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn version(o: &Value) -> i64 {
    o["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion: {o}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_created_read_listed_replaced_patched_and_deleted() {
    let s = Server::start(Default::default()).await;
    let jobs = format!("{V1A1}/namespaces/team-a/imagepulljobs");
    let (code, made) = s.call("POST", &jobs, &job("warm", "")).await;
    assert_eq!(code, StatusCode::CREATED, "{made}");
    assert_eq!(made["metadata"]["namespace"], "team-a");
    assert_eq!(made["metadata"]["generation"], 1);
    assert!(made["metadata"]["uid"].is_string());
    assert!(made["metadata"]["creationTimestamp"].is_string());
    // OpenKruise's defaults are filled in.
    assert_eq!(made["spec"]["parallelism"], 1);
    assert_eq!(
        made["spec"]["pullPolicy"],
        json!({"timeoutSeconds": 600, "backoffLimit": 3})
    );
    assert_eq!(made["spec"]["completionPolicy"]["type"], "Always");
    let (code, again) = s.call("POST", &jobs, &job("warm", "")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{again}");

    // One object, both versions.
    let (code, got) = s.call("GET", &format!("{jobs}/warm"), "").await;
    assert_eq!(code, StatusCode::OK, "{got}");
    assert_eq!(got["apiVersion"], "apps.kruise.io/v1alpha1");
    let beta = "/apis/apps.kruise.io/v1beta1/namespaces/team-a/imagepulljobs/warm";
    let (code, got) = s.call("GET", beta, "").await;
    assert_eq!(
        (code, got["apiVersion"].as_str()),
        (StatusCode::OK, Some("apps.kruise.io/v1beta1"))
    );

    // Lists, with selectors.
    let (_, other) = s
        .call(
            "POST",
            &jobs,
            &job("other", "").replace("team: web", "team: db"),
        )
        .await;
    assert_eq!(other["metadata"]["name"], "other");
    let (code, list) = s.call("GET", &jobs, "").await;
    assert_eq!(
        (code, list["kind"].as_str()),
        (StatusCode::OK, Some("ImagePullJobList"))
    );
    assert_eq!(names(&list), ["other", "warm"]);
    let (_, list) = s
        .call("GET", &format!("{jobs}?labelSelector=team%3Dweb"), "")
        .await;
    assert_eq!(names(&list), ["warm"]);
    let (_, list) = s
        .call(
            "GET",
            &format!("{jobs}?fieldSelector=metadata.name%3Dother"),
            "",
        )
        .await;
    assert_eq!(names(&list), ["other"]);
    let (code, bad) = s
        .call("GET", &format!("{jobs}?fieldSelector=spec.image%3Dx"), "")
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}");
    let (code, watch) = s.call("GET", &format!("{jobs}?watch=true"), "").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{watch}");

    // Replacing the spec bumps the generation; a stale resourceVersion is a conflict.
    let v1 = version(&got);
    let changed = job("warm", "  parallelism: 2\n");
    let (code, put) = s.call("PUT", &format!("{jobs}/warm"), &changed).await;
    assert_eq!(code, StatusCode::OK, "{put}");
    assert_eq!(
        (
            put["metadata"]["generation"].as_i64(),
            put["spec"]["parallelism"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert!(version(&put) > v1);
    let stale = changed.replace(
        "  labels:",
        &format!("  resourceVersion: '{v1}'\n  labels:"),
    );
    let (code, body) = s.call("PUT", &format!("{jobs}/warm"), &stale).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");

    // The status subresource changes the status only; the main resource never does.
    let status = json!({"status": {"desired": 2, "active": 1, "succeeded": 1, "failed": 0, "startTime": "2026-01-01T00:00:00Z"}});
    let (code, st) = s
        .call("PATCH", &format!("{jobs}/warm/status"), &status.to_string())
        .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    assert_eq!(
        (
            st["status"]["succeeded"].as_i64(),
            st["metadata"]["generation"].as_i64()
        ),
        (Some(1), Some(2))
    );
    let with_status = format!("{changed}status: {{desired: 9}}\n");
    let (_, put) = s.call("PUT", &format!("{jobs}/warm"), &with_status).await;
    assert_eq!(put["status"]["desired"], 2, "{put}");
    let (code, st) = s.call("GET", &format!("{jobs}/warm/status"), "").await;
    assert_eq!(
        (code, st["status"]["active"].as_i64()),
        (StatusCode::OK, Some(1))
    );

    // A merge patch of the spec.
    let (code, patched) = s
        .call(
            "PATCH",
            &format!("{jobs}/warm"),
            r#"{"spec":{"pullPolicy":{"backoffLimit":5}}}"#,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["spec"]["pullPolicy"],
        json!({"timeoutSeconds": 600, "backoffLimit": 5})
    );
    assert_eq!(
        (
            patched["metadata"]["generation"].as_i64(),
            patched["status"]["desired"].as_i64()
        ),
        (Some(3), Some(2))
    );

    let (code, gone) = s.call("DELETE", &format!("{jobs}/warm"), "").await;
    assert_eq!(
        (code, gone["metadata"]["name"].as_str()),
        (StatusCode::OK, Some("warm"))
    );
    let (code, body) = s.call("GET", &format!("{jobs}/warm"), "").await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_are_422_naming_the_field_and_nothing_is_stored() {
    let s = Server::start(Default::default()).await;
    let jobs = format!("{V1A1}/namespaces/default/imagepulljobs");
    for (body, field) in [
        (job("p", "  parallelism: 50%\n"), "spec.parallelism"),
        (
            job(
                "d",
                "  completionPolicy: {type: Never, ttlSecondsAfterFinished: 5}\n",
            ),
            "spec.completionPolicy.ttlSecondsAfterFinished",
        ),
        (
            job("s", "").replace(
                "{names: [node-1, node-2]}",
                "{names: [a], matchLabels: {x: z}}",
            ),
            "spec.selector.names",
        ),
    ] {
        let (code, status) = s.call("POST", &jobs, &body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        assert_eq!(
            (status["kind"].as_str(), status["reason"].as_str()),
            (Some("Status"), Some("Invalid"))
        );
        assert_eq!(status["details"]["causes"][0]["field"], field, "{status}");
        assert!(
            status["diagnostics"][0]["line"]
                .as_u64()
                .is_some_and(|l| l > 1),
            "{status}"
        );
    }
    // A patch that would make the object invalid is refused whole.
    let (code, _) = s.call("POST", &jobs, &job("ok", "")).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, status) = s
        .call(
            "PATCH",
            &format!("{jobs}/ok"),
            r#"{"spec":{"parallelism":"25%"}}"#,
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    let (_, list) = s.call("GET", &jobs, "").await;
    assert_eq!(names(&list), ["ok"]);
    assert_eq!(list["items"][0]["spec"]["parallelism"], 1);
    // The wrong kind for the path, and a body naming another object.
    let (code, _) = s
        .call(
            "POST",
            &format!("{V1A1}/namespaces/default/imagelistpulljobs"),
            &job("x", ""),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, _) = s
        .call("PUT", &format!("{jobs}/other"), &job("ok", ""))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

const NODE: &str = "apiVersion: apps.kruise.io/v1alpha1\nkind: NodeImage\nmetadata: {name: node-1, labels: {pool: ci}}\nspec:\n  images:\n    127.0.0.1:5000/app:\n      tags: [{tag: '1.0', version: 1}]\n";

/// NodeImages are cluster-scoped; a token limited to namespaces reads them but cannot change
/// them, and sees only its namespaces' jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_images_are_cluster_scoped_and_limited_tokens_stay_in_their_namespaces() {
    let s = Server::start(Default::default()).await;
    let (code, node) = s.call("POST", &format!("{V1A1}/nodeimages"), NODE).await;
    assert_eq!(code, StatusCode::CREATED, "{node}");
    assert!(node["metadata"]["namespace"].is_null());
    let (code, _) = s
        .call("GET", &format!("{V1A1}/namespaces/default/nodeimages"), "")
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let status = r#"{"status":{"desired":1,"pulling":0,"succeeded":1,"failed":0,"imageStatuses":{"127.0.0.1:5000/app":{"tags":[{"tag":"1.0","phase":"Succeeded","progress":100,"imageID":"sha256:ab","version":1}]}}}}"#;
    let (code, st) = s
        .call("PATCH", &format!("{V1A1}/nodeimages/node-1/status"), status)
        .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    let (code, bad) = s
        .call(
            "PATCH",
            &format!("{V1A1}/nodeimages/node-1/status"),
            r#"{"status":{"imageStatuses":{"x":{"tags":[{"tag":"1","phase":"Done"}]}}}}"#,
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    for ns in ["team-a", "team-b"] {
        let (code, _) = s
            .call(
                "POST",
                &format!("{V1A1}/namespaces/{ns}/imagepulljobs"),
                &job("warm", ""),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED);
    }

    let team = slipway_server::generate_token();
    let only_a = ["team-a".to_string()];
    assert!(
        s.store
            .add_token_in("team", "write", &slipway_server::token_hash(&team), &only_a)
            .await
            .expect("add")
    );
    let auth = format!("Bearer {team}");
    let as_team = |method: &'static str, uri: String, body: &'static str| {
        let (s, auth) = (&s, auth.clone());
        async move {
            s.call_with(method, &uri, body, &[("authorization", auth.as_str())])
                .await
        }
    };
    let (code, _) = as_team(
        "GET",
        format!("{V1A1}/namespaces/team-a/imagepulljobs/warm"),
        "",
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = as_team(
        "GET",
        format!("{V1A1}/namespaces/team-b/imagepulljobs/warm"),
        "",
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, body) = as_team(
        "DELETE",
        format!("{V1A1}/namespaces/team-b/imagepulljobs/warm"),
        "",
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, list) = as_team("GET", format!("{V1A1}/imagepulljobs"), "").await;
    assert_eq!(code, StatusCode::OK);
    let seen: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(seen, ["team-a"]);
    let (_, list) = s.call("GET", &format!("{V1A1}/imagepulljobs"), "").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    // Reading nodes is fine; changing them is not.
    let (code, _) = as_team("GET", format!("{V1A1}/nodeimages/node-1"), "").await;
    assert_eq!(code, StatusCode::OK);
    for (method, uri) in [
        ("POST", format!("{V1A1}/nodeimages")),
        ("PUT", format!("{V1A1}/nodeimages/node-1")),
        ("DELETE", format!("{V1A1}/nodeimages/node-1")),
    ] {
        let (code, body) = as_team(method, uri, NODE).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{method}: {body}");
    }
    let (code, body) = as_team("POST", "/api/v1/apply?namespace=team-a".into(), NODE).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_stores_jobs_beside_tekton_objects_all_or_none() {
    let s = Server::start(Default::default()).await;
    let task = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: hello}\nspec:\n  steps: [{name: s, image: busybox, script: 'true'}]\n";
    let bad = format!("{task}---\n{}", job("warm", "  parallelism: 10%\n"));
    let (code, status) = s.call("POST", "/api/v1/apply?namespace=team-a", &bad).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["diagnostics"][0]["line"], 15, "{status}");
    let (_, tasks) = s
        .call("GET", "/apis/tekton.dev/v1/namespaces/team-a/tasks", "")
        .await;
    assert_eq!(names(&tasks), Vec::<String>::new());

    let good = format!("{task}---\n{}---\n{NODE}", job("warm", ""));
    let (code, reply) = s
        .call("POST", "/api/v1/apply?namespace=team-a", &good)
        .await;
    assert_eq!(code, StatusCode::OK, "{reply}");
    let actions: Vec<String> = reply["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{}/{} {}",
                i["kind"].as_str().unwrap_or(""),
                i["name"].as_str().unwrap_or(""),
                i["action"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "Task/hello created",
            "ImagePullJob/warm created",
            "NodeImage/node-1 created"
        ]
    );
    let (_, reply) = s
        .call("POST", "/api/v1/apply?namespace=team-a", &good)
        .await;
    assert_eq!(reply["items"][1]["action"], "unchanged", "{reply}");
    let (_, reply) = s
        .call(
            "POST",
            "/api/v1/apply?namespace=team-a",
            &good.replace("app:1.0", "app:2.0"),
        )
        .await;
    assert_eq!(reply["items"][1]["action"], "configured", "{reply}");
    let (_, got) = s
        .call(
            "GET",
            &format!("{V1A1}/namespaces/team-a/imagepulljobs/warm"),
            "",
        )
        .await;
    assert_eq!(
        (
            got["spec"]["image"].as_str(),
            got["metadata"]["generation"].as_i64()
        ),
        (Some("127.0.0.1:5000/app:2.0"), Some(2))
    );
}

/// Nodes as agents register them, and the pull secrets handed to a node only when a tag of its
/// NodeImage names them.
#[tokio::test]
async fn nodes_register_and_pull_secrets_go_only_to_nodes_asked_to_use_them() {
    let s = Server::start(Default::default()).await;
    let node = r#"{"metadata":{"name":"node-1","labels":{"zone":"a"}},"status":{"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"2026-12-01T10:00:00Z"}]}}"#;
    let (code, body) = s.call("PUT", "/api/v1/nodes/node-1", node).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let beat = r#"{"metadata":{"name":"node-1"},"status":{"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"2026-12-01T10:00:10Z"}]}}"#;
    let (code, body) = s.call("PUT", "/api/v1/nodes/node-1/status", beat).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        body["metadata"]["labels"]["zone"], "a",
        "a heartbeat keeps the labels"
    );
    assert_eq!(
        body["status"]["conditions"][0]["lastHeartbeatTime"],
        "2026-12-01T10:00:10Z"
    );
    let (_, list) = s
        .call("GET", "/api/v1/nodes?labelSelector=zone%3Da", "")
        .await;
    assert_eq!(names(&list), ["node-1"]);
    let (_, list) = s
        .call("GET", "/api/v1/nodes?labelSelector=zone%3Db", "")
        .await;
    assert!(names(&list).is_empty());
    let (code, _) = s
        .call("PUT", "/api/v1/nodes/Node_1", r#"{"metadata":{}}"#)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, _) = s
        .call(
            "PUT",
            "/api/v1/nodes/node-2",
            r#"{"metadata":{"labels":{"a":1}}}"#,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, body) = s
        .call(
            "PUT",
            "/api/v1/nodes/node-1/status",
            &beat.replace("node-1", "node-9"),
        )
        .await;
    assert_eq!(
        code,
        StatusCode::BAD_REQUEST,
        "the body names another node: {body}"
    );
    let (code, _) = s
        .call(
            "PUT",
            "/api/v1/nodes/node-9/status",
            &beat.replace("node-1", "node-9"),
        )
        .await;
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "a heartbeat does not create a node"
    );

    let secrets = "apiVersion: v1\nkind: Secret\nmetadata: {name: reg}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{\"127.0.0.1:5001\":{\"auth\":\"dTpw\"}}}'\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: plain}\nstringData: {password: hunter2}\n";
    let (code, body) = s.call("POST", "/api/v1/apply", secrets).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let path = "/api/v1/nodes/node-1/pullsecrets/default";
    let (code, _) = s.call("GET", &format!("{path}/reg"), "").await;
    assert_eq!(code, StatusCode::FORBIDDEN, "no tag names it yet");
    let image = "apiVersion: apps.kruise.io/v1alpha1\nkind: NodeImage\nmetadata: {name: node-1}\nspec:\n  images:\n    127.0.0.1:5001/private/app:\n      tags:\n      - tag: '1'\n        pullSecrets: [{namespace: default, name: reg}, {namespace: default, name: plain}]\n";
    let (code, body) = s.call("POST", &format!("{V1A1}/nodeimages"), image).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = s.call("GET", &format!("{path}/reg"), "").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body["dockerconfigjson"]
            .as_str()
            .is_some_and(|c| c.contains("127.0.0.1:5001"))
    );
    let (code, body) = s.call("GET", &format!("{path}/plain"), "").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "only pull secrets: {body}");
    assert!(!body.to_string().contains("hunter2"));
    let (code, _) = s
        .call("GET", "/api/v1/nodes/node-2/pullsecrets/default/reg", "")
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "another node");

    let team = slipway_server::generate_token();
    let only_a = ["team-a".to_string()];
    assert!(
        s.store
            .add_token_in("team", "write", &slipway_server::token_hash(&team), &only_a)
            .await
            .expect("add")
    );
    let auth = format!("Bearer {team}");
    let headers = [("authorization", auth.as_str())];
    let (code, _) = s
        .call_with("GET", &format!("{path}/reg"), "", &headers)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "a token limited to namespaces");
    let (code, _) = s
        .call_with("PUT", "/api/v1/nodes/node-1", node, &headers)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}
