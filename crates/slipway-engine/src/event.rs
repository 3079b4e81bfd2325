//! Events: what executors report to the dispatcher, and what the dispatcher reports to stores and watchers.

use std::time::SystemTime;

use serde_json::Value;

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// Exited by itself with this code.
    Exited(i32),
    /// Stopped by its step timeout.
    TimedOut,
    /// Stopped because the TaskRun was cancelled or timed out.
    Cancelled,
    /// Killed by the out-of-memory killer.
    OutOfMemory,
    /// Never started (an earlier step failed).
    Skipped,
    /// Could not be started; the message says why.
    StartFailed(String),
}

impl StepEnd {
    /// The exit code Tekton reports.
    pub fn exit_code(&self) -> i32 {
        match self {
            StepEnd::Exited(c) => *c,
            StepEnd::TimedOut | StepEnd::Cancelled => 137,
            StepEnd::OutOfMemory => 137,
            StepEnd::Skipped => 0,
            StepEnd::StartFailed(_) => 1,
        }
    }
    /// The terminated reason Tekton reports.
    pub fn reason(&self) -> &'static str {
        match self {
            StepEnd::Exited(0) => "Completed",
            StepEnd::Exited(_) | StepEnd::StartFailed(_) => "Error",
            StepEnd::TimedOut => "TimeoutExceeded",
            StepEnd::Cancelled => "TaskRunCancelled",
            StepEnd::OutOfMemory => "StepOOM",
            StepEnd::Skipped => "Skipped",
        }
    }
}

/// What an executor says while it runs one TaskRun.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    /// A step began.
    StepStarted {
        /// Index into the plan's steps.
        step: usize,
        /// When.
        at: SystemTime,
    },
    /// A line of output.
    Log {
        /// Index into the plan's steps.
        step: usize,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline; at most [`crate::output::MAX_LINE`] bytes.
        line: String,
        /// This piece continues the line of the event before it (a line cut at the cap).
        continued: bool,
        /// When it was read.
        at: SystemTime,
    },
    /// A step ended.
    StepFinished {
        /// Index into the plan's steps.
        step: usize,
        /// How.
        end: StepEnd,
        /// When.
        at: SystemTime,
        /// Whether the step's failure is ignored (`onError: continue`).
        ignored: bool,
    },
    /// Something the user should know once (e.g. images are ignored).
    Notice(String),
    /// Progress of an image pull.
    Pull(PullProgress),
}

/// How far an image pull has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The reference being pulled (after rewrites).
    pub image: String,
    /// Bytes downloaded so far, over all layers.
    pub done: u64,
    /// Bytes to download, over the layers whose size is known yet.
    pub total: u64,
    /// The pull ended (successfully or not).
    pub finished: bool,
    /// The pull ended with an error.
    pub failed: bool,
}

/// Identity of a TaskRun for events and readers.
#[derive(Debug, Clone)]
pub struct TaskRunInfo {
    /// TaskRun uid.
    pub uid: String,
    /// TaskRun name.
    pub name: String,
    /// The top-level run's uid.
    pub root_uid: String,
    /// The PipelineRun that owns it, if any.
    pub parent_uid: Option<String>,
    /// The pipeline task it runs, if any.
    pub pipeline_task: Option<String>,
    /// Step names in order.
    pub steps: Vec<String>,
    /// Attempt number, from 0.
    pub attempt: u32,
    /// Its `spec` as Tekton shows it (the Task's reference or spec, resolved params, timeout).
    pub spec: serde_json::Value,
}

/// Identity of a PipelineRun or top-level TaskRun.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// `PipelineRun` or `TaskRun`.
    pub kind: &'static str,
    /// The Pipeline or Task it runs.
    pub target: String,
    /// The parent PipelineRun for pipelines in pipelines.
    pub parent_uid: Option<String>,
    /// When it was created.
    pub created: SystemTime,
}

/// What the dispatcher reports to the store and to watchers, in order.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A run began.
    RunStarted {
        /// Which run.
        run: RunInfo,
        /// The object as submitted (Tekton shape).
        object: Value,
    },
    /// A TaskRun began.
    TaskRunStarted {
        /// Which TaskRun.
        info: TaskRunInfo,
        /// When.
        at: SystemTime,
    },
    /// A step of a TaskRun began.
    StepStarted {
        /// TaskRun uid.
        taskrun: String,
        /// Step index.
        step: usize,
        /// When.
        at: SystemTime,
    },
    /// A line of output.
    Log {
        /// Top-level run uid.
        root: String,
        /// TaskRun uid.
        taskrun: String,
        /// Step name.
        step: String,
        /// Stream.
        stream: Stream,
        /// The line.
        line: String,
        /// This piece continues the line before it (a line cut at the cap).
        continued: bool,
        /// When.
        at: SystemTime,
    },
    /// A step ended.
    StepFinished {
        /// TaskRun uid.
        taskrun: String,
        /// Step index.
        step: usize,
        /// How.
        end: StepEnd,
        /// When.
        at: SystemTime,
    },
    /// A TaskRun ended; `object` is the whole TaskRun in Tekton's shape.
    TaskRunFinished {
        /// TaskRun uid.
        uid: String,
        /// Top-level run uid.
        root: String,
        /// `Succeeded`, `Failed`, … (the condition reason).
        reason: String,
        /// Whether the condition is True.
        succeeded: bool,
        /// The TaskRun object.
        object: Value,
    },
    /// A pipeline task was skipped.
    TaskSkipped {
        /// PipelineRun uid.
        run: String,
        /// Pipeline task name.
        pipeline_task: String,
        /// Tekton's skipping reason.
        reason: String,
    },
    /// An image pull made progress (for live displays; stores may ignore it).
    Pull {
        /// TaskRun uid.
        taskrun: String,
        /// Where it stands.
        progress: PullProgress,
    },
    /// Something the user should know.
    Notice {
        /// Top-level run uid.
        root: String,
        /// The message.
        message: String,
    },
    /// A run ended; `object` is the whole run in Tekton's shape.
    RunFinished {
        /// Run uid.
        uid: String,
        /// The condition reason.
        reason: String,
        /// Whether the condition is True.
        succeeded: bool,
        /// The object.
        object: Value,
    },
}
