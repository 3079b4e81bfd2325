//! The engine's `Store` for a run in the cluster: its events become the run's `status` and one
//! `TaskRun` object per pipeline task, written back in few requests. State is folded in memory
//! and written at most once per coalescing window (and at the end), so a TaskRun that starts
//! and ends within one window costs one create and one status patch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use indexmap::IndexMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};
use slipway_engine::status::{StepState, condition, ts};
use slipway_engine::{RunEvent, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::resources::{RunKind, task_runs};

/// The run object the store writes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// PipelineRun or TaskRun.
    pub kind: RunKind,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid (also the engine's run uid).
    pub uid: String,
}

/// What the store knows of a pipeline task before its TaskRun reports: the Task it refers
/// to, where it sits (`tasks` or `finally`) and the TaskRun spec to create.
#[derive(Debug, Clone)]
pub struct PipelineTaskInfo {
    /// The referenced Task's name, if by reference.
    pub task: Option<String>,
    /// `tasks` or `finally`.
    pub member_of: &'static str,
    /// The spec the TaskRun object is created with.
    pub spec: Value,
}

enum Msg {
    Event(Box<RunEvent>),
    Flush(oneshot::Sender<()>),
}

/// The store: a channel to a writer task.
#[derive(Debug, Clone)]
pub struct ClusterStore {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Event(_) => "Event",
            Msg::Flush(_) => "Flush",
        })
    }
}

impl ClusterStore {
    /// A store writing `target`'s status (and its TaskRuns) through `client`, at most once per
    /// `window`.
    pub fn start(
        client: kube::Client,
        target: Target,
        tasks: HashMap<String, PipelineTaskInfo>,
        window: Duration,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            runs: Api::namespaced_with(client.clone(), &target.namespace, &target.kind.resource()),
            task_runs: Api::namespaced_with(client, &target.namespace, &task_runs()),
            target,
            tasks,
            root: Map::new(),
            root_dirty: false,
            refs: Vec::new(),
            children: IndexMap::new(),
            steps: HashMap::new(),
            gone: false,
        };
        tokio::spawn(writer.run(rx, window));
        Arc::new(ClusterStore { tx })
    }
}

