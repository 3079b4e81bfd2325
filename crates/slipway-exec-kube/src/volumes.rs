//! Workspaces and Task volumes as Pod volumes: emptyDir, claims, claims made from templates,
//! host paths, and files (configMap, secret, projected) carried in one Secret per Pod.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::Digest as _;
use slipway_engine::executor::{TaskRunPlan, VolumeSource};

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
}

impl<'a> Volumes<'a> {
    pub(crate) fn new(
        plan: &'a TaskRunPlan,
        pod: &'a str,
        namespace: &'a str,
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
            VolumeSource::Files { files } => {
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
