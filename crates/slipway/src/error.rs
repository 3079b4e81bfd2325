//! Errors of the binary and how they are shown: diagnostics with source snippets, exit codes.

use std::io::IsTerminal;

use slipway_model::{Diagnostic, Diagnostics};

/// Exit code for invalid input.
pub const EXIT_INVALID: i32 = 2;
/// Exit code for a run that failed (or was cancelled).
pub const EXIT_FAILED: i32 = 1;
/// Exit code for a failure slipway itself met: an unreachable daemon or server, a store that
/// cannot be written, a bug. Scripts can tell it from a failed run and from bad input.
pub const EXIT_INTERNAL: i32 = 3;

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Problems in the user's YAML.
    #[error("invalid input")]
    Invalid(Diagnostics),
    /// A wrong argument or a reference to something that does not exist.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
    /// Something failed that the user did not cause.
    #[error("{0}")]
    Internal(String),
    /// The work itself failed (a build step, a push): exit 1.
    #[error("{0}")]
    Failed(String),
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        use crate::config::ConfigError;
        match &e {
            ConfigError::Read { source, .. } => CliError::usage(
                format!("{e}: {source}"),
                "pass an existing file with --config or SLIPWAY_CONFIG",
            ),
            ConfigError::Invalid { .. } => {
                CliError::usage(e.to_string(), "see the config file section of the README")
            }
        }
    }
}

impl CliError {
    /// A usage error with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Prints the error and returns the exit code.
    pub fn report(self) -> i32 {
        match self {
            CliError::Invalid(d) => {
                eprint!(
                    "{}",
                    render_diagnostics(&d, std::io::stderr().is_terminal())
                );
                EXIT_INVALID
            }
            CliError::Usage { message, hint } => {
                eprintln!("error: {message}\n  hint: {hint}");
                EXIT_INVALID
            }
            CliError::Internal(m) => {
                eprintln!("error: {m}");
                EXIT_INTERNAL
            }
            CliError::Failed(m) => {
                eprintln!("error: failed to build: {m}");
                EXIT_FAILED
            }
        }
    }
}

impl From<slipway_store::StoreError> for CliError {
    fn from(e: slipway_store::StoreError) -> Self {
        match e {
            slipway_store::StoreError::NotFound(name) => CliError::usage(
                format!("no run named `{name}`"),
                "list runs with `slipway runs -A`; a run is looked up in namespace `default` unless -n NAMESPACE or -A is given",
            ),
            slipway_store::StoreError::Key(
                e @ (slipway_store::KeyError::Missing { .. }
                | slipway_store::KeyError::WrongKey { .. }
                | slipway_store::KeyError::Malformed { .. }
                | slipway_store::KeyError::Empty { .. }),
            ) => CliError::usage(
                e.to_string(),
                "restore the key file, or point --secret-key-file (SLIPWAY_SECRET_KEY_FILE, or `[secrets] key_file` in the config file) at the one this data directory was sealed with; nothing was changed",
            ),
            slipway_store::StoreError::Key(e @ slipway_store::KeyError::InUse { .. }) => {
                CliError::usage(
                    e.to_string(),
                    "let them finish (or cancel them), then rotate: they hold the key being retired",
                )
            }
            other => CliError::Internal(chain(&other)),
        }
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        // Older errors repeat their cause in their own message.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Renders diagnostics: miette's graphical report on a terminal, stable plain text elsewhere.
pub fn render_diagnostics(d: &Diagnostics, fancy: bool) -> String {
    let mut out = String::new();
    for diag in &d.0 {
        if fancy {
            let report = miette::Report::new(diag.clone());
            let report = match diag.named_source() {
                Some(src) => report.with_source_code(src),
                None => report,
            };
            out.push_str(&format!("{report:?}\n"));
        } else {
            out.push_str(&plain(diag));
        }
    }
    if d.len() > 1 {
        out.push_str(&format!("error: {} problems found\n", d.len()));
    }
    out
}

fn plain(d: &Diagnostic) -> String {
    let mut out = format!("error: {}: {}\n", d.location(), d.message);
    if let Some(src) = &d.source
        && let Some(line) = src.text.lines().nth(d.pos.line.saturating_sub(1) as usize)
    {
        out.push_str(&format!("   | {line}\n"));
        let pad: String = line
            .chars()
            .take(d.pos.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!("   | {pad}{}\n", "^".repeat(d.len.clamp(1, 60))));
    }
    if let Some(h) = &d.hint {
        out.push_str(&format!("   = hint: {h}\n"));
    }
    out
}
