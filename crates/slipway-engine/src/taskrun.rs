//! The TaskRun state machine: plan, wait for a slot, execute, collect results, retry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use indexmap::IndexMap;
use serde_json::{Value, json};
use slipway_model::kinds::task::TaskSpec;
use slipway_model::subst::Scope;
use slipway_model::{Param, ParamValue};
use tokio_util::sync::CancellationToken;

use crate::engine::Shared;
use crate::event::{ExecEvent, RunEvent, StepEnd, Stream, TaskRunInfo};
use crate::executor::{EventSink, ExecOutcome, ExecStatus};
use crate::sources::Bound;
use crate::status::{StepState, condition, result_entry, ts};
use crate::store::Logged;
use crate::taskplan::{self, Invocation};

/// The PipelineRun a TaskRun belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Parent {
    pub uid: String,
    pub name: String,
    pub pipeline_task: String,
    pub member_of: &'static str,
}

/// Everything to run one TaskRun.
#[derive(Debug, Clone)]
pub(crate) struct TaskRunRequest {
    /// When it was created, if before it starts (a queued TaskRun); else now.
    pub created: Option<SystemTime>,
    pub uid: String,
    pub name: String,
    /// `context.task.name`: the Task's name, or the pipeline task's for inline specs.
    pub task_name: String,
    pub spec: TaskSpec,
    pub embedded: bool,
    pub params: Vec<Param>,
    pub context: Scope,
    pub workspaces: IndexMap<String, Bound>,
    pub pod_template: Option<Value>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub parent: Option<Parent>,
    /// The TaskRun spec as Tekton would show it.
    pub spec_json: Value,
    pub labels: IndexMap<String, String>,
    /// The run's own annotations (a standalone TaskRun's).
    pub annotations: IndexMap<String, String>,
}

/// How a TaskRun ended.
#[derive(Debug, Clone)]
pub(crate) struct TaskRunDone {
    pub reason: String,
    pub succeeded: bool,
    pub results: IndexMap<String, ParamValue>,
    pub object: Value,
}

/// Runs a TaskRun with its retries and reports every event.
pub(crate) async fn run(
    shared: Arc<Shared>,
    req: TaskRunRequest,
    cancel: CancellationToken,
) -> TaskRunDone {
    let created = req.created.unwrap_or_else(SystemTime::now);
    let mut retries_status: Vec<Value> = Vec::new();
    let mut attempt: u32 = 0;
    loop {
        let mut done =
            attempt_once(&shared, &req, attempt, created, &retries_status, &cancel).await;
        done.object["metadata"]["namespace"] = json!(shared.config.namespace);
        let retry = !done.succeeded
            && attempt < req.retries
            && !cancel.is_cancelled()
            && done.reason != "TaskRunValidationFailed";
        if !retry {
            shared.reporter.emit(RunEvent::TaskRunFinished {
                uid: req.uid.clone(),
                root: shared.root_uid.clone(),
                reason: done.reason.clone(),
                succeeded: done.succeeded,
                object: done.object.clone(),
            });
            return done;
        }
        retries_status.push(done.object.get("status").cloned().unwrap_or(Value::Null));
        attempt += 1;
    }
}

