//! `slipway secrets`: the key Secrets are sealed with at rest, and its rotation.

use std::path::Path;

use crate::cli::{SecretsAction, SecretsArgs};
use crate::error::CliError;

/// Rotates or shows the key.
pub async fn secrets(data: &Path, args: &SecretsArgs) -> Result<i32, CliError> {
    match args.action {
        SecretsAction::Key => {
            let store = crate::paths::open_store(data).await?;
            let (file, id) = store.secret_key();
            println!("key {id} in {}", file.display());
        }
        SecretsAction::RotateKey => {
            // A running server keeps the key it started with and would seal new values with
            // the key being retired; holding its lock keeps one from starting meanwhile.
            let _lock = crate::cmd::serve::lock(data).map_err(|e| match e {
                CliError::Usage { message, .. } => CliError::usage(
                    message,
                    "stop the server (and any `slipway run` on this data directory), then rotate",
                ),
                other => other,
            })?;
            let store = crate::paths::open_store(data).await?;
            let r = store.rotate_key().await?;
            let (file, _) = store.secret_key();
            println!(
                "rotated the secret key {} -> {}: sealed again {} Secret(s) and the inputs of {} run(s); the old key is gone from {}",
                r.old_key,
                r.new_key,
                r.resealed.resources,
                r.resealed.runs,
                file.display()
            );
        }
    }
    Ok(0)
}
