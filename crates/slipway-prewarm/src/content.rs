//! Bytes of a pull in progress, read from containerd's content store (`content.v1.Content`) on
//! the runtime's socket: CRI's PullImage is one unary call and says nothing until it ends.
//!
//! containerd labels what it fetched with the repository it came from (before it fetches a
//! manifest's children), so the manifest of the image being pulled can be found, read, and its
//! blobs matched against the ingests under way (their offsets) and the blobs already stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{
    Info, InfoRequest, ListContentRequest, ListStatusesRequest, ReadContentRequest,
};
use futures::StreamExt as _;
use serde::Deserialize;
use slipway_model::reference::Reference;
use tonic::transport::Channel;

use crate::status::Progress;

/// The namespace containerd's CRI plugin keeps Kubernetes' images in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// Manifests larger than this are not read (real ones are a few KB).
const MANIFEST_LIMIT: i64 = 4 << 20;

/// How far a pull has got, as far as the runtime shows it.
#[async_trait::async_trait]
pub trait ProgressProbe: Send + Sync {
    /// Bytes of `image` stored so far by a pull started at `since`; `None` until the runtime
    /// has fetched the image's manifest, or where it cannot tell.
    async fn progress(&self, image: &Reference, since: SystemTime) -> Option<Progress>;
}

/// A probe that never knows (runtimes other than containerd).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

#[async_trait::async_trait]
impl ProgressProbe for NoProgress {
    async fn progress(&self, _: &Reference, _: SystemTime) -> Option<Progress> {
        None
    }
}

/// containerd's content store in the CRI plugin's namespace.
#[derive(Debug)]
pub struct ContainerdContent {
    channel: Channel,
    namespace: String,
    /// Manifests already read, by digest (content is immutable).
    manifests: Mutex<HashMap<String, Manifest>>,
}

/// The blobs of an image manifest (config and layers), with their sizes.
#[derive(Debug, Clone, Deserialize)]
struct Manifest {
    config: Blob,
    layers: Vec<Blob>,
}

#[derive(Debug, Clone, Deserialize)]
struct Blob {
    digest: String,
    size: u64,
}

/// containerd's label naming the repository a blob came from, keyed by host without port.
fn source_label(reference: &Reference) -> String {
    let registry = reference.registry.as_str();
    // References with IPv6 hosts are rejected by the parser, so `:` only precedes a port.
    let host = registry.split(':').next().unwrap_or(registry);
    format!("containerd.io/distribution.source.{host}")
}

/// When a blob was last written: containerd 1.6 leaves `updated_at` at Go's zero time in
/// listings, so the later of the two that are set.
fn touched(info: &Info) -> Option<SystemTime> {
    let time = |t: &prost_types::Timestamp| {
        let secs = u64::try_from(t.seconds).ok()?;
        let nanos = u32::try_from(t.nanos).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
    };
    let created = info.created_at.as_ref().and_then(time);
    let updated = info.updated_at.as_ref().and_then(time);
    created.max(updated)
}

fn namespaced<T>(message: T, namespace: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = namespace.parse() {
        request.metadata_mut().insert("containerd-namespace", value);
    }
    request
}

impl ContainerdContent {
    /// The content store on `channel` (a containerd socket), in the CRI plugin's namespace.
    pub fn new(channel: Channel) -> Self {
        ContainerdContent {
            channel,
            namespace: CRI_NAMESPACE.to_string(),
            manifests: Mutex::default(),
        }
    }

    fn client(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
    }

    /// Blobs labelled as coming from the image's repository.
    async fn labelled_with_repository(
        &self,
        reference: &Reference,
    ) -> Result<Vec<Info>, tonic::Status> {
        let filter = format!(
            "labels.\"{}\"~=\"(^|,){}(,|$)\"",
            source_label(reference),
            reference.repository.replace('.', "\\\\.")
        );
        let request = ListContentRequest {
            filters: vec![filter],
        };
        let mut stream = self
            .client()
            .list(namespaced(request, &self.namespace))
            .await?
            .into_inner();
        let mut infos = Vec::new();
        while let Some(page) = stream.next().await {
            infos.extend(page?.info);
        }
        Ok(infos)
    }

