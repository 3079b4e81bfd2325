//! The executor contract: a fully resolved TaskRun goes in, events and an outcome come out.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::{ExecEvent, StepEnd};

/// One step, with every `$(...)` already substituted.
#[derive(Debug, Clone, Default)]
pub struct StepPlan {
    /// Step name (generated as `unnamed-<i>` when the Task gave none).
    pub name: String,
    /// Image; executors without images ignore it.
    pub image: Option<String>,
    /// Entrypoint.
    pub command: Vec<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Script body, run through its shebang.
    pub script: Option<String>,
    /// Environment, in order; later entries win.
    pub env: Vec<(String, String)>,
    /// Of those, the ones read from a ConfigMap or Secret key: the name and the `valueFrom`
    /// as written, for an executor whose cluster holds the objects (no value in the Pod spec).
    pub env_sources: Vec<(String, serde_json::Value)>,
    /// Working directory as the step sees it.
    pub working_dir: Option<String>,
    /// Volume mounts (by task volume name).
    pub volume_mounts: Vec<MountPlan>,
    /// `onError: continue`.
    pub continue_on_error: bool,
    /// Step timeout.
    pub timeout: Option<Duration>,
    /// Where stdout is also written, as the step sees it.
    pub stdout_path: Option<String>,
    /// Where stderr is also written, as the step sees it.
    pub stderr_path: Option<String>,
    /// Numeric user to run as.
    pub run_as_user: Option<u32>,
    /// Numeric group to run as.
    pub run_as_group: Option<u32>,
    /// The step's or sidecar's whole `securityContext` as written (after the `stepTemplate`),
    /// for executors that pass it on; `run_as_user`/`run_as_group` already hold its ids.
    pub security_context: Option<serde_json::Value>,
    /// Names of results this step declares (StepAction results).
    pub results: Vec<String>,
    /// Those of its results declared as arrays or objects (their files hold JSON), so later
    /// steps can take `[*]`, `[i]` and `.key` of them.
    pub structured_results: Vec<(String, slipway_model::ParamType)>,
    /// Image pull policy.
    pub image_pull_policy: Option<String>,
    /// Its `when` expressions were false: reported as skipped, not run.
    pub skipped: bool,
    /// `computeResources.limits`, for executors that can enforce them.
    pub limits: Limits,
    /// `computeResources.requests`, for executors that schedule (Kubernetes).
    pub requests: Limits,
    /// Sidecars: when the sidecar counts as ready.
    pub readiness: Option<ProbePlan>,
    /// Slipway runs this step with its own code instead of the image (command and args kept).
    pub builtin: Option<Builtin>,
}

/// A step slipway runs with its own code, because the image is a tool slipway has built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// Kaniko's executor: slipway's image builder (`slipway build`) takes its flags.
    ImageBuilder,
}

impl Builtin {
    /// The built-in that stands in for a step with this image, command and script, if any.
    pub fn for_step(image: Option<&str>, command: &[String], script: Option<&str>) -> Option<Self> {
        slipway_model::kaniko::runs_executor(image, command, script)
            .then_some(Builtin::ImageBuilder)
    }
}

/// How executors start slipway's image builder on this machine: `program` with `leading_args`
/// (`--config FILE build`), then the step's Kaniko flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuilder {
    /// The slipway binary.
    pub program: std::path::PathBuf,
    /// Arguments before the step's flags, ending with the `build` verb.
    pub leading_args: Vec<String>,
    /// Variables of slipway's own environment the builder keeps (`PATH` to find runc, caches).
    pub env: Vec<(String, String)>,
}

/// Resource limits of a step or sidecar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU, in millicores.
    pub cpu_millis: Option<u64>,
}

/// A readiness probe, in Kubernetes' terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    /// What is checked.
    pub action: ProbeAction,
    /// Wait before the first check.
    pub initial_delay: Duration,
    /// Time between checks.
    pub period: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive failures after which the sidecar is reported as not ready.
    pub failure_threshold: u32,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// A command run inside the container; exit 0 means ready.
    Exec(Vec<String>),
    /// A TCP connection to the port succeeds.
    Tcp {
        /// Port in the pod's network.
        port: u16,
    },
    /// An HTTP GET answers with a status in 200..400.
    Http {
        /// Port in the pod's network.
        port: u16,
        /// Request path.
        path: String,
    },
}

