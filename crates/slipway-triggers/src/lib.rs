//! Tekton Triggers' model, without a cluster: an EventListener's triggers run their interceptors
//! (GitHub, GitLab, CEL) on a delivery, bind params from it and fill their TriggerTemplates,
//! giving the runs to start. Pure: definitions and secrets come through [`Definitions`].

pub mod binding;
pub mod event;
pub mod expr;
pub mod interceptor;
pub mod kinds;
pub mod template;

use std::collections::BTreeMap;

use serde_json::Value;

pub use crate::event::{Event, PayloadError};
pub use crate::interceptor::{Interceptor, Verdict, sign_github};
pub use crate::kinds::{EventListenerSpec, TriggerBindingSpec, TriggerSpec, TriggerTemplateSpec};

/// Where triggers find what they refer to.
pub trait Definitions {
    /// A `TriggerBinding` (or `ClusterTriggerBinding`) by name.
    fn binding(&self, name: &str) -> Option<TriggerBindingSpec>;
    /// A `TriggerTemplate` by name.
    fn template(&self, name: &str) -> Option<TriggerTemplateSpec>;
    /// A `Trigger` by name.
    fn trigger(&self, name: &str) -> Option<TriggerSpec>;
    /// A Secret's value.
    fn secret(&self, name: &str, key: &str) -> Option<Vec<u8>>;
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The body is not JSON.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The signature or token is missing or wrong.
    #[error("trigger `{trigger}`: {message}")]
    Signature {
        /// Trigger.
        trigger: String,
        /// What is wrong.
        message: String,
        /// The header was absent (likely another sender's delivery), not wrong.
        missing: bool,
    },
    /// The event type is not one the trigger accepts.
    #[error("trigger `{trigger}`: event type `{got}` ({header}) is not one of {}", accepted.join(", "))]
    EventType {
        /// Trigger.
        trigger: String,
        /// The header read.
        header: String,
        /// Its value.
        got: String,
        /// What the trigger accepts.
        accepted: Vec<String>,
    },
    /// A CEL expression failed.
    #[error("trigger `{trigger}`: CEL expression `{expression}` {message}")]
    Cel {
        /// Trigger.
        trigger: String,
        /// The expression.
        expression: String,
        /// What happened.
        message: String,
    },
    /// A binding reads something the event lacks, or a template cannot be filled.
    #[error("trigger `{trigger}`: {message}")]
    Binding {
        /// Trigger.
        trigger: String,
        /// What is missing.
        message: String,
    },
    /// The listener's definitions are incomplete (a missing template, binding or secret).
    #[error("{message}")]
    Config {
        /// What is missing.
        message: String,
    },
}

/// The resources one trigger creates for an event.
#[derive(Debug, Clone)]
pub struct Fired {
    /// Trigger name.
    pub trigger: String,
    /// The filled resource templates (PipelineRuns and TaskRuns).
    pub resources: Vec<Value>,
}

/// What a delivery did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// These triggers fired.
    Fired(Vec<Fired>),
    /// No trigger fired; why, per trigger (filters said no).
    Skipped(Vec<String>),
}

/// Runs every trigger of `listener` on `event`. A trigger whose interceptor refuses the event is
/// left out; when none fires, the strongest refusal (a bad signature, then a wrong event type)
/// is the error, and filters that said no are a [`Outcome::Skipped`].
pub fn deliver(
    listener: &EventListenerSpec,
    defs: &dyn Definitions,
    event: &Event,
    uid: &str,
) -> Result<Outcome, TriggerError> {
    let mut fired = Vec::new();
    let mut skipped = Vec::new();
    let mut refusals = Vec::new();
    for (i, t) in listener.triggers.iter().enumerate() {
        let spec = match &t.trigger_ref {
            Some(r) => defs.trigger(r).ok_or_else(|| TriggerError::Config {
                message: format!("Trigger `{r}` not found; apply it first"),
            })?,
            None => t.clone(),
        };
        let name = spec
            .name
            .clone()
            .or_else(|| t.trigger_ref.clone())
            .unwrap_or_else(|| format!("triggers[{i}]"));
        match fire(&name, &spec, defs, event.clone(), uid) {
            Ok(Some(f)) => fired.push(f),
            Ok(None) => skipped.push(name),
            Err(e @ (TriggerError::Signature { .. } | TriggerError::EventType { .. })) => {
                refusals.push(e)
            }
            Err(e) => return Err(e),
        }
    }
    if !fired.is_empty() {
        return Ok(Outcome::Fired(fired));
    }
    // A trigger that accepted the sender but filtered the event out means the delivery was
    // meant for it: other triggers' missing headers say nothing then.
    if !skipped.is_empty() {
        refusals.retain(|e| !matches!(e, TriggerError::Signature { missing: true, .. }));
    }
    // A wrong signature says most about the delivery; a header that is absent least (the
    // delivery is probably meant for another trigger).
    refusals.sort_by_key(|e| match e {
        TriggerError::Signature { missing: false, .. } => 0,
        TriggerError::EventType { .. } => 1,
        _ => 2,
    });
    match refusals.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(Outcome::Skipped(skipped)),
    }
}

