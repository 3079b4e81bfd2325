//! `slipway prewarm IMAGE`: creates an ImagePullJob on the server and, with `--wait`, follows it
//! node by node (a bar per node on a terminal, a line per change otherwise) until it completes.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use slipway_model::reference::Reference;

use crate::cli::PrewarmArgs;
use crate::error::{CliError, EXIT_FAILED};
use crate::remote::{Body, Remote, segment};

/// How often the job is read while following it.
const POLL: Duration = Duration::from_secs(1);

pub async fn prewarm(remote: &Remote, args: &PrewarmArgs) -> Result<i32, CliError> {
    let job = job(args)?;
    let name = job["metadata"]["name"].as_str().unwrap_or("").to_string();
    let ns = segment(&args.namespace);
    let mut body = Body::default();
    body.push(
        "prewarm",
        &serde_json::to_string_pretty(&job).unwrap_or_default(),
    );
    remote
        .post(
            &format!("/apis/apps.kruise.io/v1alpha1/namespaces/{ns}/imagepulljobs"),
            Some(&body),
        )
        .await?;
    println!("imagepulljob.apps.kruise.io/{name} created");
    if !args.wait {
        return Ok(0);
    }
    follow(remote, &ns, &name).await
}

/// The ImagePullJob the flags describe.
fn job(args: &PrewarmArgs) -> Result<Value, CliError> {
    let reference = Reference::parse(&args.image).map_err(|e| {
        CliError::usage(
            e.to_string(),
            "name the image as docker pull does: [registry/]repository[:tag][@sha256:digest]",
        )
    })?;
    let mut spec = json!({
        "image": args.image,
        "parallelism": args.parallelism,
        "completionPolicy": { "type": "Always" },
    });
    if !args.names.is_empty() {
        spec["selector"] = json!({ "names": args.names });
    } else if !args.selector.is_empty() {
        let mut labels = serde_json::Map::new();
        for pair in &args.selector {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CliError::usage(
                    format!("`{}` is not KEY=VALUE", slipway_model::names::shown(pair)),
                    "pass --selector zone=a,disk=ssd",
                ));
            };
            labels.insert(k.to_string(), json!(v));
        }
        spec["selector"] = json!({ "matchLabels": labels });
    }
    if !args.pull_secret.is_empty() {
        spec["pullSecrets"] = json!(args.pull_secret);
    }
    let mut policy = serde_json::Map::new();
    if let Some(t) = args.timeout_seconds {
        policy.insert("timeoutSeconds".into(), json!(t));
    }
    if let Some(b) = args.backoff_limit {
        policy.insert("backoffLimit".into(), json!(b));
    }
    if !policy.is_empty() {
        spec["pullPolicy"] = Value::Object(policy);
    }
    let repo = reference.repository.rsplit('/').next().unwrap_or("image");
    let mut stem: String = repo
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    stem = stem.trim_matches('-').to_string();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..5];
    Ok(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": { "name": format!("prewarm-{stem}-{suffix}") },
        "spec": spec,
    }))
}

/// One node's view of the job.
#[derive(Debug, Clone, PartialEq)]
struct NodeView {
    phase: String,
    completed: u64,
    total: u64,
    message: String,
    seconds: Option<f64>,
}

/// The job's tag on each node that has it, from the NodeImages.
fn views(images: &Value, uid: &str, image: &str) -> BTreeMap<String, NodeView> {
    let (name, tag) = split(image);
    let mut out = BTreeMap::new();
    for ni in images["items"].as_array().into_iter().flatten() {
        let node = ni["metadata"]["name"].as_str().unwrap_or("").to_string();
        let entry = ni["spec"]["images"][&name]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["tag"] == tag.as_str()
                    && t["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["uid"] == uid)
            });
        let Some(entry) = entry else { continue };
        let status = ni["status"]["imageStatuses"][&name]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tag"] == tag.as_str() && t["version"] == entry["version"]);
        let time = |t: &Value| {
            t.as_str()
                .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
        };
        let view = match status {
            None => NodeView {
                phase: "Waiting".into(),
                completed: 0,
                total: 0,
                message: String::new(),
                seconds: None,
            },
            Some(s) => NodeView {
                phase: s["phase"].as_str().unwrap_or("Waiting").to_string(),
                completed: s["completedBytes"].as_u64().unwrap_or(0),
                total: s["totalBytes"].as_u64().unwrap_or(0),
                message: s["message"].as_str().unwrap_or("").to_string(),
                seconds: match (time(&s["startTime"]), time(&s["completionTime"])) {
                    (Some(a), Some(b)) => b.duration_since(a).ok().map(|d| d.as_secs_f64()),
                    _ => None,
                },
            },
        };
        out.insert(node, view);
    }
    out
}

