//! Live progress of a run: a tree of tasks and steps on a terminal, prefixed lines elsewhere.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use slipway_engine::{RunEvent, StepEnd, Stream};
use tokio::sync::mpsc;

struct Task {
    label: String,
    steps: Vec<String>,
    bar: Option<ProgressBar>,
    started: SystemTime,
    /// Per step: when it started, and how and when it ended.
    times: Vec<StepTimes>,
}

/// When a step started, and how and when it ended.
type StepTimes = (Option<SystemTime>, Option<(StepEnd, SystemTime)>);

/// The step lines printed under a finished task in the live tree.
fn step_tree(t: &Task) -> Vec<String> {
    let n = t.steps.len();
    t.steps
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let branch = if i + 1 == n { "└─" } else { "├─" };
            match t.times.get(i) {
                Some((start, Some((end, at)))) => {
                    let mark = match end {
                        StepEnd::Exited(0) => "✓",
                        StepEnd::Skipped => "-",
                        _ => "✗",
                    };
                    let took = start
                        .and_then(|s| at.duration_since(s).ok())
                        .map(|d| format!(" {}", crate::output::duration_ms(d.as_millis() as i64)))
                        .unwrap_or_default();
                    let what = match end {
                        StepEnd::Exited(0) => String::new(),
                        StepEnd::Skipped => " skipped".into(),
                        other => format!(" {} (exit code {})", other.reason(), other.exit_code()),
                    };
                    format!("  {branch} {mark} {name}{what}{took}")
                }
                _ => format!("  {branch} · {name} not run"),
            }
        })
        .collect()
}

/// The condition message of a TaskRun that failed, unless it only repeats the exit code
/// already shown on the step's line.
fn failure_message(succeeded: bool, reason: &str, object: &serde_json::Value) -> Option<String> {
    if succeeded || reason == "TaskRunCancelled" {
        return None;
    }
    let m = object
        .pointer("/status/conditions/0/message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .trim();
    (!m.is_empty()).then(|| m.to_string())
}

/// How to show a run.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Animated tree (terminal) or plain lines.
    pub live: bool,
    /// Print step output.
    pub logs: bool,
    /// Write to stderr (stdout holds `-o` output).
    pub to_stderr: bool,
}

