//! Turns a Task spec plus bound params and workspaces into a `TaskRunPlan` with every `$(...)` resolved.

use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;
use slipway_model::duration::parse_go_duration;
use slipway_model::kinds::k8s::{EnvVar, VolumeMount};
use slipway_model::kinds::task::{Step, TaskSpec};
use slipway_model::subst::{Scope, references, retarget};
use slipway_model::{Library, Param, ParamType, ParamValue};

use crate::error::Failure;
use crate::executor::{
    Builtin, MountPlan, PodPlan, StepPlan, TaskRunPlan, VolumeSource, WorkspacePlan,
};
use crate::params;
use crate::sources::{Bound, config_map_entries, env_from_source, secret_entries, volume_source};

/// Everything needed to plan one TaskRun.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// Loaded objects (StepActions, ConfigMaps, Secrets).
    pub lib: &'a Library,
    /// The Task.
    pub spec: &'a TaskSpec,
    /// Inline specs see params they do not declare.
    pub embedded: bool,
    /// Params passed (already substituted by the caller).
    pub params: &'a [Param],
    /// Context variables (`context.*`).
    pub context: &'a Scope,
    /// Workspaces bound, by task workspace name.
    pub workspaces: &'a IndexMap<String, Bound>,
    /// `podTemplate`, for the security context.
    pub pod_template: Option<&'a Value>,
    /// TaskRun timeout.
    pub timeout: Option<Duration>,
    /// TaskRun uid.
    pub uid: &'a str,
    /// TaskRun name.
    pub name: &'a str,
    /// Top-level run uid.
    pub root_uid: &'a str,
    /// Largest result, in bytes.
    pub max_result_bytes: usize,
    /// Whether `hostPath` volumes may be used (see `EngineConfig::allow_host_paths`).
    pub allow_host_paths: bool,
    /// The TaskRun's `serviceAccountName`.
    pub service_account: Option<&'a str>,
}

