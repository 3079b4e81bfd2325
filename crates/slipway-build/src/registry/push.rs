//! Pushing an image: blobs the registry lacks (mounted from the base image's repository on
//! the same registry when possible, else streamed from the store), the config, the manifest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;
use oci_client::Client;
use oci_client::errors::OciDistributionError;
use slipway_model::reference::Reference;
use tokio::io::AsyncReadExt as _;

use crate::image::Image;
use crate::layer::{Layer, MediaTypes};
use crate::progress::{Direction, Event, Progress};
use crate::registry::transport::{Operation, oci_ref, with_retries};
use crate::registry::{Registry, RegistryError};
use crate::store::{Digest, Store};

/// Bytes per upload request body chunk (what is held in memory per blob).
const CHUNK: usize = 4 << 20;

impl Registry {
    /// Pushes `image` to `destination` with `media`'s manifest; returns the manifest digest.
    pub async fn push(
        &self,
        image: &Image,
        destination: &str,
        store: &Store,
        media: MediaTypes,
        progress: &dyn Progress,
    ) -> Result<Digest, RegistryError> {
        let r = Reference::parse(destination)?;
        let m = image.manifest(media)?;
        let client = self
            .client(&r.registry, Operation::Push)
            .map_err(|e| self.error(Operation::Push, &r, e))?;
        let oref = oci_ref(&r);
        client
            .store_auth_if_needed(oref.resolve_registry(), &self.auth(&r.registry))
            .await;
        let fail = |e| self.error(Operation::Push, &r, e);
        // Asking for push rights up front turns bad credentials into one clear error.
        client
            .auth(
                &oref,
                &self.auth(&r.registry),
                oci_client::RegistryOperation::Push,
            )
            .await
            .map_err(fail)?;
        for layer in &image.layers {
            self.push_layer(&client, &r, layer, store, progress).await?;
        }
        let retries = self.options.push_retry;
        let config = bytes::Bytes::from(m.config_json.clone());
        with_retries(retries, "config", || async {
            if !client.blob_exists(&oref, &m.config_digest.0).await? {
                client
                    .push_blob(&oref, config.clone(), &m.config_digest.0)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(fail)?;
        let content_type = http_header(&m.media_type);
        let body = bytes::Bytes::from(m.json.clone());
        with_retries(retries, "manifest", || {
            client.push_manifest_raw(&oref, body.clone(), content_type.clone())
        })
        .await
        .map_err(fail)?;
        progress.event(Event::Pushed {
            destination: r.to_string(),
            digest: m.digest.to_string(),
        });
        Ok(m.digest)
    }

    /// One layer: present → skip; mountable from a known repository → mount; else upload.
    async fn push_layer(
        &self,
        client: &Client,
        r: &Reference,
        layer: &Layer,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let oref = oci_ref(r);
        let fail = |e| self.error(Operation::Push, r, e);
        let digest = &layer.digest.0;
        let retries = self.options.push_retry;
        let exists = with_retries(retries, "blob check", || client.blob_exists(&oref, digest))
            .await
            .map_err(fail)?;
        let done = |n| transfer(&layer.digest, n, Some(layer.size));
        if exists {
            progress.event(done(layer.size));
            return Ok(());
        }
        if let Some(repo) = self.source_on(&layer.digest, &r.registry)
            && repo != r.repository
        {
            let from = oci_client::Reference::with_digest(
                r.registry.clone(),
                repo.clone(),
                digest.clone(),
            );
            match client.mount_blob(&oref, &from, digest).await {
                Ok(()) => {
                    progress.event(done(layer.size));
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(%digest, from = %repo, error = %e, "mount refused; uploading")
                }
            }
        }
        let path = store.blob_path(&layer.digest);
        if !path.is_file() {
            return Err(crate::store::StoreError::MissingBlob {
                digest: layer.digest.clone(),
            }
            .into());
        }
        with_retries(retries, "blob upload", || async {
            let sent = Arc::new(AtomicU64::new(0));
            let file = tokio::fs::File::open(&path).await?;
            let upload = client.push_blob_stream(
                &oref,
                file_stream(file, sent.clone()),
                digest,
                Some(layer.size),
            );
            let watch = async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    progress.event(done(sent.load(Ordering::Relaxed)));
                }
            };
            tokio::select! {
                r = upload => r,
                () = watch => unreachable_watch(),
            }
        })
        .await
        .map_err(fail)?;
        progress.event(done(layer.size));
        Ok(())
    }
}

/// The watcher never ends on its own; `select!` needs a value of the upload's type.
fn unreachable_watch() -> Result<String, OciDistributionError> {
    Err(OciDistributionError::GenericError(Some(
        "the progress watcher stopped".to_string(),
    )))
}

/// The file as a stream of chunks of at most [`CHUNK`] bytes, counting what was read.
fn file_stream(
    file: tokio::fs::File,
    sent: Arc<AtomicU64>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    futures::stream::unfold(Some(file), move |state| {
        let sent = sent.clone();
        async move {
            let mut file = state?;
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match file.read(&mut buf[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return Some((Err(e.into()), None)),
                }
            }
            if filled == 0 {
                return None;
            }
            buf.truncate(filled);
            sent.fetch_add(filled as u64, Ordering::Relaxed);
            Some((Ok(bytes::Bytes::from(buf)), Some(file)))
        }
    })
    .fuse()
}

fn http_header(media_type: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| http::HeaderValue::from_static("application/json"))
}

fn transfer(digest: &Digest, done: u64, total: Option<u64>) -> Event {
    Event::Transfer {
        direction: Direction::Push,
        digest: digest.to_string(),
        done,
        total,
    }
}
