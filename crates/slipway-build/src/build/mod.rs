//! The build driver: stages in order, instructions through the cache, layers into the image.

pub mod copy;

/// What `slipway build` was asked to do (Kaniko's flags).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {}

/// Builds an image.
pub async fn build(options: &BuildOptions) -> Result<BuildOutcome, crate::BuildError> {
    let _ = options;
    unimplemented!()
}
