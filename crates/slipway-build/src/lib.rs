//! Dockerfile → OCI image without a daemon: Kaniko's job.
//!
//! Data flows one way: the [`dockerfile`] front end (pure: parse, expand, plan) hands resolved
//! instructions to the [`build`] driver, which runs `RUN` in a fresh container ([`run`]) over an
//! overlay of the layers below, turns the overlay's upper directory into a layer ([`layer`]),
//! keeps blobs, unpacked layers and the instruction cache in the [`store`], and pulls and pushes
//! through the [`registry`]. The driver reports what it does as [`progress`] events; the CLI
//! renders them.

pub mod build;
pub mod config;
pub mod context;
pub mod dockerfile;
pub mod error;
pub mod image;
pub mod layer;
pub mod progress;
pub mod registry;
pub mod run;
pub mod snapshot;
pub mod store;

pub use crate::build::{BuildOptions, BuildOutcome, build};
pub use crate::error::BuildError;
