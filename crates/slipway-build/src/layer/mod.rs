//! Layers: an overlay upper directory to a compressed tar (Docker's whiteouts, hardlinks,
//! xattrs, sorted, times clamped), and a layer blob back to an overlay lower directory.

/// Why a layer could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {}
