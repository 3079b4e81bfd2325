//! The image being built: its config (Env, Cmd, ...), history and layers; manifests and the
//! `--tar-path` archive.

mod archive;
mod platform;

use std::path::PathBuf;

use crate::config::{History, ImageConfig};

pub use crate::image::archive::write_tar;
pub use crate::image::platform::{BadPlatform, Platform};
use crate::layer::{Layer, MediaTypes};
use crate::store::Digest;

/// An image: its config and its layers (`config.rootfs.diff_ids` always lists the layers'
/// diff_ids, in order).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Image {
    /// The image config (Docker's shape, a superset of OCI's).
    pub config: ImageConfig,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
}

/// A manifest and the config it names, serialized (deterministically).
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The config blob.
    pub config_json: Vec<u8>,
    /// Its digest.
    pub config_digest: Digest,
    /// The manifest.
    pub json: Vec<u8>,
    /// Its digest (the image's identity in a registry).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
}

/// Why an image could not be serialized or written; each reads after "failed to ".
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The config lists other diff_ids than the layers have.
    #[error(
        "serialize the image: its config lists {diff_ids} diff_ids for {layers} layers, or in another order"
    )]
    DiffIds {
        /// Entries in `rootfs.diff_ids`.
        diff_ids: usize,
        /// Layers.
        layers: usize,
    },
    /// JSON encoding failed.
    #[error("encode the image's {what}")]
    Encode {
        /// `config`, `manifest`, ...
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A file could not be read or written.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A blob the image needs is not in the store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Image {
    /// An empty image for `platform` (`FROM scratch`).
    pub fn scratch(platform: &Platform) -> Image {
        let config = ImageConfig {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
            ..ImageConfig::default()
        };
        Image {
            config,
            layers: Vec::new(),
        }
    }

    /// Appends `layer` with its history entry (`created` in Unix seconds).
    pub fn push_layer(&mut self, layer: Layer, created_by: &str, created: i64) {
        self.config.rootfs.diff_ids.push(layer.diff_id.0.clone());
        self.layers.push(layer);
        self.push_history(created_by, created, false);
    }

    /// Appends a history entry; `empty_layer` for instructions that change only the config.
    pub fn push_history(&mut self, created_by: &str, created: i64, empty_layer: bool) {
        self.config.history.push(History {
            created: Some(rfc3339(created)),
            created_by: Some(created_by.to_string()),
            empty_layer,
            ..History::default()
        });
    }

    /// The config and manifest as pushed and archived: keys sorted, no whitespace, layer
    /// media types renamed into `media`'s family.
    pub fn manifest(&self, media: MediaTypes) -> Result<Manifest, ImageError> {
        let diff_ids = &self.config.rootfs.diff_ids;
        if diff_ids.len() != self.layers.len()
            || diff_ids
                .iter()
                .zip(&self.layers)
                .any(|(d, l)| *d != l.diff_id.0)
        {
            return Err(ImageError::DiffIds {
                diff_ids: diff_ids.len(),
                layers: self.layers.len(),
            });
        }
        let config_json = canonical_json(&self.config, "config")?;
        let config_digest = Digest::of_bytes(&config_json);
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "mediaType": media.convert_layer(&l.media_type),
                    "digest": l.digest.0,
                    "size": l.size,
                })
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media.manifest(),
            "config": {
                "mediaType": media.config(),
                "digest": config_digest.0,
                "size": config_json.len(),
            },
            "layers": layers,
        });
        let json = canonical_json(&manifest, "manifest")?;
        Ok(Manifest {
            digest: Digest::of_bytes(&json),
            json,
            config_json,
            config_digest,
            media_type: media.manifest().to_string(),
        })
    }
}

/// `value` as JSON with every object's keys sorted (maps in the config are hash maps, so
/// their order would otherwise change from run to run).
pub(crate) fn canonical_json<T: serde::Serialize>(
    value: &T,
    what: &'static str,
) -> Result<Vec<u8>, ImageError> {
    let enc = |source| ImageError::Encode { what, source };
    let v = serde_json::to_value(value).map_err(enc)?;
    serde_json::to_vec(&sorted(v)).map_err(enc)
}

fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Unix seconds as RFC 3339 (`1970-01-01T00:00:00Z`); times before 1970 become 1970.
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ContainerConfig;

    fn layer(n: u8) -> Layer {
        Layer {
            digest: Digest::of_bytes(&[n, 1]),
            diff_id: Digest::of_bytes(&[n, 2]),
            size: 100 + u64::from(n),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_string(),
        }
    }

    fn sample() -> Image {
        let mut img = Image::scratch(&Platform::parse("linux/arm64/v8").expect("platform"));
        img.config.config = ContainerConfig {
            labels: Some((0..20).map(|i| (format!("l{i}"), i.to_string())).collect()),
            env: Some(vec!["PATH=/bin".to_string()]),
            ..ContainerConfig::default()
        };
        img.push_layer(layer(1), "RUN a", 0);
        img.push_history("ENV x=1", 86_400, true);
        img.push_layer(layer(2), "RUN b", 1_700_000_000);
        img
    }

    #[test]
    fn manifest_is_deterministic_and_names_its_blobs() {
        let img = sample();
        let a = img.manifest(MediaTypes::Oci).expect("manifest");
        for _ in 0..5 {
            let again = sample().manifest(MediaTypes::Oci).expect("manifest");
            assert_eq!(again.json, a.json);
            assert_eq!(again.config_json, a.config_json);
        }
        assert_eq!(a.digest, Digest::of_bytes(&a.json));
        let m: serde_json::Value = serde_json::from_slice(&a.json).expect("json");
        assert_eq!(m["config"]["digest"], a.config_digest.0.as_str());
        assert_eq!(m["config"]["size"], a.config_json.len());
        assert_eq!(m["layers"][1]["size"], 102);
        let d = img.manifest(MediaTypes::Docker).expect("docker");
        let m: serde_json::Value = serde_json::from_slice(&d.json).expect("json");
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(m["config"]["mediaType"], media_docker_config());
    }

    fn media_docker_config() -> &'static str {
        crate::layer::media::DOCKER_CONFIG
    }

    #[test]
    fn config_json_snapshot() {
        let m = sample().manifest(MediaTypes::Oci).expect("manifest");
        let text = String::from_utf8(m.config_json).expect("utf-8");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn mismatched_diff_ids_are_refused() {
        let mut img = sample();
        img.layers.pop();
        let err = img.manifest(MediaTypes::Oci).expect_err("mismatch");
        insta::assert_snapshot!(err.to_string(), @"serialize the image: its config lists 2 diff_ids for 1 layers, or in another order");
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }
}