async fn attempt_once(
    shared: &Arc<Shared>,
    req: &TaskRunRequest,
    attempt: u32,
    created: SystemTime,
    retries_status: &[Value],
    cancel: &CancellationToken,
) -> TaskRunDone {
    let mut context = req.context.clone();
    context.set_str("context.taskRun.name", req.name.clone());
    context.set_str("context.taskRun.uid", req.uid.clone());
    context.set_str("context.taskRun.namespace", shared.config.namespace.clone());
    context.set_str("context.task.name", req.task_name.clone());
    context.set_str("context.task.retry-count", attempt.to_string());
    let timeout = req.timeout.filter(|t| !t.is_zero());
    let inv = Invocation {
        lib: &shared.lib,
        spec: &req.spec,
        embedded: req.embedded,
        params: &req.params,
        context: &context,
        workspaces: &req.workspaces,
        pod_template: req.pod_template.as_ref(),
        timeout,
        uid: &req.uid,
        name: &req.name,
        root_uid: &shared.root_uid,
        max_result_bytes: shared.config.max_result_bytes,
        allow_host_paths: shared.config.allow_host_paths,
        service_account: req
            .spec_json
            .get("serviceAccountName")
            .and_then(Value::as_str),
    };
    let started = SystemTime::now();
    let mut plan = match taskplan::plan(&inv) {
        Ok(p) => p,
        Err(f) => {
            // Its steps are listed as never started, with the reason.
            let names = taskplan::step_names(&req.spec);
            let steps: Vec<StepState> = names.iter().map(|n| StepState::new(n)).collect();
            shared.reporter.emit(RunEvent::TaskRunStarted {
                info: info(shared, req, names, attempt),
                at: started,
            });
            return finish(
                req,
                created,
                started,
                &steps,
                f.reason,
                false,
                f.message,
                IndexMap::new(),
                retries_status,
            );
        }
    };
    plan.attempt = attempt;
    let step_names: Vec<String> = plan.steps.iter().map(|s| s.name.clone()).collect();
    let mut steps: Vec<StepState> = step_names.iter().map(|n| StepState::new(n)).collect();
    let permit = tokio::select! {
        p = shared.permits.clone().acquire_owned() => p.ok(),
        () = cancel.cancelled() => None,
    };
    if permit.is_none() {
        shared.reporter.emit(RunEvent::TaskRunStarted {
            info: info(shared, req, step_names, attempt),
            at: started,
        });
        let msg = format!("TaskRun \"{}\" was cancelled", req.name);
        return finish(
            req,
            created,
            started,
            &steps,
            "TaskRunCancelled".into(),
            false,
            msg,
            IndexMap::new(),
            retries_status,
        );
    }
    let started = SystemTime::now();
    shared.reporter.emit(RunEvent::TaskRunStarted {
        info: info(shared, req, step_names.clone(), attempt),
        at: started,
    });
    let result_types: Vec<(String, slipway_model::ParamType)> = req
        .spec
        .results
        .iter()
        .map(|r| (r.name.clone(), r.effective_type()))
        .collect();
    let (sink, mut rx) = EventSink::channel(req.uid.clone());
    let exec = shared.executor.run(plan, sink, cancel.child_token());
    tokio::pin!(exec);
    let mut drops = Drops::default();
    // While an event waits for the store, the executor's channel fills and it stops reading
    // the step's output: the step is slowed down, nothing piles up in memory.
    let outcome: ExecOutcome = loop {
        tokio::select! {
            out = &mut exec => break out,
            Some((_, ev)) = rx.recv() => on_event(shared, req, &mut steps, &mut drops, ev).await,
        }
    };
    while let Ok((_, ev)) = rx.try_recv() {
        on_event(shared, req, &mut steps, &mut drops, ev).await;
    }
    // Pieces still held back belong to steps whose end was not reported (an executor error).
    for step in 0..steps.len() {
        for (stream, line) in drops.held_back(step) {
            log_line(
                shared,
                req,
                &steps,
                &mut drops,
                step,
                stream,
                line,
                true,
                SystemTime::now(),
            )
            .await;
        }
    }
    drop(permit);

    let mut results = IndexMap::new();
    let mut status = outcome.status.clone();
    let mut message = outcome.message.clone();
    for (name, raw) in &outcome.results {
        let ty = result_types
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        match taskplan::parse_result(ty, raw) {
            Ok(v) => {
                results.insert(name.clone(), v);
            }
            Err(why) => {
                status = ExecStatus::Failed;
                message = format!("result `{name}` {why}");
            }
        }
    }
    // Task results may be declared as values of step results (StepActions).
    let mut step_scope = Scope::new();
    for (step, name, value) in &outcome.step_results {
        step_scope.set_str(format!("steps.{step}.results.{name}"), value.clone());
    }
    for r in &req.spec.results {
        if let Some(v) = &r.value {
            let value = step_scope.subst_value(v);
            if !value.strings().iter().any(|s| s.contains("$(")) {
                results.insert(r.name.clone(), value);
            }
        }
    }
    let (reason, ok) = match status {
        ExecStatus::Succeeded => ("Succeeded", true),
        ExecStatus::Failed | ExecStatus::Error => ("Failed", false),
        ExecStatus::TimedOut => ("TaskRunTimeout", false),
        ExecStatus::Cancelled => ("TaskRunCancelled", false),
        ExecStatus::ImagePullFailed => ("TaskRunImagePullFailed", false),
        ExecStatus::PodFailed(why) => (why.reason(), false),
        ExecStatus::ResultTooLarge => ("TaskRunResultLargerThanAllowedLimit", false),
    };
    if message.is_empty() {
        message = match status {
            ExecStatus::Succeeded => "All Steps have completed executing".into(),
            ExecStatus::TimedOut => format!(
                "TaskRun \"{}\" failed to finish within \"{}\"",
                req.name,
                slipway_model::duration::format_go_duration(timeout.unwrap_or_default())
            ),
            ExecStatus::Cancelled => format!("TaskRun \"{}\" was cancelled", req.name),
            _ => steps
                .iter()
                .find_map(|s| match &s.ended {
                    Some((StepEnd::Exited(c), _)) if *c != 0 => {
                        Some(format!("\"step-{}\" exited with code {c}", s.name))
                    }
                    Some((StepEnd::OutOfMemory, _)) => {
                        Some(format!("\"step-{}\" was killed: out of memory", s.name))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "TaskRun failed".into()),
        };
    }
    let reason = if status == ExecStatus::Failed
        && steps
            .iter()
            .any(|s| matches!(s.ended, Some((StepEnd::OutOfMemory, _))))
    {
        "StepOOM"
    } else {
        reason
    };
    finish(
        req,
        created,
        started,
        &steps,
        reason.into(),
        ok,
        message,
        results,
        retries_status,
    )
}

fn info(shared: &Shared, req: &TaskRunRequest, steps: Vec<String>, attempt: u32) -> TaskRunInfo {
    TaskRunInfo {
        uid: req.uid.clone(),
        name: req.name.clone(),
        root_uid: shared.root_uid.clone(),
        parent_uid: req.parent.as_ref().map(|p| p.uid.clone()),
        pipeline_task: req.parent.as_ref().map(|p| p.pipeline_task.clone()),
        steps,
        attempt,
        spec: req.spec_json.clone(),
    }
}

/// What the TaskRun's output is waiting on: the ends of pieces held back, and what the run's
/// log cap dropped.
#[derive(Debug, Default)]
struct Drops {
    /// Per step: bytes and lines dropped past the run's log cap.
    dropped: HashMap<usize, (u64, u64)>,
    /// Per step and stream: the end of a piece cut at the line cap, held back until the next
    /// piece shows whether the line goes on, so a secret the cut split in two is still masked.
    held: HashMap<(usize, Stream), String>,
}

impl Drops {
    /// The pieces to report for a piece that arrived: `(text, continued)`.
    fn carry(
        &mut self,
        reporter: &crate::store::Reporter,
        step: usize,
        stream: Stream,
        line: String,
        continued: bool,
    ) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        // Cut pieces are as long as the cap allows (less a split character at most).
        let cut = line.len() + 3 >= crate::output::MAX_LINE;
        let (text, continued) = match self.held.remove(&(step, stream)) {
            Some(held) if continued => (held + &line, true),
            Some(held) => {
                out.push((held, true));
                (line, continued)
            }
            None => (line, continued),
        };
        let longest = reporter.longest_secret();
        if !cut || longest < 2 {
            out.push((text, continued));
            return out;
        }
        // Masked now, the rest kept for the next piece: a secret begun in the last
        // `longest - 1` bytes is masked once its end arrives.
        let masked = reporter.mask(&text).into_owned();
        let mut at = masked.len().saturating_sub(longest - 1);
        while !masked.is_char_boundary(at) {
            at -= 1;
        }
        self.held.insert((step, stream), masked[at..].to_string());
        out.push((masked[..at].to_string(), continued));
        out
    }

    /// The held-back ends of `step`'s streams, once it has ended.
    fn held_back(&mut self, step: usize) -> Vec<(Stream, String)> {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .filter_map(|s| self.held.remove(&(step, s)).map(|t| (s, t)))
            .collect()
    }
}

/// Reports one piece of a step's output, counting it when the run's log cap drops it.
#[allow(clippy::too_many_arguments)]
async fn log_line(
    shared: &Shared,
    req: &TaskRunRequest,
    steps: &[StepState],
    drops: &mut Drops,
    step: usize,
    stream: Stream,
    line: String,
    continued: bool,
    at: SystemTime,
) {
    let len = line.len() as u64;
    let ev = RunEvent::Log {
        root: shared.root_uid.clone(),
        taskrun: req.uid.clone(),
        step: steps.get(step).map(|s| s.name.clone()).unwrap_or_default(),
        stream,
        line,
        continued,
        at,
    };
    if shared.reporter.log(ev).await == Logged::Dropped {
        let d = drops.dropped.entry(step).or_default();
        d.0 += len;
        d.1 += 1;
    }
}

async fn on_event(
    shared: &Shared,
    req: &TaskRunRequest,
    steps: &mut [StepState],
    drops: &mut Drops,
    ev: ExecEvent,
) {
    let step_name =
        |steps: &[StepState], i: usize| steps.get(i).map(|s| s.name.clone()).unwrap_or_default();
    match ev {
        ExecEvent::StepStarted { step, at } => {
            if let Some(s) = steps.get_mut(step) {
                s.started = Some(at);
            }
            shared.reporter.emit(RunEvent::StepStarted {
                taskrun: req.uid.clone(),
                step,
                at,
            });
        }
        ExecEvent::Log {
            step,
            stream,
            line,
            continued,
            at,
        } => {
            for (line, continued) in drops.carry(&shared.reporter, step, stream, line, continued) {
                log_line(shared, req, steps, drops, step, stream, line, continued, at).await;
            }
        }
        ExecEvent::StepFinished { step, end, at, .. } => {
            for (stream, line) in drops.held_back(step) {
                log_line(shared, req, steps, drops, step, stream, line, true, at).await;
            }
            if let Some((bytes, lines)) = drops.dropped.remove(&step) {
                // The step's own log says where its output stops, so `slipway logs` shows it.
                let cap = shared.reporter.log_cap().unwrap_or_default();
                let line = format!(
                    "slipway: {bytes} bytes in {lines} lines of this step's output were dropped: the run passed its log cap of {cap} bytes"
                );
                let ev = RunEvent::Log {
                    root: shared.root_uid.clone(),
                    taskrun: req.uid.clone(),
                    step: step_name(steps, step),
                    stream: Stream::Stderr,
                    line,
                    continued: false,
                    at,
                };
                shared.reporter.log_uncapped(ev).await;
            }
            if let Some(s) = steps.get_mut(step) {
                s.ended = Some((end.clone(), at));
            }
            shared.reporter.emit(RunEvent::StepFinished {
                taskrun: req.uid.clone(),
                step,
                end,
                at,
            });
        }
        ExecEvent::Notice(message) => shared.notice(message),
        ExecEvent::Pull(progress) => shared.reporter.emit(RunEvent::Pull {
            taskrun: req.uid.clone(),
            progress,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    req: &TaskRunRequest,
    created: SystemTime,
    started: SystemTime,
    steps: &[StepState],
    reason: String,
    ok: bool,
    message: String,
    results: IndexMap<String, ParamValue>,
    retries_status: &[Value],
) -> TaskRunDone {
    let now = SystemTime::now();
    let mut labels = serde_json::Map::new();
    for (k, v) in &req.labels {
        labels.insert(k.clone(), json!(v));
    }
    if let Some(p) = &req.parent {
        labels.insert("tekton.dev/pipelineRun".into(), json!(p.name));
        labels.insert("tekton.dev/pipelineTask".into(), json!(p.pipeline_task));
        labels.insert("tekton.dev/memberOf".into(), json!(p.member_of));
    }
    labels.insert("tekton.dev/taskRun".into(), json!(req.name));
    if !req.task_name.is_empty() {
        labels.insert("tekton.dev/task".into(), json!(req.task_name));
    }
    let mut status = json!({
        "conditions": condition(Some(ok), &reason, &message, now),
        "podName": "",
        "startTime": ts(started),
        "completionTime": ts(now),
        "steps": steps.iter().map(|s| s.to_final_json(&reason, now)).collect::<Vec<_>>(),
        "taskSpec": req.spec,
    });
    if !results.is_empty() {
        status["results"] = results.iter().map(|(k, v)| result_entry(k, v)).collect();
    }
    if !retries_status.is_empty() {
        status["retriesStatus"] = json!(retries_status);
    }
    let mut object = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": req.name, "uid": req.uid, "creationTimestamp": ts(created), "labels": labels },
        "spec": req.spec_json,
        "status": status,
    });
    if !req.annotations.is_empty() {
        object["metadata"]["annotations"] = json!(req.annotations);
    }
    TaskRunDone {
        reason,
        succeeded: ok,
        results,
        object,
    }
}
