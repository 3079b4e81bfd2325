//! What one round of the controller sees: the nodes (labels, last heartbeat) and every
//! NodeImage, typed, with the changes the round makes to their specs; plus the small rules the
//! verbs share (which nodes a job selects, how an image splits into name and tag, owners).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use slipway_model::kinds::kruise::{
    ImagePullJobTemplate, ImageTagSpec, LabelSelectorRequirement, NodeImageSpec, NodeImageStatus,
};
use slipway_store::PrewarmObject;

/// How the controller paces itself and when it gives up on a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between rounds.
    pub interval: Duration,
    /// A node whose last heartbeat is older than this is not answering.
    pub node_grace: Duration,
    /// The wait before a failed node is retried within its job; doubled for each retry.
    pub retry_base: Duration,
    /// Retries of a failed node within a job (each one a fresh set of the node's own retries).
    pub job_retries: u32,
    /// How often a `Never` job checks a node it has finished again.
    pub recheck: Duration,
    /// Only the jobs of this namespace are this controller's: tags that other namespaces' jobs
    /// own are left alone (every namespace when `None`).
    pub namespace: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(1),
            // Kubernetes' node-monitor-grace-period.
            node_grace: Duration::from_secs(40),
            retry_base: Duration::from_secs(2),
            job_retries: 2,
            recheck: Duration::from_secs(24 * 3600),
            namespace: None,
        }
    }
}

/// A node as the controller knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The `lastHeartbeatTime` of its `Ready` condition, when it is `True`.
    pub heartbeat: Option<SystemTime>,
}

impl NodeInfo {
    /// From a stored Node.
    pub fn from_object(o: &PrewarmObject) -> NodeInfo {
        let labels = o.object["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let heartbeat = o.object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready" && c["status"] == "True")
            .and_then(|c| c["lastHeartbeatTime"].as_str())
            .and_then(parse_time);
        NodeInfo {
            name: o.name.clone(),
            labels,
            heartbeat,
        }
    }

    /// Why the node does not count as answering at `now`, if it does not. Silence is counted
    /// from `watching` at the earliest (when this controller started): a server that was down
    /// gives its nodes a grace period to reach it again.
    pub fn silent(&self, now: SystemTime, grace: Duration, watching: SystemTime) -> Option<String> {
        match self.heartbeat {
            None => Some(format!("node {} is not ready", self.name)),
            Some(at) if now.duration_since(at.max(watching)).unwrap_or_default() > grace => {
                Some(format!(
                    "node {} stopped answering: no heartbeat since {}",
                    self.name,
                    format_time(at)
                ))
            }
            Some(_) => None,
        }
    }
}

/// A NodeImage, typed, and whether the round changed its spec.
#[derive(Debug, Clone)]
pub struct NodeImageDoc {
    /// The spec, as the round leaves it.
    pub spec: NodeImageSpec,
    /// The status, as the agent wrote it.
    pub status: NodeImageStatus,
    /// Whether `spec` differs from the stored one.
    pub dirty: bool,
}

impl NodeImageDoc {
    /// From a stored NodeImage (an unreadable spec or status reads as empty).
    pub fn from_object(o: &PrewarmObject) -> NodeImageDoc {
        let spec = serde_json::from_value(o.object["spec"].clone()).unwrap_or_default();
        let status = serde_json::from_value(o.object["status"].clone()).unwrap_or_default();
        NodeImageDoc {
            spec,
            status,
            dirty: false,
        }
    }

    /// A NodeImage the round creates.
    pub fn new() -> NodeImageDoc {
        NodeImageDoc {
            spec: NodeImageSpec::default(),
            status: NodeImageStatus::default(),
            dirty: true,
        }
    }
}

/// Everything a round reads and changes of the nodes' side.
#[derive(Debug, Clone)]
pub struct World {
    /// The time the round runs at.
    pub now: SystemTime,
    /// Nodes by name order.
    pub nodes: Vec<NodeInfo>,
    /// NodeImages by node name.
    pub images: BTreeMap<String, NodeImageDoc>,
}

/// What the controller remembers between rounds (lost on restart, which only means a failed
/// node gets its retries again).
#[derive(Debug, Default)]
pub struct Memory {
    /// Retries spent, by job uid and node.
    pub retries: HashMap<(String, String), u32>,
    /// When the first round ran.
    pub started: Option<SystemTime>,
}

/// An image reference as NodeImage keys it: the name, and the tag (or digest).
pub fn split_image(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.rsplit_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Why a job selects no node at all, when it cannot select by what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unselectable {
    /// `podSelector`: slipway has no pods.
    PodSelector,
}

impl Unselectable {
    /// The job's message.
    pub fn message(self) -> &'static str {
        match self {
            Unselectable::PodSelector => {
                "podSelector is not supported: slipway has no pods; choose nodes with selector"
            }
        }
    }
}

