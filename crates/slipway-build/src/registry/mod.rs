//! Pull and push through OCI registries: Docker's `config.json` credentials, token auth,
//! rewrites and mirrors, existence checks and cross-repository mounts, retries.

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {}
