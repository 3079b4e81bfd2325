//! Engine settings.

use std::time::Duration;

/// Limits and defaults the engine applies.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// TaskRuns executing at once across a run.
    pub concurrency: usize,
    /// Largest result accepted, in bytes.
    pub max_result_bytes: usize,
    /// TaskRun timeout when none is given (Tekton's `default-timeout-minutes`).
    pub default_timeout: Duration,
    /// Most TaskRuns a matrix may fan out to.
    pub max_matrix_combinations: usize,
    /// Namespace shown in `context.*.namespace`.
    pub namespace: String,
    /// Most bytes of output stored per run; past it lines are counted and dropped. `None`: no cap.
    pub max_log_bytes: Option<u64>,
    /// Whether `hostPath` volumes may mount this machine's directories. Off by default: on a
    /// server they would hand whoever submits a run the server's files (and, under Docker, the
    /// daemon's socket); the local CLI, which runs as its user anyway, turns it on.
    pub allow_host_paths: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_result_bytes: 1024 * 1024,
            default_timeout: Duration::from_secs(3600),
            max_matrix_combinations: 256,
            namespace: "default".into(),
            max_log_bytes: None,
            allow_host_paths: false,
        }
    }
}