/// Whether the job's template selects `node`.
pub fn selects(t: &ImagePullJobTemplate, node: &NodeInfo) -> Result<bool, Unselectable> {
    if t.pod_selector.is_some() {
        return Err(Unselectable::PodSelector);
    }
    let Some(s) = &t.selector else {
        return Ok(true);
    };
    if let Some(names) = &s.names {
        return Ok(names.contains(&node.name));
    }
    let labels_ok = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let exprs_ok = s
        .match_expressions
        .iter()
        .flatten()
        .all(|r| requirement(r, &node.labels));
    Ok(labels_ok && exprs_ok)
}

fn requirement(r: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| r.values.contains(v)),
        "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        // Validation refuses other operators; one that slipped through selects nothing.
        _ => false,
    }
}

/// The owner reference a job puts on the tags it asks for.
pub fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": kind, "name": name, "uid": uid,
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// The owner reference an ImagePullJob puts on a NodeImage tag: OpenKruise's tag owners are
/// object references, so they carry the job's namespace.
pub fn tag_owner(namespace: &str, name: &str, uid: &str) -> Value {
    let mut o = owner("ImagePullJob", name, uid);
    o["namespace"] = json!(namespace);
    o
}

/// Whether the owner reference is of a job in `scope` (any, when `None`; a reference without a
/// namespace is in no particular one).
pub fn in_scope(reference: &Value, scope: Option<&str>) -> bool {
    scope.is_none_or(|ns| reference["namespace"] == ns)
}

/// The uid of an owner reference of `kind`.
pub fn owner_uid<'a>(reference: &'a Value, kind: &str) -> Option<&'a str> {
    (reference["kind"] == kind)
        .then(|| reference["uid"].as_str())
        .flatten()
}

/// Whether the job with `uid` owns `tag`.
pub fn owned_by(tag: &ImageTagSpec, uid: &str) -> bool {
    tag.owner_references
        .iter()
        .any(|r| owner_uid(r, "ImagePullJob") == Some(uid))
}

/// RFC 3339 in seconds, as Kubernetes writes times.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// An RFC 3339 time.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_model::kinds::kruise::NodeSelector;

    #[test]
    fn images_split_as_nodeimage_keys_them() {
        let cases = [
            ("127.0.0.1:5000/a/b:1.2", ("127.0.0.1:5000/a/b", "1.2")),
            ("127.0.0.1:5000/a/b", ("127.0.0.1:5000/a/b", "latest")),
            ("alpine", ("alpine", "latest")),
            ("r/a@sha256:abc", ("r/a", "sha256:abc")),
        ];
        for (image, (name, tag)) in cases {
            assert_eq!(split_image(image), (name.into(), tag.into()), "{image}");
        }
    }

    #[test]
    fn selectors_choose_by_name_labels_and_expressions() {
        let node = NodeInfo {
            name: "n1".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            heartbeat: None,
        };
        let with = |s: NodeSelector| ImagePullJobTemplate {
            selector: Some(s),
            ..Default::default()
        };
        let names = with(NodeSelector {
            names: Some(vec!["n2".into()]),
            ..Default::default()
        });
        assert_eq!(selects(&names, &node), Ok(false));
        let labels = with(NodeSelector {
            match_labels: Some(
                [("zone".to_string(), "a".to_string())]
                    .into_iter()
                    .collect(),
            ),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "gpu".into(),
                operator: "DoesNotExist".into(),
                values: vec![],
            }]),
            ..Default::default()
        });
        assert_eq!(selects(&labels, &node), Ok(true));
        assert_eq!(
            selects(&ImagePullJobTemplate::default(), &node),
            Ok(true),
            "no selector: every node"
        );
    }

    #[test]
    fn a_node_without_a_recent_heartbeat_is_silent() {
        let now = SystemTime::now();
        let mut node = NodeInfo {
            name: "n1".into(),
            labels: BTreeMap::new(),
            heartbeat: Some(now - Duration::from_secs(5)),
        };
        let long_ago = now - Duration::from_secs(3600);
        let grace = Duration::from_secs(40);
        assert_eq!(node.silent(now, grace, long_ago), None);
        node.heartbeat = Some(now - Duration::from_secs(60));
        let why = node.silent(now, grace, long_ago).expect("silent");
        assert!(why.starts_with("node n1 stopped answering"), "{why}");
        // A controller that started 10 s ago gives the node the rest of its grace.
        assert_eq!(node.silent(now, grace, now - Duration::from_secs(10)), None);
    }
}
