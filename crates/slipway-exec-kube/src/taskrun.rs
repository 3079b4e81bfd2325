//! One TaskRun as one Pod: commands resolved, the Pod created, its steps followed in order
//! through the Pod's status and logs, the Pod deleted at the end (unless kept).

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use slipway_engine::executor::{ExecOutcome, ExecStatus, PodFailure, StepTally, TaskRunPlan};
use slipway_engine::{EventSink, ExecEvent, StepEnd};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::frame::{Ending, Report};
use crate::status::{self, State};
use crate::{Inner, Retention, affinity, error, image, pod, volumes};

/// What the watch knows of the Pod.
#[derive(Debug, Clone)]
enum View {
    Unknown,
    Present(Box<Pod>),
    Deleted,
}

/// Why the steps stopped before their end.
#[derive(Debug, Clone)]
enum Stop {
    Cancelled,
    TimedOut,
    Deleted,
    StartTimeout(String),
    ImagePull(String),
    Config(String),
    Prepare(String),
    Ended(String),
}

/// The Pod's name: the TaskRun's (cut to fit a hostname) and a piece of its uid and attempt.
pub(crate) fn pod_name(plan: &TaskRunPlan) -> String {
    pod_name_of(&plan.name, &plan.uid, plan.attempt)
}

/// The Pod's name for attempt `attempt` of a TaskRun named `name` with uid `uid`: the same
/// every time, so a Pod made before a controller restart is found again (and each retry has
/// its own, kept beside the earlier ones until the run ends).
pub(crate) fn pod_name_of(name: &str, uid: &str, attempt: u32) -> String {
    let mut base: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(46)
        .collect();
    while base.ends_with('-') {
        base.pop();
    }
    let hash = match attempt {
        0 => volumes::short_hash(uid),
        n => volumes::short_hash(&format!("{uid}/{n}")),
    };
    format!("{base}-pod-{}", &hash[..6])
}

/// Runs one TaskRun to its end.
pub(crate) async fn run(
    inner: &Inner,
    plan: TaskRunPlan,
    events: EventSink,
    cancel: CancellationToken,
) -> ExecOutcome {
    let deadline = plan
        .timeout
        .map(|t| Instant::now() + slipway_model::duration::capped(t));
    let commands = match resolve_commands(inner, &plan, &cancel, deadline).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let name = pod_name(&plan);
    let mut parts = match pod::build(
        &plan,
        &pod::PodInputs {
            name: &name,
            namespace: &inner.namespace,
            slipway_image: &inner.image,
            registry: &inner.registry,
            commands: &commands,
            cluster_objects: inner.cluster_objects,
        },
    ) {
        Ok(p) => p,
        Err(e) => return ExecOutcome::new(ExecStatus::Error, error::chain(&e)),
    };
    let held = match hold_claims(inner, &plan, &mut parts.pod, &events, &cancel).await {
        Ok(h) => h,
        Err(o) => return o,
    };
    let pods: Api<Pod> = Api::namespaced(inner.client.clone(), &inner.namespace);
    if let Err(o) = create(inner, &pods, &parts).await {
        return o;
    }
    for s in plan.steps.iter().filter(|s| crate::kaniko::stands_in(s)) {
        events
            .send(ExecEvent::Notice(crate::kaniko::notice(s)))
            .await;
    }
    let (tx, rx) = watch::channel(View::Unknown);
    let watching = tokio::spawn(watch_pod(pods.clone(), name.clone(), tx));
    let mut w = Waiter {
        rx,
        cancel: cancel.clone(),
        deadline,
        start_deadline: Some(Instant::now() + inner.start_timeout),
        start_timeout: inner.start_timeout,
        told_unschedulable: false,
        events: events.clone(),
    };
    record_placement(held, &mut w).await;
    let containers = pod::step_containers(&plan);
    let outcome = match sidecars_ready(inner, &pods, &name, &plan, &mut w).await {
        Ok(()) => steps(&pods, &name, &plan, &containers, &mut w, &events).await,
        Err(o) => o,
    };
    let stopped = matches!(outcome.status, ExecStatus::Cancelled | ExecStatus::TimedOut);
    let keep = !stopped
        && match inner.retention {
            Retention::Never => false,
            Retention::Always => true,
            Retention::OnFailure => outcome.status != ExecStatus::Succeeded,
        };
    if keep {
        events
            .send(ExecEvent::Notice(format!(
                "pod `{name}` is kept in namespace `{}` (pod_retention)",
                inner.namespace
            )))
            .await;
    }
    // Deleted by `cleanup` once the run's end is recorded: until then the Pod is what tells a
    // restarted controller that this attempt ran, and how it ended. Not a Pod with sidecars:
    // they stop only with it, and would run on until the whole run ends.
    let defer = !stopped && inner.finished.is_some() && plan.sidecars.is_empty();
    if keep || defer {
        inner.remember(&plan.root_uid, name.clone(), keep);
    }
    if !keep && !defer {
        delete(&pods, &name, &mut w.rx).await;
    }
    watching.abort();
    outcome
}