fn fire(
    name: &str,
    spec: &TriggerSpec,
    defs: &dyn Definitions,
    mut event: Event,
    uid: &str,
) -> Result<Option<Fired>, TriggerError> {
    for i in &spec.interceptors {
        let interceptor = Interceptor::from_spec(i).map_err(|message| TriggerError::Config {
            message: format!("trigger `{name}`: {message}"),
        })?;
        if let Verdict::Skip(_) = interceptor.run(name, &mut event, defs)? {
            return Ok(None);
        }
    }
    let bound = bind(name, spec, defs, &event)?;
    let template = template_of(name, spec, defs)?;
    let resources =
        template::fill(&template, &bound, uid).map_err(|message| TriggerError::Binding {
            trigger: name.into(),
            message,
        })?;
    Ok(Some(Fired {
        trigger: name.into(),
        resources,
    }))
}

fn bind(
    name: &str,
    spec: &TriggerSpec,
    defs: &dyn Definitions,
    event: &Event,
) -> Result<BTreeMap<String, String>, TriggerError> {
    let mut params = Vec::new();
    for b in &spec.bindings {
        match (&b.reference, &b.name, &b.value, &b.spec) {
            (Some(r), _, _, _) => {
                let binding = defs.binding(r).ok_or_else(|| TriggerError::Config {
                    message: format!(
                        "trigger `{name}`: TriggerBinding `{r}` not found; apply it first"
                    ),
                })?;
                params.extend(binding.params);
            }
            (None, Some(n), Some(v), _) => params.push(kinds::BindingParam {
                name: n.clone(),
                value: v.clone(),
            }),
            (None, _, _, Some(s)) => params.extend(s.params.clone()),
            _ => {
                return Err(TriggerError::Config {
                    message: format!(
                        "trigger `{name}`: a binding needs `ref`, or `name` and `value`"
                    ),
                });
            }
        }
    }
    let mut bound = BTreeMap::new();
    for p in params {
        let v = binding::resolve(&p.value, event).map_err(|message| TriggerError::Binding {
            trigger: name.into(),
            message: format!("binding `{}`: {message}", p.name),
        })?;
        bound.insert(p.name, v);
    }
    Ok(bound)
}

fn template_of(
    name: &str,
    spec: &TriggerSpec,
    defs: &dyn Definitions,
) -> Result<TriggerTemplateSpec, TriggerError> {
    let t = spec.template.as_ref().ok_or_else(|| TriggerError::Config {
        message: format!("trigger `{name}` has no template"),
    })?;
    if let Some(s) = &t.spec {
        return Ok(s.clone());
    }
    let r = t
        .reference
        .as_ref()
        .or(t.name.as_ref())
        .ok_or_else(|| TriggerError::Config {
            message: format!("trigger `{name}`: the template needs `ref` or `spec`"),
        })?;
    defs.template(r).ok_or_else(|| TriggerError::Config {
        message: format!("trigger `{name}`: TriggerTemplate `{r}` not found; apply it first"),
    })
}

/// Problems in a listener's definitions found without an event, as `(path, message)`.
pub fn check_listener(
    listener: &EventListenerSpec,
    defs: &dyn Definitions,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, t) in listener.triggers.iter().enumerate() {
        let base = format!("spec.triggers[{i}]");
        let spec = match &t.trigger_ref {
            Some(r) => match defs.trigger(r) {
                Some(s) => s,
                None => {
                    out.push((
                        format!("{base}.triggerRef"),
                        format!("Trigger `{r}` not found"),
                    ));
                    continue;
                }
            },
            None => t.clone(),
        };
        out.extend(check_trigger(&spec, defs, &base));
    }
    out
}

/// Problems in one trigger's definitions.
pub fn check_trigger(
    spec: &TriggerSpec,
    defs: &dyn Definitions,
    base: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (j, i) in spec.interceptors.iter().enumerate() {
        match Interceptor::from_spec(i) {
            Err(m) => out.push((format!("{base}.interceptors[{j}]"), m)),
            Ok(Interceptor::Cel { filter, overlays }) => {
                for e in filter.iter().chain(overlays.iter().map(|(_, e)| e)) {
                    if let Err(err) = cel::Program::compile(e) {
                        out.push((
                            format!("{base}.interceptors[{j}]"),
                            format!("CEL expression `{e}` does not parse: {err}"),
                        ));
                    }
                }
            }
            Ok(_) => {}
        }
    }
    for (j, b) in spec.bindings.iter().enumerate() {
        if let Some(r) = &b.reference
            && defs.binding(r).is_none()
        {
            out.push((
                format!("{base}.bindings[{j}].ref"),
                format!("TriggerBinding `{r}` not found"),
            ));
        }
    }
    match &spec.template {
        None => out.push((base.to_string(), "the trigger has no template".into())),
        Some(t) if t.spec.is_none() => {
            if let Some(r) = t.reference.as_ref().or(t.name.as_ref())
                && defs.template(r).is_none()
            {
                out.push((
                    format!("{base}.template.ref"),
                    format!("TriggerTemplate `{r}` not found"),
                ));
            }
        }
        Some(_) => {}
    }
    out
}
