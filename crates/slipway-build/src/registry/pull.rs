//! Pulling a base image: rewrites and mirrors, the platform's manifest out of an index, the
//! config, and each layer blob the store lacks (streamed to a file, digest checked).

use crate::config::ImageConfig;
use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use sha2::Digest as _;
use slipway_model::reference::Reference;
use tokio::io::AsyncWriteExt as _;

use crate::image::{Image, Platform};
use crate::layer::Layer;
use crate::layer::media::{self, NotALayer};
use crate::progress::{Direction, Event, Progress};
use crate::registry::transport::{Operation, oci_ref};
use crate::registry::{Registry, RegistryError};
use crate::store::{Digest, Store};

/// Manifest media types a pull accepts.
const ACCEPT: &[&str] = &[
    media::OCI_INDEX,
    media::DOCKER_MANIFEST_LIST,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST,
];

/// Layer downloads at once.
const PARALLEL: usize = 3;

impl Registry {
    /// Pulls `reference` for `platform` into `store`, trying rewritten names and mirrors in
    /// order. When the store remembers the image and the registry reports the same manifest
    /// digest, that one request is all it costs.
    pub async fn pull(
        &self,
        reference: &str,
        platform: &Platform,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<Image, RegistryError> {
        let candidates = self.options.config.candidates(reference)?;
        let last = candidates.len().saturating_sub(1);
        let mut failure = None;
        for (i, r) in candidates.iter().enumerate() {
            match self.pull_one(r, platform, store, progress).await {
                Ok(image) => return Ok(image),
                Err(e) if i < last => {
                    tracing::debug!(reference = %r, error = %e, "mirror failed; trying the next");
                    failure = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(failure.unwrap_or_else(|| RegistryError::BadImage {
            reference: reference.to_string(),
            why: "no registry to pull from".to_string(),
        }))
    }

    /// Only the config of `reference` for `platform` (its entrypoint, cmd, user): the manifest
    /// and the config blob, no layers, trying rewritten names and mirrors in order.
    pub async fn config(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<ImageConfig, RegistryError> {
        let candidates = self.options.config.candidates(reference)?;
        let last = candidates.len().saturating_sub(1);
        let mut failure = None;
        for (i, r) in candidates.iter().enumerate() {
            match self.config_one(r, platform).await {
                Ok(config) => return Ok(config),
                Err(e) if i < last => failure = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(failure.unwrap_or_else(|| RegistryError::BadImage {
            reference: reference.to_string(),
            why: "no registry to pull from".to_string(),
        }))
    }

    async fn config_one(
        &self,
        r: &Reference,
        platform: &Platform,
    ) -> Result<ImageConfig, RegistryError> {
        let client = self
            .client(&r.registry, Operation::Pull)
            .map_err(|e| self.error(Operation::Pull, r, e))?;
        let auth = self.auth(&r.registry);
        let (manifest, _) = self.platform_manifest(&client, &auth, r, platform).await?;
        let mut bytes = Vec::new();
        client
            .pull_blob(&oci_ref(r), &manifest.config, &mut bytes)
            .await
            .map_err(|e| self.error(Operation::Pull, r, e))?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadImage {
            reference: r.to_string(),
            why: format!("its config is not an image config: {e}"),
        })
    }

    async fn pull_one(
        &self,
        r: &Reference,
        platform: &Platform,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<Image, RegistryError> {
        let client = self
            .client(&r.registry, Operation::Pull)
            .map_err(|e| self.error(Operation::Pull, r, e))?;
        let auth = self.auth(&r.registry);
        let oref = oci_ref(r);
        let fail = |e| self.error(Operation::Pull, r, e);
        // A digest pins the content, so a remembered image needs no request at all.
        let top = match &r.digest {
            Some(d) => d.clone(),
            None => client
                .fetch_manifest_digest(&oref, &auth)
                .await
                .map_err(fail)?,
        };
        let key = format!("{r} {platform} {top}");
        if let Some(image) = store.image_get(&key)
            && image.layers.iter().all(|l| store.has_blob(&l.digest))
        {
            self.remember_layers(&image, r);
            return Ok(image);
        }
        let (manifest, manifest_digest) =
            self.platform_manifest(&client, &auth, r, platform).await?;
        let mut config_bytes = Vec::new();
        client
            .pull_blob(&oref, &manifest.config, &mut config_bytes)
            .await
            .map_err(fail)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| RegistryError::BadImage {
                reference: r.to_string(),
                why: format!("its config is not an image config: {e}"),
            })?;
        let layers = self.layers(r, &manifest, &config)?;
        futures::stream::iter(manifest.layers.iter().map(Ok))
            .try_for_each_concurrent(PARALLEL, |d| {
                self.fetch_blob(&client, &oref, r, d, store, progress)
            })
            .await?;
        let image = Image { config, layers };
        store.image_put(&key, &image)?;
        store.image_put(&format!("{}@{manifest_digest}", r.name()), &image)?;
        self.remember_layers(&image, r);
        Ok(image)
    }

    /// Notes where each layer lives, for cross-repository mounts when pushing.
    fn remember_layers(&self, image: &Image, r: &Reference) {
        for l in &image.layers {
            self.remember_source(&l.digest, &r.registry, &r.repository);
        }
    }

    /// The image manifest for `platform`: the reference's own, or the one an index lists.
    async fn platform_manifest(
        &self,
        client: &oci_client::Client,
        auth: &RegistryAuth,
        r: &Reference,
        platform: &Platform,
    ) -> Result<(OciImageManifest, String), RegistryError> {
        let oref = oci_ref(r);
        let fail = |e| self.error(Operation::Pull, r, e);
        let (body, digest) = client
            .pull_manifest_raw(&oref, auth, ACCEPT)
            .await
            .map_err(fail)?;
        let bad = |why: String| RegistryError::BadImage {
            reference: r.to_string(),
            why,
        };
        let probe: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("its manifest: {e}")))?;
        if probe.get("manifests").is_none() {
            let m = serde_json::from_slice(&body).map_err(|e| bad(format!("its manifest: {e}")))?;
            return Ok((m, digest));
        }
        let index: OciImageIndex =
            serde_json::from_slice(&body).map_err(|e| bad(format!("its index: {e}")))?;
        let chosen = index.manifests.iter().find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                platform.matches(
                    &p.os.to_string(),
                    &p.architecture.to_string(),
                    p.variant.as_deref(),
                )
            })
        });
        let Some(entry) = chosen else {
            let available: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .map(|p| match &p.variant {
                    Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                    None => format!("{}/{}", p.os, p.architecture),
                })
                .collect();
            return Err(RegistryError::NoPlatform {
                reference: r.to_string(),
                platform: platform.to_string(),
                available: available.join(", "),
            });
        };
        let (body, digest) = client
            .pull_manifest_raw(&oref.clone_with_digest(entry.digest.clone()), auth, ACCEPT)
            .await
            .map_err(fail)?;
        let m = serde_json::from_slice(&body).map_err(|e| bad(format!("its manifest: {e}")))?;
        Ok((m, digest))
    }

