//! The verbs against a server (`--server`): apply, run, rerun, runs, describe, logs, cancel.

use std::sync::Arc;

use serde_json::Value;
use slipway_model::documents::split_documents;
use slipway_model::library::read_sources;
use slipway_model::node::parse_documents;
use slipway_model::{Diagnostics, Library, SourceFile};

use crate::cli::{
    ApplyArgs, DescribeArgs, LogsArgs, Namespaces, RerunArgs, RunArgs, RunRef, RunTarget, RunsArgs,
};
use crate::error::{CliError, EXIT_FAILED};
use crate::output::{age, duration_ms, print, status_word};
use crate::remote::{Body, Remote, segment};

/// The Tekton collection path of a namespace.
fn tekton(namespace: &str) -> String {
    format!("/apis/tekton.dev/v1/namespaces/{}", segment(namespace))
}

/// A run on the server: its namespace and name.
#[derive(Debug, Clone)]
struct Located {
    namespace: String,
    name: String,
}

impl Located {
    /// The path of one of the run's own endpoints (`logs`, `cancel`, ...).
    fn path(&self, verb: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/runs/{}/{verb}",
            segment(&self.namespace),
            segment(&self.name)
        )
    }
}

/// The run `key` names: in the chosen namespace, or with `-A` the newest top-level run of any
/// namespace whose name or uid is `key` (or whose uid starts with it, 8+ hex digits).
async fn locate(remote: &Remote, key: &str, ns: &Namespaces) -> Result<Located, CliError> {
    if let Some(namespace) = ns.selected() {
        return Ok(Located {
            namespace: namespace.to_string(),
            name: key.to_string(),
        });
    }
    let prefix = key.len() >= 8 && key.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let items = list(remote, None, 10_000).await?;
    let found = items
        .iter()
        .find(|o| o["metadata"]["name"] == key || o["metadata"]["uid"] == key)
        .or_else(|| {
            items.iter().find(|o| {
                prefix
                    && o["metadata"]["uid"]
                        .as_str()
                        .is_some_and(|u| u.starts_with(key))
            })
        });
    match found {
        Some(o) => Ok(Located {
            namespace: o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: o["metadata"]["name"].as_str().unwrap_or(key).to_string(),
        }),
        None => Err(CliError::usage(
            format!("no run named `{key}` in any namespace"),
            "list the server's runs with `slipway runs -A`",
        )),
    }
}

/// Top-level runs of one namespace (`None`: all), newest first.
async fn list(
    remote: &Remote,
    namespace: Option<&str>,
    limit: i64,
) -> Result<Vec<Value>, CliError> {
    let mut items = Vec::new();
    for kind in ["pipelineruns", "taskruns"] {
        let base = match namespace {
            Some(ns) => tekton(ns),
            None => "/apis/tekton.dev/v1".to_string(),
        };
        let list = remote.get(&format!("{base}/{kind}?limit={limit}")).await?;
        items.extend(list["items"].as_array().cloned().unwrap_or_default());
    }
    items.sort_by(|a, b| {
        b["metadata"]["creationTimestamp"]
            .as_str()
            .cmp(&a["metadata"]["creationTimestamp"].as_str())
    });
    items.truncate(limit.max(0) as usize);
    Ok(items)
}

fn read(files: &[std::path::PathBuf]) -> Result<Vec<(String, String)>, CliError> {
    if files.is_empty() {
        return Err(CliError::usage(
            "no files given",
            "pass the YAML with -f FILE (repeatable; directories work too)",
        ));
    }
    let (sources, diags) = read_sources(files);
    if !diags.is_empty() {
        return Err(CliError::Invalid(diags));
    }
    Ok(sources)
}

