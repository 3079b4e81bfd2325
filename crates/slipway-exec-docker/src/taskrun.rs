//! One TaskRun as a pod: images first, then the network holder and sidecars, then the steps in
//! order, then everything removed.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use slipway_engine::executor::{
    Builtin, ExecOutcome, ExecStatus, StepPlan, StepTally, TaskRunPlan,
};
use slipway_engine::{EventSink, StepEnd};
use slipway_taskdir::layout::{Bind, Layout};
use slipway_taskdir::script::with_shebang;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::container::{self, BindMount, LABEL_OWNER, LABEL_TASKRUN, Placement, Watch};
use crate::image::{ImageConfig, Ready};
use crate::{Inner, LABEL_RUN, auth};

/// Container names: letters, digits, `_.-`, at most 128 characters in practice.
fn container_name(taskrun: &str, part: &str) -> String {
    let n = fastrand_suffix();
    let mut name: String = format!("slipway-{taskrun}-{part}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(110)
        .collect();
    name.push_str(&format!("-{n}"));
    name
}

fn fastrand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{n:x}", std::process::id())
}

/// `user[:group]` for Docker from runAsUser/runAsGroup and the image's own user.
pub(crate) fn user(step: &StepPlan, image: &ImageConfig) -> Option<String> {
    match (step.run_as_user, step.run_as_group) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => {
            let base = image
                .user
                .as_deref()
                .map(|u| u.split(':').next().unwrap_or(u).to_string())
                .unwrap_or_else(|| "0".into());
            Some(format!("{base}:{g}"))
        }
        (None, None) => None,
    }
}

/// Bind mounts for step `index`: the TaskRun's shared directories, read-only views of the other
/// steps' directories (as Tekton's `readonly-internal-dir` example checks), and its volumes.
pub(crate) fn mounts(layout: &Layout, step: &StepPlan, index: Option<usize>) -> Vec<BindMount> {
    let mut out: Vec<BindMount> = layout
        .binds
        .iter()
        .map(|b| BindMount {
            host: b.host.clone(),
            target: b.target.clone(),
            read_only: b.read_only,
        })
        .collect();
    let tekton = layout.tekton_dir();
    out.push(BindMount {
        host: tekton.join("scripts"),
        target: "/tekton/scripts".into(),
        read_only: true,
    });
    out.push(BindMount {
        host: tekton.join("steps"),
        target: "/tekton/steps".into(),
        read_only: true,
    });
    out.push(BindMount {
        host: tekton.join("run"),
        target: "/tekton/run".into(),
        read_only: true,
    });
    if let Some(i) = index {
        out.push(BindMount {
            host: tekton.join("steps").join(format!("step-{}", step.name)),
            target: format!("/tekton/steps/step-{}", step.name),
            read_only: false,
        });
        out.push(BindMount {
            host: tekton.join("run").join(i.to_string()),
            target: format!("/tekton/run/{i}"),
            read_only: false,
        });
    }
    for m in &step.volume_mounts {
        let Some(base) = layout.volume(&m.volume) else {
            continue;
        };
        let mut host = base.to_path_buf();
        if let Some(sub) = &m.sub_path {
            host = host.join(sub);
            let _ = std::fs::create_dir_all(&host);
            let _ = std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777));
        }
        out.push(BindMount {
            host,
            target: m.path.clone(),
            read_only: m.read_only,
        });
    }
    // A volume mounted where Tekton puts its own directory (`/workspace`, `/tekton/home`)
    // replaces that directory, as in a pod; two binds on one path would be refused.
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<BindMount> = out
        .into_iter()
        .rev()
        .filter(|b| seen.insert(b.target.clone()))
        .collect();
    kept.reverse();
    kept
}

/// A container's entrypoint override and arguments (`None`: the image's own).
type Command = (Option<Vec<String>>, Option<Vec<String>>);

/// Entrypoint and arguments: a script runs through its shebang; a command replaces the image's
/// entrypoint; arguments alone go to the image's entrypoint.
pub(crate) fn command(layout: &Layout, step: &StepPlan, tag: &str) -> std::io::Result<Command> {
    if let Some(body) = &step.script {
        let file = format!("script-{tag}");
        let host = layout.tekton_dir().join("scripts").join(&file);
        std::fs::write(&host, with_shebang(body))?;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))?;
        return Ok((
            Some(vec![format!("/tekton/scripts/{file}")]),
            Some(step.args.clone()),
        ));
    }
    if !step.command.is_empty() {
        return Ok((Some(step.command.clone()), Some(step.args.clone())));
    }
    if !step.args.is_empty() {
        return Ok((None, Some(step.args.clone())));
    }
    Ok((None, None))
}

