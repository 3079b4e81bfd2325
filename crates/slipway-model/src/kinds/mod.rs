//! The Tekton kinds, the Kubernetes shapes they embed, and OpenKruise's pre-warming kinds.

pub mod k8s;
pub mod kruise;
pub mod pipeline;
pub mod run;
pub mod task;
