//! `slipway token`: API tokens for `slipway serve`, kept (hashed) in the data directory.

use std::path::Path;

use crate::cli::{TokenAction, TokenArgs, TokenScope};
use crate::error::CliError;
use crate::output::age;

/// Creates, lists or revokes tokens.
pub async fn token(data: &Path, args: &TokenArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    match &args.action {
        TokenAction::Create { name, scope } => {
            let token = slipway_server::generate_token();
            let scope = match scope {
                TokenScope::Read => "read",
                TokenScope::Write => "write",
            };
            if !store
                .add_token(name, scope, &slipway_server::token_hash(&token))
                .await?
            {
                return Err(CliError::usage(
                    format!("a token named `{name}` exists"),
                    "pick another name, or revoke it first with `slipway token revoke NAME`",
                ));
            }
            eprintln!(
                "token `{name}` ({scope}) created; it is shown once. The API now needs a token for every request."
            );
            println!("{token}");
        }
        TokenAction::List => {
            let tokens = store.tokens().await?;
            if tokens.is_empty() {
                println!("No tokens: the API is open to anyone who can reach it.");
            }
            for t in tokens {
                println!(
                    "{:<24} {:<6} created {}",
                    t.name,
                    t.scope,
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