/// A registry credential from a `kubernetes.io/dockerconfigjson` Secret.
#[derive(Debug, Clone, PartialEq)]
pub struct PullSecret {
    /// The Secret's name, for messages.
    pub name: String,
    /// The `.dockerconfigjson` (or `.dockercfg`) content.
    pub config_json: Vec<u8>,
}

impl StepPlan {
    /// Substitutes values known only at run time (earlier steps' results) into this step.
    pub fn substitute(&mut self, scope: &slipway_model::subst::Scope) {
        self.command = scope.subst_list(&self.command);
        self.args = scope.subst_list(&self.args);
        for text in [
            &mut self.script,
            &mut self.working_dir,
            &mut self.image,
            &mut self.stdout_path,
            &mut self.stderr_path,
        ]
        .into_iter()
        .flatten()
        {
            *text = scope.subst(text);
        }
        for (_, v) in &mut self.env {
            *v = scope.subst(v);
        }
        // The image may have named a result of an earlier step.
        self.builtin =
            Builtin::for_step(self.image.as_deref(), &self.command, self.script.as_deref());
    }
}

impl TaskRunPlan {
    /// Makes step `done`'s results visible to the steps after it as `$(steps.<name>.results.<r>)`.
    pub fn after_step(&mut self, done: usize, results: &[(String, String)]) {
        let Some(name) = self.steps.get(done).map(|s| s.name.clone()) else {
            return;
        };
        if results.is_empty() {
            return;
        }
        let structured = self
            .steps
            .get(done)
            .map(|s| s.structured_results.clone())
            .unwrap_or_default();
        let mut scope = slipway_model::subst::Scope::new();
        for (r, v) in results {
            let key = format!("steps.{name}.results.{r}");
            // A value that is not the JSON its type says stays text, as Tekton leaves it.
            match structured.iter().find(|(n, _)| n == r) {
                Some((_, kind)) => match crate::taskplan::parse_result(*kind, v) {
                    Ok(value) => scope.set(key, value),
                    Err(_) => scope.set_str(key, v.clone()),
                },
                None => scope.set_str(key, v.clone()),
            }
        }
        for s in self.steps.iter_mut().skip(done + 1) {
            s.substitute(&scope);
        }
    }
}

/// A volume mounted into a step.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Task volume name.
    pub volume: String,
    /// Where it appears.
    pub path: String,
    /// Sub-directory of the volume.
    pub sub_path: Option<String>,
    /// Read-only.
    pub read_only: bool,
}

/// What backs a workspace or volume; the executor decides where it lives.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeSource {
    /// Scratch space shared by everything that names the same key (a run uid and a name).
    EmptyDir {
        /// Identity of the scratch space.
        key: String,
    },
    /// A named volume that outlives runs.
    Claim {
        /// Claim name.
        name: String,
    },
    /// Files projected from a ConfigMap or Secret.
    Files {
        /// Path, content and mode of each file.
        files: Vec<ProjectedFile>,
        /// The volume as written, for an executor whose cluster holds the objects themselves.
        origin: Option<ObjectVolume>,
    },
    /// A fresh volume per run from a `volumeClaimTemplate`: scratch space by `key` where there
    /// is no cluster, a PersistentVolumeClaim made from `spec` where there is one.
    ClaimTemplate {
        /// Identity of the volume (a run uid and a name).
        key: String,
        /// The template as written (`metadata` and `spec` of a PersistentVolumeClaim).
        template: serde_json::Value,
    },
    /// A directory of the machine.
    HostPath {
        /// The path.
        path: String,
    },
    /// A volume only a cluster provides (`csi`, `nfs`, `ephemeral`, `downwardAPI`, ...): passed
    /// to the Pod as written by executors that make Pods; the others cannot provide it.
    Cluster {
        /// The source's key (`csi`), for messages.
        kind: String,
        /// The Kubernetes `Volume` as written, `name` included.
        volume: serde_json::Value,
    },
}

