//! The local content-addressed store: blobs by digest, unpacked layers (in overlay's format,
//! ready to be lower directories), and the instruction cache.

/// A `sha256:<hex>` digest.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Digest(pub String);

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {}

/// The store under one root directory (`--cache-dir`, else `~/.cache/slipway/build`).
#[derive(Debug, Clone)]
pub struct Store {
    // helper B
}
