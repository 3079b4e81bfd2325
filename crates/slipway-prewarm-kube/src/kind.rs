//! The four kinds pre-warming reads on a cluster, where they live in the API, and how an object
//! of theirs becomes the controller's [`PrewarmObject`].

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};
use slipway_store::PrewarmObject;

/// OpenKruise's API group and the version slipway writes (the CRDs store `v1alpha1`).
pub const KRUISE_API_VERSION: &str = "apps.kruise.io/v1alpha1";

/// A kind the controller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `apps.kruise.io` ImagePullJob (namespaced).
    ImagePullJob,
    /// `apps.kruise.io` ImageListPullJob (namespaced).
    ImageListPullJob,
    /// `apps.kruise.io` NodeImage (cluster-scoped).
    NodeImage,
    /// Core `v1` Node.
    Node,
}

impl Kind {
    /// Every kind, in the order caches start.
    pub const ALL: [Kind; 4] = [
        Kind::ImagePullJob,
        Kind::ImageListPullJob,
        Kind::NodeImage,
        Kind::Node,
    ];

    /// The kind the controller names.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its name, as the controller and the objects' `kind` say it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ImagePullJob => "ImagePullJob",
            Kind::ImageListPullJob => "ImageListPullJob",
            Kind::NodeImage => "NodeImage",
            Kind::Node => slipway_server::controller::NODE,
        }
    }

    /// Where the API serves it.
    pub fn resource(self) -> ApiResource {
        let kruise = |kind: &str, plural: &str| ApiResource {
            group: "apps.kruise.io".into(),
            version: "v1alpha1".into(),
            api_version: KRUISE_API_VERSION.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        match self {
            Kind::ImagePullJob => kruise("ImagePullJob", "imagepulljobs"),
            Kind::ImageListPullJob => kruise("ImageListPullJob", "imagelistpulljobs"),
            Kind::NodeImage => kruise("NodeImage", "nodeimages"),
            Kind::Node => ApiResource::erase::<Node>(&()),
        }
    }

    /// Whether its objects live in namespaces.
    pub fn namespaced(self) -> bool {
        matches!(self, Kind::ImagePullJob | Kind::ImageListPullJob)
    }

    /// The API of its objects in `namespace` (every namespace when `None`; ignored for
    /// cluster-scoped kinds).
    pub fn api(self, client: &kube::Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = self.resource();
        match namespace {
            Some(ns) if self.namespaced() => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        }
    }
}

/// A `resourceVersion` as a number: etcd's revisions are, and the controller compares them
/// only for equality. One that is not a number reads as 0 (writes then meet a conflict).
pub fn version_number(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An object as JSON with its `apiVersion` and `kind` (list items may come without them).
pub fn to_value(kind: Kind, object: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        let ar = kind.resource();
        m.insert("apiVersion".into(), json!(ar.api_version));
        m.insert("kind".into(), json!(ar.kind));
    }
    v
}

/// The controller's view of an object.
pub fn to_prewarm(kind: Kind, object: &Value) -> PrewarmObject {
    let m = &object["metadata"];
    let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
    let created_at = m["creationTimestamp"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    PrewarmObject {
        kind: kind.name().to_string(),
        namespace: text("namespace"),
        name: text("name"),
        uid: text("uid"),
        object: object.clone(),
        resource_version: version_number(object),
        generation: m["generation"].as_i64().unwrap_or(0),
        created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_read_as_the_controller_reads_them() {
        let v = json!({
            "apiVersion": KRUISE_API_VERSION, "kind": "ImagePullJob",
            "metadata": {
                "name": "j", "namespace": "ns", "uid": "u1", "resourceVersion": "42",
                "generation": 3, "creationTimestamp": "1970-01-01T00:00:02Z",
            },
        });
        let o = to_prewarm(Kind::ImagePullJob, &v);
        assert_eq!(
            (o.namespace.as_str(), o.name.as_str(), o.uid.as_str()),
            ("ns", "j", "u1")
        );
        assert_eq!(
            (o.resource_version, o.generation, o.created_at),
            (42, 3, 2000)
        );
        assert_eq!(Kind::from_name("Node"), Some(Kind::Node));
        assert_eq!(Kind::Node.resource().plural, "nodes");
        assert!(!Kind::NodeImage.namespaced());
    }
}