/// A configMap, secret or projected volume as written (a cluster can mount it as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectVolume {
    /// Which kind of volume.
    pub kind: ObjectVolumeKind,
    /// Its source as written (`name`/`secretName`, `items`, `defaultMode`, `optional`; or
    /// `sources` for a projected one).
    pub spec: serde_json::Value,
}

/// The kinds of [`ObjectVolume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectVolumeKind {
    /// A ConfigMap's keys as files.
    ConfigMap,
    /// A Secret's keys as files.
    Secret,
    /// Several sources in one directory.
    Projected,
}

/// One projected file.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectedFile {
    /// Relative path.
    pub path: String,
    /// Content.
    pub content: Vec<u8>,
    /// Unix mode.
    pub mode: u32,
}

/// A workspace mounted into every step of the TaskRun.
#[derive(Debug, Clone)]
pub struct WorkspacePlan {
    /// Workspace name.
    pub name: String,
    /// Mount path as steps see it.
    pub path: String,
    /// Backing.
    pub source: VolumeSource,
    /// Sub-directory.
    pub sub_path: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// Named by a step's or sidecar's `workspaces` (Tekton's isolated workspaces): mounted only
    /// where named, through that step's `volume_mounts` on volume [`WorkspacePlan::volume`],
    /// instead of into every step.
    pub isolated: bool,
}

impl WorkspacePlan {
    /// The volume name steps mount it by, as `$(workspaces.<name>.volume)` says.
    pub fn volume(&self) -> String {
        format!("ws-{}", self.name)
    }
}

/// A TaskRun ready to execute.
#[derive(Debug, Clone, Default)]
pub struct TaskRunPlan {
    /// TaskRun uid.
    pub uid: String,
    /// TaskRun name.
    pub name: String,
    /// Top-level run uid.
    pub root_uid: String,
    /// Which attempt this is (0 for the first; `retries` add more).
    pub attempt: u32,
    /// Steps, in order.
    pub steps: Vec<StepPlan>,
    /// Sidecars, started first and stopped last.
    pub sidecars: Vec<StepPlan>,
    /// Bound workspaces.
    pub workspaces: Vec<WorkspacePlan>,
    /// Task volumes by name.
    pub volumes: Vec<(String, VolumeSource)>,
    /// Declared result names.
    pub results: Vec<String>,
    /// Whole-TaskRun timeout; `None` means none.
    pub timeout: Option<Duration>,
    /// Largest result accepted, in bytes.
    pub max_result_bytes: usize,
    /// Registry credentials named by `podTemplate.imagePullSecrets`.
    pub pull_secrets: Vec<PullSecret>,
    /// Pod-level settings, for executors that make Pods.
    pub pod: PodPlan,
}

/// Pod-level fields of the `podTemplate` and the TaskRun, as written (params substituted), for
/// executors that make Pods; the others ignore them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodPlan {
    /// `serviceAccountName` of the TaskRun.
    pub service_account_name: Option<String>,
    /// `nodeSelector`.
    pub node_selector: Option<serde_json::Value>,
    /// `tolerations`.
    pub tolerations: Option<serde_json::Value>,
    /// `affinity`.
    pub affinity: Option<serde_json::Value>,
    /// `securityContext` (the Pod's).
    pub security_context: Option<serde_json::Value>,
    /// Names in `imagePullSecrets`.
    pub image_pull_secrets: Vec<String>,
    /// `runtimeClassName`.
    pub runtime_class_name: Option<String>,
    /// `priorityClassName`.
    pub priority_class_name: Option<String>,
    /// `schedulerName`.
    pub scheduler_name: Option<String>,
    /// `hostAliases`.
    pub host_aliases: Option<serde_json::Value>,
    /// `dnsConfig`.
    pub dns_config: Option<serde_json::Value>,
    /// `dnsPolicy`.
    pub dns_policy: Option<String>,
    /// `hostNetwork`.
    pub host_network: Option<bool>,
    /// `topologySpreadConstraints`.
    pub topology_spread_constraints: Option<serde_json::Value>,
    /// `enableServiceLinks`.
    pub enable_service_links: Option<bool>,
}