    /// The manifest with this digest, read once.
    async fn manifest(&self, info: &Info) -> Option<Manifest> {
        if let Ok(cache) = self.manifests.lock()
            && let Some(m) = cache.get(&info.digest)
        {
            return Some(m.clone());
        }
        if info.size > MANIFEST_LIMIT {
            return None;
        }
        let request = ReadContentRequest {
            digest: info.digest.clone(),
            offset: 0,
            size: 0,
        };
        let mut stream = self
            .client()
            .read(namespaced(request, &self.namespace))
            .await
            .ok()?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend(chunk.ok()?.data);
        }
        let manifest: Manifest = serde_json::from_slice(&bytes).ok()?;
        if let Ok(mut cache) = self.manifests.lock() {
            cache.insert(info.digest.clone(), manifest.clone());
        }
        Some(manifest)
    }

    /// The size of a stored blob, if it is stored.
    async fn stored_size(&self, digest: &str) -> Option<u64> {
        let request = InfoRequest {
            digest: digest.to_string(),
        };
        let info = self
            .client()
            .info(namespaced(request, &self.namespace))
            .await
            .ok()?
            .into_inner()
            .info?;
        u64::try_from(info.size).ok()
    }

    /// Offsets of the ingests under way, by the digest they will have: the ingest's ref ends
    /// with it (`layer-sha256:…`), and `expected` holds it where the writer set it.
    async fn ingests(&self) -> Result<HashMap<String, u64>, tonic::Status> {
        let request = ListStatusesRequest::default();
        let statuses = self
            .client()
            .list_statuses(namespaced(request, &self.namespace))
            .await?
            .into_inner()
            .statuses;
        Ok(statuses
            .into_iter()
            .filter_map(|s| {
                let offset = u64::try_from(s.offset).unwrap_or(0);
                let digest = if s.expected.is_empty() {
                    let at = s.r#ref.find("sha256:")?;
                    s.r#ref[at..].to_string()
                } else {
                    s.expected
                };
                Some((digest, offset))
            })
            .collect())
    }
}

/// A manifest's blobs: the config, and the layers.
const MANIFEST_CONFIG_LABEL: &str = "containerd.io/gc.ref.content.config";

#[async_trait::async_trait]
impl ProgressProbe for ContainerdContent {
    async fn progress(&self, image: &Reference, since: SystemTime) -> Option<Progress> {
        let infos = self.labelled_with_repository(image).await.ok()?;
        // A manifest written since this pull began is the one it fetches; when none is (the
        // manifest was stored before), the repository's newest stands in: for another tag of
        // the same repository that is wrong until this pull's manifest arrives.
        let since = since.checked_sub(Duration::from_secs(1)).unwrap_or(since);
        let manifests = infos
            .iter()
            .filter(|i| i.labels.contains_key(MANIFEST_CONFIG_LABEL));
        let manifest_info = manifests
            .clone()
            .filter(|i| touched(i).is_some_and(|t| t >= since))
            .max_by_key(|i| touched(i))
            .or_else(|| manifests.max_by_key(|i| touched(i)))?;
        let manifest = self.manifest(manifest_info).await?;
        let ingests = self.ingests().await.ok()?;
        let stored: HashMap<&str, u64> = infos
            .iter()
            .map(|i| (i.digest.as_str(), u64::try_from(i.size).unwrap_or(0)))
            .collect();
        let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
        let (mut completed, mut total) = (0u64, 0u64);
        for blob in blobs {
            total = total.saturating_add(blob.size);
            let done = match (ingests.get(&blob.digest), stored.get(blob.digest.as_str())) {
                (Some(offset), _) => *offset,
                (None, Some(size)) => *size,
                // Committed but not labelled yet (the label follows the write), or not begun.
                (None, None) => self.stored_size(&blob.digest).await.unwrap_or(0),
            };
            completed = completed.saturating_add(done.min(blob.size));
        }
        Some(Progress { completed, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_label_drops_the_port_as_containerd_does() {
        let r = |s| Reference::parse(s).expect("valid");
        assert_eq!(
            source_label(&r("127.0.0.1:5000/library/busybox:latest")),
            "containerd.io/distribution.source.127.0.0.1"
        );
        assert_eq!(
            source_label(&r("alpine")),
            "containerd.io/distribution.source.docker.io"
        );
    }
}