#[async_trait]
impl Store for ClusterStore {
    fn record(&self, event: &RunEvent) {
        let _ = self.tx.send(Msg::Event(Box::new(event.clone())));
    }
    // Step output stays in the Pods' logs, where kubectl and tkn read it.
    async fn record_log(&self, _event: RunEvent) {}
    async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// One TaskRun object of a PipelineRun.
#[derive(Debug)]
struct Child {
    labels: Map<String, Value>,
    annotations: Option<Value>,
    spec: Value,
    status: Value,
    created: bool,
    dirty: bool,
}

struct Writer {
    runs: Api<DynamicObject>,
    task_runs: Api<DynamicObject>,
    target: Target,
    tasks: HashMap<String, PipelineTaskInfo>,
    root: Map<String, Value>,
    root_dirty: bool,
    refs: Vec<Value>,
    children: IndexMap<String, Child>,
    /// Steps of each TaskRun by uid: the TaskRun's name (`None` for the run itself) and states.
    steps: HashMap<String, (Option<String>, Vec<StepState>)>,
    /// The run object is gone (deleted): nothing more is written.
    gone: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>, window: Duration) {
        let mut deadline: Option<Instant> = None;
        loop {
            let due = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let msg = tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep_until(due), if deadline.is_some() => {
                    self.write().await;
                    deadline = None;
                    continue;
                }
            };
            match msg {
                None => {
                    self.write().await;
                    return;
                }
                Some(Msg::Event(e)) => {
                    if self.apply(*e) && deadline.is_none() {
                        deadline = Some(Instant::now() + window);
                    }
                }
                Some(Msg::Flush(done)) => {
                    self.write().await;
                    deadline = None;
                    let _ = done.send(());
                }
            }
        }
    }

    /// Folds one event into the state; true when something is to be written.
    fn apply(&mut self, event: RunEvent) -> bool {
        match event {
            RunEvent::TaskRunStarted { info, at } => {
                let pod = slipway_exec_kube::pod_name(&info.name, &info.uid, info.attempt);
                let states: Vec<StepState> = info.steps.iter().map(|n| StepState::new(n)).collect();
                let steps = json!(states.iter().map(StepState::to_json).collect::<Vec<_>>());
                let root = info.uid == self.target.uid;
                self.steps.insert(
                    info.uid.clone(),
                    ((!root).then(|| info.name.clone()), states),
                );
                if root {
                    self.root.insert("podName".into(), json!(pod));
                    self.root.insert("steps".into(), steps);
                    self.root_dirty = true;
                    return true;
                }
                let pt = info.pipeline_task.clone().unwrap_or_default();
                let known = self.tasks.get(&pt);
                let child = self.children.entry(info.name.clone()).or_insert_with(|| {
                    let mut labels = Map::new();
                    labels.insert("tekton.dev/pipelineRun".into(), json!(self.target.name));
                    labels.insert("tekton.dev/pipelineTask".into(), json!(pt));
                    labels.insert(
                        "tekton.dev/memberOf".into(),
                        json!(known.map_or("tasks", |k| k.member_of)),
                    );
                    if let Some(task) = known.and_then(|k| k.task.clone()) {
                        labels.insert("tekton.dev/task".into(), json!(task));
                    }
                    // The spec as the engine runs it (resolved params), else as the pipeline
                    // names it.
                    let spec = match &info.spec {
                        Value::Object(_) => info.spec.clone(),
                        _ => known.map_or_else(|| json!({}), |k| k.spec.clone()),
                    };
                    Child {
                        labels,
                        annotations: None,
                        spec,
                        status: Value::Null,
                        created: false,
                        dirty: false,
                    }
                });
                child.status = json!({
                    "conditions": condition(None, "Running", "", at),
                    "startTime": ts(at),
                    "podName": pod,
                    "steps": steps,
                });
                child.dirty = true;
                if !self.refs.iter().any(|r| r["name"] == json!(info.name)) {
                    self.refs.push(json!({
                        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                        "name": info.name, "pipelineTaskName": pt,
                    }));
                    self.root.insert("childReferences".into(), json!(self.refs));
                    self.root_dirty = true;
                }
                true
            }
            // The run's first status (Running, its start time) goes with its first write.
            RunEvent::RunStarted { run, object } if run.uid == self.target.uid => {
                self.take_root_status(&object);
                true
            }
            RunEvent::TaskRunFinished { uid, object, .. } if uid == self.target.uid => {
                self.take_root_status(&object);
                true
            }
            RunEvent::TaskRunFinished { object, .. } => {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let Some(child) = self.children.get_mut(name) else {
                    return false;
                };
                let pod = child.status["podName"].clone();
                child.status = object["status"].clone();
                child.status["podName"] = pod;
                if !child.created {
                    // Not written yet: the object goes out whole, as the engine finished it.
                    if let Some(labels) = object["metadata"]["labels"].as_object() {
                        for (k, v) in labels {
                            // Tekton puts `tekton.dev/taskRun` on the Pod, not on the TaskRun.
                            if k != "tekton.dev/taskRun" {
                                child.labels.entry(k.clone()).or_insert(v.clone());
                            }
                        }
                    }
                    child.annotations = object["metadata"].get("annotations").cloned();
                    child.spec = object["spec"].clone();
                }
                child.dirty = true;
                true
            }
            RunEvent::StepStarted { taskrun, step, at } => {
                self.step(&taskrun, step, |s| s.started = Some(at))
            }
            RunEvent::StepFinished {
                taskrun,
                step,
                end,
                at,
            } => self.step(&taskrun, step, |s| s.ended = Some((end, at))),
            RunEvent::RunFinished { uid, object, .. } if uid == self.target.uid => {
                self.take_root_status(&object);
                true
            }
            _ => false,
        }
    }

    /// A step of a running TaskRun moved on: its `status.steps` is written again.
    fn step(&mut self, taskrun: &str, index: usize, change: impl FnOnce(&mut StepState)) -> bool {
        let Some((name, states)) = self.steps.get_mut(taskrun) else {
            return false;
        };
        let Some(state) = states.get_mut(index) else {
            return false;
        };
        change(state);
        let steps = json!(states.iter().map(StepState::to_json).collect::<Vec<_>>());
        match name {
            None => {
                self.root.insert("steps".into(), steps);
                self.root_dirty = true;
            }
            Some(name) => match self.children.get_mut(name.as_str()) {
                Some(child) => {
                    child.status["steps"] = steps;
                    child.dirty = true;
                }
                None => return false,
            },
        }
        true
    }

    fn take_root_status(&mut self, object: &Value) {
        let pod = self.root.get("podName").cloned();
        if let Some(status) = object["status"].as_object() {
            for (k, v) in status {
                self.root.insert(k.clone(), v.clone());
            }
        }
        // The TaskRun objects written, nested pipelines' included: the engine's own list also
        // names child PipelineRuns, which are not objects in the cluster.
        if self.refs.is_empty() {
            self.root.remove("childReferences");
        } else {
            self.root.insert("childReferences".into(), json!(self.refs));
        }
        if let Some(pod) = pod {
            self.root.insert("podName".into(), pod);
        }
        self.root_dirty = true;
    }

    /// Writes what changed: new TaskRuns first (so that childReferences name objects that
    /// exist), their statuses, then the run's.
    async fn write(&mut self) {
        if self.gone {
            return;
        }
        let owner = json!([{
            "apiVersion": "tekton.dev/v1", "kind": self.target.kind.as_str(),
            "name": self.target.name, "uid": self.target.uid,
            "controller": true, "blockOwnerDeletion": true,
        }]);
        for (name, child) in &mut self.children {
            // A label value the API server would refuse (a long name) is left off, not the object.
            child
                .labels
                .retain(|_, v| v.as_str().is_some_and(|v| v.len() <= 63));
            if !child.created {
                let mut object = json!({
                    "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                    "metadata": {
                        "name": name, "namespace": self.target.namespace,
                        "labels": child.labels, "ownerReferences": owner,
                    },
                    "spec": child.spec,
                });
                if let Some(a) = &child.annotations {
                    object["metadata"]["annotations"] = a.clone();
                }
                child.created = match create(&self.task_runs, object).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("failed to create TaskRun {name}: {e}");
                        false
                    }
                };
            }
            if child.created && child.dirty {
                match patch_status(&self.task_runs, name, &child.status).await {
                    Ok(()) => child.dirty = false,
                    Err(e) => tracing::warn!("failed to write the status of TaskRun {name}: {e}"),
                }
            }
        }
        if self.root_dirty {
            let status = Value::Object(self.root.clone());
            match patch_status(&self.runs, &self.target.name, &status).await {
                Ok(()) => self.root_dirty = false,
                Err(kube::Error::Api(s)) if s.code == 404 => self.gone = true,
                Err(e) => tracing::warn!(
                    "failed to write the status of {} {}: {e}",
                    self.target.kind.as_str(),
                    self.target.name
                ),
            }
        }
    }
}