impl PodPlan {
    /// Reads the Pod-level fields of a `podTemplate`.
    pub fn from_template(
        template: Option<&serde_json::Value>,
        service_account: Option<&str>,
    ) -> Self {
        let get = |k: &str| {
            template
                .and_then(|t| t.get(k))
                .filter(|v| !v.is_null())
                .cloned()
        };
        let text = |k: &str| get(k).and_then(|v| v.as_str().map(str::to_string));
        PodPlan {
            service_account_name: service_account
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            node_selector: get("nodeSelector"),
            tolerations: get("tolerations"),
            affinity: get("affinity"),
            security_context: get("securityContext"),
            image_pull_secrets: get("imagePullSecrets")
                .and_then(|v| v.as_array().cloned())
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect(),
            runtime_class_name: text("runtimeClassName"),
            priority_class_name: text("priorityClassName"),
            scheduler_name: text("schedulerName"),
            host_aliases: get("hostAliases"),
            dns_config: get("dnsConfig"),
            dns_policy: text("dnsPolicy"),
            host_network: get("hostNetwork").and_then(|v| v.as_bool()),
            topology_spread_constraints: get("topologySpreadConstraints"),
            enable_service_links: get("enableServiceLinks").and_then(|v| v.as_bool()),
        }
    }

    /// The `podTemplate` fields set here that only a cluster applies (placement, DNS, the
    /// Pod's security context beyond its user and group), by their names in the template.
    pub fn cluster_only_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |set: bool, field: &'static str| {
            if set {
                out.push(field);
            }
        };
        note(self.node_selector.is_some(), "nodeSelector");
        note(self.tolerations.is_some(), "tolerations");
        note(self.affinity.is_some(), "affinity");
        note(
            self.topology_spread_constraints.is_some(),
            "topologySpreadConstraints",
        );
        note(
            self.security_context
                .as_ref()
                .is_some_and(|c| beyond_ids(c).next().is_some()),
            "securityContext",
        );
        note(self.runtime_class_name.is_some(), "runtimeClassName");
        note(self.priority_class_name.is_some(), "priorityClassName");
        note(self.scheduler_name.is_some(), "schedulerName");
        note(self.host_aliases.is_some(), "hostAliases");
        note(self.dns_config.is_some(), "dnsConfig");
        note(self.dns_policy.is_some(), "dnsPolicy");
        note(self.enable_service_links.is_some(), "enableServiceLinks");
        out
    }
}

/// The keys of a `securityContext` other than the user and group ids every executor applies.
fn beyond_ids(context: &serde_json::Value) -> impl Iterator<Item = &str> {
    context
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !v.is_null() && !matches!(k.as_str(), "runAsUser" | "runAsGroup"))
        .map(|(k, _)| k.as_str())
}

impl TaskRunPlan {
    /// What this plan asks of a Pod that an executor without a cluster does not apply, as one
    /// sentence for a notice (`None` when there is nothing): `podTemplate` fields, step and
    /// sidecar `securityContext` fields beyond the user and group.
    pub fn cluster_only_settings(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .pod
            .cluster_only_fields()
            .into_iter()
            .map(|f| format!("podTemplate.{f}"))
            .collect();
        let containers = self
            .steps
            .iter()
            .map(|s| ("step", s))
            .chain(self.sidecars.iter().map(|s| ("sidecar", s)));
        for (what, s) in containers {
            let Some(context) = &s.security_context else {
                continue;
            };
            let fields: Vec<&str> = beyond_ids(context).collect();
            if !fields.is_empty() {
                parts.push(format!(
                    "{what} `{}` securityContext.{}",
                    s.name,
                    fields.join("/")
                ));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// How a TaskRun ended, as seen by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecStatus {
    /// Every step succeeded (or its failure was ignored).
    Succeeded,
    /// A step failed.
    Failed,
    /// The TaskRun timeout was reached.
    TimedOut,
    /// Cancelled from outside.
    Cancelled,
    /// An image could not be pulled.
    ImagePullFailed,
    /// The TaskRun's Pod could not run its steps (Kubernetes).
    PodFailed(PodFailure),
    /// A result exceeded the size limit.
    ResultTooLarge,
    /// The executor itself failed.
    Error,
}

/// Why a TaskRun's Pod could not run its steps; each has its own condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFailure {
    /// The API server refused the Pod (or something it needs).
    CreationFailed,
    /// The Pod did not start within the executor's start timeout.
    StartTimeout,
    /// The Pod was deleted by someone else while it ran.
    Deleted,
    /// A container could not be configured (a missing Secret or ConfigMap key).
    CreateContainerConfigError,
    /// The node ended the Pod (an eviction, a node shutdown): a failed attempt `retries` repeat.
    Ended,
}

impl PodFailure {
    /// The condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            PodFailure::CreationFailed => "PodCreationFailed",
            PodFailure::StartTimeout => "PodStartTimeout",
            PodFailure::Deleted => "PodDeleted",
            PodFailure::CreateContainerConfigError => "CreateContainerConfigError",
            PodFailure::Ended => "PodEvicted",
        }
    }
}

