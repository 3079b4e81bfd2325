//! Layers: an overlay upper directory to a compressed tar (Docker's whiteouts, hardlinks,
//! xattrs, sorted, times clamped), and a layer blob back to an overlay lower directory.

mod hash;
pub mod media;
pub(crate) mod unpack;
mod write;
pub mod xattr;

use std::path::PathBuf;

pub use crate::layer::media::{Compression, MediaTypes};
pub use crate::layer::unpack::{apply, unpack};
pub use crate::layer::write::{Change, write_changes, write_layer};
use crate::store::Digest;

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// Digest of the blob as stored and pushed (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar (what the config's `rootfs.diff_ids` lists).
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// The blob's media type (OCI or Docker, with its compression).
    pub media_type: String,
}

/// How [`write_layer`] writes a layer.
#[derive(Clone, Debug, Default)]
pub struct LayerOptions {
    /// The blob's compression.
    pub compression: Compression,
    /// Which family of media types to name it with.
    pub media: MediaTypes,
    /// Clamp modification times to this (Unix seconds), for reproducible layers.
    pub source_date_epoch: Option<i64>,
    /// Compression level (gzip 1–9, default 1 as go-containerregistry writes; zstd 1–19,
    /// default 3).
    pub level: Option<u32>,
}

/// Why an entry would leave the layer's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// A `..` component.
    ParentDir,
    /// An absolute path.
    Absolute,
    /// A component that is a symlink.
    Symlink,
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Escape::ParentDir => "it contains `..`",
            Escape::Absolute => "it is absolute",
            Escape::Symlink => "it goes through a symlink",
        })
    }
}

/// Overlay features that leave a layer's content outside its upper directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayFeature {
    /// `redirect_dir`: a renamed directory points at its lower original.
    RedirectDir,
    /// `metacopy`: a copied-up file's data stays in the lower layer.
    Metacopy,
}

impl std::fmt::Display for OverlayFeature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OverlayFeature::RedirectDir => "redirect_dir",
            OverlayFeature::Metacopy => "metacopy",
        })
    }
}

/// Why a layer could not be written or read; each reads after "failed to ".
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A file system operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The layer's tar stream could not be read or written.
    #[error("{op} the layer's tar stream")]
    Tar {
        /// `read` or `write`.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An entry would be written outside the layer.
    #[error("unpack `{entry}`: {reason}, which would leave the layer's root")]
    Escape {
        /// The entry's path as the tar names it.
        entry: String,
        /// Why.
        reason: Escape,
    },
    /// A hardlink names a file the layer has not (yet) written.
    #[error("unpack hardlink `{entry}`: its target `{target}` is not in the layer")]
    DanglingHardlink {
        /// The link's path.
        entry: String,
        /// Its target.
        target: String,
    },
    /// The media type is not a layer this builder reads.
    #[error("read a layer of media type `{media_type}`: not a tar layer (gzip, zstd or plain)")]
    MediaType {
        /// The media type.
        media_type: String,
    },
    /// A foreign (non-distributable) layer: its bytes live outside registries.
    #[error(
        "read foreign layer `{media_type}`: non-distributable layers (Windows base images) are not supported"
    )]
    Foreign {
        /// The media type.
        media_type: String,
    },
    /// The overlay mount used a feature that leaves data outside the upper directory.
    #[error(
        "write a layer from {}: overlay's {feature} is on (mount with {feature}=off)",
        path.display()
    )]
    OverlayFeature {
        /// The file carrying the feature's attribute.
        path: PathBuf,
        /// Which feature.
        feature: OverlayFeature,
    },
    /// The finished blob could not be stored.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Maps an I/O error to [`LayerError::Io`] for `op` on `path`.
pub(crate) fn io(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> LayerError {
    let path = path.to_path_buf();
    move |source| LayerError::Io { op, path, source }
}

#[cfg(test)]
mod tests;
