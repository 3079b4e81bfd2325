//! Slipway as a Tekton controller: watches `tekton.dev` PipelineRuns and TaskRuns in a
//! cluster, runs each new one through the engine with the Kubernetes executor, and writes
//! Tekton-shaped status (and a TaskRun object per pipeline task) back, so kubectl, tkn and
//! Tekton Dashboard read them.

mod cache;
mod controller;
mod dispatch;
mod error;
mod history;
pub mod library;
pub mod qps;
pub mod resources;
pub mod status;

pub use controller::{Controller, ControllerSettings};
pub use error::ControllerError;
