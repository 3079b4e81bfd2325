//! Kaniko's executor images: steps that run them get slipway's own image builder instead.

use crate::reference::Reference;

/// Repositories (registry and path) of Kaniko's executor: Google's original and the forks
/// maintained since it was archived. Any tag or digest of these is recognised.
pub const EXECUTOR_REPOSITORIES: &[&str] = &[
    "gcr.io/kaniko-project/executor",
    "ghcr.io/osscontainertools/kaniko",
    "docker.io/martizih/kaniko",
    "cgr.dev/chainguard/kaniko",
    "ghcr.io/kaniko-build/dist/chainguard-dev-kaniko/executor",
    "quay.io/strimzi/kaniko-executor",
];

/// Where Kaniko's images keep the executor; a step may name it as its command.
pub const EXECUTOR_PATH: &str = "/kaniko/executor";

/// Where Kaniko reads registry credentials (`config.json`) by default.
pub const DOCKER_CONFIG_DIR: &str = "/kaniko/.docker";

/// Kaniko's build context when no `--context` is given.
pub const DEFAULT_CONTEXT: &str = "/workspace/";

/// True when `image` names Kaniko's executor (any tag, digest, or registry spelling).
pub fn is_executor_image(image: &str) -> bool {
    let Ok(r) = Reference::parse(image.trim()) else {
        return false;
    };
    let name = format!("{}/{}", r.registry.to_ascii_lowercase(), r.repository);
    EXECUTOR_REPOSITORIES.contains(&name.as_str())
}

/// True when a step with this image, command and script runs Kaniko's executor: the image's
/// own entrypoint, or the executor named as the command (flags may follow it there).
pub fn runs_executor(image: Option<&str>, command: &[String], script: Option<&str>) -> bool {
    script.is_none()
        && command.first().is_none_or(|c| c == EXECUTOR_PATH)
        && image.is_some_and(is_executor_image)
}

/// The executor's flags as a step gives them: those after `/kaniko/executor` in `command` come
/// first, then `args`, as the image runs them.
pub fn executor_flags(command: &[String], args: &[String]) -> Vec<String> {
    command.iter().skip(1).chain(args).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_executor_is_recognised() {
        for image in [
            "gcr.io/kaniko-project/executor",
            "gcr.io/kaniko-project/executor:latest",
            "gcr.io/kaniko-project/executor:v1.5.1@sha256:c6166717f7fe0b7da44908c986137ecfeab21f31ec3992f6e128fff8a94be8a5",
            "gcr.io/kaniko-project/executor@sha256:c6166717f7fe0b7da44908c986137ecfeab21f31ec3992f6e128fff8a94be8a5",
            "GCR.IO/kaniko-project/executor:debug",
            "ghcr.io/osscontainertools/kaniko:v1.26.0",
            "martizih/kaniko:latest",
            "docker.io/martizih/kaniko",
            "cgr.dev/chainguard/kaniko:latest",
            "quay.io/strimzi/kaniko-executor:0.48.0",
        ] {
            assert!(is_executor_image(image), "{image}");
        }
    }

    #[test]
    fn other_images_and_look_alikes_are_not() {
        for image in [
            "",
            "alpine",
            "gcr.io/kaniko-project/warmer:latest",
            "gcr.io/kaniko-project/executor-fake",
            "evil.example/gcr.io/kaniko-project/executor",
            "gcr.io/kaniko-project/executor:bad tag",
            "kaniko",
        ] {
            assert!(!is_executor_image(image), "{image}");
        }
    }

    #[test]
    fn a_shell_or_a_script_in_the_debug_image_is_an_ordinary_step() {
        let image = Some("gcr.io/kaniko-project/executor:debug");
        assert!(runs_executor(image, &[], None));
        assert!(runs_executor(image, &[EXECUTOR_PATH.into()], None));
        assert!(!runs_executor(image, &["/busybox/sh".into()], None));
        assert!(runs_executor(
            image,
            &[EXECUTOR_PATH.into(), "--no-push".into()],
            None
        ));
        assert!(!runs_executor(image, &[], Some("echo hi")));
        assert!(!runs_executor(None, &[], None));
    }
}
