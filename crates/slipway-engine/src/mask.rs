//! Secret values masked before anything leaves the engine: Secret data a run can read (through
//! workspaces, env or envFrom) and params declared secret. Logs, objects and results only ever
//! carry `[MASKED]` in their place, so no store, API or terminal sees them.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;
use slipway_model::{Library, ParamValue, RunObject};

use crate::event::RunEvent;

/// What replaces a secret value.
pub const MASK: &str = "[MASKED]";

/// The annotation (on a run, Pipeline or Task) naming params whose values are secret.
pub const SECRET_PARAMS: &str = "slipway.dev/secret-params";

/// Values shorter than this are not masked: masking `a` or `true` would garble every line and
/// protect nothing (GitLab CI has the same floor, at 8).
const SHORTEST: usize = 4;

/// The secret values of one run.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so that a secret containing another is masked whole.
    values: Arc<Vec<String>>,
}

impl Masker {
    /// Masks these values (each line of a multi-line value on its own, as logs come in lines).
    pub fn new(values: impl IntoIterator<Item = String>) -> Masker {
        let mut v: Vec<String> = values
            .into_iter()
            .flat_map(|s| {
                let mut parts: Vec<String> = s.lines().map(|l| l.trim().to_string()).collect();
                parts.push(s);
                parts
            })
            .filter(|s| s.chars().count() >= SHORTEST)
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        Masker {
            values: Arc::new(v),
        }
    }

    /// The secrets `run` can reach in `lib`: every Secret's values, and the params named by
    /// `slipway.dev/secret-params` on the run or on its Pipeline or Task.
    pub fn for_run(lib: &Library, run: &RunObject) -> Masker {
        let mut values = Vec::new();
        for s in lib.secrets.values() {
            values.extend(s.spec.string_data.values().cloned());
            for d in s.spec.data.values() {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(d.trim())
                    && let Ok(text) = String::from_utf8(bytes)
                {
                    values.push(text);
                }
            }
        }
        let (mut names, params) = match run {
            RunObject::PipelineRun(pr) => {
                let target = pr
                    .spec
                    .pipeline_ref
                    .as_ref()
                    .and_then(|r| r.name.as_ref())
                    .and_then(|n| lib.pipelines.get(n))
                    .map(|p| declared(&p.meta.annotations))
                    .unwrap_or_default();
                (target, &pr.spec.params)
            }
            RunObject::TaskRun(tr) => {
                let target = tr
                    .spec
                    .task_ref
                    .as_ref()
                    .and_then(|r| r.name.as_ref())
                    .and_then(|n| lib.tasks.get(n))
                    .map(|t| declared(&t.meta.annotations))
                    .unwrap_or_default();
                (target, &tr.spec.params)
            }
        };
        names.extend(declared(&run.meta().annotations));
        for p in params.iter().filter(|p| names.contains(&p.name)) {
            match &p.value {
                ParamValue::String(s) => values.push(s.clone()),
                ParamValue::Array(a) => values.extend(a.iter().cloned()),
                ParamValue::Object(o) => values.extend(o.values().cloned()),
            }
        }
        Masker::new(values)
    }

    /// Nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Length in bytes of the longest secret (0 when there is none).
    pub fn longest(&self) -> usize {
        self.values.iter().map(String::len).max().unwrap_or(0)
    }

    /// The text with every secret replaced.
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(s);
        for v in self.values.iter() {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), MASK));
            }
        }
        out
    }

    /// Masks every string in a JSON value.
    pub fn value(&self, v: &mut Value) {
        if self.is_empty() {
            return;
        }
        match v {
            Value::String(s) => {
                if let Cow::Owned(m) = self.text(s) {
                    *s = m;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            Value::Object(m) => m.values_mut().for_each(|x| self.value(x)),
            _ => {}
        }
    }

    /// The event with its lines and objects masked.
    pub fn event(&self, mut ev: RunEvent) -> RunEvent {
        if self.is_empty() {
            return ev;
        }
        match &mut ev {
            RunEvent::Log { line, .. } => {
                if let Cow::Owned(m) = self.text(line) {
                    *line = m;
                }
            }
            RunEvent::Notice { message, .. } => {
                if let Cow::Owned(m) = self.text(message) {
                    *message = m;
                }
            }
            RunEvent::RunStarted { object, .. }
            | RunEvent::TaskRunFinished { object, .. }
            | RunEvent::RunFinished { object, .. } => self.value(object),
            _ => {}
        }
        ev
    }
}

fn declared(annotations: &indexmap::IndexMap<String, String>) -> Vec<String> {
    annotations
        .get(SECRET_PARAMS)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_secrets_first_and_short_ones_left_alone() {
        let m = Masker::new([
            "hunter2hunter2".to_string(),
            "hunter2".to_string(),
            "ab".to_string(),
        ]);
        assert_eq!(
            m.text("pw=hunter2hunter2; old=hunter2; ab"),
            "pw=[MASKED]; old=[MASKED]; ab"
        );
        let mut v = serde_json::json!({"a": ["x hunter2"], "b": 1});
        m.value(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x [MASKED]"], "b": 1}));
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked() {
        let m = Masker::new(["-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----".to_string()]);
        assert_eq!(m.text("AAAABBBBCCCC"), MASK);
    }

    #[test]
    fn secrets_of_the_library_and_declared_params_are_collected() {
        let mut lib = Library::default();
        let mut diags = slipway_model::Diagnostics::default();
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {token: czNjcjN0LXZhbHVl}\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: r\n  annotations: {slipway.dev/secret-params: password}\nspec:\n  params: [{name: password, value: pa55word}, {name: user, value: alice123}]\n  taskSpec:\n    params: [{name: password}, {name: user}]\n    steps: [{name: s, image: x, script: echo}]\n";
        lib.add_source("in.yaml".into(), yaml.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let m = Masker::for_run(&lib, &lib.runs[0]);
        assert_eq!(
            m.text("s3cr3t-value pa55word alice123"),
            "[MASKED] [MASKED] alice123"
        );
    }
}
