//! A TaskRun plan as a Pod: an init container copies slipway into `/tekton/bin`, each step is
//! a container whose command is slipway's entrypoint wrapping the step's own, and Tekton's
//! directories, workspaces and volumes are the Pod's volumes.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, ObjectFieldSelector, Pod, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, SecurityContext, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use slipway_engine::executor::{Limits, ProbeAction, ProbePlan, StepPlan, TaskRunPlan};
use slipway_model::reference::RegistryConfig;
use slipway_taskdir::script::with_shebang;

use crate::volumes::{self, Claim};
use crate::{LABEL_MANAGED, LABEL_RUN, LABEL_TASKRUN};

/// Where slipway's files are in its image and in every step.
pub const BIN: &str = "/tekton/bin";
/// Where the init container sees the shared volume it copies slipway's files into.
const BIN_OUT: &str = "/tekton/bin-out";

/// The annotation the executor sets to [`READY`] once every sidecar is ready, as Tekton's
/// controller does; the first step reads it through a downward API file.
pub const ANNOTATION_READY: &str = "tekton.dev/ready";
/// The value of [`ANNOTATION_READY`] that lets the steps start.
pub const READY: &str = "READY";
/// Where steps see the Pod's downward API files (Tekton's path).
const DOWNWARD: &str = "/tekton/downward";
/// The downward API volume holding `ready`.
const DOWNWARD_VOLUME: &str = "tekton-internal-downward";

/// Annotation holding the TaskRun's name (labels are too short for some names).
pub const ANNOTATION_TASKRUN: &str = "slipway.dev/taskrun";

/// Tekton's own directories, each an emptyDir shared by every container.
const INTERNAL: &[(&str, &str)] = &[
    ("tekton-internal-bin", BIN),
    ("tekton-internal-workspace", "/workspace"),
    ("tekton-internal-home", "/tekton/home"),
    ("tekton-internal-results", "/tekton/results"),
    ("tekton-internal-steps", "/tekton/steps"),
    ("tekton-internal-run", "/tekton/run"),
    ("tekton-internal-scripts", "/tekton/scripts"),
];

/// Why a plan cannot become a Pod.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// A `podTemplate` field does not have the shape Kubernetes gives it.
    #[error("failed to read `podTemplate.{field}`: {source}")]
    Template {
        /// The field.
        field: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A step's or sidecar's `securityContext` does not have the shape Kubernetes gives it.
    #[error("failed to read the securityContext of {what} `{name}`: {source}")]
    SecurityContext {
        /// Step or sidecar.
        what: &'static str,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A volume only a cluster provides does not have the shape Kubernetes gives it.
    #[error("failed to read volume `{name}`: {source}")]
    Volume {
        /// The volume's name.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A step names a volume that the Task does not declare.
    #[error("failed to mount volume `{volume}` in step `{step}`: the Task declares no such volume")]
    UnknownVolume {
        /// The step.
        step: String,
        /// The volume.
        volume: String,
    },
    /// An image reference does not parse.
    #[error("failed to read the image of {what} `{name}`: {why}")]
    Image {
        /// Step or sidecar.
        what: &'static str,
        /// Its name.
        name: String,
        /// Why.
        why: String,
    },
}

/// Everything besides the plan that shapes the Pod.
#[derive(Debug, Clone)]
pub struct PodInputs<'a> {
    /// The Pod's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The image holding slipway under [`BIN`].
    pub slipway_image: &'a str,
    /// Rewrites applied to image names (the cluster knows nothing of slipway's config).
    pub registry: &'a RegistryConfig,
    /// Per step: the command line it runs (resolved from its image when it has no command).
    pub commands: &'a [Vec<String>],
    /// configMap, secret and projected volumes mount the cluster's own objects (the controller,
    /// whose runs name them), rather than files slipway read and carries in a Secret.
    pub cluster_objects: bool,
}

/// The Pod, and what must exist for it: a Secret with projected files, claims from templates.
#[derive(Debug, Clone)]
pub struct PodParts {
    /// The Pod.
    pub pod: Pod,
    /// Files of configMap, secret and projected volumes, to create as a Secret owned by the Pod.
    pub files: Option<k8s_openapi::api::core::v1::Secret>,
    /// Claims to create from volumeClaimTemplates (kept for the run).
    pub claims: Vec<Claim>,
}

/// The container name of step `name`: a DNS label, unique in the Pod.
pub fn container_name(prefix: &str, name: &str, index: usize) -> String {
    let mut n: String = format!("{prefix}-{name}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(55)
        .collect();
    if n.len() == 55 {
        n.push_str(&format!("-{index}"));
    }
    n.trim_end_matches('-').to_string()
}

/// The containers of a plan's steps, by step index (`None`: skipped by `when`, not in the Pod).
pub fn step_containers(plan: &TaskRunPlan) -> Vec<Option<String>> {
    let mut seen = std::collections::HashSet::new();
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.skipped {
                return None;
            }
            let mut n = container_name("step", &s.name, i);
            if !seen.insert(n.clone()) {
                n = format!("{n}-{i}");
                seen.insert(n.clone());
            }
            Some(n)
        })
        .collect()
}

