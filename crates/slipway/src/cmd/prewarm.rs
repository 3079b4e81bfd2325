//! `slipway get` and `slipway describe KIND NAME` for OpenKruise's pre-warming objects
//! (ImagePullJob, ImageListPullJob, NodeImage), from this machine's data directory or a server.

use std::path::Path;

use serde_json::{Value, json};
use slipway_model::kinds::kruise::{GROUP, PrewarmKind};
use slipway_store::{PrewarmKey, SqliteStore};

use crate::cli::{GetArgs, Namespaces, Output};
use crate::error::CliError;
use crate::output::print;
use crate::remote::{Remote, segment};

/// Where the objects are read from.
pub enum Source<'a> {
    /// The data directory's store.
    Local(SqliteStore),
    /// A server.
    Remote(&'a Remote),
}

impl Source<'_> {
    /// This machine's store in `data`.
    pub async fn local(data: &Path) -> Result<Source<'static>, CliError> {
        Ok(Source::Local(crate::paths::open_store(data).await?))
    }

    async fn list(&self, kind: PrewarmKind, ns: Option<&str>) -> Result<Vec<Value>, CliError> {
        let ns = ns.filter(|_| kind.namespaced());
        match self {
            Source::Local(store) => Ok(store
                .prewarm_objects(kind.kind(), ns)
                .await?
                .iter()
                .map(shown)
                .collect()),
            Source::Remote(r) => {
                let list = r.get(&collection(kind, ns)).await?;
                Ok(list["items"].as_array().cloned().unwrap_or_default())
            }
        }
    }

    async fn get(&self, kind: PrewarmKind, ns: &str, name: &str) -> Result<Value, CliError> {
        let ns = if kind.namespaced() { ns } else { "" };
        let found = match self {
            Source::Local(store) => {
                let key = PrewarmKey {
                    kind: kind.kind(),
                    namespace: ns,
                    name,
                };
                store.prewarm_object(key).await?.as_ref().map(shown)
            }
            Source::Remote(r) => {
                let path = format!(
                    "{}/{}",
                    collection(kind, Some(ns).filter(|n| !n.is_empty())),
                    segment(name)
                );
                Some(r.get(&path).await?)
            }
        };
        found.ok_or_else(|| {
            let where_ = if kind.namespaced() {
                format!(" in namespace `{ns}`")
            } else {
                String::new()
            };
            CliError::usage(
                format!("{} `{name}` not found{where_}", kind.kind()),
                format!(
                    "list them with `slipway get {}{}`",
                    kind.plural(),
                    if kind.namespaced() { " -A" } else { "" }
                ),
            )
        })
    }
}

/// The API path of a kind's objects in `ns` (every namespace, or cluster-scoped, when `None`).
fn collection(kind: PrewarmKind, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!(
            "/apis/{GROUP}/v1alpha1/namespaces/{}/{}",
            segment(ns),
            kind.plural()
        ),
        None => format!("/apis/{GROUP}/v1alpha1/{}", kind.plural()),
    }
}

/// A stored object as the API shows it.
fn shown(o: &slipway_store::PrewarmObject) -> Value {
    let mut v = o.object.clone();
    v["metadata"]["creationTimestamp"] = json!(timestamp(o.created_at));
    if !o.namespace.is_empty() {
        v["metadata"]["namespace"] = json!(o.namespace);
    }
    v
}

fn timestamp(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The kind a command-line word names, or a usage error listing the ones there are.
pub fn kind_named(word: &str) -> Result<PrewarmKind, CliError> {
    PrewarmKind::from_resource(word).ok_or_else(|| {
        CliError::usage(
            format!("unknown resource type `{word}`"),
            "use imagepulljob(s), imagelistpulljob(s) or nodeimage(s); runs are listed by `slipway runs`",
        )
    })
}

/// `slipway get KIND [NAME]`.
pub async fn get(source: &Source<'_>, args: &GetArgs) -> Result<i32, CliError> {
    let kind = kind_named(&args.resource)?;
    let ns = args.ns.selected();
    if let Some(name) = &args.name {
        let o = source.get(kind, ns.unwrap_or("default"), name).await?;
        return match args.output {
            Some(format) => print(&o, format).map(|_| 0),
            None => {
                table(kind, &[o], false);
                Ok(0)
            }
        };
    }
    let items = source.list(kind, ns).await?;
    if let Some(format) = args.output {
        print(&crate::output::list(items), format)?;
        return Ok(0);
    }
    if items.is_empty() {
        match ns.filter(|_| kind.namespaced()) {
            Some(ns) => eprintln!("No {} found in namespace {ns}.", kind.plural()),
            None => eprintln!("No {} found.", kind.plural()),
        }
        return Ok(0);
    }
    table(kind, &items, args.ns.all_namespaces && kind.namespaced());
    Ok(0)
}

/// The columns OpenKruise's CRDs declare for kubectl.
fn columns(kind: PrewarmKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        PrewarmKind::ImagePullJob => &[
            ("TOTAL", "desired"),
            ("ACTIVE", "active"),
            ("SUCCEED", "succeeded"),
            ("FAILED", "failed"),
            ("AGE", ""),
            ("MESSAGE", "message"),
        ],
        PrewarmKind::ImageListPullJob => &[
            ("TOTAL", "desired"),
            ("SUCCEEDED", "succeeded"),
            ("COMPLETED", "completed"),
            ("AGE", ""),
        ],
        PrewarmKind::NodeImage => &[
            ("DESIRED", "desired"),
            ("PULLING", "pulling"),
            ("SUCCEED", "succeeded"),
            ("FAILED", "failed"),
            ("AGE", ""),
        ],
    }
}

