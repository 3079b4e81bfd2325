//! Errors of the engine.

/// A run-time failure with Tekton's reason, reported on the run rather than returned to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Tekton's condition reason (e.g. `ParameterMissing`).
    pub reason: String,
    /// The sentence shown to the user.
    pub message: String,
}

impl Failure {
    /// A failure with reason and message.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Errors that stop the engine before a run can start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The run refers to something that is not loaded or is invalid.
    #[error("failed to start {kind} `{name}`: {failure}")]
    Invalid {
        /// PipelineRun or TaskRun.
        kind: &'static str,
        /// Run name.
        name: String,
        /// Why.
        failure: Failure,
    },
}
