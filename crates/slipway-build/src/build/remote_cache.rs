//! `--cache-repo`: cached layers kept in a registry, one small image per cache key tagged with
//! the key, so builds on other machines reuse them (Kaniko's scheme).

use crate::BuildError;
use crate::build::Shared;
use crate::build::key::Key;
use crate::image::Image;
use crate::layer::Layer;
use crate::progress::{Event, Silent};
use crate::store::CacheRecord;

/// The reference of `key`'s cache image.
fn reference(repo: &str, key: &Key) -> String {
    format!("{}:{}", repo.trim_end_matches('/'), key.hex())
}

/// The layer the cache repository holds for `key`, fetched into the store, if any and fresh.
/// A registry that answers with an error counts as a miss: the step runs.
pub(crate) async fn get(shared: &Shared<'_>, key: &Key) -> Result<Option<CacheRecord>, BuildError> {
    let Some(repo) = &shared.options.cache_repo else {
        return Ok(None);
    };
    let pulled = shared
        .registry
        .pull(
            &reference(repo, key),
            &shared.platform,
            &shared.store,
            &Silent,
        )
        .await;
    let Ok(image) = pulled else {
        return Ok(None);
    };
    let [layer] = image.layers.as_slice() else {
        return Ok(None);
    };
    let created_unix = image
        .config
        .created
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let record = CacheRecord {
        layer: Some(layer.clone()),
        created_unix,
    };
    shared.store.cache_put(key.hex(), &record)?;
    Ok(Some(record))
}

/// Pushes `layer` as `key`'s cache image; a refusal is said and the build goes on.
pub(crate) async fn put(shared: &Shared<'_>, key: &Key, layer: Layer) {
    let Some(repo) = &shared.options.cache_repo else {
        return;
    };
    let mut image = Image::scratch(&shared.platform);
    let now = crate::build::key::now_unix();
    image.push_layer(layer, "slipway build cache layer", now);
    image.config.created = Some(crate::image::rfc3339(now));
    let destination = reference(repo, key);
    if let Err(e) = shared
        .registry
        .push(
            &image,
            &destination,
            &shared.store,
            shared.options.media,
            &Silent,
        )
        .await
    {
        shared.progress.event(Event::Notice(format!(
            "could not keep a cached layer in {repo} (the build goes on): {e}"
        )));
    }
}
