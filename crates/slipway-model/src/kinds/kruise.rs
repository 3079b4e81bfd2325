//! OpenKruise's image pre-warming kinds (`apps.kruise.io` `v1alpha1` and `v1beta1`):
//! ImagePullJob, ImageListPullJob and NodeImage, with the defaults OpenKruise's webhook fills in.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The API group of the pre-warming kinds.
pub const GROUP: &str = "apps.kruise.io";
/// The versions served; both hold the same fields here.
pub const VERSIONS: &[&str] = &["v1alpha1", "v1beta1"];
/// Most images one NodeImage may list (OpenKruise's limit).
pub const MAX_NODE_IMAGES: usize = 256;
/// `pullPolicy.timeoutSeconds` when not given.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// `pullPolicy.backoffLimit` when not given.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;
/// `parallelism` when not given.
pub const DEFAULT_PARALLELISM: i64 = 1;

/// One of the three pre-warming kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrewarmKind {
    /// Pull one image onto chosen nodes.
    ImagePullJob,
    /// Pull several images onto chosen nodes (one ImagePullJob each).
    ImageListPullJob,
    /// The images one node should hold, and how their pulls went (cluster-scoped).
    NodeImage,
}

impl PrewarmKind {
    /// Every kind.
    pub const ALL: [PrewarmKind; 3] = [
        PrewarmKind::ImagePullJob,
        PrewarmKind::ImageListPullJob,
        PrewarmKind::NodeImage,
    ];

    /// `ImagePullJob`, ...
    pub fn kind(self) -> &'static str {
        match self {
            PrewarmKind::ImagePullJob => "ImagePullJob",
            PrewarmKind::ImageListPullJob => "ImageListPullJob",
            PrewarmKind::NodeImage => "NodeImage",
        }
    }

    /// The resource name in paths: `imagepulljobs`, ...
    pub fn plural(self) -> &'static str {
        match self {
            PrewarmKind::ImagePullJob => "imagepulljobs",
            PrewarmKind::ImageListPullJob => "imagelistpulljobs",
            PrewarmKind::NodeImage => "nodeimages",
        }
    }

    /// Whether objects live in a namespace (NodeImages are cluster-scoped).
    pub fn namespaced(self) -> bool {
        !matches!(self, PrewarmKind::NodeImage)
    }

    /// By `kind`.
    pub fn from_kind(kind: &str) -> Option<PrewarmKind> {
        PrewarmKind::ALL.into_iter().find(|k| k.kind() == kind)
    }

    /// By plural resource name.
    pub fn from_plural(plural: &str) -> Option<PrewarmKind> {
        PrewarmKind::ALL.into_iter().find(|k| k.plural() == plural)
    }

    /// As kubectl reads a resource on its command line: singular, plural or kind, any case,
    /// optionally followed by `.apps.kruise.io`. OpenKruise's CRDs declare no short names.
    pub fn from_resource(word: &str) -> Option<PrewarmKind> {
        let word = word.to_ascii_lowercase();
        let word = word
            .strip_suffix(&format!(".{GROUP}"))
            .unwrap_or(word.as_str());
        PrewarmKind::ALL.into_iter().find(|k| {
            let singular = k.kind().to_ascii_lowercase();
            word == singular || word == k.plural()
        })
    }
}

/// Kubernetes' IntOrString, as `parallelism` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// Text (`"50%"`).
    String(String),
}

/// A label requirement of a selector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values `In` and `NotIn` compare with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Which nodes a job covers: by name, or by labels (not both); none means every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSelector {
    /// Node names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Labels a node must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<IndexMap<String, String>>,
    /// Label requirements a node must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// The nodes of the pods these labels choose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSelector {
    /// Labels a pod must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<IndexMap<String, String>>,
    /// Label requirements a pod must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// How each node's pull is bounded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullPolicy {
    /// Seconds one pull may take (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Retries before a node's pull is failed (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
}

/// When a job is done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompletionType {
    /// Done once every chosen node has pulled or failed.
    #[default]
    Always,
    /// Never done: keeps covering the chosen nodes.
    Never,
}

/// A job's completion policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompletionPolicy {
    /// `Always` (default) or `Never`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompletionType>,
    /// Seconds from the start after which unfinished nodes fail (Always only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Seconds after completion the job is deleted (Always only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// Whether a node pulls an image it already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImagePullPolicy {
    /// Pull every time.
    Always,
    /// Pull only when missing (default).
    IfNotPresent,
}

/// Labels and annotations handed to the CRI `PullImage` call's sandbox config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxConfig {
    /// Labels.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
}

/// What ImagePullJob and ImageListPullJob share: where, how fast, how long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagePullJobTemplate {
    /// Secrets (in the job's namespace) with registry credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<String>,
    /// Which nodes; none means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<NodeSelector>,
    /// The nodes of these pods instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<PodSelector>,
    /// Nodes pulling at once (a number; 0 pauses the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<IntOrString>,
    /// Timeout and retries of each node's pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// When the job is done.
    #[serde(default)]
    pub completion_policy: CompletionPolicy,
    /// Metadata for the CRI pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_config: Option<SandboxConfig>,
    /// `Always` or `IfNotPresent` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
}

