//! The PipelineRun state machine: DAG scheduling, when, matrix, finally, timeouts, cancellation.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use indexmap::IndexMap;
use serde_json::{Value, json};
use slipway_model::kinds::pipeline::{PipelineSpec, PipelineTask};
use slipway_model::kinds::run::PipelineTaskRunSpec;
use slipway_model::subst::Scope;
use slipway_model::{Param, ParamValue};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cancel::CancelHandle;
use crate::engine::Shared;
use crate::error::Failure;
use crate::event::{RunEvent, RunInfo};
use crate::matrix;
use crate::params;
use crate::status::{condition, ts};
use crate::taskplan::Bound;
use crate::taskrun::{self, Parent, TaskRunRequest};
use crate::when;

/// Everything to run one PipelineRun (top-level or child).
#[derive(Debug, Clone)]
pub(crate) struct PipelineRequest {
    pub uid: String,
    pub name: String,
    pub pipeline_name: String,
    pub spec: PipelineSpec,
    pub embedded: bool,
    pub params: Vec<Param>,
    pub workspaces: IndexMap<String, Bound>,
    pub timeout: Option<Duration>,
    pub tasks_timeout: Option<Duration>,
    pub finally_timeout: Option<Duration>,
    pub task_run_specs: Vec<PipelineTaskRunSpec>,
    pub pod_template: Option<Value>,
    pub parent: Option<Parent>,
    pub metadata: Value,
    pub spec_json: Value,
    pub created: SystemTime,
}

/// How a PipelineRun ended.
#[derive(Debug, Clone)]
pub(crate) struct PipelineDone {
    pub reason: String,
    pub succeeded: bool,
    pub results: IndexMap<String, ParamValue>,
    pub object: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Succeeded,
    Failed,
    FailureIgnored,
    TimedOut,
    Cancelled,
    Skipped { reason: String, by_when: bool },
}

impl Outcome {
    fn status_var(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::Skipped { .. } => "None",
            _ => "Failed",
        }
    }
    fn reason_var(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
            Outcome::FailureIgnored => "FailureIgnored",
            Outcome::TimedOut => "TaskRunTimeout",
            Outcome::Cancelled => "TaskRunCancelled",
            Outcome::Skipped { .. } => "None",
        }
    }
    fn stops_pipeline(&self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::TimedOut | Outcome::Cancelled
        )
    }
}

struct Child {
    kind: &'static str,
    name: String,
    done: Option<(bool, String, IndexMap<String, ParamValue>)>,
}

struct Slot {
    pt: PipelineTask,
    finally: bool,
    deps: Vec<usize>,
    running: bool,
    children: Vec<Child>,
    outcome: Option<Outcome>,
}

/// A finished child: slot index, child index, success, reason, results.
type ChildEnd = (usize, usize, bool, String, IndexMap<String, ParamValue>);
type ChildFuture = Pin<Box<dyn Future<Output = ChildEnd> + Send>>;

/// Runs a PipelineRun to the end. Boxed because pipelines may contain pipelines.
pub(crate) fn run(
    shared: Arc<Shared>,
    req: PipelineRequest,
    cancel: CancelHandle,
) -> Pin<Box<dyn Future<Output = PipelineDone> + Send>> {
    Box::pin(async move { Dispatcher::new(shared, req, cancel).run().await })
}

