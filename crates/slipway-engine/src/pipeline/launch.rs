//! Starting a ready pipeline task: when expressions, missing results, params, matrix, children.

use std::time::SystemTime;

use indexmap::IndexMap;
use serde_json::json;
use slipway_model::kinds::pipeline::PipelineTask;
use slipway_model::kinds::task::{TaskSpec, WorkspaceDeclaration};
use slipway_model::subst::Scope;
use slipway_model::{Param, ParamValue};

use super::{Child, ChildFuture, Dispatcher, Outcome, PipelineRequest, run};
use crate::cancel::CancelHandle;
use crate::matrix;
use crate::sources::Bound;
use crate::taskrun::{self, Parent, TaskRunRequest};
use crate::when;

/// A child run's uid, the same every time its parent runs it: a controller that adopts a run
/// after a restart finds the Pods the first one made by the names derived from it.
fn child_uid(parent_uid: &str, name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{parent_uid}/{name}").as_bytes(),
    )
    .to_string()
}

impl Dispatcher {
    /// Starts pipeline task `i`, or decides it is skipped or failed. Returns the child futures.
    pub(super) fn launch(&mut self, i: usize) -> Vec<ChildFuture> {
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
        // A pipeline task's params and matrix also see its own `context.pipelineTask.*`.
        let mut pt_scope = self.scope.clone();
        pt_scope.set_str(
            "context.pipelineTask.retries",
            pt.retries.unwrap_or(0).to_string(),
        );
        let mut passed = pt_scope.subst_params(&pt.params);
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
                    p.value = pt_scope.subst_value(&p.value);
                }
                for inc in &mut m.include {
                    for p in &mut inc.params {
                        p.value = pt_scope.subst_value(&p.value);
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
                let task_sub = b.sub_path.as_ref().map(|p| pt_scope.subst(p));
                let sub = match (&bound.sub_path, &task_sub) {
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
            let uid = child_uid(&self.req.uid, &name);
            let child_uid = uid.clone();
            let shared = self.shared.clone();
            if pt.pipeline_ref.is_some() || pt.pipeline_spec.is_some() {
                let (spec, pipeline_name) = match &pt.pipeline_spec {
                    Some(s) => ((**s).clone(), String::new()),
                    None => {
                        let n = pt
                            .pipeline_ref
                            .as_ref()
                            .and_then(|r| r.name.clone())
                            .unwrap_or_default();
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
                    started: None,
                };
                let handle =
                    CancelHandle::from_tokens(token.clone(), self.finally_token.child_token());
                children.push(Child {
                    kind: "PipelineRun",
                    name: name.clone(),
                    uid: child_uid,
                    done: None,
                });
                futures.push(Box::pin(async move {
                    let done = run(shared, child, handle).await;
                    (i, j, done.succeeded, done.reason, done.results)
                }));
                continue;
            }
            let mut workspaces = workspaces.clone();
            let (spec, task_name, target_json) = match (&pt.task_spec, &pt.task_ref) {
                (Some(s), _) => (
                    self.propagate_workspaces(s, &mut workspaces),
                    pt.name.clone(),
                    json!({ "taskSpec": s }),
                ),
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
                created: None,
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
                annotations: IndexMap::new(),
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
                uid: child_uid,
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

    /// Tekton propagates the run's workspaces into an inline taskSpec: a workspace it refers
    /// to (`$(workspaces.<w>.path)`) without declaring or being given it is declared and bound.
    fn propagate_workspaces(
        &self,
        spec: &TaskSpec,
        bound: &mut IndexMap<String, Bound>,
    ) -> TaskSpec {
        let mut spec = spec.clone();
        let text = serde_json::to_string(&spec).unwrap_or_default();
        for r in slipway_model::subst::references(&text) {
            let names = r.names();
            let [root, name, ..] = names.as_slice() else {
                continue;
            };
            if *root != "workspaces"
                || spec.workspaces.iter().any(|w| w.name == *name)
                || bound.contains_key(*name)
            {
                continue;
            }
            if let Some(b) = self.req.workspaces.get(*name) {
                spec.workspaces.push(WorkspaceDeclaration {
                    name: name.to_string(),
                    description: None,
                    mount_path: None,
                    read_only: None,
                    optional: None,
                });
                bound.insert(name.to_string(), b.clone());
            }
        }
        spec
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
}
