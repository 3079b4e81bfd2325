//! `slipway validate`.

use slipway_model::Library;
use slipway_model::validate::{Limits, validate as check};

use crate::cli::ValidateArgs;
use crate::error::CliError;

/// Loads and checks the paths; prints a summary on success.
pub fn validate(args: &ValidateArgs) -> Result<i32, CliError> {
    let lib = Library::load_paths(&args.paths).map_err(CliError::Invalid)?;
    let diags = check(&lib, &Limits::default());
    if !diags.is_empty() {
        return Err(CliError::Invalid(diags));
    }
    // Same-named objects across files are versions here, not a problem worth a line each.
    for w in lib
        .warnings
        .iter()
        .filter(|w| !w.message.contains(" replaces the one in "))
        .chain(&slipway_model::validate::unresolved(&lib))
    {
        eprintln!("warning: {w}");
    }
    let mut parts = Vec::new();
    for (n, what) in [
        (lib.tasks.len() + lib.shadowed_tasks.len(), "Task"),
        (
            lib.pipelines.len() + lib.shadowed_pipelines.len(),
            "Pipeline",
        ),
        (
            lib.step_actions.len() + lib.shadowed_step_actions.len(),
            "StepAction",
        ),
        (
            lib.runs
                .iter()
                .filter(|r| r.kind() == "PipelineRun")
                .count(),
            "PipelineRun",
        ),
        (
            lib.runs.iter().filter(|r| r.kind() == "TaskRun").count(),
            "TaskRun",
        ),
    ]
    .into_iter()
    .chain(slipway_model::kinds::kruise::PrewarmKind::ALL.map(|k| {
        (
            lib.prewarm.iter().filter(|o| o.kind() == k).count(),
            k.kind(),
        )
    })) {
        if n > 0 {
            parts.push(format!("{n} {what}{}", if n == 1 { "" } else { "s" }));
        }
    }
    println!(
        "valid: {}",
        if parts.is_empty() {
            "no Tekton objects".to_string()
        } else {
            parts.join(", ")
        }
    );
    Ok(0)
}