/// `slipway apply -f`: stores the definitions on the server, like `kubectl apply -f`.
pub async fn apply(remote: &Remote, args: &ApplyArgs) -> Result<i32, CliError> {
    // Definitions are applied first (all or none); PipelineRuns and TaskRuns in the files are
    // then created, as `kubectl apply -f` creates them, and left to run.
    let mut definitions = Body::default();
    let mut runs = Body::default();
    for (path, text) in read(&args.files)? {
        let file = Arc::new(SourceFile {
            path: path.clone(),
            text: text.clone(),
        });
        for piece in split_documents(&text) {
            if piece.text.trim().is_empty() {
                continue;
            }
            let target = if is_run(piece.text) {
                &mut runs
            } else {
                &mut definitions
            };
            target.push_piece(&file, piece.line, piece.text);
        }
    }
    let query = match &args.namespace {
        Some(ns) => format!("?namespace={}", segment(ns)),
        None => String::new(),
    };
    if !definitions.text.is_empty() {
        let reply = remote
            .post(&format!("/api/v1/apply{query}"), Some(&definitions))
            .await?;
        for item in reply["items"].as_array().into_iter().flatten() {
            let kind = item["kind"].as_str().unwrap_or("").to_lowercase();
            let group = if matches!(kind.as_str(), "configmap" | "secret") {
                String::new()
            } else if slipway_model::kinds::kruise::PrewarmKind::from_resource(&kind).is_some() {
                format!(".{}", slipway_model::kinds::kruise::GROUP)
            } else {
                ".tekton.dev".into()
            };
            println!(
                "{kind}{group}/{} {}",
                item["name"].as_str().unwrap_or(""),
                item["action"].as_str().unwrap_or("")
            );
        }
    }
    if !runs.text.is_empty() {
        let reply = remote
            .post(&format!("/api/v1/runs{query}"), Some(&runs))
            .await?;
        for item in reply["items"].as_array().into_iter().flatten() {
            println!(
                "{}.tekton.dev/{} created",
                item["kind"].as_str().unwrap_or("").to_lowercase(),
                item["metadata"]["name"].as_str().unwrap_or("")
            );
        }
    }
    Ok(0)
}

/// Whether a document is a PipelineRun or TaskRun.
fn is_run(text: &str) -> bool {
    parse_documents(text).ok().is_some_and(|docs| {
        docs.iter()
            .any(|d| matches!(d.value["kind"].as_str(), Some("PipelineRun" | "TaskRun")))
    })
}

/// `slipway run` against a server: the definitions in the files go with the runs (they are not
/// applied); `-p` values and `run pipeline NAME` are resolved here, as locally.
pub async fn run(remote: &Remote, args: RunArgs) -> Result<i32, CliError> {
    if args
        .exec
        .workspaces
        .iter()
        .any(|w| !w.ends_with("=emptyDir"))
    {
        return Err(CliError::usage(
            "-w NAME=DIR binds a directory of this machine, which a server cannot reach",
            "use -w NAME=emptyDir, or a volumeClaimTemplate in the run",
        ));
    }
    let sources = if args.files.is_empty() && args.target.is_some() {
        Vec::new()
    } else {
        read(&args.files)?
    };
    // Parsed here for the -p types and `run pipeline NAME`; references are checked by the server.
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    for (path, text) in &sources {
        lib.add_source(path.clone(), text.clone(), &mut diags);
    }
    if !diags.is_empty() {
        return Err(CliError::Invalid(diags));
    }
    // Runs sent as written keep diagnostics pointing into the user's files; -p or a named
    // target means generating them here.
    let verbatim = args.target.is_none() && args.exec.params.is_empty();
    let mut body = Body::default();
    for (path, text) in &sources {
        let file = Arc::new(SourceFile {
            path: path.clone(),
            text: text.clone(),
        });
        for piece in split_documents(text) {
            if (verbatim || !is_run(piece.text)) && !piece.text.trim().is_empty() {
                body.push_piece(&file, piece.line, piece.text);
            }
        }
    }
    if let Some(target) = &args.target {
        let (kind, name) = match target {
            RunTarget::Pipeline { name } => ("pipelines", name),
            RunTarget::Task { name } => ("tasks", name),
        };
        let known = match target {
            RunTarget::Pipeline { name } => lib.pipelines.contains_key(name),
            RunTarget::Task { name } => lib.tasks.contains_key(name),
        };
        if !known {
            let ns = args.namespace.as_deref().unwrap_or("default");
            let yaml = remote
                .get_text(
                    &format!("{}/{kind}/{}", tekton(ns), segment(name)),
                    "application/yaml",
                )
                .await?;
            lib.add_source(format!("{kind}/{name} on the server"), yaml, &mut diags);
        }
    }
    let runs = if verbatim {
        Vec::new()
    } else {
        crate::cmd::run::runs_to_start(&lib, &args)?
    };
    if verbatim && lib.runs.is_empty() {
        return Err(CliError::usage(
            "no PipelineRun or TaskRun in the files",
            "add one, or start a Pipeline or Task by name: `slipway run pipeline NAME -f DIR`",
        ));
    }
    for run in &runs {
        let name = run.meta().name.clone().unwrap_or_default();
        let doc = run.to_document(&name);
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| CliError::Internal(format!("failed to encode the run: {e}")))?;
        body.push(&format!("{} {}", run.kind(), run.name()), &text);
    }
    // Without -n the server puts the runs in the namespace they name, else `default`.
    let path = match &args.namespace {
        Some(ns) => format!("/api/v1/runs?namespace={}", segment(ns)),
        None => "/api/v1/runs".to_string(),
    };
    let reply = remote.post(&path, Some(&body)).await?;
    let runs: Vec<Located> = reply["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some(Located {
                name: i["metadata"]["name"].as_str()?.to_string(),
                namespace: i["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
            })
        })
        .collect();
    finish(remote, &runs, &args.exec).await
}