fn table(kind: PrewarmKind, items: &[Value], with_namespace: bool) {
    let mut head = Vec::new();
    if with_namespace {
        head.push("NAMESPACE");
    }
    head.push("NAME");
    head.extend(columns(kind).iter().map(|(h, _)| *h));
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|o| {
            let mut row = Vec::new();
            if with_namespace {
                row.push(text(&o["metadata"]["namespace"]));
            }
            row.push(text(&o["metadata"]["name"]));
            for (_, field) in columns(kind) {
                row.push(match *field {
                    "" => age(&o["metadata"]["creationTimestamp"]),
                    f => text(&o["status"][f]),
                });
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", s.join("   ").trim_end());
    };
    line(head);
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A value as a table cell: numbers and text as they are, nothing as kubectl shows it.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "<none>".into(),
    }
}

/// kubectl's age: `45s`, `12m`, `5h`, `3d`.
fn age(ts: &Value) -> String {
    let Some(t) = ts.as_str().and_then(|t| humantime::parse_rfc3339(t).ok()) else {
        return "<unknown>".into();
    };
    let s = std::time::SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `slipway describe KIND NAME`.
pub async fn describe(
    source: &Source<'_>,
    kind: &str,
    name: &str,
    ns: &Namespaces,
    output: Option<Output>,
) -> Result<i32, CliError> {
    let kind = kind_named(kind)?;
    let o = source
        .get(kind, ns.namespace.as_deref().unwrap_or("default"), name)
        .await?;
    if let Some(format) = output {
        print(&o, format)?;
        return Ok(0);
    }
    print!("{}", described(kind, &o));
    Ok(0)
}

/// The `describe` text: what the object asks for, then how far it got.
fn described(kind: PrewarmKind, o: &Value) -> String {
    let mut out = String::new();
    let mut field = |label: &str, value: String| {
        if !value.is_empty() && value != "<none>" {
            out.push_str(&format!("{:<18}{value}\n", format!("{label}:")));
        }
    };
    let (meta, spec, status) = (&o["metadata"], &o["spec"], &o["status"]);
    field("Name", text(&meta["name"]));
    if kind.namespaced() {
        field("Namespace", text(&meta["namespace"]));
    }
    field(
        "Kind",
        format!("{} ({})", kind.kind(), text(&o["apiVersion"])),
    );
    field("Created", text(&meta["creationTimestamp"]));
    field("Generation", text(&meta["generation"]));
    match kind {
        PrewarmKind::NodeImage => {}
        _ => {
            field("Image", text(&spec["image"]));
            let images: Vec<String> = spec["images"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            field("Images", images.join(", "));
            field("Nodes", selector(spec));
            field("Parallelism", text(&spec["parallelism"]));
            field(
                "Pull policy",
                format!(
                    "{}, timeout {}s, {} retries",
                    text(&spec["imagePullPolicy"]),
                    text(&spec["pullPolicy"]["timeoutSeconds"]),
                    text(&spec["pullPolicy"]["backoffLimit"]),
                ),
            );
            let c = &spec["completionPolicy"];
            let mut completion = text(&c["type"]);
            if let Some(d) = c["activeDeadlineSeconds"].as_i64() {
                completion.push_str(&format!(", deadline {d}s"));
            }
            if let Some(t) = c["ttlSecondsAfterFinished"].as_i64() {
                completion.push_str(&format!(", deleted {t}s after finishing"));
            }
            field("Completion", completion);
            let secrets: Vec<String> = spec["pullSecrets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            field("Pull secrets", secrets.join(", "));
        }
    }
    if status.is_null() {
        out.push_str("Status:           not started (no controller has picked it up yet)\n");
        return out;
    }
    out.push_str("Status:\n");
    let counts: Vec<String> = [
        "desired",
        "active",
        "pulling",
        "waiting",
        "completed",
        "succeeded",
        "failed",
    ]
    .iter()
    .filter(|k| status[**k].is_number())
    .map(|k| format!("{k} {}", text(&status[*k])))
    .collect();
    out.push_str(&format!("  {}\n", counts.join(", ")));
    for (label, key) in [
        ("Started", "startTime"),
        ("Completed", "completionTime"),
        ("Message", "message"),
    ] {
        if let Some(v) = status[key].as_str() {
            out.push_str(&format!("  {label}: {v}\n"));
        }
    }
    let failed: Vec<String> = status["failedNodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!("  Failed nodes: {}\n", failed.join(", ")));
    }
    for (image, st) in status["imageStatuses"].as_object().into_iter().flatten() {
        for t in st["tags"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {image}:{} {}{}\n",
                text(&t["tag"]),
                text(&t["phase"]),
                t["message"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// How a job chooses its nodes, in words.
fn selector(spec: &Value) -> String {
    let sel = &spec["selector"];
    if let Some(names) = sel["names"].as_array() {
        let names: Vec<String> = names.iter().map(text).collect();
        return format!("named {}", names.join(", "));
    }
    let labels = |s: &Value| -> Vec<String> {
        let mut out: Vec<String> = s["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect();
        out.extend(
            s["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{} {} ({})",
                        text(&e["key"]),
                        text(&e["operator"]),
                        e["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(text)
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }),
        );
        out
    };
    if !spec["podSelector"].is_null() {
        return format!(
            "those running pods with {}",
            labels(&spec["podSelector"]).join(", ")
        );
    }
    match labels(sel) {
        l if l.is_empty() => "every node".into(),
        l => format!("labelled {}", l.join(", ")),
    }
}
