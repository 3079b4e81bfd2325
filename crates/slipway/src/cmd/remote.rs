//! The verbs against a server (`--server`): apply, run, rerun, runs, describe, logs, cancel.

use std::sync::Arc;

use serde_json::Value;
use slipway_model::documents::split_documents;
use slipway_model::library::read_sources;
use slipway_model::node::parse_documents;
use slipway_model::{Diagnostics, Library, SourceFile};

use crate::cli::{
    ApplyArgs, DescribeArgs, LogsArgs, RerunArgs, RunArgs, RunRef, RunTarget, RunsArgs,
};
use crate::error::{CliError, EXIT_FAILED};
use crate::output::{age, duration_ms, print, status_word};
use crate::remote::{Body, Remote};

const NS: &str = "/apis/tekton.dev/v1/namespaces/default";

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
    let mut body = Body::default();
    for (path, text) in read(&args.files)? {
        body.push(&path, &text);
    }
    let reply = remote.post("/api/v1/apply", Some(&body)).await?;
    for item in reply["items"].as_array().into_iter().flatten() {
        let kind = item["kind"].as_str().unwrap_or("").to_lowercase();
        let group = if matches!(kind.as_str(), "configmap" | "secret") {
            String::new()
        } else {
            ".tekton.dev".into()
        };
        println!(
            "{kind}{group}/{} {}",
            item["name"].as_str().unwrap_or(""),
            item["action"].as_str().unwrap_or("")
        );
    }
    Ok(0)
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
            let is_run = parse_documents(piece.text).ok().is_some_and(|docs| {
                docs.iter()
                    .any(|d| matches!(d.value["kind"].as_str(), Some("PipelineRun" | "TaskRun")))
            });
            if (verbatim || !is_run) && !piece.text.trim().is_empty() {
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
            let yaml = remote
                .get_text(&format!("{NS}/{kind}/{name}"), "application/yaml")
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
    let reply = remote.post("/api/v1/runs", Some(&body)).await?;
    let names: Vec<String> = reply["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    finish(remote, &names, &args.exec).await
}

/// `slipway rerun` against a server.
pub async fn rerun(remote: &Remote, args: &RerunArgs) -> Result<i32, CliError> {
    if !args.exec.params.is_empty() {
        return Err(CliError::usage(
            "-p cannot change a rerun on a server",
            "start the Pipeline again with `slipway run pipeline NAME -p ...`",
        ));
    }
    let reply = remote
        .post(&format!("/api/v1/runs/{}/rerun", args.run), None)
        .await?;
    let name = reply["metadata"]["name"].as_str().unwrap_or("").to_string();
    finish(remote, &[name], &args.exec).await
}

/// Prints what was queued; unless detached, follows each run to its end (printing its lines
/// with `--logs`) and answers with its outcome.
async fn finish(
    remote: &Remote,
    names: &[String],
    exec: &crate::cli::Execution,
) -> Result<i32, CliError> {
    let mut code = 0;
    let mut printed = Vec::new();
    for name in names {
        eprintln!("{name} queued");
        if exec.detach {
            println!("{name}");
            continue;
        }
        let logs = exec.logs;
        remote
            .follow(&format!("/api/v1/runs/{name}/logs?follow=true"), |l| {
                if logs {
                    print_line(l);
                }
            })
            .await?;
        let o = object(remote, name).await?;
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
    println!(
        "[{}/{}] {}",
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
async fn object(remote: &Remote, name: &str) -> Result<Value, CliError> {
    match remote.get(&format!("{NS}/pipelineruns/{name}")).await {
        Ok(o) => Ok(o),
        Err(_) => remote.get(&format!("{NS}/taskruns/{name}")).await,
    }
}

/// `slipway runs` against a server.
pub async fn runs(remote: &Remote, args: &RunsArgs) -> Result<i32, CliError> {
    let mut items = Vec::new();
    for kind in ["pipelineruns", "taskruns"] {
        let list = remote
            .get(&format!("{NS}/{kind}?limit={}", args.limit))
            .await?;
        items.extend(list["items"].as_array().cloned().unwrap_or_default());
    }
    items.sort_by(|a, b| {
        b["metadata"]["creationTimestamp"]
            .as_str()
            .cmp(&a["metadata"]["creationTimestamp"].as_str())
    });
    items.truncate(args.limit.max(0) as usize);
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
    let table: Vec<[String; 6]> = items
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
            [
                o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                o["kind"].as_str().unwrap_or("").to_string(),
                target.to_string(),
                status_word(&status, &reason),
                created.map(age).unwrap_or_default(),
                match (created, finished) {
                    (Some(a), Some(b)) => duration_ms(b - a),
                    _ => "---".into(),
                },
            ]
        })
        .collect();
    crate::cmd::history::print_table(
        &["NAME", "KIND", "TARGET", "STATUS", "STARTED", "DURATION"],
        &table,
    );
    Ok(0)
}

/// `slipway describe` against a server.
pub async fn describe(remote: &Remote, args: &DescribeArgs) -> Result<i32, CliError> {
    let o = object(remote, &args.run).await?;
    if let Some(format) = args.output {
        print(&o, format)?;
        return Ok(0);
    }
    let (status, reason) = condition(&o);
    println!(
        "Name:      {}",
        o["metadata"]["name"].as_str().unwrap_or("")
    );
    println!("UID:       {}", o["metadata"]["uid"].as_str().unwrap_or(""));
    println!("Kind:      {}", o["kind"].as_str().unwrap_or(""));
    println!("Status:    {}", status_word(&status, &reason));
    if let Some(m) = o["status"]["conditions"][0]["message"].as_str() {
        println!("Message:   {m}");
    }
    let trs = remote
        .get(&format!("/api/v1/runs/{}/taskruns", args.run))
        .await?;
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
    let mut query = Vec::new();
    if let Some(t) = &args.task {
        query.push(format!("task={t}"));
    }
    if let Some(s) = &args.step {
        query.push(format!("step={s}"));
    }
    let path = format!("/api/v1/runs/{}/logs?{}", args.run, query.join("&"));
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
    let o = remote
        .post(&format!("/api/v1/runs/{}/cancel", args.run), None)
        .await?;
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
