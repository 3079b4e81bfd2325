//! `slipway runs` and `slipway describe`: reading the stored history.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli::{DescribeArgs, RunsArgs};
use crate::error::CliError;
use crate::output::{age, duration_ms, print, status_word};

/// Lists runs as a table, like `tkn pipelinerun list`.
pub async fn runs(data: &Path, args: &RunsArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    let rows = store.list_runs_in(args.ns.selected(), args.limit).await?;
    if let Some(format) = args.output {
        let items: Vec<Value> = rows.iter().map(|r| r.object.clone()).collect();
        print(
            &json!({ "apiVersion": "v1", "kind": "List", "items": items }),
            format,
        )?;
        return Ok(0);
    }
    if rows.is_empty() {
        println!("No runs yet. Start one with `slipway run -f FILE`.");
        return Ok(0);
    }
    let table: Vec<Row> = rows
        .iter()
        .map(|r| {
            let took = r
                .finished_at
                .map(|f| duration_ms(f - r.created_at))
                .unwrap_or_else(|| "---".into());
            Row {
                namespace: r.namespace.clone(),
                cells: [
                    r.name.clone(),
                    r.kind.clone(),
                    r.target.clone(),
                    status_word(&r.status, &r.reason),
                    age(r.created_at),
                    took,
                ],
            }
        })
        .collect();
    print_runs(&table, args.ns.all_namespaces);
    Ok(0)
}

/// A line of the runs table: the namespace, then NAME to DURATION.
#[derive(Debug)]
pub struct Row {
    /// Namespace (a column with `-A`, as kubectl shows it).
    pub namespace: String,
    /// NAME, KIND, TARGET, STATUS, STARTED, DURATION.
    pub cells: [String; 6],
}

/// The runs table; with `all_namespaces`, NAMESPACE first.
pub fn print_runs(rows: &[Row], all_namespaces: bool) {
    const HEAD: [&str; 6] = ["NAME", "KIND", "TARGET", "STATUS", "STARTED", "DURATION"];
    if !all_namespaces {
        let cells: Vec<[String; 6]> = rows.iter().map(|r| r.cells.clone()).collect();
        print_table(&HEAD, &cells);
        return;
    }
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let [a, b, c, d, e, f] = r.cells.clone();
            [r.namespace.clone(), a, b, c, d, e, f]
        })
        .collect();
    let [a, b, c, d, e, f] = HEAD;
    print_table(&["NAMESPACE", a, b, c, d, e, f], &cells);
}

/// Prints aligned columns under a header.
pub fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", s.join("   ").trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// What a run's log cap dropped, from the annotations the engine puts on its object.
pub fn dropped_logs(o: &Value) -> Option<String> {
    let a = &o["metadata"]["annotations"];
    let bytes = a[slipway_engine::store::DROPPED_BYTES].as_str()?;
    let lines = a[slipway_engine::store::DROPPED_LINES]
        .as_str()
        .unwrap_or("?");
    Some(format!(
        "{bytes} bytes in {lines} lines dropped past the run's log cap"
    ))
}

