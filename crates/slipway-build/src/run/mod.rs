//! RUN in a fresh container: an overlay of the layers below, an OCI bundle, an OCI runtime.

/// Why a RUN could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {}
