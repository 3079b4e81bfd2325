//! Workspaces and Task volumes as Pod volumes: emptyDir, claims, claims made from templates,
//! host paths, and files (configMap, secret, projected) carried in one Secret per Pod.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, ProjectedVolumeSource, Secret,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use sha2::Digest as _;
use slipway_engine::executor::{ObjectVolume, ObjectVolumeKind, TaskRunPlan, VolumeSource};

use crate::pod::PodError;
use crate::{LABEL_MANAGED, LABEL_RUN};

/// A claim to create from a `volumeClaimTemplate`, shared by the run's TaskRuns.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Its name.
    pub name: String,
    /// The object.
    pub object: PersistentVolumeClaim,
}

/// The first 16 hex digits of SHA-256: names that fit Kubernetes' limits.
pub fn short_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// The name of the claim made for a template `key` (a run uid and a workspace).
pub fn claim_name(key: &str) -> String {
    format!("slipway-claim-{}", short_hash(key))
}

/// Pod volumes being gathered for one plan.
pub(crate) struct Volumes<'a> {
    plan: &'a TaskRunPlan,
    pod: &'a str,
    namespace: &'a str,
    volumes: Vec<Volume>,
    /// Task volume name → Pod volume name.
    task: BTreeMap<String, String>,
    workspace_mounts: Vec<VolumeMount>,
    files: BTreeMap<String, ByteString>,
    claims: Vec<Claim>,
    cluster_objects: bool,
}

impl<'a> Volumes<'a> {
    pub(crate) fn new(
        plan: &'a TaskRunPlan,
        pod: &'a str,
        namespace: &'a str,
        cluster_objects: bool,
    ) -> Result<Self, PodError> {
        let mut v = Volumes {
            plan,
            pod,
            namespace,
            volumes: internal_volumes(),
            task: BTreeMap::new(),
            workspace_mounts: Vec::new(),
            files: BTreeMap::new(),
            claims: Vec::new(),
            cluster_objects,
        };
        for (i, w) in plan.workspaces.iter().enumerate() {
            let name = format!("ws-{i}-{}", short_hash(&w.name));
            v.add(&name, &w.source)?;
            v.workspace_mounts.push(VolumeMount {
                name,
                mount_path: w.path.clone(),
                sub_path: w.sub_path.clone(),
                read_only: w.read_only.then_some(true),
                ..VolumeMount::default()
            });
        }
        for (i, (task_name, source)) in plan.volumes.iter().enumerate() {
            let name = format!("vol-{i}-{}", short_hash(task_name));
            v.add(&name, source)?;
            v.task.insert(task_name.clone(), name);
        }
        Ok(v)
    }

    /// The Pod volume behind a Task volume.
    pub(crate) fn task_volume(&self, task_name: &str) -> Option<String> {
        self.task.get(task_name).cloned()
    }

    /// The mounts of every workspace (for every step and sidecar).
    pub(crate) fn workspace_mounts(&self) -> Vec<VolumeMount> {
        self.workspace_mounts.clone()
    }

