//! `slipway token`: API tokens for `slipway serve`, kept (hashed) in the data directory.

use std::path::Path;

use crate::cli::{TokenAction, TokenArgs, TokenScope};
use crate::error::CliError;
use crate::output::age;

/// Creates, lists or revokes tokens.
pub async fn token(data: &Path, args: &TokenArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    match &args.action {
        TokenAction::Create {
            name,
            scope,
            namespaces,
        } => {
            if let Some(bad) = namespaces
                .iter()
                .find(|n| !slipway_store::valid_namespace(n))
            {
                return Err(CliError::usage(
                    format!("`{bad}` is not a namespace name"),
                    "namespaces are 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
                ));
            }
            let token = slipway_server::generate_token();
            let scope = match scope {
                TokenScope::Read => "read",
                TokenScope::Write => "write",
            };
            if !store
                .add_token_in(name, scope, &slipway_server::token_hash(&token), namespaces)
                .await?
            {
                return Err(CliError::usage(
                    format!("a token named `{name}` exists"),
                    "pick another name, or revoke it first with `slipway token revoke NAME`",
                ));
            }
            let limit = if namespaces.is_empty() {
                String::new()
            } else {
                format!(", namespaces {}", namespaces.join(", "))
            };
            eprintln!(
                "token `{name}` ({scope}{limit}) created; it is shown once. Send it as `Authorization: Bearer TOKEN`, or set SLIPWAY_TOKEN for the CLI."
            );
            println!("{token}");
        }
        TokenAction::List => {
            let tokens = store.tokens().await?;
            if tokens.is_empty() {
                println!(
                    "No tokens: the next `slipway serve` on loopback creates an admin token and prints it; nobody can use a server already running without --no-auth."
                );
            }
            for t in tokens {
                let namespaces = if t.namespaces.is_empty() {
                    "*".to_string()
                } else {
                    t.namespaces.join(",")
                };
                println!(
                    "{:<24} {:<6} {:<20} created {}",
                    t.name,
                    t.scope,
                    namespaces,
                    age(t.created_at)
                );
            }
        }
        TokenAction::Revoke { name } => {
            if !store.revoke_token(name).await? {
                return Err(CliError::usage(
                    format!("no token named `{name}`"),
                    "list them with `slipway token list`",
                ));
            }
            println!("token `{name}` revoked");
        }
    }
    Ok(0)
}
