//! The build driver: stages in order, instructions through the cache, layers into the image,
//! the image out to registries and files.

pub mod copy;
mod key;
mod output;
mod remote_cache;
mod rootfs;
mod run_step;
mod settings;
mod stage;
pub mod workspace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::BuildError;
use crate::context::Context;
use crate::dockerfile::{Dockerfile, Vars, plan};
use crate::image::{Image, Platform};
use crate::layer::{Compression, LayerOptions, MediaTypes};
use crate::progress::{Event, Progress};
use crate::registry::{Registry, RegistryOptions};
use crate::run::OciRuntime;
use crate::store::{Digest, Store};

pub use crate::build::output::Pushed;

/// What `slipway build` was asked to do (Kaniko's flags and meanings).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--context`: a directory, `dir://`, a tar archive, or a git URL.
    pub context: String,
    /// `--dockerfile`.
    pub dockerfile: Option<String>,
    /// `--destination` (each gets the image).
    pub destinations: Vec<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--label` added to the final image.
    pub labels: Vec<(String, String)>,
    /// `--no-push`.
    pub no_push: bool,
    /// `--tar-path`.
    pub tar_path: Option<PathBuf>,
    /// `--digest-file`.
    pub digest_file: Option<PathBuf>,
    /// `--image-name-with-digest-file`.
    pub image_name_with_digest_file: Option<PathBuf>,
    /// `--image-name-tag-with-digest-file`.
    pub image_name_tag_with_digest_file: Option<PathBuf>,
    /// `--cache`: reuse and record instruction results (on unless turned off).
    pub cache: bool,
    /// `--cache-repo`: a registry repository holding cached layers for builds elsewhere.
    pub cache_repo: Option<String>,
    /// `--cache-dir`: the store (blobs, layers, cache); the user's cache directory by default.
    pub cache_dir: Option<PathBuf>,
    /// `--cache-ttl`.
    pub cache_ttl: Duration,
    /// `--reproducible`: times zeroed (or `SOURCE_DATE_EPOCH`).
    pub reproducible: bool,
    /// `SOURCE_DATE_EPOCH` from the environment.
    pub source_date_epoch: Option<i64>,
    /// `--custom-platform`.
    pub platform: Option<String>,
    /// Registries: credentials, rewrites, insecure hosts, retries.
    pub registry: RegistryOptions,
    /// Layer compression.
    pub compression: Compression,
    /// `--compression-level`.
    pub compression_level: Option<u32>,
    /// Media types of the manifest and layers.
    pub media: MediaTypes,
    /// `--secret id=...,src=...` for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--mode`: overlay mounts and runc, the builder's own root, or whichever works here.
    pub mode: workspace::Mode,
    /// `--force`: the unprivileged mode even outside a container (it overwrites `/`).
    pub force: bool,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The final image.
    pub image: Image,
    /// Its manifest's digest.
    pub digest: Digest,
    /// Where it was pushed.
    pub pushed: Vec<Pushed>,
    /// Instructions carried out and found in the cache.
    pub steps: usize,
    /// How many of them came from the cache.
    pub cached: usize,
}

/// What every stage shares while building.
pub(crate) struct Shared<'a> {
    pub options: &'a BuildOptions,
    pub store: Store,
    pub registry: Registry,
    /// Overlay mounts and runc, or the builder's own root.
    pub workspace: Box<dyn workspace::Workspace>,
    pub context: Context,
    pub dockerfile: Dockerfile,
    pub platform: Platform,
    pub progress: &'a dyn Progress,
    pub layer_options: LayerOptions,
    pub global: Vars,
    /// Images of finished stages, by stage index.
    pub stages: BTreeMap<usize, Image>,
    /// Steps run and cached so far, and the total to run.
    pub counts: stage::Counts,
}

/// Builds the image `options` describe, reporting to `progress`.
pub async fn build(
    options: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildOutcome, BuildError> {
    let mut shared = prepare(options, progress)?;
    let order = plan::stages_for_target(
        &shared.dockerfile,
        options.target.as_deref(),
        &shared.global,
    )?;
    shared.counts.total = order
        .iter()
        .map(|i| {
            shared
                .dockerfile
                .stages
                .get(*i)
                .map_or(0, |s| s.instructions.len())
        })
        .sum();
    let mut last = None;
    for index in order {
        let image = stage::build_stage(&mut shared, index).await?;
        shared.stages.insert(index, image);
        last = Some(index);
    }
    let image = last
        .and_then(|i| shared.stages.remove(&i))
        .ok_or(BuildError::NothingToBuild)?;
    output::finish(&shared, image).await
}

/// Opens the store (after sweeping what a killed build left), the runtime, the context and
/// the Dockerfile.
fn prepare<'a>(
    options: &'a BuildOptions,
    progress: &'a dyn Progress,
) -> Result<Shared<'a>, BuildError> {
    let root = options
        .cache_dir
        .clone()
        .unwrap_or_else(Store::default_root);
    let runtime = OciRuntime::find(&root.join("runtime"));
    // Mounts first: removing stale directories must never reach through a live mount.
    crate::run::sweep(runtime.as_ref().ok(), &root.join("tmp"));
    let store = Store::open(&root)?;
    let context = Context::open(
        &options.context,
        options.dockerfile.as_deref().map(std::path::Path::new),
    )?;
    let workspace = workspace::choose(options, runtime, &store, &context, progress)?;
    let (path, text) = context.dockerfile(options.dockerfile.as_deref())?;
    let dockerfile = Dockerfile::parse(&path, &text)?;
    let platform = match &options.platform {
        Some(p) => Platform::parse(p).map_err(|e| BuildError::Platform(e.to_string()))?,
        None => Platform::host(),
    };
    if let Some(syntax) = &dockerfile.syntax {
        progress.event(Event::Notice(format!(
            "the `# syntax={syntax}` directive is read as the standard Dockerfile syntax"
        )));
    }
    let global = Vars::for_build(
        &dockerfile,
        &options.build_args,
        &platform,
        &Platform::host(),
    )?;
    let epoch = if options.reproducible {
        Some(options.source_date_epoch.unwrap_or(0))
    } else {
        options.source_date_epoch
    };
    Ok(Shared {
        options,
        registry: Registry::new(options.registry.clone()),
        store,
        workspace,
        context,
        dockerfile,
        platform,
        progress,
        layer_options: LayerOptions {
            compression: options.compression,
            media: options.media,
            source_date_epoch: epoch,
            level: options.compression_level,
        },
        global,
        stages: BTreeMap::new(),
        counts: stage::Counts::default(),
    })
}
