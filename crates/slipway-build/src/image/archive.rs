//! The `--tar-path` archive: one tar that `docker load` reads (`manifest.json`,
//! `repositories`) and that is also an OCI image layout (`oci-layout`, `index.json`), both
//! naming the same `blobs/sha256/…` files.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

use crate::image::{Image, ImageError, canonical_json};
use crate::layer::MediaTypes;
use crate::layer::media::OCI_INDEX;
use crate::store::{Digest, Store, StoreError};

/// Writes `image` (blobs from `store`) as a tar at `path`, tagged with `tags`
/// (`name[:tag]`, `latest` by default).
pub fn write_tar(
    image: &Image,
    store: &Store,
    tags: &[String],
    media: MediaTypes,
    path: &Path,
) -> Result<(), ImageError> {
    let m = image.manifest(media)?;
    for l in &image.layers {
        if !store.has_blob(&l.digest) {
            return Err(StoreError::MissingBlob {
                digest: l.digest.clone(),
            }
            .into());
        }
    }
    let tags: Vec<(String, String)> = tags.iter().map(|t| split_tag(t)).collect();
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let docker_manifest = serde_json::json!([{
        "Config": blob(&m.config_digest),
        "RepoTags": tags.iter().map(|(n, t)| format!("{n}:{t}")).collect::<Vec<_>>(),
        "Layers": image.layers.iter().map(|l| blob(&l.digest)).collect::<Vec<_>>(),
    }]);
    let mut repositories = serde_json::Map::new();
    for (name, tag) in &tags {
        let entry = repositories
            .entry(name.clone())
            .or_insert_with(|| serde_json::json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(tag.clone(), m.config_digest.hex().into());
        }
    }
    let descriptor = |annotations: Option<serde_json::Value>| {
        let mut d = serde_json::json!({
            "mediaType": m.media_type,
            "digest": m.digest.0,
            "size": m.json.len(),
        });
        if let (Some(a), Some(obj)) = (annotations, d.as_object_mut()) {
            obj.insert("annotations".into(), a);
        }
        d
    };
    let manifests: Vec<serde_json::Value> = if tags.is_empty() {
        vec![descriptor(None)]
    } else {
        tags.iter()
            .map(|(n, t)| {
                descriptor(Some(serde_json::json!({
                    "io.containerd.image.name": format!("{n}:{t}"),
                    "org.opencontainers.image.ref.name": t,
                })))
            })
            .collect()
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });

    let file = File::create(path).map_err(io("create", path))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let w = |source| io("write", path)(source);
    for dir in ["blobs/", "blobs/sha256/"] {
        append(&mut tar, dir, tar::EntryType::Directory, 0, &[][..]).map_err(w)?;
    }
    let mut written = std::collections::BTreeSet::new();
    for l in &image.layers {
        if written.insert(l.digest.clone()) {
            let p = store.blob_path(&l.digest);
            let f = File::open(&p).map_err(io("open", &p))?;
            let size = f.metadata().map_err(io("stat", &p))?.len();
            append(&mut tar, &blob(&l.digest), tar::EntryType::Regular, size, f).map_err(w)?;
        }
    }
    let small = [
        (blob(&m.config_digest), m.config_json.clone()),
        (blob(&m.digest), m.json.clone()),
        ("index.json".to_string(), canonical_json(&index, "index")?),
        (
            "manifest.json".to_string(),
            canonical_json(&docker_manifest, "manifest.json")?,
        ),
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (
            "repositories".to_string(),
            canonical_json(&repositories, "repositories")?,
        ),
    ];
    for (name, bytes) in small {
        let size = bytes.len() as u64;
        append(&mut tar, &name, tar::EntryType::Regular, size, &bytes[..]).map_err(w)?;
    }
    let out = tar.into_inner().map_err(w)?;
    let file = out.into_inner().map_err(|e| w(e.into_error()))?;
    file.sync_all().map_err(w)
}

/// One archive member: root-owned, time 0, so the archive depends on the image alone.
fn append<W: std::io::Write, R: Read>(
    tar: &mut tar::Builder<W>,
    name: &str,
    kind: tar::EntryType,
    size: u64,
    data: R,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(0);
    tar.append_data(&mut h, name, data)
}

/// `name[:tag]` → (name, tag); a `:` before the last `/` is a registry's port.
fn split_tag(t: &str) -> (String, String) {
    let slash = t.rfind('/').map_or(0, |i| i + 1);
    match t[slash..].rfind(':') {
        Some(i) => (t[..slash + i].to_string(), t[slash + i + 1..].to_string()),
        None => (t.to_string(), "latest".to_string()),
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_registry_port() {
        assert_eq!(split_tag("app"), ("app".into(), "latest".into()));
        assert_eq!(split_tag("app:1"), ("app".into(), "1".into()));
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b".into(), "latest".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b:v2"),
            ("127.0.0.1:5000/a/b".into(), "v2".into())
        );
    }
}
