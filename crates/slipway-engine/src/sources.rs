//! Where a TaskRun's inputs come from: ConfigMaps and Secrets loaded with the run (env and
//! projected files), and the backing of workspaces and volumes.

use base64::Engine as _;
use serde_json::Value;
use slipway_model::Library;
use slipway_model::kinds::k8s::{EnvVarSource, Volume};
use slipway_model::kinds::run::{ProjectionSource, WorkspaceBinding};

use crate::error::Failure;
use crate::executor::{ObjectVolume, ObjectVolumeKind, ProjectedFile, VolumeSource};

/// A workspace as bound for one TaskRun: its backing and sub-path.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The backing.
    pub source: VolumeSource,
    /// Sub-directory.
    pub sub_path: Option<String>,
}

pub(crate) fn env_from_source(
    lib: &Library,
    var: &str,
    src: &EnvVarSource,
) -> Result<Option<String>, Failure> {
    let (sel, entries) = if let Some(sel) = &src.secret_key_ref {
        (
            sel,
            secret_entries(lib, &sel.name, sel.optional.unwrap_or(false))?,
        )
    } else if let Some(sel) = &src.config_map_key_ref {
        (
            sel,
            config_map_entries(lib, &sel.name, sel.optional.unwrap_or(false))?,
        )
    } else {
        // fieldRef and resourceFieldRef describe a pod; locally there is none.
        return Ok(None);
    };
    match entries.into_iter().find(|(k, _)| *k == sel.key) {
        Some((_, v)) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
        None if sel.optional.unwrap_or(false) => Ok(None),
        None => Err(Failure::new(
            "CreateContainerConfigError",
            format!("env `{var}`: key `{}` not found in `{}`", sel.key, sel.name),
        )),
    }
}

/// Entries of a loaded ConfigMap.
pub(crate) fn config_map_entries(
    lib: &Library,
    name: &str,
    optional: bool,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    match lib.config_maps.get(name) {
        Some(cm) => {
            let mut out: Vec<(String, Vec<u8>)> = cm
                .spec
                .data
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect();
            for (k, v) in &cm.spec.binary_data {
                out.push((k.clone(), decode(v, name)?));
            }
            Ok(out)
        }
        None if optional => Ok(Vec::new()),
        None => Err(Failure::new(
            "CreateContainerConfigError",
            format!("ConfigMap `{name}` not found; load it with -f"),
        )),
    }
}

/// Entries of a loaded Secret, decoded.
pub(crate) fn secret_entries(
    lib: &Library,
    name: &str,
    optional: bool,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    match lib.secrets.get(name) {
        Some(s) => {
            let mut out = Vec::new();
            for (k, v) in &s.spec.data {
                out.push((k.clone(), decode(v, name)?));
            }
            for (k, v) in &s.spec.string_data {
                out.retain(|(x, _)| x != k);
                out.push((k.clone(), v.clone().into_bytes()));
            }
            Ok(out)
        }
        None if optional => Ok(Vec::new()),
        None => Err(Failure::new(
            "CreateContainerConfigError",
            format!("Secret `{name}` not found; load it with -f"),
        )),
    }
}

fn decode(v: &str, object: &str) -> Result<Vec<u8>, Failure> {
    base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .map_err(|e| {
            Failure::new(
                "CreateContainerConfigError",
                format!("`{object}` holds invalid base64: {e}"),
            )
        })
}

fn projected(entries: Vec<(String, Vec<u8>)>, src: &ProjectionSource) -> VolumeSource {
    let mode = src.default_mode.unwrap_or(0o644);
    let files = match &src.items {
        Some(items) => items
            .iter()
            .filter_map(|it| {
                entries
                    .iter()
                    .find(|(k, _)| *k == it.key)
                    .map(|(_, v)| ProjectedFile {
                        path: it.path.clone(),
                        content: v.clone(),
                        mode: it.mode.unwrap_or(mode),
                    })
            })
            .collect(),
        None => entries
            .into_iter()
            .map(|(k, v)| ProjectedFile {
                path: k,
                content: v,
                mode,
            })
            .collect(),
    };
    VolumeSource::Files {
        files,
        origin: None,
    }
}

/// The same files, saying which volume as written they came from.
fn with_origin(source: VolumeSource, kind: ObjectVolumeKind, spec: Value) -> VolumeSource {
    match source {
        VolumeSource::Files { files, .. } => VolumeSource::Files {
            files,
            origin: Some(ObjectVolume { kind, spec }),
        },
        other => other,
    }
}

/// A `projected` volume or workspace: the files of each ConfigMap and Secret source together.
fn projected_sources(lib: &Library, spec: &Value) -> Result<VolumeSource, Failure> {
    let default_mode = spec
        .get("defaultMode")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok());
    let mut files = Vec::new();
    for source in spec
        .get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (kind, raw) = match (source.get("configMap"), source.get("secret")) {
            (Some(c), _) => ("configMap", c),
            (None, Some(s)) => ("secret", s),
            // downwardAPI and serviceAccountToken sources have no meaning without a cluster.
            _ => continue,
        };
        let mut src: ProjectionSource = serde_json::from_value(raw.clone()).unwrap_or_default();
        src.default_mode = src.default_mode.or(default_mode);
        let name = src.object_name().unwrap_or("").to_string();
        let optional = src.optional.unwrap_or(false);
        let entries = if kind == "configMap" {
            config_map_entries(lib, &name, optional)?
        } else {
            secret_entries(lib, &name, optional)?
        };
        if let VolumeSource::Files { files: more, .. } = projected(entries, &src) {
            files.extend(more);
        }
    }
    Ok(with_origin(
        VolumeSource::Files {
            files,
            origin: None,
        },
        ObjectVolumeKind::Projected,
        spec.clone(),
    ))
}

