//! One stage: its base, then each instruction through the cache.

use std::path::PathBuf;
use std::time::Instant;

use crate::BuildError;
use crate::build::copy;
use crate::build::key::Key;
use crate::build::{Shared, rootfs, run_step, settings};
use crate::dockerfile::{Dockerfile, Instruction, Resolved, Stage, Vars};
use crate::image::Image;
use crate::progress::Event;

/// Steps counted across the build.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    /// Instructions in the stages being built.
    pub total: usize,
    /// Started so far.
    pub started: usize,
    /// Of those, found in the cache.
    pub cached: usize,
}

/// A stage being built.
pub(crate) struct StageState {
    /// The image so far.
    pub image: Image,
    /// Variables in scope.
    pub vars: Vars,
    /// `SHELL`.
    pub shell: Vec<String>,
    /// The cache key chain.
    pub key: Key,
    /// `CMD` was set in this stage (so `ENTRYPOINT` keeps it).
    pub cmd_set: bool,
    /// `WORKDIR` named a directory not yet created; the next step (or the stage's end) makes it.
    pub pending_workdir: bool,
    /// The stage's name or index, for progress.
    pub label: String,
}

/// The image `base` names: an earlier stage, `scratch`, or an image from a registry.
async fn base_image(shared: &Shared<'_>, stage: &Stage) -> Result<(Image, String), BuildError> {
    let base = crate::dockerfile::expand::expand_word(
        &stage.base,
        shared.dockerfile.escape,
        &shared.global.lookup(),
    )
    .map_err(|e| shared.dockerfile_error(stage.span, e.to_string()))?;
    if let Some(earlier) = shared.dockerfile.stage(&base)
        && earlier.index < stage.index
        && let Some(image) = shared.stages.get(&earlier.index)
    {
        return Ok((image.clone(), format!("stage {base}")));
    }
    if base.eq_ignore_ascii_case("scratch") {
        return Ok((Image::scratch(&shared.platform), "scratch".into()));
    }
    let platform = match &stage.platform {
        Some(p) => {
            let p = crate::dockerfile::expand::expand_word(
                p,
                shared.dockerfile.escape,
                &shared.global.lookup(),
            )
            .map_err(|e| shared.dockerfile_error(stage.span, e.to_string()))?;
            crate::image::Platform::parse(&p).map_err(|e| BuildError::Platform(e.to_string()))?
        }
        None => shared.platform.clone(),
    };
    let image = shared
        .registry
        .pull(&base, &platform, &shared.store, shared.progress)
        .await?;
    Ok((image, base))
}

/// The base image's `ONBUILD` triggers as instructions, run before the stage's own (Docker
/// runs them right after `FROM`); the new image does not inherit them.
fn onbuild_triggers(
    shared: &Shared<'_>,
    state: &mut StageState,
    stage: &Stage,
    base: &str,
) -> Result<Vec<Instruction>, BuildError> {
    let Some(triggers) = state.image.config.config.on_build.take() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for trigger in triggers {
        let text = format!("FROM scratch\n{trigger}\n");
        let parsed = Dockerfile::parse(&shared.dockerfile.path, &text).map_err(|e| {
            shared.dockerfile_error(
                stage.span,
                format!(
                    "the ONBUILD trigger `{trigger}` of {base} is not an instruction: {}",
                    e.message
                ),
            )
        })?;
        for mut instruction in parsed.stages.into_iter().flat_map(|s| s.instructions) {
            instruction.span = stage.span;
            instruction.text = format!("{} (ONBUILD of {base})", instruction.text);
            out.push(instruction);
        }
    }
    Ok(out)
}

