//! The Tekton kinds and the Kubernetes shapes they embed.

pub mod k8s;
pub mod pipeline;
pub mod run;
pub mod task;
