//! Layer, config and manifest media types, OCI's and Docker's.

/// A layer blob's compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip (what every registry and runtime reads).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// None.
    Uncompressed,
}

/// Which family of media types an image is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MediaTypes {
    /// OCI image spec (`application/vnd.oci.image.*`).
    #[default]
    Oci,
    /// Docker image manifest v2, schema 2 (`application/vnd.docker.*`).
    Docker,
}

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

impl MediaTypes {
    /// The manifest's media type.
    pub fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => OCI_MANIFEST,
            MediaTypes::Docker => DOCKER_MANIFEST,
        }
    }

    /// The config's media type.
    pub fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => OCI_CONFIG,
            MediaTypes::Docker => DOCKER_CONFIG,
        }
    }

    /// A layer's media type with `compression`. Docker has no zstd type; the OCI one is
    /// what Docker itself writes there.
    pub fn layer(self, compression: Compression) -> String {
        match (self, compression) {
            (MediaTypes::Oci, Compression::Gzip) => format!("{OCI_LAYER}+gzip"),
            (MediaTypes::Oci, Compression::Uncompressed) => OCI_LAYER.to_string(),
            (_, Compression::Zstd) => format!("{OCI_LAYER}+zstd"),
            (MediaTypes::Docker, Compression::Gzip) => format!("{DOCKER_LAYER}.gzip"),
            (MediaTypes::Docker, Compression::Uncompressed) => DOCKER_LAYER.to_string(),
        }
    }

    /// `media_type` (a layer's, of either family) renamed into this family.
    pub fn convert_layer(self, media_type: &str) -> String {
        match layer_compression(media_type) {
            Ok(c) => self.layer(c),
            Err(_) => media_type.to_string(),
        }
    }
}

/// Why a media type is not a layer this builder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotALayer {
    /// A foreign / non-distributable layer.
    Foreign,
    /// Something else.
    Unknown,
}

/// The compression a layer media type names.
pub fn layer_compression(media_type: &str) -> Result<Compression, NotALayer> {
    if media_type.contains("foreign") || media_type.contains("nondistributable") {
        return Err(NotALayer::Foreign);
    }
    let rest = media_type
        .strip_prefix(OCI_LAYER)
        .or_else(|| media_type.strip_prefix(DOCKER_LAYER))
        .ok_or(NotALayer::Unknown)?;
    match rest {
        "" => Ok(Compression::Uncompressed),
        "+gzip" | ".gzip" => Ok(Compression::Gzip),
        "+zstd" | ".zstd" => Ok(Compression::Zstd),
        _ => Err(NotALayer::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_types_round_trip_in_both_families() {
        for media in [MediaTypes::Oci, MediaTypes::Docker] {
            for c in [
                Compression::Gzip,
                Compression::Zstd,
                Compression::Uncompressed,
            ] {
                assert_eq!(layer_compression(&media.layer(c)), Ok(c), "{media:?} {c:?}");
            }
        }
        assert_eq!(
            MediaTypes::Docker.layer(Compression::Gzip),
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(
            MediaTypes::Docker.convert_layer("application/vnd.oci.image.layer.v1.tar+gzip"),
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }

    #[test]
    fn foreign_and_unknown_layers_are_told_apart() {
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            Err(NotALayer::Foreign)
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
            Err(NotALayer::Foreign)
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+bzip2"),
            Err(NotALayer::Unknown)
        );
        assert_eq!(
            layer_compression("application/json"),
            Err(NotALayer::Unknown)
        );
    }
}