/// Waits until every sidecar is ready, then says so in the Pod's [`pod::ANNOTATION_READY`]
/// annotation, which the first step's entrypoint waits for through a downward API file.
async fn sidecars_ready(
    inner: &Inner,
    pods: &Api<Pod>,
    name: &str,
    plan: &TaskRunPlan,
    w: &mut Waiter,
) -> Result<(), ExecOutcome> {
    let sidecars = pod::sidecar_containers(plan);
    if sidecars.is_empty() {
        return Ok(());
    }
    // A stop here is met again, and reported, by the steps.
    if w.until(|p| status::sidecars_ready(p, &sidecars).then_some(()))
        .await
        .is_err()
    {
        return Ok(());
    }
    let patch = serde_json::json!({
        "metadata": {"annotations": {pod::ANNOTATION_READY: pod::READY}}
    });
    pods.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            ExecOutcome::new(
                ExecStatus::PodFailed(PodFailure::CreationFailed),
                error::chain(&error::refused(
                    e,
                    "patch",
                    "pods",
                    &inner.namespace,
                    &inner.server,
                )),
            )
        })?;
    Ok(())
}

/// Records the node the Pod landed on for the claims it is the first to use.
async fn record_placement(held: affinity::Held, w: &mut Waiter) {
    if !held.places_first() {
        return;
    }
    // A stop here is met again, and reported, by the steps.
    if let Ok(node) = w
        .until(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .await
    {
        held.placed(&node);
    }
}

/// Holds the placements of the plan's node-bound claims and pins the Pod to the node an
/// earlier Pod of the run placed them on (see [`affinity`]).
async fn hold_claims(
    inner: &Inner,
    plan: &TaskRunPlan,
    pod: &mut Pod,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<affinity::Held, ExecOutcome> {
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(inner.client.clone(), &inner.namespace);
    let bound = affinity::node_bound_claims(&claims, plan).await;
    let held = tokio::select! {
        h = inner.placements.hold(&plan.root_uid, bound) => h,
        () = cancel.cancelled() => {
            return Err(ExecOutcome::new(ExecStatus::Cancelled, ""));
        }
    };
    if let Some(node) = held.node() {
        for (claim, other) in held.elsewhere(&node) {
            events
                .send(ExecEvent::Notice(format!(
                    "TaskRun `{}` needs claim `{claim}`, which an earlier Pod placed on node `{other}`, and a claim placed on node `{node}`: its Pod goes to `{node}`",
                    plan.name
                )))
                .await;
        }
        affinity::require_node(pod, &node);
    }
    Ok(held)
}

/// Creates the claims, the Pod and its files Secret (owned by the Pod, so deleted with it).
async fn create(inner: &Inner, pods: &Api<Pod>, parts: &pod::PodParts) -> Result<(), ExecOutcome> {
    let failed = |e: kube::Error, verb, resource| {
        ExecOutcome::new(
            ExecStatus::PodFailed(PodFailure::CreationFailed),
            error::chain(&error::refused(
                e,
                verb,
                resource,
                &inner.namespace,
                &inner.server,
            )),
        )
    };
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(inner.client.clone(), &inner.namespace);
    // The run's claims are labelled with it: its end deletes them by that label.
    let runs_of_claims = parts.claims.iter().filter_map(|c| {
        c.object
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::LABEL_RUN).cloned())
    });
    if let Ok(mut runs) = inner.claimed.lock() {
        runs.extend(runs_of_claims);
    }
    for c in &parts.claims {
        match claims.create(&PostParams::default(), &c.object).await {
            Ok(_) => {}
            // Made by an earlier TaskRun of the same run.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(failed(e, "create", "persistentvolumeclaims")),
        }
    }
    let created = match pods.create(&PostParams::default(), &parts.pod).await {
        Ok(p) => p,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return adopt(pods, &parts.pod)
                .await
                .map_err(|e| failed(e, "create", "pods"));
        }
        Err(e) => return Err(failed(e, "create", "pods")),
    };
    if let Some(files) = &parts.files {
        let mut files = files.clone();
        files.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_string(),
            kind: "Pod".to_string(),
            name: created.metadata.name.clone().unwrap_or_default(),
            uid: created.metadata.uid.clone().unwrap_or_default(),
            ..OwnerReference::default()
        }]);
        let secrets: Api<Secret> = Api::namespaced(inner.client.clone(), &inner.namespace);
        if let Err(e) = secrets.create(&PostParams::default(), &files).await {
            let _ = pods
                .delete(
                    created.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
            return Err(failed(e, "create", "secrets"));
        }
    }
    Ok(())
}

