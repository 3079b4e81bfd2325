//! The finished image out: labels and times, `--tar-path`, pushes, digest files.

use std::path::Path;

use crate::BuildError;
use crate::build::{BuildOutcome, Shared};
use crate::dockerfile::{DockerfileError, Span};
use crate::image::Image;
use crate::image::write_tar;
use crate::store::Digest;

/// One destination the image reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The destination as given.
    pub destination: String,
    /// The manifest's digest there.
    pub digest: Digest,
}

impl Shared<'_> {
    /// The time recorded in the config and history: `SOURCE_DATE_EPOCH` or 0 when
    /// reproducible, else now.
    pub(crate) fn created(&self) -> i64 {
        self.layer_options
            .source_date_epoch
            .unwrap_or_else(crate::build::key::now_unix)
    }

    /// An error located in the Dockerfile.
    pub(crate) fn dockerfile_error(&self, span: Span, message: String) -> BuildError {
        BuildError::Dockerfile(DockerfileError {
            path: self.dockerfile.path.clone(),
            span,
            message,
            hint: None,
        })
    }
}

/// Writes `text` to `path` (a digest file).
fn write_file(path: &Path, text: &str) -> Result<(), BuildError> {
    std::fs::write(path, text).map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The repository part of a destination (`host/repo:tag` → `host/repo`).
fn repository(destination: &str) -> &str {
    let without_digest = destination.split('@').next().unwrap_or(destination);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

/// Finishes the image and sends it where the options say.
pub(crate) async fn finish(
    shared: &Shared<'_>,
    mut image: Image,
) -> Result<BuildOutcome, BuildError> {
    let options = shared.options;
    if !options.labels.is_empty() {
        let labels = image
            .config
            .config
            .labels
            .get_or_insert_with(Default::default);
        for (k, v) in &options.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    image.config.created = Some(crate::image::rfc3339(shared.created()));
    let manifest = image.manifest(options.media)?;
    if let Some(path) = &options.tar_path {
        let store = shared.store.clone();
        let (img, tags, media, path) = (
            image.clone(),
            options.destinations.clone(),
            options.media,
            path.clone(),
        );
        tokio::task::spawn_blocking(move || write_tar(&img, &store, &tags, media, &path))
            .await
            .map_err(|_| BuildError::Interrupted)??;
    }
    let mut pushed = Vec::new();
    if !options.no_push {
        for destination in &options.destinations {
            let digest = shared
                .registry
                .push(
                    &image,
                    destination,
                    &shared.store,
                    options.media,
                    shared.progress,
                )
                .await?;
            pushed.push(Pushed {
                destination: destination.clone(),
                digest,
            });
        }
    }
    if let Some(path) = &options.digest_file {
        write_file(path, &manifest.digest.to_string())?;
    }
    if let Some(path) = &options.image_name_with_digest_file {
        let lines: Vec<String> = options
            .destinations
            .iter()
            .map(|d| format!("{}@{}\n", repository(d), manifest.digest))
            .collect();
        write_file(path, &lines.concat())?;
    }
    if let Some(path) = &options.image_name_tag_with_digest_file {
        let lines: Vec<String> = options
            .destinations
            .iter()
            .map(|d| format!("{d}@{}\n", manifest.digest))
            .collect();
        write_file(path, &lines.concat())?;
    }
    Ok(BuildOutcome {
        digest: manifest.digest,
        image,
        pushed,
        steps: shared.counts.started,
        cached: shared.counts.cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_of_destinations() {
        assert_eq!(repository("127.0.0.1:5000/app:v1"), "127.0.0.1:5000/app");
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(repository("reg/app@sha256:ab"), "reg/app");
    }
}
