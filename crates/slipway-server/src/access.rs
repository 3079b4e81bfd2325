//! Tokens limited to namespaces (`slipway token create NAME --namespace a`): such a token reads
//! and changes only objects and runs of its namespaces. The auth middleware calls [`admit`] once
//! it knows the token; requests whose path or `?namespace=` names another namespace are refused
//! there, and the few handlers that span namespaces (lists of all namespaces, the namespace list,
//! `/api/v1/apply` without a namespace, `/api/v1/runs` taking the runs' own) read [`Access`] to
//! filter or refuse. Lists across all namespaces are filtered to the token's, not refused.

use axum::extract::{FromRequestParts, Query, Request};
use axum::http::request::Parts;

use crate::resources::NamespaceQuery;
use crate::{ApiError, AppState};

/// The namespaces a request may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// Every namespace (no tokens, or a token without a limit).
    #[default]
    All,
    /// Only these.
    Only(Vec<String>),
}

impl Access {
    /// Whether `namespace` may be read or changed.
    pub fn permits(&self, namespace: &str) -> bool {
        match self {
            Access::All => true,
            Access::Only(list) => list.iter().any(|n| n == namespace),
        }
    }

    /// A 403 when `namespace` is outside the token's namespaces.
    pub fn require(&self, namespace: &str) -> Result<(), ApiError> {
        if self.permits(namespace) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "the token is limited to namespaces {}; `{namespace}` is not one of them",
            self.describe()
        )))
    }

    /// The namespaces a list may show: `None` for all.
    pub fn filter(&self) -> Option<&[String]> {
        match self {
            Access::All => None,
            Access::Only(list) => Some(list),
        }
    }

    fn describe(&self) -> String {
        match self {
            Access::All => "(all)".into(),
            Access::Only(list) => list
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Access>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Where a request says it works.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// One namespace, from the path or `?namespace=` (`default` when a run path names none).
    Namespace(String),
    /// Several or none in particular: the handler filters or checks each.
    Handler,
}

/// Looks up the namespaces of the token with `token_hash`, refuses a request outside them, and
/// leaves them in the request for the handlers.
pub async fn admit(state: &AppState, token_hash: &str, req: &mut Request) -> Result<(), ApiError> {
    let access = match state.store.token_namespaces(token_hash).await? {
        Some(list) if !list.is_empty() => Access::Only(list),
        _ => Access::All,
    };
    if access != Access::All
        && let Target::Namespace(ns) = target(req.uri())?
    {
        access.require(&ns)?;
    }
    req.extensions_mut().insert(access);
    Ok(())
}

/// The namespace a request names: `/apis/GROUP/VERSION/namespaces/NS/…`,
/// `/api/v1/namespaces/NS/…`, or `?namespace=` (default `default`) on the endpoints outside a
/// namespace path that take one.
fn target(uri: &axum::http::Uri) -> Result<Target, ApiError> {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let in_path = match segments.as_slice() {
        ["apis", _, _, "namespaces", ns, ..] => Some(*ns),
        ["api", "v1", "namespaces", ns, ..] => Some(*ns),
        _ => None,
    };
    if let Some(ns) = in_path {
        return Ok(Target::Namespace(ns.to_string()));
    }
    let query = || {
        Query::<NamespaceQuery>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::BadRequest(format!("the query is malformed: {e}")))
    };
    Ok(match segments.as_slice() {
        ["api", "v1", "runs", _, ..] | ["api", "v1", "validate"] => {
            Target::Namespace(query()?.namespace().to_string())
        }
        ["api", "v1", "apply"] | ["api", "v1", "runs"] => match query()?.given() {
            Some(ns) => Target::Namespace(ns.to_string()),
            None => Target::Handler,
        },
        _ => Target::Handler,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(uri: &str) -> Target {
        target(&uri.parse().expect("uri")).expect("target")
    }

    #[test]
    fn the_namespace_comes_from_the_path_or_the_query() {
        let ns = |n: &str| Target::Namespace(n.into());
        assert_eq!(of("/apis/tekton.dev/v1/namespaces/a/pipelineruns"), ns("a"));
        assert_eq!(of("/api/v1/namespaces/b/secrets/x"), ns("b"));
        assert_eq!(of("/api/v1/namespaces/c/runs/r/logs"), ns("c"));
        assert_eq!(of("/api/v1/runs/r/logs?follow=true"), ns("default"));
        assert_eq!(of("/api/v1/runs/r/cancel?namespace=d"), ns("d"));
        assert_eq!(of("/api/v1/apply?namespace=e"), ns("e"));
        assert_eq!(of("/api/v1/apply"), Target::Handler);
        assert_eq!(of("/api/v1/namespaces"), Target::Handler);
        assert_eq!(of("/apis/tekton.dev/v1/pipelineruns"), Target::Handler);
    }

    #[test]
    fn a_limited_token_permits_its_namespaces_only() {
        let a = Access::Only(vec!["a".into()]);
        assert!(a.permits("a"));
        assert!(!a.permits("b"));
        assert!(a.require("b").is_err());
        assert!(Access::All.permits("b"));
    }
}