impl ImagePullJobTemplate {
    /// Fills in OpenKruise's defaults: parallelism 1, timeout 600 s, 3 retries, completion
    /// `Always`, pull policy `IfNotPresent`.
    pub fn default_fields(&mut self) {
        self.parallelism
            .get_or_insert(IntOrString::Int(DEFAULT_PARALLELISM));
        let p = self.pull_policy.get_or_insert_with(PullPolicy::default);
        p.timeout_seconds.get_or_insert(DEFAULT_TIMEOUT_SECONDS);
        p.backoff_limit.get_or_insert(DEFAULT_BACKOFF_LIMIT);
        self.completion_policy
            .kind
            .get_or_insert(CompletionType::Always);
        self.image_pull_policy
            .get_or_insert(ImagePullPolicy::IfNotPresent);
    }

    /// The completion type, `Always` when not given.
    pub fn completion(&self) -> CompletionType {
        self.completion_policy.kind.unwrap_or_default()
    }

    /// The pull timeout in seconds, the default when not given.
    pub fn timeout_seconds(&self) -> i64 {
        i64::from(
            self.pull_policy
                .as_ref()
                .and_then(|p| p.timeout_seconds)
                .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        )
    }
}

/// ImagePullJob's spec: one image and the template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullJobSpec {
    /// The image to pull.
    pub image: String,
    /// Where, how fast, how long.
    #[serde(flatten)]
    pub template: ImagePullJobTemplate,
}

/// ImageListPullJob's spec: several images and the template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageListPullJobSpec {
    /// The images to pull.
    pub images: Vec<String>,
    /// Where, how fast, how long.
    #[serde(flatten)]
    pub template: ImagePullJobTemplate,
}

/// ImagePullJob's status, as the controller writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullJobStatus {
    /// When the controller took the job up (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Nodes to pull on.
    #[serde(default)]
    pub desired: i32,
    /// Nodes pulling now.
    #[serde(default)]
    pub active: i32,
    /// Nodes done.
    #[serde(default)]
    pub succeeded: i32,
    /// Nodes failed.
    #[serde(default)]
    pub failed: i32,
    /// A summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The nodes that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_nodes: Vec<String>,
}

/// An ImagePullJob of a list that has failed nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedImageStatus {
    /// The ImagePullJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_job: Option<String>,
    /// Its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// ImageListPullJob's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageListPullJobStatus {
    /// When the controller took the job up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When every ImagePullJob completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// ImagePullJobs (one per image).
    #[serde(default)]
    pub desired: i32,
    /// ImagePullJobs running.
    #[serde(default)]
    pub active: i32,
    /// ImagePullJobs finished.
    #[serde(default)]
    pub completed: i32,
    /// ImagePullJobs finished on every node.
    #[serde(default)]
    pub succeeded: i32,
    /// The ImagePullJobs with failed nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_image_statuses: Vec<FailedImageStatus>,
}

/// A Secret named with its namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceObject {
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Bounds of one tag's pull on a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageTagPullPolicy {
    /// Seconds one pull may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Retries before failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
    /// Seconds a finished tag is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Seconds from the start after which the tag's pull is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
}

/// One tag a node should pull.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageTagSpec {
    /// The tag (or digest).
    pub tag: String,
    /// When it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Bounds of its pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<ImageTagPullPolicy>,
    /// The jobs that asked for it (Kubernetes ObjectReferences, kept as given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<Value>,
    /// Bumped when the request changes, so the node agent pulls again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `Always` or `IfNotPresent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Credentials for this tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<ReferenceObject>,
}

/// One image (repository) a node should hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSpec {
    /// Credentials (kept for older writers; tags carry their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<ReferenceObject>,
    /// The tags to pull.
    #[serde(default)]
    pub tags: Vec<ImageTagSpec>,
    /// Metadata for the CRI pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_config: Option<SandboxConfig>,
}

/// NodeImage's spec: images by repository name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeImageSpec {
    /// Images by name (`registry/repository`), at most 256.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub images: IndexMap<String, ImageSpec>,
}

/// Where one tag's pull is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImagePullPhase {
    /// Not started (queued).
    Waiting,
    /// Pulling.
    Pulling,
    /// Pulled.
    Succeeded,
    /// Given up.
    Failed,
}

/// How one tag's pull went on the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageTagStatus {
    /// The tag.
    pub tag: String,
    /// Its phase.
    pub phase: ImagePullPhase,
    /// 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<i32>,
    /// When the pull began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The spec version it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The image's id once pulled.
    #[serde(rename = "imageID", default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// What happened (the runtime's words on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Bytes in the node's content store so far (slipway's addition: CRI reports none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_bytes: Option<u64>,
    /// Bytes of the image's config and layers, as the registry serves them (slipway's addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

