//! The API resources the controller reads and writes.

use kube::core::{ApiResource, GroupVersionKind};

/// Tekton's group.
pub const GROUP: &str = "tekton.dev";

/// A `tekton.dev` resource at `version`.
pub fn tekton(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, version, kind), plural)
}

/// `tekton.dev/v1` PipelineRuns.
pub fn pipeline_runs() -> ApiResource {
    tekton("v1", "PipelineRun", "pipelineruns")
}

/// `tekton.dev/v1` TaskRuns.
pub fn task_runs() -> ApiResource {
    tekton("v1", "TaskRun", "taskruns")
}

/// The kinds of run the controller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// A PipelineRun.
    PipelineRun,
    /// A TaskRun.
    TaskRun,
}

impl RunKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::PipelineRun => "PipelineRun",
            RunKind::TaskRun => "TaskRun",
        }
    }
    /// Its v1 resource.
    pub fn resource(self) -> ApiResource {
        match self {
            RunKind::PipelineRun => pipeline_runs(),
            RunKind::TaskRun => task_runs(),
        }
    }
}