/// A Pod of the same name exists: if it is this TaskRun attempt's own (made before a
/// controller restart), it is followed instead of made again; anything else is a conflict.
async fn adopt(pods: &Api<Pod>, wanted: &Pod) -> Result<(), kube::Error> {
    let name = wanted.metadata.name.clone().unwrap_or_default();
    let label = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::LABEL_TASKRUN).cloned())
    };
    let existing = pods.get(&name).await?;
    if label(&existing).is_some()
        && label(&existing) == label(wanted)
        && existing.metadata.deletion_timestamp.is_none()
    {
        tracing::info!(pod = %name, "adopted the Pod made before a restart");
        return Ok(());
    }
    let message = format!("pods \"{name}\" already exists and belongs to another TaskRun");
    Err(kube::Error::Api(
        kube::core::Status::failure(&message, "AlreadyExists")
            .with_code(409)
            .boxed(),
    ))
}

/// Feeds the Pod's changes into `tx` until the Pod is gone or the receiver dropped.
async fn watch_pod(pods: Api<Pod>, name: String, tx: watch::Sender<View>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(pods, config).default_backoff());
    let mut seen_in_relist = false;
    while let Some(event) = stream.next().await {
        let view = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                seen_in_relist = true;
                View::Present(Box::new(p))
            }
            Ok(watcher::Event::Delete(_)) => View::Deleted,
            Ok(watcher::Event::Init) => {
                seen_in_relist = false;
                continue;
            }
            // A relist that no longer finds the Pod: it was deleted while the watch was down.
            Ok(watcher::Event::InitDone) if !seen_in_relist => View::Deleted,
            Ok(watcher::Event::InitDone) => continue,
            Err(e) => {
                tracing::debug!("watching pod {name}: {e}");
                continue;
            }
        };
        if tx.send(view).is_err() {
            return;
        }
    }
}

/// Waits on the Pod's view, bounded by cancellation, the TaskRun's timeout and, until the
/// first step runs, the start timeout.
struct Waiter {
    rx: watch::Receiver<View>,
    cancel: CancellationToken,
    deadline: Option<Instant>,
    start_deadline: Option<Instant>,
    start_timeout: Duration,
    told_unschedulable: bool,
    events: EventSink,
}

impl Waiter {
    /// Waits until `f` finds what it looks for in the Pod, or a stop.
    async fn until<T>(&mut self, f: impl Fn(&Pod) -> Option<T>) -> Result<T, Stop> {
        loop {
            let view = self.rx.borrow_and_update().clone();
            let mut last = None;
            match view {
                View::Deleted => return Err(Stop::Deleted),
                // Only someone else deletes the Pod while its steps run.
                View::Present(p) if p.metadata.deletion_timestamp.is_some() => {
                    return Err(Stop::Deleted);
                }
                View::Present(p) => {
                    if let Some(problem) = status::problem(&p) {
                        return Err(match problem {
                            status::Problem::ImagePull(m) => Stop::ImagePull(m),
                            status::Problem::Config(m) => Stop::Config(m),
                            status::Problem::Prepare(m) => Stop::Prepare(m),
                            status::Problem::Ended(m) => Stop::Ended(m),
                        });
                    }
                    if let Some(v) = f(&p) {
                        return Ok(v);
                    }
                    self.tell_unschedulable(&p).await;
                    last = Some(p);
                }
                View::Unknown => {}
            }
            let forever = || async { std::future::pending::<()>().await };
            let at = |d: Option<Instant>| async move {
                match d {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => forever().await,
                }
            };
            tokio::select! {
                changed = self.rx.changed() => {
                    // The watch ended: only when the Pod is gone for good.
                    if changed.is_err() {
                        return Err(Stop::Deleted);
                    }
                }
                () = self.cancel.cancelled() => return Err(Stop::Cancelled),
                () = at(self.deadline) => return Err(Stop::TimedOut),
                () = at(self.start_deadline) => {
                    let why = last
                        .as_deref()
                        .map(status::pending_reason)
                        .unwrap_or_else(|| "the Pod was never seen".to_string());
                    return Err(Stop::StartTimeout(format!(
                        "did not start within {}: {why}",
                        slipway_model::duration::format_go_duration(self.start_timeout)
                    )));
                }
            }
        }
    }

    /// Says once that the scheduler cannot place the Pod, with its words.
    async fn tell_unschedulable(&mut self, p: &Pod) {
        if self.told_unschedulable || self.start_deadline.is_none() {
            return;
        }
        if let Some(m) = status::unschedulable(p) {
            self.told_unschedulable = true;
            self.events
                .send(ExecEvent::Notice(format!(
                    "pod `{}` is pending: Unschedulable: {m}",
                    p.metadata.name.as_deref().unwrap_or_default()
                )))
                .await;
        }
    }

    /// Waits for any stop (used beside a log stream).
    async fn stopped(&mut self) -> Stop {
        match self.until(|_| None::<()>).await {
            Err(s) => s,
            Ok(()) => Stop::Cancelled,
        }
    }
}