/// What an executor hands back when a TaskRun ends.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    /// The status.
    pub status: ExecStatus,
    /// A sentence for the condition message.
    pub message: String,
    /// Raw task results read from the results directory.
    pub results: Vec<(String, String)>,
    /// Raw step results: step name, result name, value.
    pub step_results: Vec<(String, String, String)>,
}

impl ExecOutcome {
    /// An outcome with no results.
    pub fn new(status: ExecStatus, message: impl Into<String>) -> Self {
        ExecOutcome {
            status,
            message: message.into(),
            results: Vec::new(),
            step_results: Vec::new(),
        }
    }

    /// Attaches results read after the steps; a result over the size limit fails the TaskRun.
    #[allow(clippy::type_complexity)]
    pub fn with_results(
        mut self,
        read: Result<(Vec<(String, String)>, Vec<(String, String, String)>), String>,
    ) -> Self {
        match read {
            Ok((results, step_results)) => {
                self.results = results;
                self.step_results = step_results;
            }
            Err(why) => {
                if self.status == ExecStatus::Succeeded {
                    self.status = ExecStatus::ResultTooLarge;
                }
                self.message = why;
            }
        }
        self
    }
}

/// How a TaskRun stands as its steps end, the same for every executor: the first step that
/// fails decides the status, and the steps after it are skipped.
#[derive(Debug, Clone)]
pub struct StepTally {
    /// The TaskRun's status so far.
    pub status: ExecStatus,
    /// Why, when a step could not start or timed out.
    pub message: String,
}

impl Default for StepTally {
    fn default() -> Self {
        StepTally {
            status: ExecStatus::Succeeded,
            message: String::new(),
        }
    }
}

impl StepTally {
    /// Whether `step` runs: nothing failed before it and its `when` held.
    pub fn runs(&self, step: &StepPlan) -> bool {
        self.status == ExecStatus::Succeeded && !step.skipped
    }

    /// Records how `step` ended; `task_timed_out` tells a cancel from the TaskRun's own
    /// timeout. Returns whether a failure is ignored (`onError: continue`).
    pub fn record(&mut self, step: &StepPlan, end: &StepEnd, task_timed_out: bool) -> bool {
        match end {
            StepEnd::Exited(0) | StepEnd::Skipped => {}
            StepEnd::Exited(_) if step.continue_on_error => return true,
            StepEnd::Exited(_) | StepEnd::OutOfMemory => self.status = ExecStatus::Failed,
            StepEnd::StartFailed(why) => {
                self.status = ExecStatus::Failed;
                self.message = format!("step `{}` could not start: {why}", step.name);
            }
            StepEnd::TimedOut => {
                self.status = ExecStatus::Failed;
                self.message = format!("step `{}` timed out", step.name);
            }
            StepEnd::Cancelled => {
                self.status = if task_timed_out {
                    ExecStatus::TimedOut
                } else {
                    ExecStatus::Cancelled
                };
            }
        }
        false
    }

    /// Records how step `index` ended and reports it.
    pub async fn finish(
        &mut self,
        events: &EventSink,
        index: usize,
        step: &StepPlan,
        end: StepEnd,
        task_timed_out: bool,
    ) {
        let ignored = self.record(step, &end, task_timed_out);
        events
            .send(ExecEvent::StepFinished {
                step: index,
                end,
                at: std::time::SystemTime::now(),
                ignored,
            })
            .await;
    }