    fn add(&mut self, name: &str, source: &VolumeSource) -> Result<(), PodError> {
        let mut volume = Volume {
            name: name.to_string(),
            ..Volume::default()
        };
        match source {
            VolumeSource::Cluster {
                volume: written, ..
            } => {
                volume =
                    serde_json::from_value(written.clone()).map_err(|source| PodError::Volume {
                        name: written
                            .get("name")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        source,
                    })?;
                volume.name = name.to_string();
            }
            VolumeSource::EmptyDir { .. } => {
                volume.empty_dir = Some(EmptyDirVolumeSource::default());
            }
            VolumeSource::Claim { name } => {
                volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.clone(),
                    ..PersistentVolumeClaimVolumeSource::default()
                });
            }
            VolumeSource::ClaimTemplate { key, template } => {
                let claim = claim_name(key);
                volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    ..PersistentVolumeClaimVolumeSource::default()
                });
                if !self.claims.iter().any(|c| c.name == claim) {
                    self.claims.push(Claim {
                        object: claim_object(&claim, self.namespace, &self.plan.root_uid, template),
                        name: claim,
                    });
                }
            }
            VolumeSource::HostPath { path } => {
                volume.host_path = Some(HostPathVolumeSource {
                    path: path.clone(),
                    ..HostPathVolumeSource::default()
                });
            }
            VolumeSource::Files {
                origin: Some(origin),
                ..
            } if self.cluster_objects && object_volume(&mut volume, origin) => {}
            VolumeSource::Files { files, .. } => {
                // Files as the engine resolved them from loaded objects, so the cluster needs
                // no copy of the ConfigMaps and Secrets; a Secret keeps them off the Pod spec.
                let mut items = Vec::new();
                for (j, f) in files.iter().enumerate() {
                    let key = format!("{name}-{j}");
                    self.files
                        .insert(key.clone(), ByteString(f.content.clone()));
                    items.push(KeyToPath {
                        key,
                        path: f.path.clone(),
                        mode: i32::try_from(f.mode & 0o777).ok(),
                        ..KeyToPath::default()
                    });
                }
                volume.secret = Some(SecretVolumeSource {
                    secret_name: Some(files_secret_name(self.pod)),
                    items: Some(items),
                    ..SecretVolumeSource::default()
                });
            }
        }
        self.volumes.push(volume);
        Ok(())
    }

    /// The volumes, the files Secret (if any file is projected) and the claims to make.
    pub(crate) fn finish(self) -> (Vec<Volume>, Option<Secret>, Vec<Claim>) {
        let secret = (!self.files.is_empty()).then(|| Secret {
            metadata: ObjectMeta {
                name: Some(files_secret_name(self.pod)),
                namespace: Some(self.namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    LABEL_MANAGED.0.to_string(),
                    LABEL_MANAGED.1.to_string(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(self.files),
            ..Secret::default()
        });
        (self.volumes, secret, self.claims)
    }
}

/// Sets `volume` to mount the cluster's own object as the run wrote it; false when the
/// source as written does not read as a Kubernetes volume (the files are carried instead).
fn object_volume(volume: &mut Volume, origin: &ObjectVolume) -> bool {
    let spec = &origin.spec;
    let name = spec["secretName"].as_str().or(spec["name"].as_str());
    if name.is_none() && origin.kind != ObjectVolumeKind::Projected {
        return false;
    }
    let mut common = json!({});
    for key in ["items", "defaultMode", "optional"] {
        if !spec[key].is_null() {
            common[key] = spec[key].clone();
        }
    }
    let parsed = match origin.kind {
        ObjectVolumeKind::ConfigMap => {
            common["name"] = json!(name);
            serde_json::from_value::<ConfigMapVolumeSource>(common)
                .map(|c| volume.config_map = Some(c))
        }
        ObjectVolumeKind::Secret => {
            common["secretName"] = json!(name);
            serde_json::from_value::<SecretVolumeSource>(common).map(|s| volume.secret = Some(s))
        }
        ObjectVolumeKind::Projected => {
            let mut p = spec.clone();
            if let Some(o) = p.as_object_mut() {
                o.retain(|k, _| k == "sources" || k == "defaultMode");
            }
            serde_json::from_value::<ProjectedVolumeSource>(p).map(|p| volume.projected = Some(p))
        }
    };
    parsed.is_ok()
}

/// The Secret holding a Pod's projected files.
pub fn files_secret_name(pod: &str) -> String {
    format!("{pod}-files")
}

fn internal_volumes() -> Vec<Volume> {
    [
        "tekton-internal-bin",
        "tekton-internal-workspace",
        "tekton-internal-home",
        "tekton-internal-results",
        "tekton-internal-steps",
        "tekton-internal-run",
        "tekton-internal-scripts",
    ]
    .iter()
    .map(|n| Volume {
        name: n.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    })
    .collect()
}

fn claim_object(
    name: &str,
    namespace: &str,
    root_uid: &str,
    template: &serde_json::Value,
) -> PersistentVolumeClaim {
    let mut object: PersistentVolumeClaim =
        serde_json::from_value(template.clone()).unwrap_or_default();
    let meta = &mut object.metadata;
    meta.name = Some(name.to_string());
    meta.generate_name = None;
    meta.namespace = Some(namespace.to_string());
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(LABEL_RUN.to_string(), crate::pod::label_value(root_uid));
    labels.insert(LABEL_MANAGED.0.to_string(), LABEL_MANAGED.1.to_string());
    object.status = None;
    object
}

#[cfg(test)]
mod tests {
    use slipway_engine::executor::{ProjectedFile, WorkspacePlan};

    use super::*;
    use serde_json::Value;

    fn plan_with(source: VolumeSource) -> TaskRunPlan {
        TaskRunPlan {
            uid: "u".into(),
            name: "t".into(),
            workspaces: vec![WorkspacePlan {
                name: "conf".into(),
                path: "/workspace/conf".into(),
                source,
                sub_path: None,
                read_only: false,
                isolated: false,
            }],
            ..TaskRunPlan::default()
        }
    }

    fn files(kind: ObjectVolumeKind, spec: Value) -> VolumeSource {
        VolumeSource::Files {
            files: vec![ProjectedFile {
                path: "k".into(),
                content: b"secret value".to_vec(),
                mode: 0o644,
            }],
            origin: Some(ObjectVolume { kind, spec }),
        }
    }

    fn last(v: &Volumes<'_>) -> Volume {
        v.volumes.last().cloned().expect("a volume")
    }

    #[test]
    fn in_a_cluster_the_run_mounts_the_objects_it_names() {
        let plan = plan_with(files(
            ObjectVolumeKind::Secret,
            json!({"secretName": "creds", "items": [{"key": "k", "path": "k"}], "defaultMode": 256}),
        ));
        let v = Volumes::new(&plan, "p", "ci", true).expect("volumes");
        let vol = last(&v);
        let secret = vol.secret.expect("a secret volume");
        assert_eq!(secret.secret_name.as_deref(), Some("creds"));
        assert_eq!(secret.default_mode, Some(256));
        assert!(v.files.is_empty(), "no value leaves the cluster's Secret");

        let plan = plan_with(files(
            ObjectVolumeKind::ConfigMap,
            json!({"name": "settings"}),
        ));
        let vol = last(&Volumes::new(&plan, "p", "ci", true).expect("volumes"));
        assert_eq!(vol.config_map.map(|c| c.name), Some("settings".into()));

        let projected =
            json!({"sources": [{"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]});
        let plan = plan_with(files(ObjectVolumeKind::Projected, projected));
        let vol = last(&Volumes::new(&plan, "p", "ci", true).expect("volumes"));
        assert_eq!(
            vol.projected.and_then(|p| p.sources).map(|s| s.len()),
            Some(2)
        );
    }

    #[test]
    fn outside_a_cluster_the_files_travel_in_the_pods_own_secret() {
        let plan = plan_with(files(
            ObjectVolumeKind::Secret,
            json!({"secretName": "creds"}),
        ));
        let v = Volumes::new(&plan, "p", "ci", false).expect("volumes");
        let vol = last(&v);
        assert_eq!(
            vol.secret.and_then(|s| s.secret_name),
            Some(files_secret_name("p"))
        );
        assert_eq!(v.files.len(), 1);
    }
}