/// Runs the steps in order; returns the outcome with results.
async fn steps(
    pods: &Api<Pod>,
    name: &str,
    plan: &TaskRunPlan,
    containers: &[Option<String>],
    w: &mut Waiter,
    events: &EventSink,
) -> ExecOutcome {
    let mut tally = StepTally::default();
    let mut reports: Vec<Option<Report>> = vec![None; plan.steps.len()];
    let mut followed = vec![false; plan.steps.len()];
    let mut stop = None;
    if let Some(first) = containers.iter().flatten().next()
        && let Err(s) = w
            .until(|p| status::container(p, first).started().then_some(()))
            .await
    {
        stop = Some(s);
    }
    w.start_deadline = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let container = containers[i]
            .as_deref()
            .filter(|_| stop.is_none() && tally.runs(step));
        let Some(container) = container else {
            StepTally::skip(events, i).await;
            continue;
        };
        followed[i] = true;
        match run_step(pods, name, container, i, w, events).await {
            Ok((end, report)) => {
                reports[i] = report;
                tally.finish(events, i, step, end, false).await;
            }
            Err(s) => {
                let timed_out = matches!(s, Stop::TimedOut);
                tally
                    .finish(events, i, step, StepEnd::Cancelled, timed_out)
                    .await;
                stop = Some(s);
            }
        }
    }
    if let Some(s) = stop {
        return stopped(s, name);
    }
    // The last container reports the TaskRun's results, even when it was skipped.
    if let Some(last) = containers.iter().rposition(Option::is_some)
        && !followed[last]
        && let Some(container) = containers[last].as_deref()
        && w.until(|p| terminated(p, container)).await.is_ok()
    {
        reports[last] = read_log(pods, name, container, last, events).await;
    }
    let outcome = tally.outcome();
    let read = results(plan, containers, &reports);
    outcome.with_results(read)
}

fn terminated(p: &Pod, container: &str) -> Option<State> {
    let s = status::container(p, container);
    matches!(s, State::Terminated { .. }).then_some(s)
}

/// Runs one step: waits for its container, follows its log, reads how it ended.
async fn run_step(
    pods: &Api<Pod>,
    name: &str,
    container: &str,
    i: usize,
    w: &mut Waiter,
    events: &EventSink,
) -> Result<(StepEnd, Option<Report>), Stop> {
    w.until(|p| status::container(p, container).started().then_some(()))
        .await?;
    events
        .send(ExecEvent::StepStarted {
            step: i,
            at: std::time::SystemTime::now(),
        })
        .await;
    let report = tokio::select! {
        r = read_log(pods, name, container, i, events) => r,
        s = w.stopped() => return Err(s),
    };
    let state = w.until(|p| terminated(p, container)).await?;
    Ok((step_end(report.as_ref(), &state), report))
}