/// Plans a TaskRun.
pub fn plan(inv: &Invocation<'_>) -> Result<TaskRunPlan, Failure> {
    let spec = inv.spec;
    let bound = params::bind(&spec.params, inv.params, inv.context, inv.embedded)?;
    let mut ctx = inv.context.clone();
    let mut workspaces = Vec::new();
    for w in &spec.workspaces {
        let path = w.path();
        match inv.workspaces.get(&w.name) {
            Some(b) => {
                ctx.set_str(format!("workspaces.{}.path", w.name), path.clone());
                ctx.set_str(format!("workspaces.{}.bound", w.name), "true");
                let claim = match &b.source {
                    VolumeSource::Claim { name } => name.clone(),
                    _ => String::new(),
                };
                ctx.set_str(format!("workspaces.{}.claim", w.name), claim);
                ctx.set_str(
                    format!("workspaces.{}.volume", w.name),
                    format!("ws-{}", w.name),
                );
                workspaces.push(WorkspacePlan {
                    name: w.name.clone(),
                    path,
                    source: b.source.clone(),
                    sub_path: b.sub_path.clone(),
                    read_only: w.read_only.unwrap_or(false),
                    isolated: isolated(spec, &w.name),
                });
            }
            None if w.optional.unwrap_or(false) => {
                ctx.set_str(format!("workspaces.{}.path", w.name), "");
                ctx.set_str(format!("workspaces.{}.bound", w.name), "false");
                ctx.set_str(format!("workspaces.{}.claim", w.name), "");
                ctx.set_str(format!("workspaces.{}.volume", w.name), "");
            }
            None => {
                return Err(Failure::new(
                    "TaskRunValidationFailed",
                    format!("workspace `{}` is not bound", w.name),
                ));
            }
        }
    }
    for r in &spec.results {
        ctx.set_str(
            format!("results.{}.path", r.name),
            format!("/tekton/results/{}", r.name),
        );
    }
    ctx.set_str("credentials.path", "/tekton/creds");
    let names = step_names(spec);
    for n in &names {
        ctx.set_str(
            format!("steps.{n}.exitCode.path"),
            format!("/tekton/steps/step-{n}/exitCode"),
        );
        ctx.set_str(
            format!("steps.step-{n}.exitCode.path"),
            format!("/tekton/steps/step-{n}/exitCode"),
        );
    }
    let mut scope = ctx.clone();
    params::into_scope(&mut scope, &bound);
    // Tekton still substitutes v1alpha1's spelling in Tasks; old Tasks rely on it.
    for (k, v) in &bound {
        scope.set(format!("inputs.params.{k}"), v.clone());
    }

    let pod_sc = inv.pod_template.and_then(|p| p.get("securityContext"));
    let pod_env = pod_env(inv.pod_template)?;
    let mut steps = Vec::with_capacity(spec.steps.len());
    for (i, step) in spec.steps.iter().enumerate() {
        let name = &names[i];
        let mut step_ctx = ctx.clone();
        let mut step_scope = scope.clone();
        let declared_results: Vec<(String, ParamType)>;
        let merged = if let Some(r) = &step.step_ref {
            let action_name = r.name.clone().unwrap_or_default();
            let action = inv.lib.step_actions.get(&action_name).ok_or_else(|| {
                Failure::new(
                    "TaskRunResolutionFailed",
                    format!("StepAction `{action_name}` not found"),
                )
            })?;
            let passed = scope.subst_params(step.params.iter().flatten());
            let action_params = params::bind(&action.spec.params, &passed, &ctx, false)?;
            declared_results = action
                .spec
                .results
                .iter()
                .map(|r| (r.name.clone(), r.effective_type()))
                .collect();
            for (r, _) in &declared_results {
                step_ctx.set_str(
                    format!("step.results.{r}.path"),
                    format!("/tekton/steps/step-{name}/results/{r}"),
                );
            }
            // The action's own text sees its params and the task's context, not the task's params.
            step_scope = step_ctx.clone();
            params::into_scope(&mut step_scope, &action_params);
            let a = &action.spec;
            let action_step = Step {
                name: Some(name.clone()),
                image: a.image.clone(),
                command: a.command.clone(),
                args: a.args.clone(),
                script: a.script.clone(),
                env: a.env.clone(),
                working_dir: a.working_dir.clone(),
                security_context: a.security_context.clone(),
                volume_mounts: a.volume_mounts.clone(),
                on_error: step.on_error.clone(),
                timeout: step.timeout.clone(),
                stdout_config: step.stdout_config.clone(),
                stderr_config: step.stderr_config.clone(),
                compute_resources: step.compute_resources.clone(),
                ..Step::default()
            };
            later_step_results(action_step, &passed)
        } else {
            declared_results = step
                .results
                .iter()
                .flatten()
                .map(|r| (r.name.clone(), r.effective_type()))
                .collect();
            for (r, _) in &declared_results {
                step_scope.set_str(
                    format!("step.results.{r}.path"),
                    format!("/tekton/steps/step-{name}/results/{r}"),
                );
            }
            step.clone()
        };
        let merged = apply_template(merged, spec.step_template.as_ref());
        let skipped = match &step.when {
            Some(w) => !crate::when::evaluate(w, &step_scope).map_err(|f| {
                Failure::new(
                    "TaskRunValidationFailed",
                    format!("step `{name}`: {}", f.message),
                )
            })?,
            None => false,
        };
        let mut plan = step_plan(
            inv.lib,
            name,
            &merged,
            &step_scope,
            (pod_sc, &pod_env),
            declared_results.iter().map(|(n, _)| n.clone()).collect(),
        )?;
        plan.structured_results = declared_results
            .into_iter()
            .filter(|(_, t)| *t != ParamType::String)
            .collect();
        plan.skipped = skipped;
        plan.volume_mounts
            .extend(workspace_mounts(step, &workspaces, &step_scope));
        steps.push(plan);
    }
    let mut sidecars = Vec::new();
    for (i, s) in spec.sidecars.iter().enumerate() {
        let name = s.name.clone().unwrap_or_else(|| format!("sidecar-{i}"));
        let mut plan = step_plan(inv.lib, &name, s, &scope, (pod_sc, &pod_env), Vec::new())?;
        plan.volume_mounts
            .extend(workspace_mounts(s, &workspaces, &scope));
        plan.readiness = crate::podspec::readiness(
            &format!("sidecar `{name}`"),
            s.readiness_probe.as_ref(),
            s.ports.as_ref(),
        )?;
        sidecars.push(plan);
    }
    let volumes = task_volumes(inv, &scope)?;
    Ok(TaskRunPlan {
        uid: inv.uid.to_string(),
        name: inv.name.to_string(),
        root_uid: inv.root_uid.to_string(),
        attempt: 0,
        steps,
        sidecars,
        workspaces,
        volumes,
        results: spec.results.iter().map(|r| r.name.clone()).collect(),
        timeout: inv.timeout,
        max_result_bytes: inv.max_result_bytes,
        pull_secrets: crate::podspec::pull_secrets(inv.lib, inv.pod_template)?,
        pod: PodPlan::from_template(inv.pod_template, inv.service_account),
    })
}

