//! The Slipway engine: PipelineRun and TaskRun state machines and DAG scheduling.
//!
//! A dispatcher owns each run's state; executors report step events over a channel.
//! Side effects happen only through the [`Executor`] and [`Store`] traits.

pub mod admission;
pub mod cancel;
pub mod config;
pub mod engine;
pub mod error;
pub mod event;
pub mod executor;
pub mod mask;
pub mod matrix;
pub mod output;
pub mod params;
mod pipeline;
mod podspec;
pub mod sources;
pub mod status;
pub mod store;
pub mod supervise;
pub mod taskplan;
mod taskrun;
mod tee;
pub mod when;

pub use cancel::CancelHandle;
pub use config::EngineConfig;
pub use engine::{Engine, RunOptions, RunReport, generate_name};
pub use error::{EngineError, Failure};
pub use event::{ExecEvent, PullProgress, RunEvent, StepEnd, Stream};
pub use executor::{
    Builtin, EventSink, ExecOutcome, ExecStatus, Executor, ImageBuilder, Limits, PodFailure,
    PodPlan, ProbeAction, ProbePlan, PullSecret, StepPlan, StepTally, TaskRunPlan, VolumeSource,
};
pub use store::{NullStore, Store};
pub use tee::TeeStore;