pub(crate) struct Pod<'a> {
    pub(crate) inner: &'a Inner,
    /// The TaskRun's name, for container names and the hostname.
    pub(crate) name: String,
    labels: HashMap<String, String>,
    /// Every container created, removed at the end whatever happens.
    created: Vec<String>,
    /// Removals of finished steps' containers, started early and awaited at the end.
    removals: tokio::task::JoinSet<()>,
}

impl Pod<'_> {
    pub(crate) fn placement<'b>(&self, image: &'b str, part: &str) -> Placement<'b> {
        Placement {
            image,
            name: container_name(&self.name, part),
            labels: self.labels.clone(),
            mounts: Vec::new(),
            network: self.inner.network.clone(),
            hostname: None,
            entrypoint: None,
            cmd: None,
            user: None,
        }
    }

    pub(crate) async fn create(
        &mut self,
        step: &StepPlan,
        p: &Placement<'_>,
    ) -> Result<String, String> {
        let id = container::create(&self.inner.docker, &p.name, container::body(step, p)).await?;
        self.created.push(id.clone());
        Ok(id)
    }

    /// Removes a finished container in the background.
    fn remove_soon(&mut self, id: String) {
        self.created.retain(|c| *c != id);
        let docker = self.inner.docker.clone();
        self.removals.spawn(async move {
            if let Err(e) = container::remove(&docker, &id).await {
                tracing::warn!("failed to {e}");
            }
        });
    }

    /// Kills and removes every container of the TaskRun, concurrently, and waits for the
    /// removals started earlier.
    async fn remove_all(&mut self) {
        for id in std::mem::take(&mut self.created) {
            self.remove_soon(id);
        }
        while self.removals.join_next().await.is_some() {}
    }
}

pub(crate) fn hostname(taskrun: &str) -> String {
    let mut h: String = format!("{taskrun}-pod").chars().take(63).collect();
    while h.ends_with('-') {
        h.pop();
    }
    h
}

/// Waits for `fut` unless the TaskRun is cancelled or out of time first.
pub(crate) async fn bounded<T>(
    fut: impl std::future::Future<Output = T>,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
) -> Option<T> {
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        v = fut => Some(v),
        () = sleep => None,
        () = cancel.cancelled() => None,
    }
}

pub(crate) fn stopped(deadline: Option<Instant>) -> ExecStatus {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        ExecStatus::TimedOut
    } else {
        ExecStatus::Cancelled
    }
}

/// Runs one TaskRun to its end.
pub(crate) async fn run(
    inner: &Inner,
    mut plan: TaskRunPlan,
    events: EventSink,
    cancel: CancellationToken,
) -> ExecOutcome {
    let deadline = plan
        .timeout
        .map(|t| Instant::now() + slipway_model::duration::capped(t));
    let layout = match Layout::create(
        &inner.data_dir,
        &inner.runtime_dir,
        &inner.pool,
        &plan,
        true,
    ) {
        Ok(l) => l,
        Err(e) => {
            return ExecOutcome::new(
                ExecStatus::Error,
                format!("failed to prepare the TaskRun directories: {e}"),
            );
        }
    };
    let labels = HashMap::from([
        (LABEL_TASKRUN.to_string(), plan.uid.clone()),
        (LABEL_RUN.to_string(), plan.root_uid.clone()),
        (LABEL_OWNER.to_string(), inner.owner.clone()),
    ]);
    let mut pod = Pod {
        inner,
        name: plan.name.clone(),
        labels,
        created: Vec::new(),
        removals: tokio::task::JoinSet::new(),
    };
    let outcome = run_pod(&mut pod, &layout, &mut plan, &events, &cancel, deadline).await;
    pod.remove_all().await;
    // Pull failures and stops before the steps have no results to read.
    let outcome = if matches!(outcome.status, ExecStatus::Succeeded | ExecStatus::Failed) {
        outcome.with_results(layout.read_results(&plan))
    } else {
        outcome
    };
    layout.release_volumes();
    let pool = &inner.pool;
    layout.remove(pool);
    outcome
}

/// Images of the TaskRun's sidecars and steps, in that order: `None` for a step slipway runs
/// itself or skips.
type Pulled = (Vec<Option<Ready>>, Vec<Ready>);