/// Shows one run like `tkn pipelinerun describe`.
pub async fn describe(data: &Path, args: &DescribeArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    let found = crate::cmd::lookup::find(&store, args.ns.selected(), &args.run).await?;
    if let Some(t) = found.task_run {
        return describe_task_run(&found.run, &t, args);
    }
    let row = found.run;
    if let Some(format) = args.output {
        print(&row.object, format)?;
        return Ok(0);
    }
    let o = &row.object;
    let message = o
        .pointer("/status/conditions/0/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    println!("Name:      {}", row.name);
    println!("Namespace: {}", row.namespace);
    println!("UID:       {}", row.uid);
    println!("Kind:      {}", row.kind);
    if !row.target.is_empty() {
        println!(
            "{}:  {}",
            if row.kind == "PipelineRun" {
                "Pipeline"
            } else {
                "Task    "
            },
            row.target
        );
    }
    println!("Status:    {}", status_word(&row.status, &row.reason));
    if !message.is_empty() {
        println!("Message:   {message}");
    }
    if let Some(dropped) = dropped_logs(o) {
        println!("Logs:      {dropped}");
    }
    println!("Started:   {}", age(row.created_at));
    if let Some(f) = row.finished_at {
        println!("Duration:  {}", duration_ms(f - row.created_at));
    }
    let params = o
        .pointer("/spec/params")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !params.is_empty() {
        println!("\nParams");
        for p in params {
            println!(
                "  {} = {}",
                p["name"].as_str().unwrap_or(""),
                compact(&p["value"])
            );
        }
    }
    let results = o
        .pointer("/status/results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !results.is_empty() {
        println!("\nResults");
        for r in results {
            println!(
                "  {} = {}",
                r["name"].as_str().unwrap_or(""),
                compact(&r["value"])
            );
        }
    }
    let trs = store.task_runs(&row.uid).await?;
    if !trs.is_empty() {
        println!("\nTaskRuns");
        let table: Vec<[String; 4]> = trs
            .iter()
            .map(|t| {
                let took = match (t.started_at, t.finished_at) {
                    (Some(s), Some(f)) => duration_ms(f - s),
                    _ => "---".into(),
                };
                let task = crate::cmd::lookup::label(&row.name, t);
                let status = if t.attempt > 0 {
                    format!(
                        "{} (retry {})",
                        status_word(&t.status, &t.reason),
                        t.attempt
                    )
                } else {
                    status_word(&t.status, &t.reason)
                };
                [format!("  {}", t.name), task, status, took]
            })
            .collect();
        print_table(&["  NAME", "TASK", "STATUS", "DURATION"], &table);
        let failures: Vec<String> = trs
            .iter()
            .filter(|t| t.status == "False")
            .filter_map(|t| {
                let m = t
                    .object
                    .as_ref()?
                    .pointer("/status/conditions/0/message")?
                    .as_str()?;
                Some(format!(
                    "  {}: {}: {m}",
                    crate::cmd::lookup::label(&row.name, t),
                    t.reason
                ))
            })
            .collect();
        if !failures.is_empty() {
            println!("\nFailures");
            for f in failures {
                println!("{f}");
            }
        }
        println!("\nSteps");
        for t in &trs {
            print_steps(&crate::cmd::lookup::label(&row.name, t), t);
        }
    }
    let notes = store.notices(&row.uid).await?;
    let skipped: Vec<_> = notes
        .iter()
        .filter(|(k, _, _)| k == "TaskSkipped")
        .collect();
    if !skipped.is_empty() {
        println!("\nSkipped");
        for (_, task, d) in skipped {
            println!("  {task}: {}", d["reason"].as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

/// One line per step of a TaskRun: how it ended, that it never started and why, or that it
/// is still running.
fn print_steps(label: &str, t: &slipway_store::TaskRunRow) {
    let steps = t
        .object
        .as_ref()
        .and_then(|o| o.pointer("/status/steps"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for s in steps {
        println!(
            "  {label}/{}  {}",
            s["name"].as_str().unwrap_or(""),
            step_state(&s)
        );
    }
}

/// A step's state in words, from Tekton's `status.steps[]` entry.
fn step_state(s: &Value) -> String {
    let term = &s["terminated"];
    let waiting = &s["waiting"];
    if term.is_object() {
        format!(
            "{} (exit {})",
            term["reason"].as_str().unwrap_or(""),
            term["exitCode"]
        )
    } else if waiting.is_object() {
        format!(
            "not started ({})",
            waiting["reason"].as_str().unwrap_or("waiting")
        )
    } else {
        "Running".into()
    }
}

/// `describe` of a TaskRun inside a run, named by its own name.
fn describe_task_run(
    run: &slipway_store::RunRow,
    t: &slipway_store::TaskRunRow,
    args: &DescribeArgs,
) -> Result<i32, CliError> {
    if let Some(format) = args.output {
        print(t.object.as_ref().unwrap_or(&Value::Null), format)?;
        return Ok(0);
    }
    let message = t
        .object
        .as_ref()
        .and_then(|o| o.pointer("/status/conditions/0/message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    println!("Name:      {}", t.name);
    println!("UID:       {}", t.uid);
    println!("Kind:      TaskRun");
    println!("Run:       {} ({})", run.name, run.kind);
    if let Some(pt) = &t.pipeline_task {
        println!("Task:      {pt}");
    }
    println!("Status:    {}", status_word(&t.status, &t.reason));
    if !message.is_empty() {
        println!("Message:   {message}");
    }
    if let (Some(s), Some(f)) = (t.started_at, t.finished_at) {
        println!("Duration:  {}", duration_ms(f - s));
    }
    println!("\nSteps");
    print_steps(&crate::cmd::lookup::label(&run.name, t), t);
    Ok(0)
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
