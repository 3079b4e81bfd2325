//! What a step without `command` runs: its image's entrypoint and cmd, read from the registry,
//! since the entrypoint that orders steps replaces the image's own.

use std::collections::HashMap;
use std::sync::Arc;

use slipway_build::config::ContainerConfig;
use slipway_build::image::Platform;
use slipway_build::registry::{Credentials, Registry, RegistryOptions};
use slipway_engine::executor::StepPlan;
use slipway_model::reference::RegistryConfig;
use tokio::sync::Mutex;

/// Image configs read so far, per reference (one slipway process, so tags do not move much).
pub(crate) struct Images {
    registry: RegistryConfig,
    seen: Mutex<HashMap<String, Arc<ContainerConfig>>>,
}

impl Images {
    pub(crate) fn new(registry: RegistryConfig) -> Self {
        Images {
            registry,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The image's container config; `pull_secrets` are the Pod's `imagePullSecrets`.
    pub(crate) async fn config(
        &self,
        image: &str,
        pull_secrets: &[Vec<u8>],
    ) -> Result<Arc<ContainerConfig>, String> {
        if let Some(c) = self.seen.lock().await.get(image) {
            return Ok(c.clone());
        }
        let mut credentials = Credentials::from_env();
        for json in pull_secrets {
            if let Ok(c) = Credentials::from_docker_config_json(json) {
                credentials.merge(c);
            }
        }
        let registry = Registry::new(RegistryOptions {
            config: self.registry.clone(),
            credentials,
            ..RegistryOptions::default()
        });
        let config = registry
            .config(image, &Platform::host())
            .await
            .map_err(|e| format!("failed to {}", crate::error::chain(&e)))?;
        let config = Arc::new(config.config);
        self.seen
            .lock()
            .await
            .insert(image.to_string(), config.clone());
        Ok(config)
    }
}

/// The command and arguments a step runs, as Kubernetes would run its container: the step's
/// command, else the image's entrypoint (with the step's args, else the image's cmd), else the
/// image's cmd followed by the step's args.
pub(crate) fn command_line(step: &StepPlan, image: Option<&ContainerConfig>) -> Vec<String> {
    if !step.command.is_empty() {
        return step.command.iter().chain(&step.args).cloned().collect();
    }
    let entrypoint = image.and_then(|c| c.entrypoint.clone()).unwrap_or_default();
    let cmd = image.and_then(|c| c.cmd.clone()).unwrap_or_default();
    if !entrypoint.is_empty() {
        let args = if step.args.is_empty() {
            cmd
        } else {
            step.args.clone()
        };
        return entrypoint.into_iter().chain(args).collect();
    }
    cmd.into_iter().chain(step.args.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_follow_kubernetes_and_tekton() {
        let step = |command: &[&str], args: &[&str]| StepPlan {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..StepPlan::default()
        };
        let image = ContainerConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["--default".into()]),
            ..ContainerConfig::default()
        };
        let bare = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..ContainerConfig::default()
        };
        assert_eq!(command_line(&step(&["ls"], &["-l"]), None), ["ls", "-l"]);
        assert_eq!(
            command_line(&step(&[], &[]), Some(&image)),
            ["/entry", "--default"]
        );
        assert_eq!(
            command_line(&step(&[], &["x"]), Some(&image)),
            ["/entry", "x"]
        );
        assert_eq!(
            command_line(&step(&[], &["-c", "true"]), Some(&bare)),
            ["sh", "-c", "true"]
        );
    }
}