/// Makes every image the TaskRun needs available, all at once, before anything starts; a
/// failure names every image that could not be had, each with the registry's own reason.
async fn pull_all(
    inner: &Inner,
    plan: &TaskRunPlan,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> Result<Pulled, ExecOutcome> {
    let mut secrets = Vec::new();
    for s in &plan.pull_secrets {
        match auth::parse(&s.config_json) {
            Ok(c) => secrets.extend(c),
            Err(e) => {
                return Err(ExecOutcome::new(
                    ExecStatus::ImagePullFailed,
                    format!("image pull secret `{}` {e}", s.name),
                ));
            }
        }
    }
    // Slipway's builder stands in for Kaniko's image, which is never pulled.
    let wanted: Vec<(&StepPlan, &str)> = plan
        .sidecars
        .iter()
        .map(|s| (s, "sidecar"))
        .chain(
            plan.steps
                .iter()
                .filter(|s| !s.skipped && s.builtin.is_none())
                .map(|s| (s, "step")),
        )
        .collect();
    for (s, what) in &wanted {
        if s.image.as_deref().is_none_or(str::is_empty) {
            return Err(ExecOutcome::new(
                ExecStatus::Error,
                format!("{what} `{}` has no image", s.name),
            ));
        }
    }
    let pulls = wanted.iter().map(|(s, _)| {
        let image = s.image.as_deref().unwrap_or_default();
        inner
            .images
            .ensure(image, s.image_pull_policy.as_deref(), &secrets, events)
    });
    let Some(outcomes) = bounded(futures::future::join_all(pulls), deadline, cancel).await else {
        return Err(ExecOutcome::new(
            stopped(deadline),
            "stopped while pulling images",
        ));
    };
    let mut failures = Vec::new();
    let mut ready = Vec::new();
    for ((s, what), outcome) in wanted.iter().zip(outcomes) {
        match outcome {
            Ok(r) => ready.push(Some(r)),
            Err(e) => {
                let image = s.image.as_deref().unwrap_or_default();
                failures.push(format!("image `{image}` for {what} `{}`: {e}", s.name));
                ready.push(None);
            }
        }
    }
    match failures.len() {
        0 => {}
        1 => {
            return Err(ExecOutcome::new(
                ExecStatus::ImagePullFailed,
                format!("failed to pull {}", failures.join("")),
            ));
        }
        n => {
            return Err(ExecOutcome::new(
                ExecStatus::ImagePullFailed,
                format!("failed to pull {n} images: {}", failures.join("; ")),
            ));
        }
    }
    let mut ready = ready.into_iter().flatten();
    let sidecars: Vec<Ready> = ready.by_ref().take(plan.sidecars.len()).collect();
    let steps = plan
        .steps
        .iter()
        .map(|s| {
            if s.skipped || s.builtin.is_some() {
                None
            } else {
                ready.next()
            }
        })
        .collect();
    Ok((steps, sidecars))
}

async fn run_pod(
    pod: &mut Pod<'_>,
    layout: &Layout,
    plan: &mut TaskRunPlan,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> ExecOutcome {
    let (step_images, sidecar_images) =
        match pull_all(pod.inner, plan, events, cancel, deadline).await {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
    let shared_network = match crate::sidecar::start(
        pod,
        layout,
        &plan.sidecars,
        &sidecar_images,
        events,
        cancel,
        deadline,
    )
    .await
    {
        Ok(n) => n,
        Err(outcome) => return outcome,
    };
    let mut tally = StepTally::default();
    for i in 0..plan.steps.len() {
        // A copy: the steps after this one change once its results are known.
        let s = plan.steps[i].clone();
        let image = step_images.get(i).cloned().flatten();
        let end = match (tally.runs(&s), s.builtin, image) {
            (true, Some(Builtin::ImageBuilder), _) => {
                run_builder(pod.inner, layout, &s, i, events, cancel, deadline).await
            }
            (true, None, Some(image)) => {
                run_step(
                    pod,
                    layout,
                    &s,
                    i,
                    &image,
                    shared_network.as_deref(),
                    events,
                    cancel,
                    deadline,
                )
                .await
            }
            _ => {
                StepTally::skip(events, i).await;
                continue;
            }
        };
        layout.step_ended(plan, i, end.exit_code());
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        tally.finish(events, i, &s, end, timed_out).await;
    }
    tally.outcome()
}

/// Runs a Kaniko step with slipway's builder as a process beside the daemon: it mounts overlays
/// and runs containers, which a container cannot, and the step's binds are directories of this
/// machine, which it reaches by their host paths.
async fn run_builder(
    inner: &Inner,
    layout: &Layout,
    s: &StepPlan,
    i: usize,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> StepEnd {
    if !crate::daemon::is_local(&inner.host) {
        return StepEnd::StartFailed(format!(
            "the image builder stands in for Kaniko only when the Docker daemon is on this machine (it is at `{}`)",
            inner.host
        ));
    }
    let binds: Vec<Bind> = mounts(layout, s, Some(i))
        .into_iter()
        .map(|m| Bind {
            host: m.host,
            target: m.target,
            read_only: m.read_only,
        })
        .collect();
    slipway_taskdir::builder::run(
        inner.builder.as_ref(),
        layout,
        &binds,
        s,
        i,
        events,
        cancel,
        deadline,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run_step(
    pod: &mut Pod<'_>,
    layout: &Layout,
    s: &StepPlan,
    i: usize,
    image: &Ready,
    shared_network: Option<&str>,
    events: &EventSink,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> StepEnd {
    let mut p = pod.placement(&image.reference, &format!("step-{}", s.name));
    match shared_network {
        Some(n) => p.network = Some(n.to_string()),
        None => p.hostname = Some(hostname(&pod.name)),
    }
    p.mounts = mounts(layout, s, Some(i));
    p.user = user(s, &image.config);
    match command(layout, s, &i.to_string()) {
        Ok((entrypoint, cmd)) => {
            p.entrypoint = entrypoint;
            p.cmd = cmd;
        }
        Err(e) => return StepEnd::StartFailed(format!("writing the script: {e}")),
    }
    // Tekton runs a step without a command as the image's entrypoint, else its cmd, followed
    // by the step's args; Docker would let the args replace the cmd instead.
    if p.entrypoint.is_none()
        && p.cmd.is_some()
        && image.config.entrypoint.is_empty()
        && !image.config.cmd.is_empty()
    {
        p.entrypoint = Some(image.config.cmd.clone());
    }
    if p.entrypoint.is_none()
        && p.cmd.is_none()
        && image.config.entrypoint.is_empty()
        && image.config.cmd.is_empty()
    {
        return StepEnd::StartFailed(format!(
            "the step has no command or script, and image `{}` has no entrypoint",
            image.reference
        ));
    }
    let id = match pod.create(s, &p).await {
        Ok(id) => id,
        Err(e) => return StepEnd::StartFailed(e),
    };
    let step_deadline = s
        .timeout
        .map(|t| Instant::now() + slipway_model::duration::capped(t));
    let until = match (step_deadline, deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Output files may live on the step's own volume mounts.
    let extra: Vec<Bind> = p
        .mounts
        .iter()
        .map(|m| Bind {
            host: m.host.clone(),
            target: m.target.clone(),
            read_only: m.read_only,
        })
        .collect();
    let watch = Watch {
        stdout: s
            .stdout_path
            .as_deref()
            .map(|x| layout.host_path(x, &extra)),
        stderr: s
            .stderr_path
            .as_deref()
            .map(|x| layout.host_path(x, &extra)),
        deadline: until,
        memory: s.limits.memory_bytes.is_some(),
    };
    let end = container::run(&pod.inner.docker, &id, i, events, &watch, cancel).await;
    // The TaskRun's own timeout, not the step's, stopped it.
    let task_timeout = deadline.is_some_and(|d| Instant::now() >= d)
        && step_deadline.is_none_or(|sd| deadline.is_some_and(|d| d < sd));
    let end = if end == StepEnd::TimedOut && task_timeout {
        StepEnd::Cancelled
    } else {
        end
    };
    // Removed off this step's critical path; the TaskRun's end waits for it.
    pod.remove_soon(id);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_combine_step_pod_and_image() {
        let image = ImageConfig {
            user: Some("app:app".into()),
            ..ImageConfig::default()
        };
        let step = |u, g| StepPlan {
            run_as_user: u,
            run_as_group: g,
            ..StepPlan::default()
        };
        assert_eq!(
            user(&step(Some(1001), Some(3000)), &image).as_deref(),
            Some("1001:3000")
        );
        assert_eq!(
            user(&step(Some(1001), None), &image).as_deref(),
            Some("1001")
        );
        assert_eq!(
            user(&step(None, Some(3000)), &image).as_deref(),
            Some("app:3000")
        );
        assert_eq!(user(&step(None, None), &image), None);
    }

    #[test]
    fn names_are_valid_for_docker_and_unique() {
        let a = container_name("build/Ä x", "step-compile");
        let b = container_name("build/Ä x", "step-compile");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{a}"
        );
        assert!(container_name(&"x".repeat(300), "step").len() < 128);
        for taskrun in ["a-".repeat(40), "ab-".repeat(30)] {
            let h = hostname(&taskrun);
            assert!(h.len() <= 63 && !h.ends_with('-'), "{h}");
        }
    }
}