/// A StepAction's step whose params name an earlier step's result (`$(steps.s.results.r)`, or
/// `[*]` of it): known only once that step ends, so the action's own references to such a param
/// (`$(params.p[*])`, `$(params.p[0])`, `$(params.p.key)`) are made references to the result,
/// which the run substitutes with the result's type when it is known.
fn later_step_results(mut step: Step, passed: &[Param]) -> Step {
    for p in passed {
        let ParamValue::String(v) = &p.value else {
            continue;
        };
        let refs = references(v.trim());
        let [r] = refs.as_slice() else { continue };
        let names = r.names();
        let whole = r.range == (0..v.trim().len());
        let rest_ok =
            r.segs.len() == names.len() || (r.is_star() && r.segs.len() == names.len() + 1);
        if !whole || !rest_ok || names.len() != 4 || names[0] != "steps" || names[2] != "results" {
            continue;
        }
        let (from, to) = (format!("params.{}", p.name), names.join("."));
        let edit = |t: &mut String| *t = retarget(t, &from, &to);
        step.image.iter_mut().for_each(edit);
        step.script.iter_mut().for_each(edit);
        step.working_dir.iter_mut().for_each(edit);
        step.command.iter_mut().flatten().for_each(edit);
        step.args.iter_mut().flatten().for_each(edit);
        step.env
            .iter_mut()
            .flatten()
            .filter_map(|e| e.value.as_mut())
            .for_each(edit);
    }
    step
}

/// Whether a step or sidecar names workspace `name`, which then goes only where it is named.
fn isolated(spec: &TaskSpec, name: &str) -> bool {
    spec.steps
        .iter()
        .chain(&spec.sidecars)
        .flat_map(|s| s.workspaces.iter().flatten())
        .any(|u| u.name == name)
}

/// Mounts of the bound workspaces a step or sidecar names: at its own `mountPath`, else where
/// the Task puts the workspace, read-only as the Task declares it. Unbound optional ones are
/// left out.
fn workspace_mounts(s: &Step, bound: &[WorkspacePlan], scope: &Scope) -> Vec<MountPlan> {
    s.workspaces
        .iter()
        .flatten()
        .filter_map(|u| {
            let w = bound.iter().find(|w| w.name == u.name)?;
            Some(MountPlan {
                volume: w.volume(),
                path: u
                    .mount_path
                    .as_deref()
                    .map(|p| scope.subst(p))
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| w.path.clone()),
                sub_path: None,
                read_only: w.read_only,
            })
        })
        .collect()
}