/// The backing of a run's workspace binding; `owner` scopes scratch space.
pub fn binding_source(lib: &Library, b: &WorkspaceBinding, owner: &str) -> Result<Bound, Failure> {
    let source = if b.empty_dir.is_some() {
        VolumeSource::EmptyDir {
            key: format!("{owner}/{}", b.name),
        }
    } else if let Some(template) = &b.volume_claim_template {
        VolumeSource::ClaimTemplate {
            key: format!("{owner}/claim-{}", b.name),
            template: template.clone(),
        }
    } else if let Some(c) = &b.persistent_volume_claim {
        VolumeSource::Claim {
            name: c.claim_name.clone(),
        }
    } else if let Some(c) = &b.config_map {
        let name = c.object_name().unwrap_or("");
        let files = projected(
            config_map_entries(lib, name, c.optional.unwrap_or(false))?,
            c,
        );
        with_origin(
            files,
            ObjectVolumeKind::ConfigMap,
            serde_json::to_value(c).unwrap_or_default(),
        )
    } else if let Some(s) = &b.secret {
        let name = s.object_name().unwrap_or("");
        let files = projected(secret_entries(lib, name, s.optional.unwrap_or(false))?, s);
        with_origin(
            files,
            ObjectVolumeKind::Secret,
            serde_json::to_value(s).unwrap_or_default(),
        )
    } else if let Some(p) = &b.projected {
        projected_sources(lib, p)?
    } else if let Some(csi) = &b.csi {
        // A cluster's volume (Tekton's csi workspaces): passed on as written.
        VolumeSource::Cluster {
            kind: "csi".to_string(),
            volume: serde_json::json!({"name": b.name, "csi": csi}),
        }
    } else {
        return Err(Failure::new(
            "TaskRunValidationFailed",
            format!(
                "workspace `{}`: only emptyDir, volumeClaimTemplate, persistentVolumeClaim, configMap, secret and projected bindings run locally",
                b.name
            ),
        ));
    };
    Ok(Bound {
        source,
        sub_path: b.sub_path.clone(),
    })
}

pub(crate) fn volume_source(
    lib: &Library,
    v: &Volume,
    taskrun_uid: &str,
    allow_host_paths: bool,
) -> Result<VolumeSource, Failure> {
    let get = |k: &str| v.source.get(k);
    if let Some(cm) = get("configMap") {
        let src: ProjectionSource = serde_json::from_value(cm.clone()).unwrap_or_default();
        let name = src.object_name().unwrap_or("").to_string();
        let files = projected(
            config_map_entries(lib, &name, src.optional.unwrap_or(false))?,
            &src,
        );
        return Ok(with_origin(files, ObjectVolumeKind::ConfigMap, cm.clone()));
    }
    if let Some(s) = get("secret") {
        let src: ProjectionSource = serde_json::from_value(s.clone()).unwrap_or_default();
        let name = src.object_name().unwrap_or("").to_string();
        let files = projected(
            secret_entries(lib, &name, src.optional.unwrap_or(false))?,
            &src,
        );
        return Ok(with_origin(files, ObjectVolumeKind::Secret, s.clone()));
    }
    if let Some(p) = get("projected") {
        return projected_sources(lib, p);
    }
    if let Some(h) = get("hostPath") {
        let path = h
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        if !allow_host_paths {
            return Err(Failure::new(
                "TaskRunValidationFailed",
                format!(
                    "volume `{}` mounts `{path}` of the machine (hostPath), which this server does not allow: it would give the run the server's files; use an emptyDir or a persistentVolumeClaim, or have the operator set `[server] allow_host_paths = true`",
                    v.name
                ),
            ));
        }
        return Ok(VolumeSource::HostPath { path });
    }
    if let Some(c) = get("persistentVolumeClaim") {
        let name = c
            .get("claimName")
            .and_then(Value::as_str)
            .unwrap_or(&v.name)
            .to_string();
        return Ok(VolumeSource::Claim { name });
    }
    // emptyDir, and a volume with no source at all (Kubernetes' default).
    if v.source.is_empty() || get("emptyDir").is_some() {
        return Ok(VolumeSource::EmptyDir {
            key: format!("{taskrun_uid}/vol-{}", v.name),
        });
    }
    let kind = v.source.keys().next().cloned().unwrap_or_default();
    let mut volume = v.source.clone();
    volume.insert("name".to_string(), Value::String(v.name.clone()));
    Ok(VolumeSource::Cluster {
        kind,
        volume: Value::Object(volume),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_csi_workspace_is_a_cluster_volume_named_after_it() {
        let b: WorkspaceBinding =
            serde_json::from_value(json!({"name": "cache", "csi": {"driver": "secrets-store"}}))
                .expect("a binding");
        let bound = binding_source(&Library::default(), &b, "uid").expect("bound");
        assert_eq!(
            bound.source,
            VolumeSource::Cluster {
                kind: "csi".into(),
                volume: json!({"name": "cache", "csi": {"driver": "secrets-store"}}),
            }
        );
    }
}