/// Consumes events until the channel closes; returns when everything is printed.
pub async fn render(mut rx: mpsc::UnboundedReceiver<RunEvent>, root_uid: String, style: Style) {
    let multi = if style.live {
        Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
    } else {
        None
    };
    let mut tasks: HashMap<String, Task> = HashMap::new();
    let mut out: Box<dyn Write + Send> = if style.to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let mut say = |multi: &Option<MultiProgress>, line: String| match multi {
        Some(m) if !style.to_stderr => {
            let _ = m.suspend(|| writeln!(out, "{line}"));
        }
        Some(m) => {
            let _ = m.println(&line);
        }
        None => {
            let _ = writeln!(out, "{line}");
        }
    };
    let spinner =
        ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut root_name = String::new();
    // The first TaskRun that failed, with why: repeated under a failed PipelineRun's last line.
    let mut first_failure: Option<String> = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            RunEvent::TaskRunStarted { info, at } => {
                // Matrix children and nested pipelines share a pipeline task name; the TaskRun name
                // relative to the root run (`test-0`, `child-build`) tells them apart.
                let label = match (
                    &info.pipeline_task,
                    info.name.strip_prefix(&format!("{root_name}-")),
                ) {
                    (Some(_), Some(rel)) if !rel.is_empty() => rel.to_string(),
                    (Some(pt), _) => pt.clone(),
                    (None, _) => info.name.clone(),
                };
                let label = if info.attempt > 0 {
                    format!("{label} (retry {})", info.attempt)
                } else {
                    label
                };
                let bar = multi.as_ref().map(|m| {
                    let b = m.add(ProgressBar::new_spinner());
                    b.set_style(spinner.clone());
                    b.set_prefix(label.clone());
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                if bar.is_none() {
                    say(&multi, format!("[{label}] started"));
                }
                let times = vec![(None, None); info.steps.len()];
                tasks.insert(
                    info.uid.clone(),
                    Task {
                        label,
                        steps: info.steps,
                        bar,
                        started: at,
                        times,
                    },
                );
            }
            RunEvent::StepStarted { taskrun, step, at } => {
                if let Some(t) = tasks.get_mut(&taskrun) {
                    if let Some(slot) = t.times.get_mut(step) {
                        slot.0 = Some(at);
                    }
                    let name = t.steps.get(step).cloned().unwrap_or_default();
                    if let Some(b) = &t.bar {
                        b.set_message(format!("step {}/{}: {name}", step + 1, t.steps.len()));
                    }
                }
            }
            RunEvent::Log {
                taskrun,
                step,
                stream,
                line,
                continued,
                ..
            } if style.logs => {
                let label = tasks
                    .get(&taskrun)
                    .map(|t| t.label.clone())
                    .unwrap_or_default();
                // `+`: this piece continues a line cut at the length cap.
                let mark = match (stream == Stream::Stderr, continued) {
                    (false, false) => "",
                    (true, false) => "!",
                    (false, true) => "+",
                    (true, true) => "!+",
                };
                say(&multi, format!("[{label}/{step}]{mark} {line}"));
            }
            RunEvent::StepFinished {
                taskrun,
                step,
                end,
                at,
            } => {
                if let Some(t) = tasks.get_mut(&taskrun) {
                    if let Some(slot) = t.times.get_mut(step) {
                        slot.1 = Some((end.clone(), at));
                    }
                    if t.bar.is_some() {
                        // The live tree shows step outcomes under the task when it ends.
                        continue;
                    }
                    let name = t.steps.get(step).cloned().unwrap_or_default();
                    match &end {
                        StepEnd::Exited(0) | StepEnd::Skipped => {}
                        StepEnd::StartFailed(why) => say(
                            &multi,
                            format!("[{}/{name}] could not start: {why}", t.label),
                        ),
                        other => say(
                            &multi,
                            format!(
                                "[{}/{name}] {} (exit code {})",
                                t.label,
                                other.reason(),
                                other.exit_code()
                            ),
                        ),
                    }
                }
            }
            RunEvent::TaskRunFinished {
                uid,
                reason,
                succeeded,
                object,
                ..
            } => {
                if let Some(t) = tasks.remove(&uid) {
                    let took = SystemTime::now()
                        .duration_since(t.started)
                        .unwrap_or_default();
                    let mark = if succeeded { "✓" } else { "✗" };
                    // A failure says why in the TaskRun's own words (a missing Secret, the
                    // registry's answer to a pull), not only its reason.
                    let why = failure_message(succeeded, &reason, &object);
                    if let Some(w) = &why
                        && first_failure.is_none()
                    {
                        first_failure = Some(format!("{}: {reason}: {w}", t.label));
                    }
                    let why = why.map(|w| format!(": {w}")).unwrap_or_default();
                    let line = format!(
                        "{mark} {} {reason} in {}{why}",
                        t.label,
                        crate::output::duration_ms(took.as_millis() as i64)
                    );
                    match &t.bar {
                        Some(b) => {
                            b.finish_and_clear();
                            say(&multi, line);
                            for l in step_tree(&t) {
                                say(&multi, l);
                            }
                        }
                        None => say(
                            &multi,
                            format!(
                                "[{}] {reason} in {}{why}",
                                t.label,
                                crate::output::duration_ms(took.as_millis() as i64)
                            ),
                        ),
                    }
                }
            }
            RunEvent::TaskSkipped {
                pipeline_task,
                reason,
                ..
            } => say(&multi, format!("- {pipeline_task} skipped: {reason}")),
            RunEvent::Pull { taskrun, progress } => {
                let Some(t) = tasks.get(&taskrun) else {
                    continue;
                };
                let mb = |b: u64| b as f64 / 1e6;
                match &t.bar {
                    Some(b) if !progress.finished => b.set_message(format!(
                        "pulling {} {:.1}/{:.1} MB",
                        progress.image,
                        mb(progress.done),
                        mb(progress.total)
                    )),
                    Some(b) => b.set_message(String::new()),
                    // Plain output: one line per pull, not per update.
                    None if progress.failed => say(
                        &multi,
                        format!("[{}] failed to pull {}", t.label, progress.image),
                    ),
                    None if progress.finished => say(
                        &multi,
                        format!(
                            "[{}] pulled {} ({:.1} MB)",
                            t.label,
                            progress.image,
                            mb(progress.total)
                        ),
                    ),
                    None if progress.done == 0 && progress.total == 0 => {
                        say(&multi, format!("[{}] pulling {}", t.label, progress.image))
                    }
                    None => {}
                }
            }
            RunEvent::Notice { message, .. } => say(&multi, format!("note: {message}")),
            RunEvent::RunFinished {
                uid,
                reason,
                succeeded,
                object,
            } if uid == root_uid => {
                let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("Run");
                let name = object
                    .pointer("/metadata/name")
                    .and_then(|k| k.as_str())
                    .unwrap_or("");
                let message = object
                    .pointer("/status/conditions/0/message")
                    .and_then(|k| k.as_str())
                    .unwrap_or("");
                let mark = if succeeded { "✓" } else { "✗" };
                let cause = match (&first_failure, succeeded, kind) {
                    (Some(f), false, "PipelineRun") => format!("\n  first failure: {f}"),
                    _ => String::new(),
                };
                say(
                    &multi,
                    format!("{mark} {kind} {name} {reason}: {message}{cause}"),
                );
            }
            RunEvent::RunStarted { run, .. } if run.uid == root_uid => {
                root_name = run.name.clone();
                say(&multi, format!("{} {} started", run.kind, run.name))
            }
            _ => {}
        }
    }
    if let Some(m) = multi {
        let _ = m.clear();
    }
}