/// The Task's step names, `unnamed-<i>` where it gives none.
pub(crate) fn step_names(spec: &TaskSpec) -> Vec<String> {
    spec.steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.name.clone().unwrap_or_else(|| format!("unnamed-{i}")))
        .collect()
}

/// The Task's volumes and the `podTemplate`'s (which Tekton adds to the pod), with params
/// substituted into their sources as Tekton does (`secretName: $(params.name)`).
fn task_volumes(
    inv: &Invocation<'_>,
    scope: &Scope,
) -> Result<Vec<(String, VolumeSource)>, Failure> {
    let from_template: Vec<slipway_model::kinds::k8s::Volume> = inv
        .pod_template
        .and_then(|p| p.get("volumes"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut out: Vec<(String, VolumeSource)> = Vec::new();
    for v in inv.spec.volumes.iter().chain(&from_template) {
        let name = scope.subst(&v.name);
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let mut v = v.clone();
        for value in v.source.values_mut() {
            subst_json(scope, value);
        }
        v.name = name.clone();
        out.push((
            name,
            volume_source(inv.lib, &v, inv.uid, inv.allow_host_paths)?,
        ));
    }
    Ok(out)
}

/// Substitutes every string inside a JSON value.
fn subst_json(scope: &Scope, value: &mut Value) {
    match value {
        Value::String(s) => *s = scope.subst(s),
        Value::Array(items) => items.iter_mut().for_each(|v| subst_json(scope, v)),
        Value::Object(map) => map.values_mut().for_each(|v| subst_json(scope, v)),
        _ => {}
    }
}

/// Fills fields the step leaves unset from the template; env and mounts merge by name and path.
fn apply_template(mut step: Step, template: Option<&Step>) -> Step {
    let Some(t) = template else { return step };
    macro_rules! fill {
        ($($f:ident),*) => {$( if step.$f.is_none() { step.$f = t.$f.clone(); } )*};
    }
    fill!(
        image,
        command,
        args,
        working_dir,
        compute_resources,
        image_pull_policy,
        security_context,
        env_from
    );
    if let Some(tenv) = &t.env {
        let mut env: Vec<EnvVar> = tenv.clone();
        for e in step.env.take().unwrap_or_default() {
            env.retain(|x| x.name != e.name);
            env.push(e);
        }
        step.env = Some(env);
    }
    if let Some(tm) = &t.volume_mounts {
        let mut mounts: Vec<VolumeMount> = step.volume_mounts.take().unwrap_or_default();
        for m in tm {
            if !mounts
                .iter()
                .any(|x| x.mount_path == m.mount_path || x.name == m.name)
            {
                mounts.push(m.clone());
            }
        }
        step.volume_mounts = Some(mounts);
    }
    step
}

/// `podTemplate.env`, which Tekton adds to every step and sidecar over their own.
fn pod_env(template: Option<&Value>) -> Result<Vec<EnvVar>, Failure> {
    let Some(env) = template.and_then(|p| p.get("env")).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    serde_json::from_value(env.clone()).map_err(|e| {
        Failure::new(
            "TaskRunValidationFailed",
            format!("podTemplate.env is not a list of environment variables (name, value or valueFrom): {e}"),
        )
    })
}

/// The Pod-wide defaults a step or sidecar takes: the Pod's `securityContext` (for the user
/// and group) and `podTemplate.env`.
type PodDefaults<'a> = (Option<&'a Value>, &'a [EnvVar]);

fn step_plan(
    lib: &Library,
    name: &str,
    s: &Step,
    scope: &Scope,
    (pod_sc, pod_env): PodDefaults<'_>,
    results: Vec<String>,
) -> Result<StepPlan, Failure> {
    let mut env = Vec::new();
    for from in s.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let entries = if let Some(r) = &from.config_map_ref {
            config_map_entries(lib, &r.name, r.optional.unwrap_or(false))?
        } else if let Some(r) = &from.secret_ref {
            secret_entries(lib, &r.name, r.optional.unwrap_or(false))?
        } else {
            Vec::new()
        };
        env.extend(entries.into_iter().map(|(k, v)| {
            (
                format!("{prefix}{k}"),
                String::from_utf8_lossy(&v).into_owned(),
            )
        }));
    }
    let mut env_sources = Vec::new();
    // The Pod template's come last: Tekton documents that they take precedence over the
    // step's and the stepTemplate's.
    for e in s.env.iter().flatten().chain(pod_env) {
        if let Some(src) = e.value_from.as_ref().filter(|_| e.value.is_none())
            && (src.secret_key_ref.is_some() || src.config_map_key_ref.is_some())
        {
            env_sources.push((
                e.name.clone(),
                serde_json::to_value(src).unwrap_or_default(),
            ));
        } else {
            env_sources.retain(|(k, _): &(String, Value)| k != &e.name);
        }
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => Some(scope.subst(v)),
            (None, Some(src)) => env_from_source(lib, &e.name, src)?,
            (None, None) => Some(String::new()),
        };
        if let Some(v) = value {
            env.retain(|(k, _)| k != &e.name);
            env.push((e.name.clone(), v));
        }
    }
    let sc = s.security_context.as_ref();
    let id = |key: &str| -> Option<u32> {
        sc.and_then(|c| c.get(key))
            .or_else(|| pod_sc.and_then(|c| c.get(key)))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let timeout = match &s.timeout {
        Some(t) => Some(parse_go_duration(t).ok_or_else(|| {
            Failure::new(
                "TaskRunValidationFailed",
                format!("step `{name}` has an invalid timeout `{t}`"),
            )
        })?),
        None => None,
    };
    let continue_on_error = match s.on_error.as_deref().map(|e| scope.subst(e)).as_deref() {
        None | Some("stopAndFail") => false,
        Some("continue") => true,
        Some(other) => {
            return Err(Failure::new(
                "TaskRunValidationFailed",
                format!(
                    "step `{name}` has an invalid onError `{other}` (use `continue` or `stopAndFail`)"
                ),
            ));
        }
    };
    let image = s.image.as_deref().map(|i| scope.subst(i));
    let command = scope.subst_list(s.command.as_deref().unwrap_or_default());
    let script = s.script.as_deref().map(|x| scope.subst(x));
    Ok(StepPlan {
        name: name.to_string(),
        builtin: Builtin::for_step(image.as_deref(), &command, script.as_deref()),
        image,
        command,
        args: scope.subst_list(s.args.as_deref().unwrap_or_default()),
        script,
        env,
        env_sources,
        working_dir: s
            .working_dir
            .as_deref()
            .map(|w| scope.subst(w))
            .filter(|w| !w.is_empty()),
        volume_mounts: s
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| MountPlan {
                volume: m.name.clone(),
                path: scope.subst(&m.mount_path),
                sub_path: m.sub_path.as_deref().map(|p| scope.subst(p)),
                read_only: m.read_only.unwrap_or(false),
            })
            .collect(),
        continue_on_error,
        timeout: timeout.filter(|t| !t.is_zero()),
        stdout_path: s.stdout_config.as_ref().map(|c| scope.subst(&c.path)),
        stderr_path: s.stderr_config.as_ref().map(|c| scope.subst(&c.path)),
        run_as_user: id("runAsUser"),
        run_as_group: id("runAsGroup"),
        security_context: sc.filter(|c| !c.is_null()).cloned(),
        results,
        image_pull_policy: s.image_pull_policy.clone(),
        skipped: false,
        limits: crate::podspec::limits(
            &format!("step `{name}`"),
            s.compute_resources.as_ref().or(s.resources.as_ref()),
        )?,
        requests: crate::podspec::requests(
            &format!("step `{name}`"),
            s.compute_resources.as_ref().or(s.resources.as_ref()),
        )?,
        readiness: None,
        structured_results: Vec::new(),
    })
}