    /// Reports step `index` as not run (an earlier step failed, or its `when` was false).
    pub async fn skip(events: &EventSink, index: usize) {
        events
            .send(ExecEvent::StepFinished {
                step: index,
                end: StepEnd::Skipped,
                at: std::time::SystemTime::now(),
                ignored: false,
            })
            .await;
    }

    /// The outcome, before results are read.
    pub fn outcome(self) -> ExecOutcome {
        ExecOutcome::new(self.status, self.message)
    }
}

/// Events an executor may report ahead of the engine for one TaskRun. Log lines are at most
/// [`crate::output::MAX_LINE`] bytes, so this bounds what a TaskRun's output holds in memory
/// (64 × 64 KiB) before the executor has to wait.
pub const EVENTS_IN_FLIGHT: usize = 64;

/// Where an executor sends its events; tagged with the TaskRun it belongs to. The channel is
/// bounded: `send` waits while the engine (and, behind it, the store) is behind, and an executor
/// reading a step's output stops reading meanwhile, so a noisy step is slowed to the store's pace
/// instead of filling memory.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<(String, ExecEvent)>,
    uid: String,
}

impl EventSink {
    /// A sink for the TaskRun `uid`.
    pub fn new(tx: mpsc::Sender<(String, ExecEvent)>, uid: String) -> Self {
        EventSink { tx, uid }
    }

    /// A sink for the TaskRun `uid` and the receiver the engine reads it from.
    pub fn channel(uid: String) -> (Self, mpsc::Receiver<(String, ExecEvent)>) {
        let (tx, rx) = mpsc::channel(EVENTS_IN_FLIGHT);
        (EventSink::new(tx, uid), rx)
    }

    /// Sends an event, waiting while the channel is full; a closed dispatcher is not the
    /// executor's problem.
    pub async fn send(&self, ev: ExecEvent) {
        let _ = self.tx.send((self.uid.clone(), ev)).await;
    }

    /// Sends a piece of a step's output.
    pub async fn log(
        &self,
        step: usize,
        stream: crate::event::Stream,
        piece: crate::output::Piece,
    ) {
        self.send(ExecEvent::Log {
            step,
            stream,
            line: piece.line,
            continued: piece.continued,
            at: std::time::SystemTime::now(),
        })
        .await;
    }
}

/// Runs TaskRuns somewhere: host processes, containers, pods.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Short name for messages (`host`, `docker`).
    fn name(&self) -> &'static str;

    /// Whether steps run in their `image`; an executor that runs them as processes of this
    /// machine says no, and the engine tells the user once per run.
    fn runs_images(&self) -> bool {
        true
    }

    /// Runs one TaskRun to the end, reporting step events through `events`.
    /// Cancelling `cancel` must stop every step and return `ExecStatus::Cancelled`.
    async fn run(
        &self,
        plan: TaskRunPlan,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ExecOutcome;

    /// Releases what a top-level run left behind (its scratch workspaces; Pods an executor
    /// keeps until the run's outcome is recorded). Called once the store has flushed the end.
    async fn cleanup(&self, _root_uid: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_object_step_results_reach_later_steps_as_values() {
        let mut plan = TaskRunPlan {
            steps: vec![
                StepPlan {
                    name: "make".into(),
                    results: vec!["list".into(), "image".into(), "bad".into()],
                    structured_results: vec![
                        ("list".into(), slipway_model::ParamType::Array),
                        ("image".into(), slipway_model::ParamType::Object),
                        ("bad".into(), slipway_model::ParamType::Array),
                    ],
                    ..StepPlan::default()
                },
                StepPlan {
                    name: "use".into(),
                    args: vec![
                        "$(steps.make.results.list[*])".into(),
                        "$(steps.make.results.list[1])".into(),
                        "$(steps.make.results.image.URL)".into(),
                        "$(steps.make.results.bad)".into(),
                    ],
                    ..StepPlan::default()
                },
            ],
            ..TaskRunPlan::default()
        };
        plan.after_step(
            0,
            &[
                ("list".into(), r#"["a", "b"]"#.into()),
                ("image".into(), r#"{"URL": "ar.com"}"#.into()),
                ("bad".into(), "not json".into()),
            ],
        );
        assert_eq!(plan.steps[1].args, ["a", "b", "b", "ar.com", "not json"]);
    }
}