/// The containers of a plan's sidecars, in order.
pub fn sidecar_containers(plan: &TaskRunPlan) -> Vec<String> {
    plan.sidecars
        .iter()
        .enumerate()
        .map(|(i, s)| container_name("sidecar", &s.name, i))
        .collect()
}

/// Makes the first step wait for Tekton's ready file (the sidecars' readiness).
fn wait_for_sidecars(c: &mut Container, command: &mut Vec<String>) {
    let at = entrypoint_prefix().len();
    command.splice(
        at..at,
        ["--ready-file".to_string(), format!("{DOWNWARD}/ready")],
    );
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: DOWNWARD_VOLUME.to_string(),
            mount_path: DOWNWARD.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
}

/// The downward API volume whose `ready` file holds the [`ANNOTATION_READY`] annotation.
fn downward_volume() -> Volume {
    Volume {
        name: DOWNWARD_VOLUME.to_string(),
        downward_api: Some(DownwardAPIVolumeSource {
            items: Some(vec![DownwardAPIVolumeFile {
                path: "ready".to_string(),
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.annotations['{ANNOTATION_READY}']"),
                    ..ObjectFieldSelector::default()
                }),
                ..DownwardAPIVolumeFile::default()
            }]),
            ..DownwardAPIVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The image name the Pod asks for: the config's rewrite and first mirror applied.
pub fn image_for_pod(registry: &RegistryConfig, image: &str) -> Result<String, String> {
    let candidates = registry.candidates(image).map_err(|e| e.to_string())?;
    Ok(candidates
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| image.to_string()))
}

/// Builds the Pod for `plan`.
pub fn build(plan: &TaskRunPlan, inputs: &PodInputs<'_>) -> Result<PodParts, PodError> {
    let mut vols =
        volumes::Volumes::new(plan, inputs.name, inputs.namespace, inputs.cluster_objects)?;
    let names = step_containers(plan);
    let runnable: Vec<usize> = (0..plan.steps.len())
        .filter(|i| names[*i].is_some())
        .collect();
    let mut containers = Vec::new();
    // Steps wait for the sidecars only where there are some, as in Tekton.
    let sidecars = !plan.sidecars.is_empty();
    for (pos, &i) in runnable.iter().enumerate() {
        let step = &plan.steps[i];
        let mut c = base_container(step, "step", inputs, &mut vols)?;
        c.name = names[i].clone().unwrap_or_default();
        if crate::kaniko::stands_in(step) {
            // slipway's image, not Kaniko's: the builder runs there, as the image's root.
            c.image = Some(inputs.slipway_image.to_string());
            c.image_pull_policy = None;
            let env = c.env.get_or_insert_with(Vec::new);
            for (k, v) in crate::kaniko::env(step) {
                env.push(EnvVar {
                    name: k,
                    value: Some(v),
                    value_from: None,
                });
            }
        }
        let mut command = step_command(
            plan,
            i,
            pos.checked_sub(1).map(|p| runnable[p]),
            pos + 1 == runnable.len(),
            inputs.commands.get(i).cloned().unwrap_or_default(),
        );
        if sidecars && pos == 0 {
            wait_for_sidecars(&mut c, &mut command);
        }
        c.command = Some(command);
        c.args = None;
        containers.push(c);
    }
    for (i, s) in plan.sidecars.iter().enumerate() {
        let mut c = base_container(s, "sidecar", inputs, &mut vols)?;
        c.name = container_name("sidecar", &s.name, i);
        if let Some(body) = &s.script {
            let mut cmd = entrypoint_prefix();
            cmd.extend([
                "--post-file".to_string(),
                format!("/tekton/run/{}/out", c.name),
                "--script".to_string(),
                base64::engine::general_purpose::STANDARD.encode(with_shebang(body)),
                "--".to_string(),
            ]);
            cmd.extend(s.args.iter().cloned());
            c.command = Some(cmd);
            c.args = None;
        }
        c.readiness_probe = s.readiness.as_ref().map(probe);
        containers.push(c);
    }
    let (mut volume_list, files, claims) = vols.finish();
    if sidecars && !runnable.is_empty() {
        volume_list.push(downward_volume());
    }
    let spec = pod_spec(plan, inputs, containers, volume_list)?;
    let mut labels = BTreeMap::from([
        (LABEL_MANAGED.0.to_string(), LABEL_MANAGED.1.to_string()),
        (LABEL_TASKRUN.to_string(), label_value(&plan.uid)),
        (LABEL_RUN.to_string(), label_value(&plan.root_uid)),
    ]);
    if is_label_value(&plan.name) {
        labels.insert("tekton.dev/taskRun".to_string(), plan.name.clone());
    }
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(inputs.name.to_string()),
            namespace: Some(inputs.namespace.to_string()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_TASKRUN.to_string(),
                plan.name.clone(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    };
    Ok(PodParts { pod, files, claims })
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// `v` if it is a valid label value, else a hash of it.
pub fn label_value(v: &str) -> String {
    if is_label_value(v) {
        v.to_string()
    } else {
        volumes::short_hash(v)
    }
}

fn template<T: serde::de::DeserializeOwned>(
    field: &'static str,
    v: &Option<serde_json::Value>,
) -> Result<Option<T>, PodError> {
    v.clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|source| PodError::Template { field, source })
}

fn pod_spec(
    plan: &TaskRunPlan,
    inputs: &PodInputs<'_>,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
) -> Result<PodSpec, PodError> {
    let p = &plan.pod;
    let image_pull_secrets = (!p.image_pull_secrets.is_empty()).then(|| {
        p.image_pull_secrets
            .iter()
            .map(|n| k8s_openapi::api::core::v1::LocalObjectReference { name: n.clone() })
            .collect()
    });
    Ok(PodSpec {
        restart_policy: Some("Never".to_string()),
        init_containers: Some(vec![prepare_container(inputs.slipway_image)]),
        containers,
        volumes: Some(volumes),
        service_account_name: p.service_account_name.clone(),
        node_selector: template("nodeSelector", &p.node_selector)?,
        tolerations: template("tolerations", &p.tolerations)?,
        affinity: template("affinity", &p.affinity)?,
        security_context: template::<PodSecurityContext>("securityContext", &p.security_context)?,
        image_pull_secrets,
        runtime_class_name: p.runtime_class_name.clone(),
        priority_class_name: p.priority_class_name.clone(),
        scheduler_name: p.scheduler_name.clone(),
        host_aliases: template("hostAliases", &p.host_aliases)?,
        dns_config: template("dnsConfig", &p.dns_config)?,
        dns_policy: p.dns_policy.clone(),
        host_network: p.host_network,
        topology_spread_constraints: template(
            "topologySpreadConstraints",
            &p.topology_spread_constraints,
        )?,
        enable_service_links: p.enable_service_links,
        ..PodSpec::default()
    })
}

/// The init container: slipway's image copies its files into the shared `/tekton/bin`.
fn prepare_container(image: &str) -> Container {
    let mut command = entrypoint_prefix();
    command.extend([
        "--copy-from".to_string(),
        BIN.to_string(),
        "--copy-to".to_string(),
        BIN_OUT.to_string(),
    ]);
    Container {
        name: "prepare".to_string(),
        image: Some(image.to_string()),
        command: Some(command),
        // Its error is in its log; the kubelet puts the log's end in the status for us.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(vec![VolumeMount {
            name: "tekton-internal-bin".to_string(),
            mount_path: BIN_OUT.to_string(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

/// slipway's binary through its own loader and libraries: the step images need no glibc.
pub fn entrypoint_prefix() -> Vec<String> {
    vec![
        format!("{BIN}/ld.so"),
        "--library-path".to_string(),
        format!("{BIN}/lib"),
        format!("{BIN}/slipway"),
        "entrypoint".to_string(),
    ]
}

/// The command line of step `i`: the entrypoint, its orders, then the step's own command.
fn step_command(
    plan: &TaskRunPlan,
    i: usize,
    previous: Option<usize>,
    last: bool,
    command: Vec<String>,
) -> Vec<String> {
    let step = &plan.steps[i];
    let mut cmd = entrypoint_prefix();
    if let Some(p) = previous {
        cmd.extend(["--wait-file".to_string(), format!("/tekton/run/{p}/out")]);
    }
    cmd.extend([
        "--post-file".to_string(),
        format!("/tekton/run/{i}/out"),
        "--step-dir".to_string(),
        format!("/tekton/steps/step-{}", step.name),
        "--step-index".to_string(),
        i.to_string(),
        "--max-result-bytes".to_string(),
        plan.max_result_bytes.to_string(),
    ]);
    if last {
        cmd.extend(["--results-dir".to_string(), "/tekton/results".to_string()]);
    }
    if let Some(t) = step.timeout {
        cmd.extend([
            "--timeout".to_string(),
            slipway_model::duration::format_go_duration(t),
        ]);
    }
    if step.continue_on_error {
        cmd.extend(["--on-error".to_string(), "continue".to_string()]);
    }
    if let Some(p) = &step.stdout_path {
        cmd.extend(["--stdout-path".to_string(), p.clone()]);
    }
    if let Some(p) = &step.stderr_path {
        cmd.extend(["--stderr-path".to_string(), p.clone()]);
    }
    let mut rest = command;
    if let Some(body) = &step.script {
        cmd.extend([
            "--script".to_string(),
            base64::engine::general_purpose::STANDARD.encode(with_shebang(body)),
        ]);
        rest = step.args.clone();
    }
    cmd.push("--".to_string());
    cmd.extend(rest);
    cmd
}

/// A container for a step or sidecar: image, env, directory, mounts, resources, user.
/// An env var: its value, or in a cluster whose objects the run names, a reference to the
/// ConfigMap or Secret key it came from (so no Secret value is written into the Pod spec).
fn env_var(s: &StepPlan, name: &str, value: &str, cluster_objects: bool) -> EnvVar {
    let source = s
        .env_sources
        .iter()
        .filter(|_| cluster_objects)
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| serde_json::from_value::<EnvVarSource>(v.clone()).ok());
    match source {
        Some(from) => EnvVar {
            name: name.to_string(),
            value: None,
            value_from: Some(from),
        },
        None => EnvVar {
            name: name.to_string(),
            value: Some(value.to_string()),
            value_from: None,
        },
    }
}

fn base_container(
    s: &StepPlan,
    what: &'static str,
    inputs: &PodInputs<'_>,
    vols: &mut volumes::Volumes<'_>,
) -> Result<Container, PodError> {
    let image = s
        .image
        .as_deref()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| PodError::Image {
            what,
            name: s.name.clone(),
            why: "it has none".to_string(),
        })?;
    let image = image_for_pod(inputs.registry, image).map_err(|why| PodError::Image {
        what,
        name: s.name.clone(),
        why,
    })?;
    let mut mounts: Vec<VolumeMount> = INTERNAL
        .iter()
        .map(|(name, path)| VolumeMount {
            name: name.to_string(),
            mount_path: path.to_string(),
            ..VolumeMount::default()
        })
        .collect();
    mounts.extend(vols.workspace_mounts());
    for m in &s.volume_mounts {
        let name = vols
            .task_volume(&m.volume)
            .ok_or_else(|| PodError::UnknownVolume {
                step: s.name.clone(),
                volume: m.volume.clone(),
            })?;
        mounts.push(VolumeMount {
            name,
            mount_path: m.path.clone(),
            sub_path: m.sub_path.clone(),
            read_only: m.read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    // A volume mounted on one of Tekton's directories replaces it, as in Tekton's Pods;
    // Kubernetes refuses two mounts on one path.
    let mut seen = std::collections::HashSet::new();
    mounts.reverse();
    mounts.retain(|m| seen.insert(m.mount_path.clone()));
    mounts.reverse();
    let security_context = security_context(s, what)?;
    Ok(Container {
        name: String::new(),
        image: Some(image),
        image_pull_policy: s.image_pull_policy.clone(),
        command: (!s.command.is_empty()).then(|| s.command.clone()),
        args: (!s.args.is_empty()).then(|| s.args.clone()),
        env: (!s.env.is_empty()).then(|| {
            s.env
                .iter()
                .map(|(k, v)| env_var(s, k, v, inputs.cluster_objects))
                .collect()
        }),
        working_dir: s.working_dir.clone(),
        volume_mounts: Some(mounts),
        resources: resources(&s.limits, &s.requests),
        security_context,
        ..Container::default()
    })
}

/// The container's `securityContext` as written, with the user and group the plan resolved
/// (the Pod's, when the step names none).
fn security_context(s: &StepPlan, what: &'static str) -> Result<Option<SecurityContext>, PodError> {
    let written: Option<SecurityContext> = s
        .security_context
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|source| PodError::SecurityContext {
            what,
            name: s.name.clone(),
            source,
        })?;
    if written.is_none() && s.run_as_user.is_none() && s.run_as_group.is_none() {
        return Ok(None);
    }
    let mut c = written.unwrap_or_default();
    c.run_as_user = s.run_as_user.map(i64::from).or(c.run_as_user);
    c.run_as_group = s.run_as_group.map(i64::from).or(c.run_as_group);
    Ok(Some(c))
}

fn quantities(l: &Limits) -> Option<BTreeMap<String, Quantity>> {
    let mut m = BTreeMap::new();
    if let Some(b) = l.memory_bytes {
        m.insert("memory".to_string(), Quantity(b.to_string()));
    }
    if let Some(c) = l.cpu_millis {
        m.insert("cpu".to_string(), Quantity(format!("{c}m")));
    }
    (!m.is_empty()).then_some(m)
}

fn resources(limits: &Limits, requests: &Limits) -> Option<ResourceRequirements> {
    let (limits, requests) = (quantities(limits), quantities(requests));
    (limits.is_some() || requests.is_some()).then(|| ResourceRequirements {
        limits,
        requests,
        ..ResourceRequirements::default()
    })
}

fn probe(p: &ProbePlan) -> Probe {
    let secs = |d: std::time::Duration| i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX);
    let mut out = Probe {
        initial_delay_seconds: Some(i32::try_from(p.initial_delay.as_secs()).unwrap_or(i32::MAX)),
        period_seconds: Some(secs(p.period)),
        timeout_seconds: Some(secs(p.timeout)),
        failure_threshold: Some(i32::try_from(p.failure_threshold).unwrap_or(i32::MAX)),
        ..Probe::default()
    };
    match &p.action {
        ProbeAction::Exec(command) => {
            out.exec = Some(ExecAction {
                command: Some(command.clone()),
            });
        }
        ProbeAction::Tcp { port } => {
            out.tcp_socket = Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(*port)),
                host: None,
            });
        }
        ProbeAction::Http { port, path } => {
            out.http_get = Some(HTTPGetAction {
                port: IntOrString::Int(i32::from(*port)),
                path: Some(path.clone()),
                ..HTTPGetAction::default()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use slipway_engine::executor::{MountPlan, PodPlan, VolumeSource};

    fn pod_of(plan: &TaskRunPlan) -> Result<serde_json::Value, PodError> {
        let registry = RegistryConfig::default();
        let parts = build(
            plan,
            &PodInputs {
                name: "p",
                namespace: "ns",
                slipway_image: "slipway",
                registry: &registry,
                commands: &[vec!["true".to_string()]],
                cluster_objects: false,
            },
        )?;
        Ok(serde_json::to_value(&parts.pod).expect("a Pod is JSON"))
    }

    fn plan(security_context: serde_json::Value) -> TaskRunPlan {
        TaskRunPlan {
            steps: vec![StepPlan {
                name: "a".into(),
                image: Some("busybox".into()),
                run_as_user: Some(1000),
                security_context: Some(security_context),
                volume_mounts: vec![MountPlan {
                    volume: "info".into(),
                    path: "/info".into(),
                    sub_path: None,
                    read_only: true,
                }],
                ..StepPlan::default()
            }],
            volumes: vec![(
                "info".into(),
                VolumeSource::Cluster {
                    kind: "downwardAPI".into(),
                    volume: json!({"name": "info", "downwardAPI": {"items": [
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}),
                },
            )],
            pod: PodPlan {
                topology_spread_constraints: Some(json!([{"maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}])),
                enable_service_links: Some(false),
                ..PodPlan::default()
            },
            ..TaskRunPlan::default()
        }
    }

    #[test]
    fn pod_carries_the_security_context_cluster_volumes_and_placement() {
        let pod = pod_of(&plan(json!({"privileged": true, "runAsUser": 5,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
            "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})))
        .expect("a Pod");
        let spec = &pod["spec"];
        let c = &spec["containers"][0]["securityContext"];
        assert_eq!(c["privileged"], true);
        assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["readOnlyRootFilesystem"], true);
        assert_eq!(c["allowPrivilegeEscalation"], false);
        assert_eq!(c["runAsNonRoot"], true);
        assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(c["runAsUser"], 1000, "the plan's resolved user wins");
        assert_eq!(spec["enableServiceLinks"], false);
        assert_eq!(spec["topologySpreadConstraints"][0]["maxSkew"], 1);
        let info = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v.get("downwardAPI").is_some())
            .expect("the downwardAPI volume");
        let mount = spec["containers"][0]["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["mountPath"] == "/info")
            .expect("mounted");
        assert_eq!(mount["name"], info["name"]);
    }

    #[test]
    fn a_misshapen_security_context_names_the_step() {
        let err = pod_of(&plan(json!({"privileged": "very"}))).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("failed to read the securityContext of step `a`"),
            "{err}"
        );
    }

    #[test]
    fn in_a_cluster_secret_env_is_a_reference_not_a_value() {
        let step = StepPlan {
            env: vec![
                ("TOKEN".into(), "s3cr3t".into()),
                ("PLAIN".into(), "x".into()),
            ],
            env_sources: vec![(
                "TOKEN".into(),
                serde_json::json!({"secretKeyRef": {"name": "creds", "key": "token"}}),
            )],
            ..StepPlan::default()
        };
        let var = env_var(&step, "TOKEN", "s3cr3t", true);
        assert_eq!(var.value, None);
        let key = var
            .value_from
            .and_then(|f| f.secret_key_ref)
            .expect("a reference");
        assert_eq!((key.name.as_str(), key.key.as_str()), ("creds", "token"));
        assert_eq!(
            env_var(&step, "PLAIN", "x", true).value.as_deref(),
            Some("x")
        );
        assert_eq!(
            env_var(&step, "TOKEN", "s3cr3t", false).value.as_deref(),
            Some("s3cr3t"),
            "outside a controller the value is what slipway read"
        );
    }
}