/// The tags of one image on the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStatus {
    /// Per tag.
    #[serde(default)]
    pub tags: Vec<ImageTagStatus>,
}

/// When a new node first finished its pulls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_at: Option<String>,
    /// `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// NodeImage's status, as the node agent writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeImageStatus {
    /// Tags in the spec.
    #[serde(default)]
    pub desired: i32,
    /// Tags pulled.
    #[serde(default)]
    pub succeeded: i32,
    /// Tags failed.
    #[serde(default)]
    pub failed: i32,
    /// Tags being pulled.
    #[serde(default)]
    pub pulling: i32,
    /// Tags queued.
    #[serde(default)]
    pub waiting: i32,
    /// Per image, per tag.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub image_statuses: IndexMap<String, ImageStatus>,
    /// The node's first complete sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sync_status: Option<SyncStatus>,
}

/// A pre-warming object's spec, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum PrewarmSpec {
    /// An ImagePullJob's.
    ImagePullJob(ImagePullJobSpec),
    /// An ImageListPullJob's.
    ImageListPullJob(ImageListPullJobSpec),
    /// A NodeImage's.
    NodeImage(NodeImageSpec),
}

impl PrewarmSpec {
    /// Its kind.
    pub fn kind(&self) -> PrewarmKind {
        match self {
            PrewarmSpec::ImagePullJob(_) => PrewarmKind::ImagePullJob,
            PrewarmSpec::ImageListPullJob(_) => PrewarmKind::ImageListPullJob,
            PrewarmSpec::NodeImage(_) => PrewarmKind::NodeImage,
        }
    }

    /// The job template (not for NodeImages).
    pub fn template(&self) -> Option<&ImagePullJobTemplate> {
        match self {
            PrewarmSpec::ImagePullJob(s) => Some(&s.template),
            PrewarmSpec::ImageListPullJob(s) => Some(&s.template),
            PrewarmSpec::NodeImage(_) => None,
        }
    }

    /// Fills in OpenKruise's defaults.
    pub fn default_fields(&mut self) {
        match self {
            PrewarmSpec::ImagePullJob(s) => s.template.default_fields(),
            PrewarmSpec::ImageListPullJob(s) => s.template.default_fields(),
            PrewarmSpec::NodeImage(_) => {}
        }
    }

    /// As JSON, for storing and serving.
    pub fn to_value(&self) -> Value {
        let v = match self {
            PrewarmSpec::ImagePullJob(s) => serde_json::to_value(s),
            PrewarmSpec::ImageListPullJob(s) => serde_json::to_value(s),
            PrewarmSpec::NodeImage(s) => serde_json::to_value(s),
        };
        v.unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_read_as_kubectl_reads_them() {
        for w in [
            "imagepulljob",
            "imagepulljobs",
            "ImagePullJob",
            "imagepulljobs.apps.kruise.io",
        ] {
            assert_eq!(
                PrewarmKind::from_resource(w),
                Some(PrewarmKind::ImagePullJob),
                "{w}"
            );
        }
        assert_eq!(
            PrewarmKind::from_resource("nodeimages"),
            Some(PrewarmKind::NodeImage)
        );
        assert_eq!(PrewarmKind::from_resource("ipj"), None);
        assert_eq!(PrewarmKind::from_resource("imagepulljobs.apps"), None);
    }

    #[test]
    fn defaults_are_openkruise_s() {
        let mut t = ImagePullJobTemplate::default();
        t.default_fields();
        assert_eq!(t.parallelism, Some(IntOrString::Int(1)));
        let p = t.pull_policy.clone().unwrap_or_default();
        assert_eq!((p.timeout_seconds, p.backoff_limit), (Some(600), Some(3)));
        assert_eq!(t.completion(), CompletionType::Always);
        assert_eq!(t.image_pull_policy, Some(ImagePullPolicy::IfNotPresent));
        // Given values stay.
        let mut t = ImagePullJobTemplate {
            parallelism: Some(IntOrString::Int(4)),
            pull_policy: Some(PullPolicy {
                timeout_seconds: Some(30),
                backoff_limit: None,
            }),
            ..Default::default()
        };
        t.default_fields();
        assert_eq!(t.parallelism, Some(IntOrString::Int(4)));
        assert_eq!(t.timeout_seconds(), 30);
    }

    #[test]
    fn a_spec_round_trips_in_openkruise_s_shape() {
        let v = serde_json::json!({
            "image": "nginx:1.25",
            "parallelism": "50%",
            "selector": {"matchLabels": {"a": "b"}},
            "completionPolicy": {"type": "Never"},
        });
        let s: ImagePullJobSpec = serde_json::from_value(v.clone()).expect("spec");
        assert_eq!(
            s.template.parallelism,
            Some(IntOrString::String("50%".into()))
        );
        assert_eq!(serde_json::to_value(&s).expect("json"), v);
    }
}