/// NodeImage's key and tag of an image reference.
fn split(image: &str) -> (String, String) {
    if let Some((n, d)) = image.rsplit_once('@') {
        return (n.to_string(), d.to_string());
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn line(node: &str, v: &NodeView) -> String {
    match v.phase.as_str() {
        "Pulling" if v.total > 0 => {
            format!("{node}  Pulling  {} / {}", mb(v.completed), mb(v.total))
        }
        "Succeeded" => format!(
            "{node}  Succeeded  {}{}",
            mb(v.total),
            v.seconds
                .map(|s| format!(" in {s:.1}s"))
                .unwrap_or_default()
        ),
        "Failed" => format!("{node}  Failed  {}", v.message),
        other => format!("{node}  {other}"),
    }
}

/// Follows the job until it completes.
async fn follow(remote: &Remote, ns: &str, name: &str) -> Result<i32, CliError> {
    let path = format!("/apis/apps.kruise.io/v1alpha1/namespaces/{ns}/imagepulljobs/{name}");
    let terminal = std::io::stdout().is_terminal();
    let bars = MultiProgress::new();
    let mut shown: BTreeMap<String, (NodeView, Option<ProgressBar>)> = BTreeMap::new();
    let style = ProgressStyle::with_template("{prefix:>12} {bar:30} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut told_empty = false;
    loop {
        let job = remote.get(&path).await?;
        let images = remote
            .get("/apis/apps.kruise.io/v1alpha1/nodeimages")
            .await?;
        let uid = job["metadata"]["uid"].as_str().unwrap_or("");
        let image = job["spec"]["image"].as_str().unwrap_or("");
        for (node, v) in views(&images, uid, image) {
            let old = shown.get(&node).map(|(v, _)| v.clone());
            if old.as_ref() == Some(&v) {
                continue;
            }
            let bar = shown.remove(&node).and_then(|(_, b)| b);
            let bar = if terminal {
                let b = bar.unwrap_or_else(|| {
                    let b = bars.add(ProgressBar::new(1));
                    b.set_style(style.clone());
                    b.set_prefix(node.clone());
                    b
                });
                b.set_length(v.total.max(1));
                b.set_position(if v.phase == "Succeeded" {
                    v.total.max(1)
                } else {
                    v.completed
                });
                b.set_message(line("", &v).trim().to_string());
                Some(b)
            } else {
                let phase_changed = old.as_ref().is_none_or(|o| o.phase != v.phase);
                // Bytes at most every 10 MB, so logs stay short.
                let moved = old
                    .as_ref()
                    .is_some_and(|o| v.completed / 10_000_000 != o.completed / 10_000_000);
                if phase_changed || moved {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", line(&node, &v));
                    let _ = out.flush();
                }
                None
            };
            shown.insert(node, (v, bar));
        }
        let s = &job["status"];
        if !told_empty && s["desired"] == 0 && s["startTime"].is_string() {
            // A selector that matches no node waits for one to register; say so once.
            told_empty = true;
            eprintln!(
                "note: {}; waiting for a node to register",
                s["message"]
                    .as_str()
                    .unwrap_or("no node matches the job's selector yet")
            );
        }
        if s["completionTime"].is_string() {
            for (_, b) in shown.values() {
                if let Some(b) = b {
                    b.finish();
                }
            }
            let (desired, succeeded, failed) = (
                s["desired"].as_i64().unwrap_or(0),
                s["succeeded"].as_i64().unwrap_or(0),
                s["failed"].as_i64().unwrap_or(0),
            );
            println!(
                "imagepulljob {name}: {succeeded} of {desired} node(s) succeeded, {failed} failed{}",
                s["message"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
            for n in s["failedNodes"].as_array().into_iter().flatten() {
                let node = n.as_str().unwrap_or("");
                let why = shown
                    .get(node)
                    .map(|(v, _)| v.message.clone())
                    .unwrap_or_default();
                println!("  {node}: {why}");
            }
            return Ok(if failed == 0 && succeeded == desired && desired > 0 {
                0
            } else {
                EXIT_FAILED
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
