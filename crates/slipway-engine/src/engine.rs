//! The engine: starts a PipelineRun or TaskRun and drives it to the end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use indexmap::IndexMap;
use serde_json::{Value, json};
use slipway_model::duration::parse_go_duration;
use slipway_model::subst::Scope;
use slipway_model::{Library, RunObject};
use tokio::sync::{Semaphore, mpsc};

use crate::cancel::CancelHandle;
use crate::config::EngineConfig;
use crate::error::{EngineError, Failure};
use crate::event::{RunEvent, RunInfo};
use crate::executor::Executor;
use crate::mask::Masker;
use crate::pipeline::{self, PipelineRequest};
use crate::sources::{Bound, binding_source};
use crate::store::{Reporter, Store};
use crate::taskrun::{self, TaskRunRequest};

/// State shared by every part of one top-level run.
pub(crate) struct Shared {
    pub executor: Arc<dyn Executor>,
    pub reporter: Reporter,
    pub lib: Arc<Library>,
    pub config: EngineConfig,
    pub permits: Arc<Semaphore>,
    pub root_uid: String,
    notices: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("root_uid", &self.root_uid)
            .finish()
    }
}

impl Shared {
    /// Reports a notice once per run.
    pub fn notice(&self, message: String) {
        let fresh = self
            .notices
            .lock()
            .map(|mut n| n.insert(message.clone()))
            .unwrap_or(true);
        if fresh {
            self.reporter.emit(RunEvent::Notice {
                root: self.root_uid.clone(),
                message,
            });
        }
    }
}

/// Runs PipelineRuns and TaskRuns on an executor, reporting to a store.
#[derive(Clone)]
pub struct Engine {
    executor: Arc<dyn Executor>,
    store: Arc<dyn Store>,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("executor", &self.executor.name())
            .field("config", &self.config)
            .finish()
    }
}

/// Per-run choices made by the caller.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run's name (already generated from generateName when needed).
    pub name: String,
    /// The run's uid.
    pub uid: String,
    /// Copies every event here while the run goes on.
    pub watcher: Option<mpsc::UnboundedSender<RunEvent>>,
    /// Workspaces bound to directories of this machine (`-w name=DIR`), over the run's own bindings.
    pub workspace_dirs: IndexMap<String, std::path::PathBuf>,
    /// When the run was created, if before it starts (a queued run); else now.
    pub created: Option<SystemTime>,
    /// The namespace it was created in (a server's queue, `-n`), for a run whose own
    /// `metadata.namespace` names none; else the engine's default.
    pub namespace: Option<String>,
    /// When it started before (a run adopted after a controller restart): its `startTime`
    /// and the clock of its timeouts; else now.
    pub started: Option<SystemTime>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// `PipelineRun` or `TaskRun`.
    pub kind: &'static str,
    /// The condition is True.
    pub succeeded: bool,
    /// The condition reason.
    pub reason: String,
    /// The whole object in Tekton's shape.
    pub object: Value,
}

/// What a run runs: its inline spec (embedded), or the named object; `(spec, name, embedded)`.
fn target<S: Clone>(
    inline: Option<&S>,
    name: Option<String>,
    objects: &IndexMap<String, slipway_model::Object<S>>,
    (missing_reason, kind): (&str, &str),
    (none_reason, none_message): (&str, &str),
) -> Result<(S, String, bool), Failure> {
    match (inline, name) {
        (Some(s), _) => Ok((s.clone(), String::new(), true)),
        (None, Some(n)) => match objects.get(&n) {
            Some(o) => Ok((o.spec.clone(), n, false)),
            None => Err(Failure::new(
                missing_reason,
                format!("{kind} `{n}` not found"),
            )),
        },
        (None, None) => Err(Failure::new(none_reason, none_message)),
    }
}

/// The run's workspace bindings, with `-w name=DIR` directories over them.
fn bind_workspaces(
    lib: &Library,
    bindings: &[slipway_model::kinds::run::WorkspaceBinding],
    opts: &RunOptions,
) -> Result<IndexMap<String, Bound>, Failure> {
    let mut workspaces = IndexMap::new();
    for b in bindings {
        workspaces.insert(b.name.clone(), binding_source(lib, b, &opts.uid)?);
    }
    for (name, dir) in &opts.workspace_dirs {
        let source = crate::executor::VolumeSource::HostPath {
            path: dir.to_string_lossy().into_owned(),
        };
        workspaces.insert(
            name.clone(),
            Bound {
                source,
                sub_path: None,
            },
        );
    }
    Ok(workspaces)
}

