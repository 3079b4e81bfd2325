//! Repository polling for users without inbound webhooks: an EventListener annotated with
//! `slipway.dev/poll-repository` has `git ls-remote` run on an interval, and every ref that
//! moved becomes a push event delivered to it, as a webhook would be.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::json;
use slipway_engine::supervise;
use slipway_model::annotations::poll_interval;
use slipway_model::duration::capped;
use slipway_triggers::Event;
use tokio::time::Instant;

use crate::AppState;
use crate::hooks::deliver_event;
use crate::trigger_defs::StoredDefinitions;

/// The repository URL (or path) to poll.
pub const REPOSITORY: &str = "slipway.dev/poll-repository";
/// How often (a Go duration; default `1m`).
pub const INTERVAL: &str = slipway_model::annotations::POLL_INTERVAL;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Which refs, comma-separated, `*` at the end matching any rest (default `refs/heads/*`).
pub const REFS: &str = "slipway.dev/poll-refs";

/// How long one `git ls-remote` may take.
const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a listener whose polling panicked waits before it is polled again.
const AFTER_PANIC: Duration = Duration::from_secs(60);

/// Polls until `shutdown`. A round that fails or panics is logged and the poller goes on, so
/// one bad listener (or a database hiccup) does not end polling for every listener.
pub async fn run(state: AppState, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut due: HashMap<(String, String), Instant> = HashMap::new();
    let mut backoff = supervise::Backoff::default();
    loop {
        let began = Instant::now();
        let failed = match supervise::catch(round(&state, &mut due)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(why) => Some(format!("panicked: {why}")),
        };
        let pause = match failed {
            None => {
                backoff = supervise::Backoff::default();
                Duration::from_millis(500)
            }
            Some(why) => {
                let pause = backoff
                    .after(began.elapsed())
                    .max(Duration::from_millis(500));
                tracing::warn!("repository polling: {why}; trying again in {pause:?}");
                pause
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

async fn round(
    state: &AppState,
    due: &mut HashMap<(String, String), Instant>,
) -> Result<(), crate::ApiError> {
    for r in state.store.resources_everywhere("EventListener").await? {
        let key = (r.namespace.clone(), r.name.clone());
        if due.get(&key).is_some_and(|at| Instant::now() < *at) {
            continue;
        }
        // Each listener on its own: a panic polling one leaves the others polled.
        if let Err(why) = supervise::catch(listener(state, &r, due)).await {
            tracing::error!(listener = %r.name, namespace = %r.namespace, "polling panicked: {why}; trying again in {AFTER_PANIC:?}");
            due.insert(key, Instant::now() + AFTER_PANIC);
        }
    }
    Ok(())
}

/// Polls one EventListener if it asks to be polled.
async fn listener(
    state: &AppState,
    r: &slipway_store::Resource,
    due: &mut HashMap<(String, String), Instant>,
) {
    let annotations = &r.object["metadata"]["annotations"];
    let Some(repo) = annotations[REPOSITORY].as_str() else {
        return;
    };
    // Apply refuses a bad interval; one stored before that check polls at the default.
    let every = match annotations[INTERVAL].as_str().map(poll_interval) {
        None => DEFAULT_INTERVAL,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            tracing::warn!(listener = %r.name, "{INTERVAL}: {e}; polling every minute");
            DEFAULT_INTERVAL
        }
    };
    let every = capped(every.max(Duration::from_secs(1)));
    due.insert(
        (r.namespace.clone(), r.name.clone()),
        Instant::now() + every,
    );
    let patterns: Vec<String> = annotations[REFS]
        .as_str()
        .unwrap_or("refs/heads/*")
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Err(e) = poll(state, &r.namespace, &r.name, repo, &patterns).await {
        tracing::warn!(listener = %r.name, repository = repo, "failed to poll: {e}");
    }
}

async fn poll(
    state: &AppState,
    namespace: &str,
    listener: &str,
    repo: &str,
    patterns: &[String],
) -> Result<(), String> {
    let heads: BTreeMap<String, String> = ls_remote(repo)
        .await?
        .into_iter()
        .filter(|(r, _)| patterns.iter().any(|p| matches(p, r)))
        .collect();
    let key = crate::hooks::listener_key(namespace, listener);
    let seen = state
        .store
        .poll_heads(&key, repo)
        .await
        .map_err(|e| e.to_string())?;
    // The first poll learns where the refs are; only later moves trigger.
    if let Some(seen) = seen {
        let defs = StoredDefinitions::load(&state.store, namespace, &[])
            .await
            .map_err(|e| e.to_string())?;
        let spec = defs
            .listener(listener)
            .ok_or_else(|| format!("EventListener `{listener}` is gone"))?;
        for (r, sha) in &heads {
            let before = seen.get(r);
            if before == Some(sha) {
                continue;
            }
            let event = push_event(repo, r, before.map(String::as_str), sha);
            // The ID makes a move trigger once, even when a crash re-polls it.
            let id = format!("poll:{r}:{sha}");
            match deliver_event(state, namespace, listener, &spec, &defs, &event, Some(id)).await {
                Ok((_, reply)) => {
                    tracing::info!(listener, repository = repo, r#ref = %r, sha = %sha, runs = %reply["runs"], "polled change delivered")
                }
                Err(e) => {
                    tracing::warn!(listener, repository = repo, r#ref = %r, "polled change refused: {e}")
                }
            }
        }
    }
    state
        .store
        .set_poll_heads(&key, repo, &heads)
        .await
        .map_err(|e| e.to_string())
}

/// A push event in the shape GitHub and GitLab both use for their common fields.
fn push_event(repo: &str, r: &str, before: Option<&str>, after: &str) -> Event {
    let tag = r.starts_with("refs/tags/");
    let body = json!({
        "ref": r,
        "before": before.unwrap_or("0000000000000000000000000000000000000000"),
        "after": after,
        "checkout_sha": after,
        "repository": {"clone_url": repo, "url": repo, "git_http_url": repo},
        "project": {"git_http_url": repo, "http_url": repo},
        "head_commit": {"id": after},
    });
    let headers = vec![
        ("X-GitHub-Event".to_string(), "push".to_string()),
        (
            "X-Gitlab-Event".to_string(),
            if tag { "Tag Push Hook" } else { "Push Hook" }.to_string(),
        ),
        ("X-Slipway-Event".to_string(), "poll".to_string()),
    ];
    let raw = body.to_string().into_bytes();
    Event {
        headers,
        raw,
        body,
        extensions: Default::default(),
        trusted: true,
    }
}

fn matches(pattern: &str, r: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => r.starts_with(prefix),
        None => pattern == r,
    }
}

/// `git ls-remote REPO`: `(ref, sha)` pairs.
async fn ls_remote(repo: &str) -> Result<Vec<(String, String)>, String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("ls-remote")
        .arg("--")
        .arg(repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    let out = tokio::time::timeout(LS_REMOTE_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("git ls-remote {repo} took over a minute"))?
        .map_err(|e| format!("failed to run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git ls-remote {repo}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (sha, r) = l.split_once('\t')?;
            Some((r.to_string(), sha.to_string()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_patterns() {
        assert!(matches("refs/heads/*", "refs/heads/main"));
        assert!(!matches("refs/heads/*", "refs/tags/v1"));
        assert!(matches("refs/tags/v1", "refs/tags/v1"));
    }
}