/// Follows a container's log, trying again while the log cannot be opened yet, and resuming
/// where it stopped when the stream ends before the container does.
async fn read_log(
    pods: &Api<Pod>,
    name: &str,
    container: &str,
    i: usize,
    events: &EventSink,
) -> Option<Report> {
    let mut follower = crate::logs::Follower::default();
    let mut tries = 0;
    loop {
        match follower.stream(pods, name, container, i, events).await {
            Ok(end) => {
                // A broken stream is read again even after the container's end: the rest of
                // its log (the report) is still there.
                if end == crate::logs::End::Closed && ended(pods, name, container).await {
                    return follower.report();
                }
                tracing::debug!("the log of {name}/{container} broke off ({end:?}); resuming");
                tries = 0;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) if tries >= 20 => {
                events
                    .send(ExecEvent::Notice(format!(
                        "failed to read the log of container `{container}` of pod `{name}` (get pods/log): {}",
                        error::chain(&e)
                    )))
                    .await;
                return None;
            }
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Whether the container has ended (or the Pod is gone): its log is then complete. A Pod that
/// cannot be read counts as ended, so a stream is not reopened forever.
async fn ended(pods: &Api<Pod>, name: &str, container: &str) -> bool {
    match pods.get_opt(name).await {
        Ok(Some(p)) => !matches!(
            status::container(&p, container),
            State::Running | State::Waiting(_)
        ),
        Ok(None) | Err(_) => true,
    }
}

/// How a step ended, from its report and its container's state.
fn step_end(report: Option<&Report>, state: &State) -> StepEnd {
    if let State::Terminated { reason, .. } = state
        && reason == "OOMKilled"
    {
        return StepEnd::OutOfMemory;
    }
    match report {
        Some(r) => match r.ending {
            Ending::Exited => StepEnd::Exited(r.exit_code),
            Ending::TimedOut => StepEnd::TimedOut,
            Ending::StartFailed => StepEnd::StartFailed(r.message.clone().unwrap_or_default()),
            Ending::Skipped => StepEnd::Skipped,
            Ending::Terminated => StepEnd::Cancelled,
        },
        None => match state {
            State::Terminated {
                reason, message, ..
            } if reason == "StartError" || reason == "ContainerCannotRun" => {
                StepEnd::StartFailed(format!("{reason}: {message}"))
            }
            State::Terminated { exit_code, .. } => StepEnd::Exited(*exit_code),
            _ => StepEnd::StartFailed("the container never ended".to_string()),
        },
    }
}

/// The outcome when the steps stopped early.
fn stopped(s: Stop, name: &str) -> ExecOutcome {
    match s {
        Stop::Cancelled => ExecOutcome::new(ExecStatus::Cancelled, ""),
        Stop::TimedOut => ExecOutcome::new(ExecStatus::TimedOut, ""),
        Stop::Deleted => ExecOutcome::new(
            ExecStatus::PodFailed(PodFailure::Deleted),
            format!(
                "pod `{name}` was deleted before its steps ended (kubectl delete, an eviction, or its node going away)"
            ),
        ),
        Stop::StartTimeout(why) => ExecOutcome::new(
            ExecStatus::PodFailed(PodFailure::StartTimeout),
            format!("pod `{name}` {why}"),
        ),
        Stop::ImagePull(why) => {
            ExecOutcome::new(ExecStatus::ImagePullFailed, format!("pod `{name}`: {why}"))
        }
        Stop::Config(why) => ExecOutcome::new(
            ExecStatus::PodFailed(PodFailure::CreateContainerConfigError),
            format!("pod `{name}`: {why}"),
        ),
        Stop::Prepare(why) => ExecOutcome::new(ExecStatus::Error, format!("pod `{name}`: {why}")),
        Stop::Ended(why) => ExecOutcome::new(
            ExecStatus::PodFailed(PodFailure::Ended),
            format!("pod `{name}` was ended by its node before its steps did: {why}"),
        ),
    }
}

type Results = (Vec<(String, String)>, Vec<(String, String, String)>);

/// Declared results out of the reports; one over the limit fails the TaskRun.
fn results(
    plan: &TaskRunPlan,
    containers: &[Option<String>],
    reports: &[Option<Report>],
) -> Result<Results, String> {
    let too_large = |what: String, n: u64| {
        format!(
            "{what} is {n} bytes, more than the limit of {} bytes",
            plan.max_result_bytes
        )
    };
    let mut task = Vec::new();
    let last = containers
        .iter()
        .rposition(Option::is_some)
        .and_then(|i| reports.get(i))
        .and_then(Option::as_ref);
    if let Some(r) = last {
        for name in &plan.results {
            if let Some(n) = r.too_large.get(name) {
                return Err(too_large(format!("result `{name}`"), *n));
            }
            if let Some(v) = r.results.get(name) {
                task.push((name.clone(), v.clone()));
            }
        }
    }
    let mut step_results = Vec::new();
    for (s, r) in plan.steps.iter().zip(reports) {
        let Some(r) = r else { continue };
        for name in &s.results {
            if let Some(v) = r.step_results.get(name) {
                step_results.push((s.name.clone(), name.clone(), v.clone()));
            }
        }
    }
    Ok((task, step_results))
}

/// Deletes the Pod and waits (a while) until it is gone, so nothing is left when slipway exits.
async fn delete(pods: &Api<Pod>, name: &str, rx: &mut watch::Receiver<View>) {
    let params = DeleteParams {
        grace_period_seconds: Some(1),
        ..DeleteParams::default()
    };
    match pods.delete(name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return,
        Err(e) => {
            tracing::warn!("failed to delete pod {name}: {e}");
            return;
        }
    }
    let gone = async {
        loop {
            if matches!(*rx.borrow_and_update(), View::Deleted) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), gone).await;
}

/// The command line of each step (empty for scripts and skipped steps): a step without a
/// command runs its image's entrypoint, read from the registry.
async fn resolve_commands(
    inner: &Inner,
    plan: &TaskRunPlan,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> Result<Vec<Vec<String>>, ExecOutcome> {
    let secrets: Vec<Vec<u8>> = plan
        .pull_secrets
        .iter()
        .map(|s| s.config_json.clone())
        .collect();
    let mut out = Vec::with_capacity(plan.steps.len());
    for s in &plan.steps {
        if crate::kaniko::stands_in(s) {
            out.push(crate::kaniko::command_line(s));
            continue;
        }
        if s.skipped || s.script.is_some() || !s.command.is_empty() {
            out.push(image::command_line(s, None));
            continue;
        }
        let image_name = s.image.clone().unwrap_or_default();
        let read = inner.images.config(&image_name, &secrets);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let config = tokio::select! {
            c = read => c,
            () = cancel.cancelled() => return Err(ExecOutcome::new(ExecStatus::Cancelled, "")),
            () = sleep => return Err(ExecOutcome::new(ExecStatus::TimedOut, "")),
        };
        match config {
            Ok(c) => {
                let line = image::command_line(s, Some(&c));
                if line.is_empty() {
                    return Err(ExecOutcome::new(
                        ExecStatus::Failed,
                        format!(
                            "step `{}` has no command or script, and image `{image_name}` has no entrypoint",
                            s.name
                        ),
                    ));
                }
                out.push(line);
            }
            Err(why) => {
                return Err(ExecOutcome::new(
                    ExecStatus::ImagePullFailed,
                    format!(
                        "step `{}` has no command, and the entrypoint of image `{image_name}` could not be read: {why}",
                        s.name
                    ),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! One TaskRun against kube's mock service: the requests' shapes, and the outcome read
    //! from the answers.

    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};
    use slipway_engine::executor::{PodPlan, StepPlan};
    use slipway_engine::{ExecEvent, Executor as _};
    use slipway_model::reference::{RegistryConfig, Rewrite};

    use super::*;
    use crate::KubeExecutor;
    use crate::frame::{Ending, Report};

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        uri: String,
        body: Value,
    }

    fn pod_status(name: &str) -> Value {
        let done = |c: &str| {
            json!({"name": c, "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                   "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}})
        };
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ci", "uid": "u-1", "resourceVersion": "5"},
            "status": {"phase": "Succeeded",
                       "initContainerStatuses": [done("prepare")],
                       "containerStatuses": [done("step-first"), done("step-second")]}
        })
    }

    fn report(results: &[(&str, &str)]) -> String {
        let r = Report {
            exit_code: 0,
            ending: Ending::Exited,
            message: None,
            step_results: Default::default(),
            results: results
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            too_large: Default::default(),
        };
        r.to_lines().join("\n") + "\n"
    }

    /// Answers like an API server holding one Pod, until it is deleted.
    async fn serve(handle: Handle, seen: Arc<Mutex<Vec<Seen>>>) {
        serve_holding(handle, seen, None).await;
    }

    /// The same, with a Pod of that name already there (labelled `labels`) when one is given.
    async fn serve_holding(mut handle: Handle, seen: Arc<Mutex<Vec<Seen>>>, labels: Option<Value>) {
        let existing = labels.map(|l| {
            let mut p = pod_status(&pod_name(&plan()));
            p["metadata"]["labels"] = l;
            p
        });
        let mut pod: Option<Value> = existing.clone();
        let mut deleted = false;
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            seen.lock().expect("lock").push(Seen {
                method: method.clone(),
                uri: uri.clone(),
                body: body.clone(),
            });
            let path = uri.split('?').next().unwrap_or_default().to_string();
            let (status, text) = match (method.as_str(), path.as_str()) {
                ("POST", "/api/v1/namespaces/ci/pods") if existing.is_some() => (
                    409,
                    json!({"kind": "Status", "code": 409, "reason": "AlreadyExists"}).to_string(),
                ),
                ("GET", p) if existing.is_some() && p.ends_with(&pod_name(&plan())) => {
                    (200, existing.clone().unwrap_or_default().to_string())
                }
                ("POST", "/api/v1/namespaces/ci/pods") => {
                    let name = body["metadata"]["name"].as_str().unwrap_or_default();
                    pod = Some(pod_status(name));
                    (201, pod.clone().unwrap_or_default().to_string())
                }
                ("GET", p) if p.ends_with("/log") => {
                    let results: &[(&str, &str)] = if uri.contains("container=step-second") {
                        &[("answer", "42"), ("undeclared", "x")]
                    } else {
                        &[]
                    };
                    (200, format!("out of {path}\n{}", report(results)))
                }
                ("DELETE", _) => {
                    deleted = true;
                    (200, pod.clone().unwrap_or_default().to_string())
                }
                ("GET", "/api/v1/namespaces/ci/pods") if uri.contains("watch=true") => {
                    let text = match (&pod, deleted) {
                        (Some(p), true) => json!({"type": "DELETED", "object": p}).to_string(),
                        _ => String::new(),
                    };
                    // A watch that ends at once comes back; let it wait a little.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        send.send_response(
                            Response::builder()
                                .status(200)
                                .body(Body::from(text.into_bytes()))
                                .expect("response"),
                        );
                    });
                    continue;
                }
                ("GET", "/api/v1/namespaces/ci/pods") => {
                    let items = match (&pod, deleted) {
                        (Some(p), false) => vec![p.clone()],
                        _ => Vec::new(),
                    };
                    let list = json!({"apiVersion": "v1", "kind": "PodList",
                                      "metadata": {"resourceVersion": "6"}, "items": items});
                    (200, list.to_string())
                }
                _ => (404, json!({"kind": "Status", "code": 404}).to_string()),
            };
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(text.into_bytes()))
                    .expect("response"),
            );
        }
    }

    fn plan() -> TaskRunPlan {
        let step = |name: &str, command: &[&str]| StepPlan {
            name: name.to_string(),
            image: Some("mirror.gcr.io/busybox".to_string()),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..StepPlan::default()
        };
        TaskRunPlan {
            uid: "tr-uid".into(),
            name: "two-steps".into(),
            root_uid: "run-uid".into(),
            steps: vec![
                StepPlan {
                    script: Some("echo one".into()),
                    ..step("first", &[])
                },
                step("second", &["sh", "-c", "echo 42 > /tekton/results/answer"]),
            ],
            results: vec!["answer".into()],
            max_result_bytes: 4096,
            pod: PodPlan {
                node_selector: Some(json!({"pool": "ci"})),
                service_account_name: Some("builder".into()),
                ..PodPlan::default()
            },
            ..TaskRunPlan::default()
        }
    }

    #[tokio::test]
    async fn one_taskrun_creates_follows_and_deletes_one_pod() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = tokio::spawn(serve(handle, seen.clone()));
        let registry = RegistryConfig {
            rewrite: vec![Rewrite {
                prefix: "mirror.gcr.io/".into(),
                replace: "127.0.0.1:5000/library/".into(),
                drop_digest: true,
            }],
            ..RegistryConfig::default()
        };
        let exec = KubeExecutor::with_client(
            kube::Client::new(service, "ci"),
            "http://mock",
            "ci",
            "registry.example/slipway:1".into(),
            registry,
        );
        let (sink, mut rx) = EventSink::channel("tr-uid".into());
        let collect = tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some((_, ev)) = rx.recv().await {
                out.push(ev);
            }
            out
        });
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            exec.run(plan(), sink, CancellationToken::new()),
        )
        .await
        .expect("the run ends");
        server.abort();
        let events = collect.await.expect("events");
        assert_eq!(outcome.status, ExecStatus::Succeeded, "{}", outcome.message);
        assert_eq!(outcome.results, vec![("answer".into(), "42".into())]);
        let logs: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                ExecEvent::Log { step, line, .. } => Some(format!("{step}: {line}")),
                _ => None,
            })
            .collect();
        let pod = pod_name(&plan());
        assert_eq!(
            logs,
            vec![
                format!("0: out of /api/v1/namespaces/ci/pods/{pod}/log"),
                format!("1: out of /api/v1/namespaces/ci/pods/{pod}/log"),
            ]
        );

        let seen = seen.lock().expect("lock").clone();
        let create = seen
            .iter()
            .find(|s| s.method == "POST")
            .expect("a Pod was created");
        let created: Pod = serde_json::from_value(create.body.clone()).expect("a Pod body");
        let spec = created.spec.expect("spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.service_account_name.as_deref(), Some("builder"));
        assert_eq!(
            spec.node_selector.and_then(|n| n.get("pool").cloned()),
            Some("ci".to_string())
        );
        let init = &spec.init_containers.expect("init")[0];
        assert_eq!(init.image.as_deref(), Some("registry.example/slipway:1"));
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["step-first", "step-second"]);
        let second = &spec.containers[1];
        assert_eq!(
            second.image.as_deref(),
            Some("127.0.0.1:5000/library/busybox:latest")
        );
        let cmd = second.command.clone().expect("command").join(" ");
        assert!(
            cmd.starts_with("/tekton/bin/ld.so --library-path /tekton/bin/lib /tekton/bin/slipway entrypoint --wait-file /tekton/run/0/out --post-file /tekton/run/1/out"),
            "{cmd}"
        );
        assert!(
            cmd.contains("--results-dir /tekton/results")
                && cmd.ends_with("-- sh -c echo 42 > /tekton/results/answer"),
            "{cmd}"
        );
        let first = spec.containers[0]
            .command
            .clone()
            .expect("command")
            .join(" ");
        assert!(
            first.contains("--script") && !first.contains("--wait-file"),
            "{first}"
        );
        let volumes: Vec<String> = spec
            .volumes
            .expect("volumes")
            .iter()
            .map(|v| v.name.clone())
            .collect();
        assert!(volumes.contains(&"tekton-internal-results".to_string()));

        let logs: Vec<&Seen> = seen.iter().filter(|s| s.uri.contains("/log")).collect();
        assert_eq!(logs.len(), 2);
        for (l, c) in logs.iter().zip(["step-first", "step-second"]) {
            assert!(
                l.uri.contains("follow=true") && l.uri.contains(&format!("container={c}")),
                "{}",
                l.uri
            );
        }
        assert!(
            seen.iter()
                .any(|s| s.method == "DELETE" && s.uri.contains(&format!("/pods/{pod}"))),
            "the Pod was deleted"
        );
        assert_rbac_allows(&seen);
    }

    /// Runs `plan()` through `exec` against `serve_holding(labels)`: the outcome and requests.
    async fn run_against(
        exec: &KubeExecutor,
        handle: Handle,
        labels: Option<Value>,
    ) -> (
        ExecOutcome,
        Arc<Mutex<Vec<Seen>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = tokio::spawn(serve_holding(handle, seen.clone(), labels));
        let (sink, mut rx) = EventSink::channel("tr-uid".into());
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            exec.run(plan(), sink, CancellationToken::new()),
        )
        .await
        .expect("the run ends");
        drain.abort();
        (outcome, seen, server)
    }

    fn executor(service: tower_test::mock::Mock<Request<Body>, Response<Body>>) -> KubeExecutor {
        KubeExecutor::with_client(
            kube::Client::new(service, "ci"),
            "http://mock",
            "ci",
            "registry.example/slipway:1".into(),
            RegistryConfig::default(),
        )
    }

    #[tokio::test]
    async fn a_pod_left_by_a_restarted_controller_is_followed_not_made_again_and_kept_until_cleanup()
     {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let exec = executor(service.clone()).keeping_pods_until_the_run_ends();
        let labels = json!({ crate::LABEL_TASKRUN: "tr-uid", crate::LABEL_RUN: "run-uid" });
        let (outcome, log, server) = run_against(&exec, handle, Some(labels)).await;
        assert_eq!(outcome.status, ExecStatus::Succeeded, "{}", outcome.message);
        assert_eq!(outcome.results, vec![("answer".into(), "42".into())]);
        let seen = log.lock().expect("lock").clone();
        let posts = seen.iter().filter(|s| s.method == "POST").count();
        assert_eq!(posts, 1, "one create, refused with 409: {seen:?}");
        assert!(
            !seen.iter().any(|s| s.method == "DELETE"),
            "finished Pods wait for the run's end: {seen:?}"
        );
        exec.cleanup("run-uid").await;
        server.abort();
        let seen = log.lock().expect("lock").clone();
        assert_rbac_allows(&seen);
        let deletes: Vec<&Seen> = seen.iter().filter(|s| s.method == "DELETE").collect();
        assert_eq!(deletes.len(), 1, "{seen:?}");
        assert!(
            deletes[0].uri.starts_with("/api/v1/namespaces/ci/pods?")
                && deletes[0]
                    .uri
                    .contains("labelSelector=slipway.dev%2Frun-uid%3Drun-uid"),
            "the run's Pods go in one request: {}",
            deletes[0].uri
        );
    }

    #[tokio::test]
    async fn a_pod_of_the_same_name_from_another_taskrun_is_a_conflict() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let exec = executor(service.clone());
        let labels = json!({ crate::LABEL_TASKRUN: "someone-else" });
        let (outcome, log, server) = run_against(&exec, handle, Some(labels)).await;
        server.abort();
        let seen = log.lock().expect("lock").clone();
        assert_eq!(
            outcome.status,
            ExecStatus::PodFailed(PodFailure::CreationFailed),
            "{}",
            outcome.message
        );
        assert!(
            outcome.message.contains("belongs to another TaskRun"),
            "{}",
            outcome.message
        );
        assert!(!seen.iter().any(|s| s.uri.contains("/log")), "{seen:?}");
    }

    #[test]
    fn each_attempt_has_its_own_pod_name_and_every_run_the_same() {
        let first = pod_name_of("build", "uid-1", 0);
        assert_eq!(first, pod_name_of("build", "uid-1", 0));
        assert_ne!(first, pod_name_of("build", "uid-1", 1));
        assert_ne!(
            pod_name_of("build", "uid-1", 1),
            pod_name_of("build", "uid-1", 2)
        );
        assert!(first.starts_with("build-pod-"), "{first}");
    }

    /// The (verb, resource) Kubernetes' RBAC checks for a request.
    fn rbac_verb(s: &Seen) -> (String, String) {
        let path = s.uri.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // /api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]]
        let resource = parts.get(4).copied().unwrap_or_default();
        let name = parts.get(5);
        let sub = parts.get(6);
        let resource = match sub {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        let verb = match (s.method.as_str(), name) {
            ("GET", None) if s.uri.contains("watch=true") => "watch",
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PATCH", _) => "patch",
            ("PUT", _) => "update",
            ("DELETE", None) => "deletecollection",
            ("DELETE", Some(_)) => "delete",
            _ => "unknown",
        };
        (verb.to_string(), resource)
    }

    /// Whether `deploy/controller/rbac.yaml`'s ClusterRole grants `verb` on core `resource`.
    fn rbac_allows(verb: &str, resource: &str) -> bool {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/controller/rbac.yaml");
        let text = std::fs::read_to_string(path).expect("rbac.yaml");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rbac.yaml parses");
        let role = docs
            .iter()
            .find(|d| d["kind"] == "ClusterRole")
            .expect("a ClusterRole");
        let has = |list: &Value, what: &str| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|v| v == what || v == "*"))
        };
        role["rules"].as_array().into_iter().flatten().any(|r| {
            has(&r["apiGroups"], "") && has(&r["resources"], resource) && has(&r["verbs"], verb)
        })
    }

    /// Every request the executor made is one the controller's ClusterRole allows (the
    /// emulator does not enforce RBAC, so this is where the file is checked against the code).
    fn assert_rbac_allows(seen: &[Seen]) {
        for s in seen {
            let (verb, resource) = rbac_verb(s);
            assert!(
                rbac_allows(&verb, &resource),
                "deploy/controller/rbac.yaml does not allow `{verb}` on `{resource}` ({} {})",
                s.method,
                s.uri
            );
        }
    }
}