    /// The layers a manifest lists, with the config's diff_ids; foreign layers are refused.
    fn layers(
        &self,
        r: &Reference,
        manifest: &OciImageManifest,
        config: &ImageConfig,
    ) -> Result<Vec<Layer>, RegistryError> {
        let bad = |why: String| RegistryError::BadImage {
            reference: r.to_string(),
            why,
        };
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(bad(format!(
                "its manifest lists {} layers but its config {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| {
                match media::layer_compression(&d.media_type) {
                    Ok(_) => {}
                    Err(NotALayer::Foreign) => {
                        return Err(bad(format!(
                            "layer {} is foreign ({}): non-distributable layers are not supported",
                            d.digest, d.media_type
                        )));
                    }
                    Err(NotALayer::Unknown) => {
                        return Err(bad(format!(
                            "layer {} has media type {}, not a tar layer",
                            d.digest, d.media_type
                        )));
                    }
                }
                Ok(Layer {
                    digest: Digest::parse(&d.digest)?,
                    diff_id: Digest::parse(diff_id)?,
                    size: u64::try_from(d.size).unwrap_or(0),
                    media_type: d.media_type.clone(),
                })
            })
            .collect()
    }

    /// Downloads one blob into the store unless present: streamed to a file under the
    /// store's tmp, hashed on the way, renamed into place when the digest matches.
    async fn fetch_blob(
        &self,
        client: &oci_client::Client,
        oref: &oci_client::Reference,
        r: &Reference,
        d: &OciDescriptor,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let digest = Digest::parse(&d.digest)?;
        if store.has_blob(&digest) {
            return Ok(());
        }
        let fail = |e| self.error(Operation::Pull, r, e);
        let mut stream = client.pull_blob_stream(oref, d).await.map_err(fail)?;
        let total = stream.content_length.or(u64::try_from(d.size).ok());
        let scratch = store.temp_dir()?;
        let path = scratch.path().join("blob");
        let io = |op| {
            let path = path.clone();
            move |source| RegistryError::Io { op, path, source }
        };
        let mut file = tokio::fs::File::create(&path).await.map_err(io("create"))?;
        let mut hasher = sha2::Sha256::new();
        let mut done = 0u64;
        let mut reported = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fail(e.into()))?;
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io("write"))?;
            done += chunk.len() as u64;
            // One event per MiB keeps a slow renderer from holding up the download.
            if done - reported >= 1 << 20 {
                reported = done;
                progress.event(transfer(&digest, done, total));
            }
        }
        file.sync_all().await.map_err(io("write"))?;
        drop(file);
        let actual = Digest::from_hasher(hasher);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                reference: r.to_string(),
                digest,
                actual,
            });
        }
        store.commit_blob(&path, &digest)?;
        progress.event(transfer(&digest, done, total));
        Ok(())
    }
}

fn transfer(digest: &Digest, done: u64, total: Option<u64>) -> Event {
    Event::Transfer {
        direction: Direction::Pull,
        digest: digest.to_string(),
        done,
        total,
    }
}
