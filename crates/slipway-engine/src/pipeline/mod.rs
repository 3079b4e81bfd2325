//! The PipelineRun state machine: DAG scheduling, finally, timeouts, cancellation.
//!
//! `launch` turns a ready pipeline task into child runs (when, matrix, params); `finish` builds
//! the PipelineRun's final status.

mod finish;
mod launch;

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
use crate::params;
use crate::sources::Bound;
use crate::status::condition;
use crate::taskrun::Parent;

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
    /// When it started before (an adopted run); `None` for now.
    pub started: Option<SystemTime>,
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
    uid: String,
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
    /// The second stage of cancellation was seen.
    stopped: bool,
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
        let started = req.started.unwrap_or_else(SystemTime::now);
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
            started,
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
            stopped: false,
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
        // An adopted run's timeouts count from its first start.
        let now = Instant::now();
        let before = SystemTime::now()
            .duration_since(self.started)
            .unwrap_or_default();
        let start = now.checked_sub(before).unwrap_or(now);
        let far = start + slipway_model::duration::FAR;
        let pipeline_deadline = self
            .req
            .timeout
            .filter(|d| !d.is_zero())
            .map(|d| start + slipway_model::duration::capped(d))
            .unwrap_or(far);
        let tasks_deadline = self
            .req
            .tasks_timeout
            .filter(|d| !d.is_zero())
            .map(|d| start + slipway_model::duration::capped(d))
            .unwrap_or(far);
        let mut finally_deadline = far;
        let mut set: JoinSet<ChildEnd> = JoinSet::new();
        let mut children: HashMap<tokio::task::Id, (usize, usize)> = HashMap::new();
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
                        .map(|d| Instant::now() + slipway_model::duration::capped(d))
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
                for (j, fut) in self.launch(i).into_iter().enumerate() {
                    let handle = set.spawn(fut);
                    children.insert(handle.id(), (i, j));
                }
            }
            if self.dag_done + self.finally_done == self.slots.len() {
                break;
            }
            // Biased: when a cancel or deadline and a child's end are ready together, the cause is
            // recorded first, so the tasks it stops get its reason.
            tokio::select! {
                biased;
                () = self.cancel.graceful().cancelled(), if !self.cancelled => {
                    self.cancelled = true;
                    self.stop_dag("PipelineRun was gracefully cancelled");
                }
                () = self.cancel.hard().cancelled(), if !self.stopped => {
                    self.stopped = true;
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
                Some(joined) = set.join_next_with_id() => match joined {
                    Ok((id, (slot, child, ok, reason, results))) => {
                        children.remove(&id);
                        self.child_done(slot, child, ok, reason, results);
                    }
                    // A child that panicked is a slipway bug; its task fails instead of hanging the run.
                    Err(e) => {
                        if let Some((slot, child)) = children.remove(&e.id()) {
                            self.shared.notice(format!("task `{}` failed inside slipway: {e}", self.slots[slot].pt.name));
                            self.report_lost_child(slot, child, &e.to_string());
                            self.child_done(slot, child, false, "TaskRunInternalError".into(), IndexMap::new());
                        }
                    }
                },
                else => break,
            }
        }
    }

    /// Reports a child whose task panicked as ended, so its stored record does not stay running.
    fn report_lost_child(&self, slot: usize, child: usize, why: &str) {
        let Some(c) = self.slots[slot].children.get(child) else {
            return;
        };
        let object = json!({
            "apiVersion": "tekton.dev/v1",
            "kind": c.kind,
            "metadata": { "name": c.name, "uid": c.uid, "namespace": self.shared.config.namespace },
            "status": { "conditions": condition(Some(false), "TaskRunInternalError", why, SystemTime::now()) },
        });
        let (uid, reason) = (c.uid.clone(), "TaskRunInternalError".to_string());
        let event = if c.kind == "TaskRun" {
            RunEvent::TaskRunFinished {
                uid,
                root: self.shared.root_uid.clone(),
                reason,
                succeeded: false,
                object,
            }
        } else {
            RunEvent::RunFinished {
                uid,
                reason,
                succeeded: false,
                object,
            }
        };
        self.shared.reporter.emit(event);
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
                // As in Tekton, the array holds the values of the children that wrote one.
                let values: Vec<String> = slot
                    .children
                    .iter()
                    .filter_map(|c| {
                        c.done
                            .as_ref()
                            .and_then(|d| d.2.get(&r))
                            .and_then(|v| v.as_str().map(str::to_string))
                    })
                    .collect();
                {
                    let v = values;
                    self.scope.set_str(
                        format!("{prefix}.{name}.matrix.{r}.length"),
                        v.len().to_string(),
                    );
                    self.scope
                        .set(format!("{prefix}.{name}.results.{r}"), ParamValue::Array(v));
                }
            }
            self.scope.set_str(
                format!("{prefix}.{name}.matrix.length"),
                slot.children.len().to_string(),
            );
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
}