struct Dispatcher {
    shared: Arc<Shared>,
    req: PipelineRequest,
    cancel: CancelHandle,
    slots: Vec<Slot>,
    scope: Scope,
    bound: IndexMap<String, ParamValue>,
    dag_token: CancellationToken,
    finally_token: CancellationToken,
    stopping: Option<String>,
    cancelled: bool,
    timed_out: bool,
    started: SystemTime,
    finally_started: Option<SystemTime>,
    failure: Option<Failure>,
    /// `context.*` of this run, kept apart so TaskRuns copy only these.
    context: Scope,
    /// Unfinished dependencies per slot; a slot is ready at zero.
    waiting_on: Vec<usize>,
    /// Slots that depend on each slot.
    dependents: Vec<Vec<usize>>,
    /// Slots ready to launch, in order.
    ready: std::collections::VecDeque<usize>,
    dag_done: usize,
    finally_done: usize,
    dag_failed: usize,
    dag_skipped: usize,
    finally_queued: bool,
    /// Tekton's reason for the first task that failed before it could run.
    task_failure_reason: Option<String>,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>, req: PipelineRequest, cancel: CancelHandle) -> Self {
        let mut slots = Vec::new();
        let index: HashMap<&str, usize> = req
            .spec
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        for t in &req.spec.tasks {
            let mut deps: Vec<usize> = t
                .run_after
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect();
            for d in t.result_dependencies() {
                if let Some(i) = index.get(d.as_str())
                    && !deps.contains(i)
                {
                    deps.push(*i);
                }
            }
            slots.push(Slot {
                pt: t.clone(),
                finally: false,
                deps,
                running: false,
                children: Vec::new(),
                outcome: None,
            });
        }
        for t in &req.spec.finally {
            slots.push(Slot {
                pt: t.clone(),
                finally: true,
                deps: Vec::new(),
                running: false,
                children: Vec::new(),
                outcome: None,
            });
        }
        let mut dependents = vec![Vec::new(); slots.len()];
        let mut waiting_on = vec![0; slots.len()];
        let mut ready = std::collections::VecDeque::new();
        for (i, slot) in slots.iter().enumerate() {
            waiting_on[i] = slot.deps.len();
            for d in &slot.deps {
                dependents[*d].push(i);
            }
            if !slot.finally && slot.deps.is_empty() {
                ready.push_back(i);
            }
        }
        let dag_token = cancel.graceful().child_token();
        let finally_token = cancel.hard().child_token();
        Dispatcher {
            shared,
            req,
            cancel,
            slots,
            scope: Scope::new(),
            bound: IndexMap::new(),
            dag_token,
            finally_token,
            stopping: None,
            cancelled: false,
            timed_out: false,
            started: SystemTime::now(),
            finally_started: None,
            failure: None,
            task_failure_reason: None,
            context: Scope::new(),
            waiting_on,
            dependents,
            ready,
            dag_done: 0,
            finally_done: 0,
            dag_failed: 0,
            dag_skipped: 0,
            finally_queued: false,
        }
    }

    async fn run(mut self) -> PipelineDone {
        let mut context = Scope::new();
        context.set_str("context.pipelineRun.name", self.req.name.clone());
        context.set_str("context.pipelineRun.uid", self.req.uid.clone());
        context.set_str(
            "context.pipelineRun.namespace",
            self.shared.config.namespace.clone(),
        );
        context.set_str("context.pipeline.name", self.req.pipeline_name.clone());
        match params::bind(
            &self.req.spec.params,
            &self.req.params,
            &context,
            self.req.embedded,
        ) {
            Ok(b) => self.bound = b,
            Err(f) => self.failure = Some(f),
        }
        self.scope = context.clone();
        self.context = context;
        params::into_scope(&mut self.scope, &self.bound);
        for w in &self.req.spec.workspaces {
            let bound = self.req.workspaces.contains_key(&w.name);
            self.scope
                .set_str(format!("workspaces.{}.bound", w.name), bound.to_string());
        }
        if self.req.parent.is_some() {
            let info = RunInfo {
                uid: self.req.uid.clone(),
                name: self.req.name.clone(),
                kind: "PipelineRun",
                target: self.req.pipeline_name.clone(),
                parent_uid: self.req.parent.as_ref().map(|p| p.uid.clone()),
                created: self.req.created,
            };
            self.shared.reporter.emit(RunEvent::RunStarted {
                run: info,
                object: self.object(None),
            });
        }
        if self.failure.is_none() {
            self.schedule().await;
        }
        self.finish()
    }

    async fn schedule(&mut self) {
        let start = Instant::now();
        let far = start + Duration::from_secs(100 * 365 * 86400);
        let pipeline_deadline = self
            .req
            .timeout
            .filter(|d| !d.is_zero())
            .map(|d| start + d)
            .unwrap_or(far);
        let tasks_deadline = self
            .req
            .tasks_timeout
            .filter(|d| !d.is_zero())
            .map(|d| start + d)
            .unwrap_or(far);
        let mut finally_deadline = far;
        let mut set: JoinSet<ChildEnd> = JoinSet::new();
        let dag_len = self.req.spec.tasks.len();
        loop {
            loop {
                if self.dag_done == dag_len && !self.finally_queued {
                    self.finally_queued = true;
                    self.finally_started = Some(SystemTime::now());
                    finally_deadline = self
                        .req
                        .finally_timeout
                        .filter(|d| !d.is_zero())
                        .map(|d| Instant::now() + d)
                        .unwrap_or(far);
                    self.ready.extend(dag_len..self.slots.len());
                }
                let Some(i) = self.ready.pop_front() else {
                    break;
                };
                if self.slots[i].outcome.is_some() || self.slots[i].running {
                    continue;
                }
                if !self.slots[i].finally {
                    if let Some(reason) = self.stopping.clone() {
                        self.skip(i, &reason, false);
                        continue;
                    }
                } else if self.finally_token.is_cancelled() {
                    self.skip(i, "PipelineRun was stopping", false);
                    continue;
                }
                for fut in self.launch(i) {
                    set.spawn(fut);
                }
            }
            if self.dag_done + self.finally_done == self.slots.len() {
                break;
            }
            tokio::select! {
                Some(joined) = set.join_next() => {
                    if let Ok((slot, child, ok, reason, results)) = joined {
                        self.child_done(slot, child, ok, reason, results);
                    }
                }
                () = self.cancel.graceful().cancelled(), if !self.cancelled => {
                    self.cancelled = true;
                    self.stop_dag("PipelineRun was gracefully cancelled");
                }
                () = self.cancel.hard().cancelled(), if !self.finally_token.is_cancelled() => {
                    self.cancelled = true;
                    self.stop_dag("PipelineRun was cancelled");
                    self.finally_token.cancel();
                }
                () = tokio::time::sleep_until(tasks_deadline), if !self.dag_token.is_cancelled() => {
                    self.timed_out = true;
                    self.stop_dag("PipelineRun Tasks timeout has been reached");
                }
                () = tokio::time::sleep_until(pipeline_deadline), if !self.finally_token.is_cancelled() => {
                    self.timed_out = true;
                    self.stop_dag("PipelineRun timeout has been reached");
                    self.finally_token.cancel();
                }
                () = tokio::time::sleep_until(finally_deadline), if !self.finally_token.is_cancelled() => {
                    self.timed_out = true;
                    self.finally_token.cancel();
                }
                else => break,
            }
        }
    }

    fn stop_dag(&mut self, reason: &str) {
        if self.stopping.is_none() {
            self.stopping = Some(reason.to_string());
        }
        self.dag_token.cancel();
    }

    /// Records a slot's outcome and readies the slots for which it was the last dependency.
    fn set_outcome(&mut self, i: usize, outcome: Outcome) {
        if self.slots[i].finally {
            self.finally_done += 1;
        } else {
            self.dag_done += 1;
            match &outcome {
                Outcome::Skipped { .. } => self.dag_skipped += 1,
                o if o.stops_pipeline() || *o == Outcome::FailureIgnored => self.dag_failed += 1,
                _ => {}
            }
        }
        self.slots[i].running = false;
        self.slots[i].outcome = Some(outcome);
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 {
                self.ready.push_back(d);
            }
        }
        self.set_status_vars(i);
    }

    fn skip(&mut self, i: usize, reason: &str, by_when: bool) {
        self.shared.reporter.emit(RunEvent::TaskSkipped {
            run: self.req.uid.clone(),
            pipeline_task: self.slots[i].pt.name.clone(),
            reason: reason.to_string(),
        });
        self.set_outcome(
            i,
            Outcome::Skipped {
                reason: reason.to_string(),
                by_when,
            },
        );
    }

    fn set_status_vars(&mut self, i: usize) {
        let (name, outcome) = (self.slots[i].pt.name.clone(), self.slots[i].outcome.clone());
        if let Some(o) = outcome {
            self.scope
                .set_str(format!("tasks.{name}.status"), o.status_var());
            self.scope
                .set_str(format!("tasks.{name}.reason"), o.reason_var());
        }
        if self.dag_done == self.req.spec.tasks.len() {
            let agg = if self.dag_failed > 0 {
                "Failed"
            } else if self.dag_skipped > 0 {
                "Completed"
            } else {
                "Succeeded"
            };
            self.scope.set_str("tasks.status", agg);
        }
    }

    /// Starts pipeline task `i`, or decides it is skipped or failed. Returns the child futures.
    fn launch(&mut self, i: usize) -> Vec<ChildFuture> {
        let pt = self.slots[i].pt.clone();
        // A parent skipped for any reason but its own when expressions skips its dependents.
        let parent_skipped = self.slots[i].deps.iter().any(|d| {
            matches!(
                &self.slots[*d].outcome,
                Some(Outcome::Skipped { by_when: false, .. })
            )
        });
        if parent_skipped {
            self.skip(i, "Parent Tasks were skipped", false);
            return Vec::new();
        }
        for (_, r) in pt.references() {
            let names = r.names();
            if names.len() >= 4 && names[0] == "tasks" && names[2] == "results" {
                let key = format!("tasks.{}.results.{}", names[1], names[3]);
                if !self.scope.contains(&key) {
                    let producer = self
                        .slots
                        .iter()
                        .find(|s| s.pt.name == names[1])
                        .and_then(|s| s.outcome.clone());
                    if producer == Some(Outcome::Succeeded) && !self.slots[i].finally {
                        return self.fail(
                            i,
                            "InvalidTaskResultReference",
                            format!("task `{}` did not produce result `{}`", names[1], names[3]),
                        );
                    }
                    self.skip(i, "Results were missing", false);
                    return Vec::new();
                }
            }
        }
        match when::evaluate(&pt.when, &self.scope) {
            Ok(true) => {}
            Ok(false) => {
                self.skip(i, "When Expressions evaluated to false", true);
                return Vec::new();
            }
            Err(f) => return self.fail(i, &f.reason, f.message),
        }
        let mut passed: Vec<Param> = pt
            .params
            .iter()
            .map(|p| Param {
                name: p.name.clone(),
                value: self.scope.subst_value(&p.value),
            })
            .collect();
        let embedded = pt.task_spec.is_some() || pt.pipeline_spec.is_some();
        if embedded {
            // Tekton propagates the pipeline's params into inline specs as if passed explicitly.
            for (k, v) in &self.bound {
                if !passed.iter().any(|p| &p.name == k) {
                    passed.push(Param {
                        name: k.clone(),
                        value: v.clone(),
                    });
                }
            }
        }
        let combos = match &pt.matrix {
            Some(m) => {
                let mut m = m.clone();
                for p in &mut m.params {
                    p.value = self.scope.subst_value(&p.value);
                }
                for inc in &mut m.include {
                    for p in &mut inc.params {
                        p.value = self.scope.subst_value(&p.value);
                    }
                }
                match matrix::combinations(&m, self.shared.config.max_matrix_combinations) {
                    Ok(c) if c.is_empty() => {
                        self.skip(i, "Matrix Parameters have an empty array", false);
                        return Vec::new();
                    }
                    Ok(c) => Some(c),
                    Err(f) => return self.fail(i, &f.reason, f.message),
                }
            }
            None => None,
        };
        let mut workspaces = IndexMap::new();
        for b in &pt.workspaces {
            let pw = b.workspace.as_deref().unwrap_or(&b.name);
            if let Some(bound) = self.req.workspaces.get(pw) {
                let sub = match (&bound.sub_path, &b.sub_path) {
                    (Some(a), Some(c)) => Some(format!("{a}/{c}")),
                    (a, c) => a.clone().or_else(|| c.clone()),
                };
                workspaces.insert(
                    b.name.clone(),
                    Bound {
                        source: bound.source.clone(),
                        sub_path: sub,
                    },
                );
            }
        }
        let trs = self
            .req
            .task_run_specs
            .iter()
            .find(|s| s.pipeline_task_name == pt.name)
            .cloned();
        let timeout = trs
            .as_ref()
            .and_then(|s| s.timeout.as_deref())
            .or(pt.timeout.as_deref())
            .and_then(slipway_model::duration::parse_go_duration)
            .or(Some(self.shared.config.default_timeout));
        let pod_template = trs
            .as_ref()
            .and_then(|s| s.pod_template.clone())
            .or_else(|| self.req.pod_template.clone());
        let parent = Parent {
            uid: self.req.uid.clone(),
            name: self.req.name.clone(),
            pipeline_task: pt.name.clone(),
            member_of: if self.slots[i].finally {
                "finally"
            } else {
                "tasks"
            },
        };
        let token = if self.slots[i].finally {
            self.finally_token.child_token()
        } else {
            self.dag_token.child_token()
        };
        let combos: Vec<Option<matrix::Combination>> = match combos {
            Some(c) => c.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let matrixed = pt.matrix.is_some();
        let mut futures: Vec<ChildFuture> = Vec::new();
        let mut children = Vec::new();
        for (j, combo) in combos.into_iter().enumerate() {
            let mut params = passed.clone();
            if let Some(c) = combo {
                for (k, v) in c {
                    params.retain(|p| p.name != k);
                    params.push(Param {
                        name: k,
                        value: ParamValue::String(v),
                    });
                }
            }
            let name = if matrixed {
                format!("{}-{}-{j}", self.req.name, pt.name)
            } else {
                format!("{}-{}", self.req.name, pt.name)
            };
            let uid = uuid::Uuid::new_v4().to_string();
            let shared = self.shared.clone();
            if pt.pipeline_ref.is_some() || pt.pipeline_spec.is_some() {
                let (spec, pipeline_name) = match (&pt.pipeline_spec, &pt.pipeline_ref) {
                    (Some(s), _) => ((**s).clone(), String::new()),
                    (None, Some(r)) => {
                        let n = r.name.clone().unwrap_or_default();
                        match self.shared.lib.pipelines.get(&n) {
                            Some(p) => (p.spec.clone(), n),
                            None => {
                                return self.fail(
                                    i,
                                    "CouldntGetPipeline",
                                    format!("Pipeline `{n}` not found"),
                                );
                            }
                        }
                    }
                    _ => unreachable_target(),
                };
                let spec_json = json!({ "params": params, "pipelineSpec": spec });
                let child = PipelineRequest {
                    uid,
                    name: name.clone(),
                    pipeline_name,
                    spec,
                    embedded: pt.pipeline_spec.is_some(),
                    params,
                    workspaces: workspaces.clone(),
                    timeout,
                    tasks_timeout: None,
                    finally_timeout: None,
                    task_run_specs: Vec::new(),
                    pod_template: pod_template.clone(),
                    parent: Some(parent.clone()),
                    metadata: json!({ "name": name }),
                    spec_json,
                    created: SystemTime::now(),
                };
                let handle =
                    CancelHandle::from_tokens(token.clone(), self.finally_token.child_token());
                children.push(Child {
                    kind: "PipelineRun",
                    name: name.clone(),
                    done: None,
                });
                futures.push(Box::pin(async move {
                    let done = run(shared, child, handle).await;
                    (i, j, done.succeeded, done.reason, done.results)
                }));
                continue;
            }
            let (spec, task_name, target_json) = match (&pt.task_spec, &pt.task_ref) {
                (Some(s), _) => (s.clone(), pt.name.clone(), json!({ "taskSpec": s })),
                (None, Some(r)) => {
                    let n = r.name.clone().unwrap_or_default();
                    match self.shared.lib.tasks.get(&n) {
                        Some(t) => (
                            t.spec.clone(),
                            n.clone(),
                            json!({ "taskRef": { "name": n, "kind": "Task" } }),
                        ),
                        None => {
                            return self.fail(i, "CouldntGetTask", format!("Task `{n}` not found"));
                        }
                    }
                }
                _ => {
                    return self.fail(
                        i,
                        "PipelineRunValidationFailed",
                        "pipeline task has no target".into(),
                    );
                }
            };
            let mut spec_json = target_json;
            spec_json["params"] = json!(params);
            spec_json["timeout"] = json!(
                timeout
                    .map(slipway_model::duration::format_go_duration)
                    .unwrap_or_else(|| "0s".into())
            );
            spec_json["serviceAccountName"] = json!("default");
            let req = TaskRunRequest {
                uid,
                name: name.clone(),
                task_name,
                spec,
                embedded: pt.task_spec.is_some(),
                params,
                context: self.task_context(&pt),
                workspaces: workspaces.clone(),
                pod_template: pod_template.clone(),
                timeout,
                retries: pt.retries.unwrap_or(0),
                parent: Some(parent.clone()),
                spec_json,
                labels: pt
                    .task_spec
                    .as_ref()
                    .and_then(|s| s.metadata.as_ref())
                    .map(|m| m.labels.clone())
                    .unwrap_or_default(),
            };
            let token = token.clone();
            children.push(Child {
                kind: "TaskRun",
                name,
                done: None,
            });
            futures.push(Box::pin(async move {
                let done = taskrun::run(shared, req, token).await;
                (i, j, done.succeeded, done.reason, done.results)
            }));
        }
        self.slots[i].children = children;
        self.slots[i].running = true;
        futures
    }

    /// What a TaskRun sees besides its params: `context.*`, and for inline specs the state of
    /// finished tasks they refer to (`$(tasks.<t>.status)`), as Tekton substitutes there too.
    fn task_context(&self, pt: &PipelineTask) -> Scope {
        let mut s = self.context.clone();
        s.set_str(
            "context.pipelineTask.retries",
            pt.retries.unwrap_or(0).to_string(),
        );
        if let Some(spec) = &pt.task_spec {
            let text = serde_json::to_string(spec).unwrap_or_default();
            for r in slipway_model::subst::references(&text) {
                let names = r.names();
                if names.first() != Some(&"tasks") {
                    continue;
                }
                for k in (2..=names.len()).rev() {
                    let key = names[..k].join(".");
                    if let Some(v) = self.scope.get(&key) {
                        s.set(key, v.clone());
                        break;
                    }
                }
            }
        }
        s
    }

    fn fail(&mut self, i: usize, reason: &str, message: String) -> Vec<ChildFuture> {
        self.shared.notice(format!(
            "task `{}` failed: {message}",
            self.slots[i].pt.name
        ));
        self.task_failure_reason
            .get_or_insert_with(|| reason.to_string());
        if !self.slots[i].finally {
            self.stop_dag("PipelineRun was stopping");
        }
        self.set_outcome(i, Outcome::Failed);
        Vec::new()
    }

    fn child_done(
        &mut self,
        i: usize,
        j: usize,
        ok: bool,
        reason: String,
        results: IndexMap<String, ParamValue>,
    ) {
        if let Some(c) = self.slots[i].children.get_mut(j) {
            c.done = Some((ok, reason, results));
        }
        if self.slots[i].children.iter().any(|c| c.done.is_none()) {
            return;
        }
        let slot = &self.slots[i];
        let all_ok = slot
            .children
            .iter()
            .all(|c| c.done.as_ref().is_some_and(|d| d.0));
        let reasons: Vec<&str> = slot
            .children
            .iter()
            .filter_map(|c| c.done.as_ref())
            .map(|d| d.1.as_str())
            .collect();
        let outcome = if all_ok {
            Outcome::Succeeded
        } else if slot.pt.on_error.as_deref() == Some("continue") {
            Outcome::FailureIgnored
        } else if reasons.contains(&"TaskRunTimeout") {
            Outcome::TimedOut
        } else if reasons.iter().all(|r| {
            *r == "TaskRunCancelled" || *r == "Cancelled" || r.is_empty() || *r == "Succeeded"
        }) {
            Outcome::Cancelled
        } else {
            Outcome::Failed
        };
        let name = slot.pt.name.clone();
        let matrixed = slot.pt.matrix.is_some();
        let prefix = if slot.finally { "finally" } else { "tasks" };
        if matrixed {
            // Fan-in: each string result becomes an array over the matrix, in combination order.
            let mut names: Vec<String> = Vec::new();
            for c in &slot.children {
                for k in c.done.iter().flat_map(|d| d.2.keys()) {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
            for r in names {
                let values: Option<Vec<String>> = slot
                    .children
                    .iter()
                    .map(|c| {
                        c.done
                            .as_ref()
                            .and_then(|d| d.2.get(&r))
                            .and_then(|v| v.as_str().map(str::to_string))
                    })
                    .collect();
                if let Some(v) = values {
                    self.scope
                        .set(format!("{prefix}.{name}.results.{r}"), ParamValue::Array(v));
                }
            }
        } else if let Some(d) = slot.children.first().and_then(|c| c.done.as_ref()) {
            for (k, v) in &d.2 {
                self.scope
                    .set(format!("{prefix}.{name}.results.{k}"), v.clone());
            }
        }
        let stops = outcome.stops_pipeline() && !self.slots[i].finally;
        if stops {
            self.stop_dag("PipelineRun was stopping");
        }
        self.set_outcome(i, outcome);
    }

    fn finish(self) -> PipelineDone {
        let now = SystemTime::now();
        let mut results = IndexMap::new();
        let mut result_json = Vec::new();
        if self.failure.is_none() {
            for r in &self.req.spec.results {
                let v = self.scope.subst_value(&r.value);
                if v.strings()
                    .iter()
                    .any(|s| s.contains("$(tasks.") || s.contains("$(finally."))
                {
                    continue;
                }
                result_json.push(json!({ "name": r.name, "value": v.to_json() }));
                results.insert(r.name.clone(), v);
            }
        }
        let outcomes: Vec<&Outcome> = self
            .slots
            .iter()
            .filter_map(|s| s.outcome.as_ref())
            .collect();
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed | Outcome::TimedOut))
            .count();
        let cancelled = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Cancelled))
            .count();
        let skipped = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Skipped { .. }))
            .count();
        let completed = outcomes.len() - skipped;
        let (reason, ok, message) = if let Some(f) = &self.failure {
            (f.reason.clone(), false, f.message.clone())
        } else {
            let msg = format!(
                "Tasks Completed: {completed} (Failed: {failed}, Cancelled {cancelled}), Skipped: {skipped}"
            );
            if self.cancelled {
                (
                    "Cancelled".to_string(),
                    false,
                    format!("PipelineRun \"{}\" was cancelled", self.req.name),
                )
            } else if self.timed_out {
                (
                    "PipelineRunTimeout".to_string(),
                    false,
                    format!(
                        "PipelineRun \"{}\" failed to finish within its timeout",
                        self.req.name
                    ),
                )
            } else if failed > 0 || cancelled > 0 {
                (
                    self.task_failure_reason
                        .clone()
                        .unwrap_or_else(|| "Failed".to_string()),
                    false,
                    msg,
                )
            } else if skipped > 0 {
                ("Completed".to_string(), true, msg)
            } else {
                ("Succeeded".to_string(), true, msg)
            }
        };
        let mut status = json!({
            "conditions": condition(Some(ok), &reason, &message, now),
            "startTime": ts(self.started),
            "completionTime": ts(now),
            "pipelineSpec": self.req.spec,
        });
        let child_refs: Vec<Value> = self.slots.iter().flat_map(|s| s.children.iter().map(move |c| json!({ "apiVersion": "tekton.dev/v1", "kind": c.kind, "name": c.name, "pipelineTaskName": s.pt.name }))).collect();
        if !child_refs.is_empty() {
            status["childReferences"] = json!(child_refs);
        }
        let skipped_tasks: Vec<Value> = self
            .slots
            .iter()
            .filter_map(|s| match &s.outcome {
                Some(Outcome::Skipped { reason, .. }) => {
                    let mut v = json!({ "name": s.pt.name, "reason": reason });
                    if !s.pt.when.is_empty() {
                        v["whenExpressions"] = json!(s.pt.when);
                    }
                    Some(v)
                }
                _ => None,
            })
            .collect();
        if !skipped_tasks.is_empty() {
            status["skippedTasks"] = json!(skipped_tasks);
        }
        if !result_json.is_empty() {
            status["results"] = json!(result_json);
        }
        if let Some(f) = self
            .finally_started
            .filter(|_| !self.req.spec.finally.is_empty())
        {
            status["finallyStartTime"] = json!(ts(f));
        }
        let object = self.object(Some(status));
        self.shared.reporter.emit(RunEvent::RunFinished {
            uid: self.req.uid.clone(),
            reason: reason.clone(),
            succeeded: ok,
            object: object.clone(),
        });
        PipelineDone {
            reason,
            succeeded: ok,
            results,
            object,
        }
    }

    fn object(&self, status: Option<Value>) -> Value {
        let mut meta = self.req.metadata.clone();
        meta["name"] = json!(self.req.name);
        meta["uid"] = json!(self.req.uid);
        meta["namespace"] = json!(self.shared.config.namespace);
        meta["creationTimestamp"] = json!(ts(self.req.created));
        if let Some(p) = &self.req.parent {
            meta["labels"]["tekton.dev/pipelineRun"] = json!(p.name);
            meta["labels"]["tekton.dev/pipelineTask"] = json!(p.pipeline_task);
        }
        if !self.req.pipeline_name.is_empty() {
            meta["labels"]["tekton.dev/pipeline"] = json!(self.req.pipeline_name);
        }
        let mut o = json!({ "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": meta, "spec": self.req.spec_json });
        if let Some(s) = status {
            o["status"] = s;
        }
        o
    }
}

fn unreachable_target() -> (PipelineSpec, String) {
    (PipelineSpec::default(), String::new())
}