/// Creates `object`; one that already exists (written before a restart) counts as created.
async fn create(api: &Api<DynamicObject>, object: Value) -> Result<(), kube::Error> {
    let object: DynamicObject = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// A merge patch of the `status` subresource.
pub async fn patch_status(
    api: &Api<DynamicObject>,
    name: &str,
    status: &Value,
) -> Result<(), kube::Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
}

/// A run's status when it ends without running: the condition False with `reason`.
pub fn failed_status(reason: &str, message: &str, started: Option<&Value>) -> Value {
    let now = SystemTime::now();
    let mut status = json!({
        "conditions": condition(Some(false), reason, message, now),
        "completionTime": ts(now),
    });
    status["startTime"] = started.cloned().unwrap_or_else(|| json!(ts(now)));
    status
}

#[cfg(test)]
mod tests {
    use slipway_engine::event::TaskRunInfo;

    use super::*;
    use slipway_kube_mock as testkit;

    fn started(name: &str, task: &str) -> RunEvent {
        RunEvent::TaskRunStarted {
            info: TaskRunInfo {
                uid: format!("{name}-uid"),
                name: name.into(),
                root_uid: "pr-uid".into(),
                parent_uid: Some("pr-uid".into()),
                pipeline_task: Some(task.into()),
                steps: vec!["s".into()],
                attempt: 0,
                spec: serde_json::Value::Null,
            },
            at: SystemTime::now(),
        }
    }

