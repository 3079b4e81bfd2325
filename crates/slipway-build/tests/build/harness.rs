//! What the builder's integration tests share: the test daemon and registry, and a build
//! through the library with the test environment's settings.

use std::path::Path;
use std::process::Command;

use slipway_build::progress::Silent;
use slipway_build::registry::{Credentials, RegistryOptions};
use slipway_build::{BuildOptions, build};

/// The Docker daemon `scripts/docker-env.sh` starts.
pub const DOCKER_HOST: &str = "unix:///tmp/slipway-docker/docker.sock";

/// `docker` against the test daemon.
pub fn docker() -> Command {
    assert!(
        Path::new("/tmp/slipway-docker/docker.sock").exists(),
        "the test Docker daemon is not running: run scripts/docker-env.sh first"
    );
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", DOCKER_HOST);
    c
}

/// Options for building `context` into `tar` with a private store under `scratch`.
pub fn options(context: &Path, tar: &Path, scratch: &Path) -> BuildOptions {
    BuildOptions {
        context: context.display().to_string(),
        dockerfile: None,
        destinations: vec!["slipway-test/parity:latest".into()],
        build_args: Default::default(),
        target: None,
        labels: Vec::new(),
        no_push: true,
        tar_path: Some(tar.to_path_buf()),
        digest_file: None,
        image_name_with_digest_file: None,
        image_name_tag_with_digest_file: None,
        cache: true,
        cache_repo: None,
        cache_dir: Some(scratch.join("store")),
        cache_ttl: std::time::Duration::from_secs(3600),
        reproducible: false,
        source_date_epoch: None,
        platform: None,
        registry: RegistryOptions {
            config: Default::default(),
            credentials: Credentials::default(),
            insecure: false,
            insecure_pull: false,
            insecure_registries: Vec::new(),
            skip_tls_verify: false,
            push_retry: 0,
        },
        compression: Default::default(),
        compression_level: None,
        media: slipway_build::layer::MediaTypes::Docker,
        secrets: Default::default(),
        // Never the auto mode's fallback: it would rebuild this machine's own root.
        mode: slipway_build::build::workspace::Mode::Privileged,
        force: false,
    }
}

/// Builds `context` into `tar`.
pub async fn build_to_tar(
    context: &Path,
    tar: &Path,
    scratch: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    build(&options(context, tar, scratch), &Silent).await?;
    Ok(())
}