/// `slipway rerun` against a server.
pub async fn rerun(remote: &Remote, args: &RerunArgs) -> Result<i32, CliError> {
    if !args.exec.params.is_empty() {
        return Err(CliError::usage(
            "-p cannot change a rerun on a server",
            "start the Pipeline again with `slipway run pipeline NAME -p ...`",
        ));
    }
    let run = locate(remote, &args.run, &args.ns).await?;
    let reply = remote.post(&run.path("rerun"), None).await?;
    let again = Located {
        name: reply["metadata"]["name"].as_str().unwrap_or("").to_string(),
        namespace: run.namespace,
    };
    finish(remote, &[again], &args.exec).await
}

/// Prints what was queued; unless detached, follows each run to its end (printing its lines
/// with `--logs`) and answers with its outcome.
async fn finish(
    remote: &Remote,
    runs: &[Located],
    exec: &crate::cli::Execution,
) -> Result<i32, CliError> {
    let mut code = 0;
    let mut printed = Vec::new();
    for run in runs {
        let name = &run.name;
        eprintln!("{name} queued");
        if exec.detach {
            println!("{name}");
            continue;
        }
        let logs = exec.logs;
        remote
            .follow(&format!("{}?follow=true", run.path("logs")), |l| {
                if logs {
                    print_line(l);
                }
            })
            .await?;
        let o = object(remote, run).await?;
        let (status, reason) = condition(&o);
        eprintln!("{name} {}", status_word(&status, &reason));
        if exec.output.is_some() {
            printed.push(o);
        }
        if status != "True" {
            code = EXIT_FAILED;
        }
    }
    if let Some(format) = exec.output {
        crate::output::print_all(printed, format)?;
    }
    Ok(code)
}

fn print_line(l: &Value) {
    // `+`: this piece continues a line cut at the length cap.
    let mark = if l["continued"] == true { "+" } else { "" };
    println!(
        "[{}/{}]{mark} {}",
        l["task"].as_str().or(l["taskRun"].as_str()).unwrap_or(""),
        l["step"].as_str().unwrap_or(""),
        l["line"].as_str().unwrap_or("")
    );
}

