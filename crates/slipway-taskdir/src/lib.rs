//! A TaskRun's directories on this machine and what runs in them whatever the executor: the
//! layout the host executor enters and container executors bind-mount, step scripts, the
//! supervision of a step's process, and slipway's image builder standing in for Kaniko.
//!
//! Shared by the executors so that none depends on another.

pub mod builder;
pub mod layout;
pub mod probe;
pub mod script;
pub mod supervise;