/// A Kubernetes-style name from `generateName`: the prefix plus five random characters.
pub fn generate_name(prefix: &str) -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

impl Engine {
    /// An engine over `executor`, writing through `store`.
    pub fn new(executor: Arc<dyn Executor>, store: Arc<dyn Store>, config: EngineConfig) -> Self {
        Engine {
            executor,
            store,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Runs `run` to the end. Fails only when the run cannot start at all.
    pub async fn run(
        &self,
        lib: Arc<Library>,
        run: &RunObject,
        opts: RunOptions,
        cancel: CancelHandle,
    ) -> Result<RunReport, EngineError> {
        let masker = Masker::for_run(&lib, run);
        // Every object of the run (children and TaskRuns too) says where it runs.
        let mut config = self.config.clone();
        if let Some(ns) = run
            .meta()
            .namespace
            .clone()
            .or_else(|| opts.namespace.clone())
            .filter(|n| !n.is_empty())
        {
            config.namespace = ns;
        }
        let reporter = Reporter::new(self.store.clone(), opts.watcher.clone())
            .with_masker(masker.clone())
            .with_log_cap(&opts.uid, self.config.max_log_bytes);
        let shared = Arc::new(Shared {
            executor: self.executor.clone(),
            reporter: reporter.clone(),
            lib: lib.clone(),
            config: config.clone(),
            permits: Arc::new(Semaphore::new(self.config.concurrency.max(1))),
            root_uid: opts.uid.clone(),
            notices: Mutex::new(HashSet::new()),
        });
        // Every run says it started, then (once) what the executor cannot honour.
        // A run's object says it runs from the moment it starts, before any TaskRun reports.
        let started = opts.started.unwrap_or_else(SystemTime::now);
        let announce = |run: RunInfo, mut object: Value| {
            let now = crate::status::ts(started);
            object["metadata"]["creationTimestamp"] = json!(crate::status::ts(run.created));
            object["metadata"]["uid"] = json!(run.uid);
            object["metadata"]["namespace"] = json!(config.namespace);
            if !run.target.is_empty() {
                let label = match run.kind {
                    "PipelineRun" => "tekton.dev/pipeline",
                    _ => "tekton.dev/task",
                };
                object["metadata"]["labels"][label] = json!(run.target);
            }
            object["status"] = json!({
                "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "lastTransitionTime": now}],
                "startTime": now,
            });
            reporter.emit(RunEvent::RunStarted { run, object });
            if !self.executor.runs_images() {
                shared.notice(
                    "host executor: steps run as processes on this machine; `image` is ignored"
                        .into(),
                );
            }
            for what in masker.too_short() {
                shared.notice(format!(
                    "the value of {what} is shorter than {} characters and is not masked in logs",
                    crate::mask::MIN_MASKED_LEN
                ));
            }
        };
        let created = opts.created.unwrap_or_else(SystemTime::now);
        let invalid = |f: Failure| EngineError::Invalid {
            kind: run.kind(),
            name: opts.name.clone(),
            failure: f,
        };
        let report = match run {
            RunObject::PipelineRun(pr) => {
                let (spec, pipeline_name, embedded) = target(
                    pr.spec.pipeline_spec.as_ref(),
                    pr.spec
                        .pipeline_ref
                        .as_ref()
                        .map(|r| r.name.clone().unwrap_or_default()),
                    &lib.pipelines,
                    ("CouldntGetPipeline", "Pipeline"),
                    (
                        "PipelineRunValidationFailed",
                        "no pipelineRef or pipelineSpec",
                    ),
                )
                .map_err(invalid)?;
                let workspaces =
                    bind_workspaces(&lib, &pr.spec.workspaces, &opts).map_err(invalid)?;
                let timeouts = pr.spec.timeouts.clone().unwrap_or_default();
                let parse = |s: &Option<String>| s.as_deref().and_then(parse_go_duration);
                let template = pr.spec.task_run_template.clone().unwrap_or_default();
                let mut metadata = json!({ "name": opts.name });
                if !pr.meta.labels.is_empty() {
                    metadata["labels"] = json!(pr.meta.labels);
                }
                if !pr.meta.annotations.is_empty() {
                    metadata["annotations"] = json!(pr.meta.annotations);
                }
                let req = PipelineRequest {
                    uid: opts.uid.clone(),
                    name: opts.name.clone(),
                    pipeline_name,
                    spec,
                    embedded,
                    params: pr.spec.params.clone(),
                    workspaces,
                    timeout: parse(&timeouts.pipeline).or(Some(self.config.default_timeout)),
                    tasks_timeout: parse(&timeouts.tasks),
                    finally_timeout: parse(&timeouts.finally),
                    task_run_specs: pr.spec.task_run_specs.clone(),
                    pod_template: template.pod_template.clone(),
                    parent: None,
                    metadata,
                    spec_json: serde_json::to_value(&pr.spec).unwrap_or(Value::Null),
                    created,
                    started: opts.started,
                };
                let info = RunInfo {
                    uid: opts.uid.clone(),
                    name: opts.name.clone(),
                    kind: "PipelineRun",
                    target: req.pipeline_name.clone(),
                    parent_uid: None,
                    created,
                };
                announce(
                    info,
                    json!({ "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": req.metadata, "spec": req.spec_json }),
                );
                let done = pipeline::run(shared.clone(), req, cancel).await;
                RunReport {
                    uid: opts.uid.clone(),
                    name: opts.name.clone(),
                    kind: "PipelineRun",
                    succeeded: done.succeeded,
                    reason: done.reason,
                    object: done.object,
                }
            }
            RunObject::TaskRun(tr) => {
                let (spec, task_name, embedded) = target(
                    tr.spec.task_spec.as_ref(),
                    tr.spec
                        .task_ref
                        .as_ref()
                        .map(|r| r.name.clone().unwrap_or_default()),
                    &lib.tasks,
                    ("CouldntGetTask", "Task"),
                    ("TaskRunValidationFailed", "no taskRef or taskSpec"),
                )
                .map_err(invalid)?;
                let workspaces =
                    bind_workspaces(&lib, &tr.spec.workspaces, &opts).map_err(invalid)?;
                let timeout = tr
                    .spec
                    .timeout
                    .as_deref()
                    .and_then(parse_go_duration)
                    .or(Some(self.config.default_timeout));
                let spec_json = serde_json::to_value(&tr.spec).unwrap_or(Value::Null);
                let info = RunInfo {
                    uid: opts.uid.clone(),
                    name: opts.name.clone(),
                    kind: "TaskRun",
                    target: task_name.clone(),
                    parent_uid: None,
                    created,
                };
                announce(
                    info,
                    json!({ "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": { "name": opts.name, "labels": tr.meta.labels, "annotations": tr.meta.annotations }, "spec": spec_json }),
                );
                let req = TaskRunRequest {
                    created: Some(created),
                    uid: opts.uid.clone(),
                    name: opts.name.clone(),
                    task_name,
                    spec,
                    embedded,
                    params: tr.spec.params.clone(),
                    context: Scope::new(),
                    workspaces,
                    pod_template: tr.spec.pod_template.clone(),
                    timeout,
                    retries: tr.spec.retries.unwrap_or(0),
                    parent: None,
                    spec_json,
                    labels: tr.meta.labels.clone(),
                    annotations: tr.meta.annotations.clone(),
                };
                let token = cancel.graceful().child_token();
                let done = taskrun::run(shared.clone(), req, token).await;
                reporter.emit(RunEvent::RunFinished {
                    uid: opts.uid.clone(),
                    reason: done.reason.clone(),
                    succeeded: done.succeeded,
                    object: done.object.clone(),
                });
                RunReport {
                    uid: opts.uid.clone(),
                    name: opts.name.clone(),
                    kind: "TaskRun",
                    succeeded: done.succeeded,
                    reason: done.reason,
                    object: done.object,
                }
            }
        };
        // The end is recorded before the executor lets go of what shows it (Pods kept until then).
        self.store.flush().await;
        self.executor.cleanup(&opts.uid).await;
        let mut report = report;
        masker.value(&mut report.object);
        Ok(report)
    }
}