fn condition(o: &Value) -> (String, String) {
    let c = &o["status"]["conditions"][0];
    (
        c["status"].as_str().unwrap_or("Unknown").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

/// A run by name: a PipelineRun, else a TaskRun.
async fn object(remote: &Remote, run: &Located) -> Result<Value, CliError> {
    let base = tekton(&run.namespace);
    let name = segment(&run.name);
    match remote.get(&format!("{base}/pipelineruns/{name}")).await {
        Ok(o) => Ok(o),
        Err(_) => remote.get(&format!("{base}/taskruns/{name}")).await,
    }
}

/// `slipway runs` against a server.
pub async fn runs(remote: &Remote, args: &RunsArgs) -> Result<i32, CliError> {
    let items = list(remote, args.ns.selected(), args.limit).await?;
    if let Some(format) = args.output {
        print(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}),
            format,
        )?;
        return Ok(0);
    }
    if items.is_empty() {
        println!("No runs yet. Start one with `slipway run -f FILE`.");
        return Ok(0);
    }
    let table: Vec<crate::cmd::history::Row> = items
        .iter()
        .map(|o| {
            let (status, reason) = condition(o);
            let labels = &o["metadata"]["labels"];
            let target = labels["tekton.dev/pipeline"]
                .as_str()
                .or(labels["tekton.dev/task"].as_str())
                .unwrap_or("");
            let created = o["metadata"]["creationTimestamp"].as_str().and_then(millis);
            let finished = o["status"]["completionTime"].as_str().and_then(millis);
            crate::cmd::history::Row {
                namespace: o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                cells: [
                    o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    o["kind"].as_str().unwrap_or("").to_string(),
                    target.to_string(),
                    status_word(&status, &reason),
                    created.map(age).unwrap_or_default(),
                    match (created, finished) {
                        (Some(a), Some(b)) => duration_ms(b - a),
                        _ => "---".into(),
                    },
                ],
            }
        })
        .collect();
    crate::cmd::history::print_runs(&table, args.ns.all_namespaces);
    Ok(0)
}

/// `slipway describe` against a server.
pub async fn describe(remote: &Remote, args: &DescribeArgs) -> Result<i32, CliError> {
    let run = locate(remote, &args.run, &args.ns).await?;
    let o = object(remote, &run).await?;
    if let Some(format) = args.output {
        print(&o, format)?;
        return Ok(0);
    }
    let (status, reason) = condition(&o);
    println!(
        "Name:      {}",
        o["metadata"]["name"].as_str().unwrap_or("")
    );
    println!(
        "Namespace: {}",
        o["metadata"]["namespace"].as_str().unwrap_or("default")
    );
    println!("UID:       {}", o["metadata"]["uid"].as_str().unwrap_or(""));
    println!("Kind:      {}", o["kind"].as_str().unwrap_or(""));
    println!("Status:    {}", status_word(&status, &reason));
    if let Some(m) = o["status"]["conditions"][0]["message"].as_str() {
        println!("Message:   {m}");
    }
    if let Some(dropped) = crate::cmd::history::dropped_logs(&o) {
        println!("Logs:      {dropped}");
    }
    let trs = remote.get(&run.path("taskruns")).await?;
    let items = trs["items"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("\nTaskRuns");
        for t in items {
            let (s, r) = condition(&t);
            let took = match (
                t["status"]["startTime"].as_str().and_then(millis),
                t["status"]["completionTime"].as_str().and_then(millis),
            ) {
                (Some(a), Some(b)) => duration_ms(b - a),
                _ => "---".into(),
            };
            println!(
                "  {:<40} {:<20} {took}",
                t["metadata"]["name"].as_str().unwrap_or(""),
                status_word(&s, &r)
            );
        }
    }
    Ok(0)
}

fn millis(ts: &str) -> Option<i64> {
    humantime::parse_rfc3339(ts)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

/// `slipway logs` against a server.
pub async fn logs(remote: &Remote, args: &LogsArgs) -> Result<i32, CliError> {
    let run = locate(remote, &args.run, &args.ns).await?;
    let mut query = Vec::new();
    if let Some(t) = &args.task {
        query.push(format!("task={}", segment(t)));
    }
    if let Some(s) = &args.step {
        query.push(format!("step={}", segment(s)));
    }
    let path = format!("{}?{}", run.path("logs"), query.join("&"));
    if args.follow {
        remote
            .follow(&format!("{path}&follow=true"), print_line)
            .await?;
    } else {
        print!("{}", remote.get_text(&path, "text/plain").await?);
    }
    Ok(0)
}

/// `slipway cancel` against a server.
pub async fn cancel(remote: &Remote, args: &RunRef) -> Result<i32, CliError> {
    let run = locate(remote, &args.run, &args.ns).await?;
    let o = remote.post(&run.path("cancel"), None).await?;
    let (_, reason) = condition(&o);
    let note = if reason == "Cancelled" {
        "cancelled before it started"
    } else {
        "cancelling (finally tasks still run)"
    };
    println!(
        "{} {} {note}",
        o["kind"].as_str().unwrap_or("run"),
        o["metadata"]["name"].as_str().unwrap_or(&args.run)
    );
    Ok(0)
}