/// Builds stage `index` and returns its image.
pub(crate) async fn build_stage(
    shared: &mut Shared<'_>,
    index: usize,
) -> Result<Image, BuildError> {
    let stage = shared
        .dockerfile
        .stages
        .get(index)
        .cloned()
        .ok_or(BuildError::NothingToBuild)?;
    let label = stage.name.clone().unwrap_or_else(|| index.to_string());
    let (mut image, base) = base_image(shared, &stage).await?;
    // As `docker build` does: a stage whose base sets no PATH (`FROM scratch`) gets the
    // default one in its config, before anything else of the stage.
    let env = image.config.config.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(crate::build::run_step::DEFAULT_PATH.to_string());
    }
    shared.progress.event(Event::Stage {
        stage: label.clone(),
        base: base.clone(),
    });
    let base_env = image.config.config.env.clone().unwrap_or_default();
    let mut state = StageState {
        vars: shared.global.stage(&base_env),
        shell: image
            .config
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]),
        key: Key::start(&image, &shared.platform),
        cmd_set: false,
        pending_workdir: false,
        image,
        label,
    };
    let triggers = onbuild_triggers(shared, &mut state, &stage, &base)?;
    shared.counts.total += triggers.len();
    for instruction in triggers.iter().chain(&stage.instructions) {
        shared.counts.started += 1;
        let step = shared.counts.started;
        shared.progress.event(Event::Step {
            stage: state.label.clone(),
            index: step,
            total: shared.counts.total,
            text: instruction.text.clone(),
            line: instruction.span.line,
        });
        let started = Instant::now();
        let resolved = instruction.resolve(&state.vars)?;
        let outcome = match &resolved {
            Resolved::Run(run) => {
                run_step::run(shared, &mut state, run, &instruction.text, step).await
            }
            Resolved::Copy(spec) => copy_step(shared, &mut state, spec, &instruction.text).await,
            other => settings::apply(shared, &mut state, other, &instruction.text).map(|()| false),
        };
        let cached = outcome.map_err(|source| BuildError::Instruction {
            path: shared.dockerfile.path.clone(),
            line: instruction.span.line,
            text: instruction.text.clone(),
            source: Box::new(source),
        })?;
        state.vars.apply(&resolved);
        if cached {
            shared.counts.cached += 1;
            shared.progress.event(Event::Cached { index: step });
        } else {
            shared.progress.event(Event::Done {
                index: step,
                elapsed: started.elapsed(),
            });
        }
    }
    if state.pending_workdir {
        rootfs::change(shared, &mut state, "WORKDIR", |_| Ok(())).await?;
    }
    Ok(state.image)
}

/// COPY or ADD: prepared (sources read, URLs fetched), keyed by what it reads, applied to
/// the stage's writable root.
async fn copy_step(
    shared: &Shared<'_>,
    state: &mut StageState,
    spec: &crate::dockerfile::CopySpec,
    text: &str,
) -> Result<bool, BuildError> {
    let tmp = shared.store.temp_dir()?;
    let from_image;
    let mut mounted = None;
    let source = match &spec.from {
        None => copy::Source::Context(&shared.context),
        Some(from) => {
            from_image = match shared
                .dockerfile
                .stage(from)
                .and_then(|s| shared.stages.get(&s.index))
            {
                Some(image) => image.clone(),
                None => {
                    shared
                        .registry
                        .pull(from, &shared.platform, &shared.store, shared.progress)
                        .await?
                }
            };
            mounted = Some(shared.workspace.view(shared, &from_image).await?);
            copy::Source::Rootfs(mounted.as_ref().map(|m| m.path()).unwrap_or(tmp.path()))
        }
    };
    let prepared = copy::prepare(spec, &source, tmp.path()).await?;
    let key = state.key.next(&[
        "COPY",
        &format!("{spec:?}"),
        &prepared.checksum(),
        &settings::workdir(state),
    ]);
    if shared.options.cache && rootfs::reuse(shared, state, &key, text).await? {
        return Ok(true);
    }
    let workdir = settings::workdir(state);
    let prepared = std::sync::Arc::new(prepared);
    rootfs::change_keyed(shared, state, text, &key, move |root: PathBuf| {
        prepared.apply(&root, &workdir).map_err(BuildError::from)
    })
    .await?;
    drop(mounted);
    Ok(false)
}
