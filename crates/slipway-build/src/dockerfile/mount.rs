//! `RUN --mount=...`: its comma-separated keys, per type, with Docker's defaults.

use crate::dockerfile::RunMount;
use crate::dockerfile::value::{self, ValueError};

/// Why a `--mount` is refused; reads after "failed to read --mount: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// `type=volume`.
    #[error("`{0}` is not a mount type: use bind, cache, tmpfs, secret or ssh")]
    UnknownType(String),
    /// `tagret=/x`, or `sharing=` on a bind mount.
    #[error("`{key}` is not a key of a {kind} mount (it takes {allowed})")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The mount type.
        kind: &'static str,
        /// Keys it accepts.
        allowed: String,
    },
    /// `type=cache` without `target=`.
    #[error("a {0} mount needs target=<path>")]
    MissingTarget(&'static str),
    /// `sharing=everyone`.
    #[error("`{0}` is not a sharing mode: use shared, private or locked")]
    Sharing(String),
    /// `uid=me`.
    #[error("`{key}={value}` is not a number")]
    Number {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `mode=`, `rw=` and the like.
    #[error(transparent)]
    Value(#[from] ValueError),
}

const BIND: &[&str] = &["type", "target", "source", "from", "readwrite"];
const CACHE: &[&str] = &[
    "type", "target", "id", "sharing", "readonly", "source", "from", "mode", "uid", "gid",
];
const TMPFS: &[&str] = &["type", "target", "size"];
const SECRET: &[&str] = &[
    "type", "target", "id", "required", "mode", "uid", "gid", "env",
];
const SSH: &[&str] = &["type", "target", "id", "required", "mode", "uid", "gid"];

/// Docker's aliases for the canonical key names.
fn canonical(key: &str) -> &str {
    match key {
        "dst" | "destination" => "target",
        "src" => "source",
        "ro" => "readonly",
        "rw" => "readwrite",
        other => other,
    }
}

/// Parses an expanded `--mount` value.
pub fn parse(value: &str) -> Result<RunMount, MountError> {
    let fields: Vec<(String, Option<String>)> = value
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
            None => (f.to_ascii_lowercase(), None),
        })
        .collect();
    let kind = fields
        .iter()
        .find(|(k, _)| k == "type")
        .and_then(|(_, v)| v.clone())
        .unwrap_or_else(|| "bind".to_owned());
    let (kind, allowed): (&'static str, &[&str]) = match kind.as_str() {
        "bind" => ("bind", BIND),
        "cache" => ("cache", CACHE),
        "tmpfs" => ("tmpfs", TMPFS),
        "secret" => ("secret", SECRET),
        "ssh" => ("ssh", SSH),
        other => return Err(MountError::UnknownType(other.to_owned())),
    };
    for (key, _) in &fields {
        if !allowed.contains(&canonical(key)) {
            return Err(MountError::UnknownKey {
                key: key.clone(),
                kind,
                allowed: allowed.join(", "),
            });
        }
    }
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| canonical(k) == name)
            .map(|(_, v)| v.as_deref())
    };
    let text = |name: &str| get(name).flatten().map(str::to_owned);
    let flag = |name: &str| get(name).map_or(Ok(false), value::flag_bool);
    let number = |name: &str, default: u32| match get(name).flatten() {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| MountError::Number {
            key: name.to_owned(),
            value: v.to_owned(),
        }),
    };
    let mode = |default: u32| get("mode").flatten().map_or(Ok(default), value::octal_mode);
    let target = text("target").filter(|t| !t.is_empty());
    Ok(match kind {
        "bind" => RunMount::Bind {
            target: target.ok_or(MountError::MissingTarget(kind))?,
            source: text("source").unwrap_or_default(),
            from: text("from"),
            rw: flag("readwrite")?,
        },
        "cache" => {
            let target = target.ok_or(MountError::MissingTarget(kind))?;
            let sharing = text("sharing").unwrap_or_else(|| "shared".to_owned());
            if !matches!(sharing.as_str(), "shared" | "private" | "locked") {
                return Err(MountError::Sharing(sharing));
            }
            RunMount::Cache {
                id: text("id")
                    .filter(|i| !i.is_empty())
                    .unwrap_or(target.clone()),
                target,
                sharing,
                readonly: flag("readonly")?,
                source: text("source"),
                from: text("from"),
                mode: mode(0o755)?,
                uid: number("uid", 0)?,
                gid: number("gid", 0)?,
            }
        }
        "tmpfs" => RunMount::Tmpfs {
            target: target.ok_or(MountError::MissingTarget(kind))?,
            size: match get("size").flatten() {
                None => None,
                Some(v) => Some(bytes(v).ok_or_else(|| MountError::Number {
                    key: "size".into(),
                    value: v.to_owned(),
                })?),
            },
        },
        "secret" => {
            // Docker names the secret after the target's file name when no id is given.
            let id = text("id").filter(|i| !i.is_empty()).or_else(|| {
                target
                    .as_deref()
                    .and_then(|t| t.rsplit('/').next())
                    .map(str::to_owned)
            });
            let id = id.ok_or(MountError::MissingTarget(kind))?;
            RunMount::Secret {
                target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                id,
                required: flag("required")?,
                mode: mode(0o400)?,
                uid: number("uid", 0)?,
                gid: number("gid", 0)?,
                env: text("env"),
            }
        }
        _ => RunMount::Ssh {
            target: target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".to_owned()),
        },
    })
}

/// `64m`, `1g`, `512` (1024-based, as Docker's RAM sizes).
fn bytes(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let scale: u64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_defaults() {
        assert_eq!(
            parse("type=cache,target=/root/.cache"),
            Ok(RunMount::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into(),
                sharing: "shared".into(),
                readonly: false,
                source: None,
                from: None,
                mode: 0o755,
                uid: 0,
                gid: 0,
            })
        );
    }

    #[test]
    fn secret_defaults() {
        assert_eq!(
            parse("type=secret,id=npmrc"),
            Ok(RunMount::Secret {
                id: "npmrc".into(),
                target: "/run/secrets/npmrc".into(),
                required: false,
                mode: 0o400,
                uid: 0,
                gid: 0,
                env: None,
            })
        );
    }

    #[test]
    fn bind_and_tmpfs() {
        assert_eq!(
            parse("target=/src,from=builder,src=/out,rw"),
            Ok(RunMount::Bind {
                target: "/src".into(),
                source: "/out".into(),
                from: Some("builder".into()),
                rw: true,
            })
        );
        assert_eq!(
            parse("type=tmpfs,dst=/tmp,size=64m"),
            Ok(RunMount::Tmpfs {
                target: "/tmp".into(),
                size: Some(64 << 20),
            })
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse("type=volume,target=/x"),
            Err(MountError::UnknownType("volume".into()))
        );
        assert!(matches!(
            parse("type=cache,tagret=/x"),
            Err(MountError::UnknownKey { ref key, .. }) if key == "tagret"
        ));
        assert!(matches!(
            parse("type=bind,target=/x,sharing=locked"),
            Err(MountError::UnknownKey { .. })
        ));
        assert_eq!(parse("type=cache"), Err(MountError::MissingTarget("cache")));
        assert_eq!(
            parse("type=cache,target=/x,sharing=all"),
            Err(MountError::Sharing("all".into()))
        );
        assert!(parse("type=cache,target=/x,mode=9").is_err());
        assert!(parse("type=cache,target=/x,uid=me").is_err());
    }
}