    fn finished(name: &str, uid: &str) -> RunEvent {
        RunEvent::TaskRunFinished {
            uid: uid.into(),
            root: "pr-uid".into(),
            reason: "Succeeded".into(),
            succeeded: true,
            object: json!({
                "metadata": {"name": name, "labels": {"tekton.dev/task": "build", "team": "a"}},
                "spec": {"taskRef": {"name": "build"}, "params": [{"name": "p", "value": "v"}]},
                "status": {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
                           "results": [{"name": "r", "value": "1"}], "steps": [{"name": "s"}]},
            }),
        }
    }

    fn store(client: kube::Client, window: Duration) -> Arc<ClusterStore> {
        let target = Target {
            kind: RunKind::PipelineRun,
            name: "pr".into(),
            namespace: "ci".into(),
            uid: "pr-uid".into(),
        };
        let tasks = HashMap::from([(
            "compile".to_string(),
            PipelineTaskInfo {
                task: Some("build".into()),
                member_of: "tasks",
                spec: json!({"taskRef": {"name": "build", "kind": "Task"}}),
            },
        )]);
        ClusterStore::start(client, target, tasks, window)
    }

    #[tokio::test]
    async fn a_run_says_it_runs_in_its_first_write() {
        let (client, log) = testkit::client(|s| (200, s.body.clone()));
        let store = store(client, Duration::from_secs(30));
        store.record(&RunEvent::RunStarted {
            run: slipway_engine::event::RunInfo {
                uid: "pr-uid".into(),
                name: "pr".into(),
                kind: "PipelineRun",
                target: String::new(),
                parent_uid: None,
                created: SystemTime::now(),
            },
            object: json!({"status": {
                "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}],
                "startTime": "2026-01-01T00:00:00Z"}}),
        });
        store.flush().await;
        let log = log.lock().expect("lock").clone();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(
            log[0].path(),
            "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/pr/status"
        );
        let status = &log[0].body["status"];
        assert_eq!(status["conditions"][0]["reason"], "Running");
        assert_eq!(status["startTime"], "2026-01-01T00:00:00Z");
    }

    #[tokio::test]
    async fn a_short_taskrun_costs_one_create_and_one_status_patch() {
        let (client, log) =
            testkit::client(|s| (if s.method == "POST" { 201 } else { 200 }, s.body.clone()));
        let store = store(client, Duration::from_secs(30));
        store.record(&started("pr-compile", "compile"));
        store.record(&finished("pr-compile", "pr-compile-uid"));
        store.record(&RunEvent::RunFinished {
            uid: "pr-uid".into(),
            reason: "Succeeded".into(),
            succeeded: true,
            object: json!({"status": {"conditions": [{"type": "Succeeded", "status": "True"}],
                                      "completionTime": "2026-01-01T00:00:00Z"}}),
        });
        store.flush().await;
        let log = log.lock().expect("lock").clone();
        let shape: Vec<(&str, &str)> = log.iter().map(|s| (s.method.as_str(), s.path())).collect();
        assert_eq!(
            shape,
            [
                ("POST", "/apis/tekton.dev/v1/namespaces/ci/taskruns"),
                (
                    "PATCH",
                    "/apis/tekton.dev/v1/namespaces/ci/taskruns/pr-compile/status"
                ),
                (
                    "PATCH",
                    "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/pr/status"
                ),
            ]
        );
        let created = &log[0].body;
        let labels = &created["metadata"]["labels"];
        assert_eq!(labels["tekton.dev/pipelineRun"], "pr");
        assert_eq!(labels["tekton.dev/pipelineTask"], "compile");
        assert_eq!(labels["tekton.dev/task"], "build");
        assert_eq!(labels["tekton.dev/memberOf"], "tasks");
        assert_eq!(
            labels["team"], "a",
            "the finished object's labels come along"
        );
        let owner = &created["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["uid"], &owner["controller"]),
            (&json!("PipelineRun"), &json!("pr-uid"), &json!(true))
        );
        assert_eq!(
            created["spec"]["params"][0]["value"], "v",
            "the whole spec, as run"
        );
        for patch in &log[1..] {
            assert_eq!(patch.content_type, "application/merge-patch+json");
        }
        let child = &log[1].body["status"];
        assert_eq!(child["results"][0]["value"], "1");
        assert!(
            child["podName"]
                .as_str()
                .is_some_and(|p| p.starts_with("pr-compile-pod-")),
            "{child}"
        );
        let root = &log[2].body["status"];
        assert_eq!(root["childReferences"][0]["name"], "pr-compile");
        assert_eq!(root["childReferences"][0]["pipelineTaskName"], "compile");
        assert_eq!(root["completionTime"], "2026-01-01T00:00:00Z");
    }

