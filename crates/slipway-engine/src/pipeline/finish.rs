//! The PipelineRun's final status: results, condition, child references, skipped tasks.

use std::time::SystemTime;

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::{Dispatcher, Outcome, PipelineDone};
use crate::event::RunEvent;
use crate::status::{condition, ts};

impl Dispatcher {
    pub(super) fn finish(self) -> PipelineDone {
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

    pub(super) fn object(&self, status: Option<Value>) -> Value {
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
