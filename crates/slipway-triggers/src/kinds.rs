//! Tekton Triggers' objects as slipway reads them (`triggers.tekton.dev/v1beta1`, and the
//! older `v1alpha1` interceptor forms).

use serde::Deserialize;
use serde_json::Value;

/// `TriggerBinding.spec`: params taken from the event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerBindingSpec {
    /// `name` and a value with `$(body...)`, `$(header...)`, `$(extensions...)`.
    #[serde(default)]
    pub params: Vec<BindingParam>,
}

/// One bound param.
#[derive(Debug, Clone, Deserialize)]
pub struct BindingParam {
    /// Param name, as the template declares it.
    pub name: String,
    /// The value, with references into the event.
    pub value: String,
}

/// `TriggerTemplate.spec`: params and the runs to create.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerTemplateSpec {
    /// Declared params.
    #[serde(default)]
    pub params: Vec<TemplateParam>,
    /// The objects to create, with `$(tt.params.NAME)` in their strings.
    #[serde(default, rename = "resourcetemplates")]
    pub resource_templates: Vec<Value>,
}

/// A template param.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateParam {
    /// Name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Used when no binding gives a value.
    #[serde(default)]
    pub default: Option<String>,
}

/// `EventListener.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventListenerSpec {
    /// The triggers tried for every event.
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
    /// Kubernetes settings slipway has no use for (service account, resources, selectors).
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// One trigger: interceptors, bindings, a template (inline in a listener, or a `Trigger`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    /// Name, for messages.
    #[serde(default)]
    pub name: Option<String>,
    /// A `Trigger` object to use instead of the fields below.
    #[serde(default)]
    pub trigger_ref: Option<String>,
    /// Checks and enrichments, in order.
    #[serde(default)]
    pub interceptors: Vec<InterceptorSpec>,
    /// Where params come from.
    #[serde(default)]
    pub bindings: Vec<BindingRef>,
    /// What to create.
    #[serde(default)]
    pub template: Option<TemplateRef>,
    /// Service account; kept for fidelity, unused locally.
    #[serde(default)]
    pub service_account_name: Option<String>,
}

/// A binding: a reference to a TriggerBinding, or one inline param.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BindingRef {
    /// `TriggerBinding` name.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// `TriggerBinding` or `ClusterTriggerBinding`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Inline param name.
    #[serde(default)]
    pub name: Option<String>,
    /// Inline param value.
    #[serde(default)]
    pub value: Option<String>,
    /// Inline binding spec (older form).
    #[serde(default)]
    pub spec: Option<TriggerBindingSpec>,
}

/// The template: by reference or inline.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TemplateRef {
    /// `TriggerTemplate` name.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// The same, older spelling.
    #[serde(default)]
    pub name: Option<String>,
    /// Inline spec.
    #[serde(default)]
    pub spec: Option<TriggerTemplateSpec>,
}

/// An interceptor as written: `ref` + `params` (v1beta1) or `github:`/`gitlab:`/`cel:` (v1alpha1).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InterceptorSpec {
    /// Name, for messages.
    #[serde(default)]
    pub name: Option<String>,
    /// `ClusterInterceptor` by name: `github`, `gitlab`, `cel`.
    #[serde(default, rename = "ref")]
    pub reference: Option<InterceptorRef>,
    /// Its params.
    #[serde(default)]
    pub params: Vec<InterceptorParam>,
    /// Older form.
    #[serde(default)]
    pub github: Option<Value>,
    /// Older form.
    #[serde(default)]
    pub gitlab: Option<Value>,
    /// Older form.
    #[serde(default)]
    pub cel: Option<Value>,
    /// Other interceptors (webhook, bitbucket, custom), which slipway does not run.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `ref` of an interceptor.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InterceptorRef {
    /// `github`, `gitlab`, `cel`, ...
    pub name: String,
    /// `ClusterInterceptor` or `NamespacedInterceptor`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// One interceptor param.
#[derive(Debug, Clone, Deserialize)]
pub struct InterceptorParam {
    /// Name.
    pub name: String,
    /// Any JSON value.
    pub value: Value,
}