/// Parses raw result text by its declared type (arrays and objects are JSON).
pub fn parse_result(kind: slipway_model::ParamType, raw: &str) -> Result<ParamValue, String> {
    use slipway_model::ParamType as T;
    match kind {
        T::String => Ok(ParamValue::String(raw.to_string())),
        T::Array | T::Object => {
            let v: Value =
                serde_json::from_str(raw.trim()).map_err(|e| format!("is not valid JSON: {e}"))?;
            match ParamValue::from_json(&v) {
                Some(p) if p.kind() == kind => Ok(p),
                _ => Err(format!("is not a JSON {kind} of strings")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_with(spec: Value, template: Value) -> Result<TaskRunPlan, Failure> {
        let spec: TaskSpec = serde_json::from_value(spec).expect("a Task spec");
        let lib = Library::default();
        let (context, workspaces) = (Scope::new(), IndexMap::new());
        plan(&Invocation {
            lib: &lib,
            spec: &spec,
            embedded: true,
            params: &[],
            context: &context,
            workspaces: &workspaces,
            pod_template: Some(&template),
            timeout: None,
            uid: "uid-1",
            name: "tr",
            root_uid: "uid-1",
            max_result_bytes: 4096,
            allow_host_paths: true,
            service_account: None,
        })
    }

    fn env_of(s: &StepPlan) -> Vec<(&str, &str)> {
        s.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn pod_template_env_reaches_steps_and_sidecars_over_their_own() {
        let p = plan_with(
            json!({
                "stepTemplate": {"env": [{"name": "FROM", "value": "stepTemplate"}]},
                "steps": [{"name": "a", "image": "busybox",
                           "env": [{"name": "MINE", "value": "step"}, {"name": "WHO", "value": "step"}]}],
                "sidecars": [{"name": "db", "image": "busybox"}],
            }),
            json!({"env": [{"name": "WHO", "value": "pod"}, {"name": "FROM", "value": "pod"}]}),
        )
        .expect("plans");
        assert_eq!(
            env_of(&p.steps[0]),
            [("MINE", "step"), ("WHO", "pod"), ("FROM", "pod")]
        );
        assert_eq!(env_of(&p.sidecars[0]), [("WHO", "pod"), ("FROM", "pod")]);
        let err = plan_with(
            json!({"steps": [{"name": "a", "image": "busybox"}]}),
            json!({"env": {"WHO": "pod"}}),
        )
        .expect_err("env must be a list");
        assert!(err.message.contains("podTemplate.env"), "{}", err.message);
    }

    #[test]
    fn security_context_and_cluster_fields_are_kept_and_named_for_local_executors() {
        let p = plan_with(
            json!({
                "steps": [
                    {"name": "a", "image": "busybox",
                     "securityContext": {"runAsUser": 1000, "privileged": true,
                                         "capabilities": {"drop": ["ALL"]}}},
                    {"name": "b", "image": "busybox", "securityContext": {"runAsUser": 1000}},
                ],
                "volumes": [{"name": "info", "downwardAPI": {"items": []}}],
            }),
            json!({"topologySpreadConstraints": [{"maxSkew": 1}], "enableServiceLinks": false,
                   "securityContext": {"runAsGroup": 3}}),
        )
        .expect("plans");
        let a = &p.steps[0];
        assert_eq!(a.run_as_user, Some(1000));
        assert_eq!(a.run_as_group, Some(3), "the Pod's group");
        assert_eq!(
            a.security_context.as_ref().map(|c| c["privileged"].clone()),
            Some(json!(true))
        );
        assert_eq!(p.pod.enable_service_links, Some(false));
        assert_eq!(
            p.cluster_only_settings().as_deref(),
            Some(
                "podTemplate.topologySpreadConstraints, podTemplate.enableServiceLinks, step `a` securityContext.privileged/capabilities"
            )
        );
        assert!(matches!(
            &p.volumes[0].1,
            VolumeSource::Cluster { kind, volume }
                if kind == "downwardAPI" && volume["name"] == "info"
        ));
    }
}