    #[tokio::test]
    async fn a_long_taskrun_is_created_while_it_runs_then_finished() {
        let (client, log) =
            testkit::client(|s| (if s.method == "POST" { 201 } else { 200 }, s.body.clone()));
        let store = store(client, Duration::from_millis(20));
        let mut event = started("pr-compile", "compile");
        if let RunEvent::TaskRunStarted { info, .. } = &mut event {
            info.spec = json!({"taskRef": {"name": "build", "kind": "Task"},
                               "params": [{"name": "v", "value": "resolved"}]});
        }
        store.record(&event);
        tokio::time::sleep(Duration::from_millis(200)).await;
        {
            let log = log.lock().expect("lock");
            assert_eq!(
                log.len(),
                3,
                "create, its Running status, the run's childReferences: {log:?}"
            );
            assert_eq!(log[0].body["spec"]["taskRef"]["name"], "build");
            assert_eq!(
                log[0].body["spec"]["params"][0]["value"], "resolved",
                "created with the params as run, while it runs"
            );
            assert_eq!(log[1].body["status"]["conditions"][0]["status"], "Unknown");
        }
        store.record(&finished("pr-compile", "pr-compile-uid"));
        store.flush().await;
        let log = log.lock().expect("lock");
        assert_eq!(log.len(), 4, "one more status patch: {log:?}");
        assert_eq!(log[3].body["status"]["conditions"][0]["status"], "True");
    }

    #[tokio::test]
    async fn running_steps_show_in_the_taskrun_status() {
        let (client, log) =
            testkit::client(|s| (if s.method == "POST" { 201 } else { 200 }, s.body.clone()));
        let store = store(client, Duration::from_secs(30));
        store.record(&started("pr-compile", "compile"));
        store.record(&RunEvent::StepStarted {
            taskrun: "pr-compile-uid".into(),
            step: 0,
            at: SystemTime::now(),
        });
        store.flush().await;
        let log = log.lock().expect("lock");
        let steps = &log[1].body["status"]["steps"];
        assert_eq!(steps[0]["name"], "s");
        assert!(steps[0]["running"]["startedAt"].is_string(), "{steps}");
    }

    #[tokio::test]
    async fn a_deleted_run_is_written_no_more() {
        let (client, log) = testkit::client(|_| (404, testkit::status(404, "NotFound")));
        let store = store(client, Duration::from_secs(30));
        store.record(&RunEvent::RunFinished {
            uid: "pr-uid".into(),
            reason: "Succeeded".into(),
            succeeded: true,
            object: json!({"status": {}}),
        });
        store.flush().await;
        store.record(&RunEvent::RunFinished {
            uid: "pr-uid".into(),
            reason: "Succeeded".into(),
            succeeded: true,
            object: json!({"status": {}}),
        });
        store.flush().await;
        assert_eq!(log.lock().expect("lock").len(), 1);
    }
}
