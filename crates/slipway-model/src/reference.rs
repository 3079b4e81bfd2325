//! Image references: parsing, Docker Hub's defaults, and the rewrite rules and mirrors that
//! send pulls to another registry.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Docker Hub's registry name as references spell it.
const HUB: &str = "docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (with port), `docker.io` when the reference names none.
    pub registry: String,
    /// Repository path (`library/alpine` on Docker Hub).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), if given.
    pub digest: Option<String>,
}

/// Why a reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not an image reference: {why}")]
pub struct BadReference {
    /// The text.
    pub reference: String,
    /// What is wrong.
    pub why: &'static str,
}

impl Reference {
    /// Parses `[registry/]repository[:tag][@digest]` with Docker's defaults.
    pub fn parse(text: &str) -> Result<Self, BadReference> {
        let bad = |why| BadReference {
            reference: text.to_string(),
            why,
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                if !d.contains(':') || d.ends_with(':') {
                    return Err(bad("the digest must look like `sha256:<hex>`"));
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if tag.is_empty() {
                    return Err(bad("the tag after `:` is empty"));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() || name.ends_with('/') || name.starts_with('/') || name.contains("//") {
            return Err(bad("the repository name is empty"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (HUB.to_string(), name.to_string()),
        };
        let repository = if registry == HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository names must be lowercase"));
        }
        // The distribution spec's grammar, in short: path components of lowercase letters and
        // digits joined by `.`, `_` or `-`; tags of word characters, `.` and `-`.
        let component_ok = |c: &str| {
            c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "repository path parts are lowercase letters and digits joined by `.`, `_` or `-`",
            ));
        }
        let host_ok = registry
            .split_once(':')
            .map_or((registry.as_str(), "0"), |(h, p)| (h, p));
        if host_ok.0.is_empty()
            || !host_ok
                .0
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ".-".contains(ch))
            || host_ok.1.parse::<u16>().is_err()
        {
            return Err(bad("the registry must be `host` or `host:port`"));
        }
        if let Some(t) = &tag
            && (t.len() > 128
                || t.starts_with(['.', '-'])
                || !t
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch)))
        {
            return Err(bad(
                "tags are letters, digits, `_`, `.` and `-`, at most 128",
            ));
        }
        if let Some(d) = &digest {
            let (alg, hex) = d.split_once(':').unwrap_or_default();
            if alg.is_empty()
                || hex.is_empty()
                || !alg
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "+._-".contains(ch))
                || !hex
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "=_-".contains(ch))
            {
                return Err(bad("the digest must look like `sha256:<hex>`"));
            }
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The repository with its registry (`docker.io/library/alpine`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the daemon for: a digest pins, else the tag (`latest` by default).
    pub fn pull_tag(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// True when Kubernetes' default pull policy is `Always` (`latest` or no tag, no digest).
    pub fn floating(&self) -> bool {
        self.digest.is_none() && self.tag.as_deref().is_none_or(|t| t == "latest")
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())?;
        match (&self.tag, &self.digest) {
            (_, Some(d)) => write!(f, "@{d}"),
            (Some(t), None) => write!(f, ":{t}"),
            (None, None) => write!(f, ":latest"),
        }
    }
}

/// One rewrite rule: references starting with `prefix` start with `replace` instead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Matched against the full reference (`docker.io/library/alpine:3`, `mirror.gcr.io/bash@sha256:…`).
    pub prefix: String,
    /// What replaces the prefix.
    pub replace: String,
    /// Drop a digest pin (keeping the tag, else `latest`): for registries holding rebuilt copies.
    #[serde(default)]
    pub drop_digest: bool,
}

/// Where images come from: rewrite rules, then mirrors per registry (containerd's `hosts.toml`
/// idea: mirrors are tried in order, the registry itself last).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Rewrite rules; the first that matches applies.
    #[serde(default)]
    pub rewrite: Vec<Rewrite>,
    /// Registry host → mirror hosts.
    #[serde(default)]
    pub mirrors: BTreeMap<String, Vec<String>>,
}

impl RegistryConfig {
    /// The references to try for `image`, in order; the last is the upstream one.
    pub fn candidates(&self, image: &str) -> Result<Vec<Reference>, BadReference> {
        let mut r = Reference::parse(image)?;
        let full = r.to_string();
        let original_full = if r.tag.is_none() && r.digest.is_some() {
            format!("{}@{}", r.name(), r.digest.as_deref().unwrap_or_default())
        } else {
            full.clone()
        };
        if let Some(rule) = self
            .rewrite
            .iter()
            .find(|w| full.starts_with(&w.prefix) || original_full.starts_with(&w.prefix))
        {
            let mut base = r.clone();
            if rule.drop_digest {
                base.digest = None;
            }
            let text = base.to_string();
            // A prefix naming the whole pinned reference is replaced whole.
            let rest = text.strip_prefix(&rule.prefix).unwrap_or("");
            r = Reference::parse(&format!("{}{rest}", rule.replace))?;
        }
        let mut out: Vec<Reference> = self
            .mirrors
            .get(&r.registry)
            .into_iter()
            .flatten()
            .map(|m| Reference {
                registry: m.trim_end_matches('/').to_string(),
                ..r.clone()
            })
            .collect();
        out.push(r);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(text: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(text).expect("valid");
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn docker_defaults() {
        assert_eq!(
            parts("alpine"),
            ("docker.io".into(), "library/alpine".into(), None, None)
        );
        assert_eq!(
            parts("127.0.0.1:5000/team/app:1.2"),
            (
                "127.0.0.1:5000".into(),
                "team/app".into(),
                Some("1.2".into()),
                None
            )
        );
        assert_eq!(
            parts("localhost/app@sha256:ab"),
            (
                "localhost".into(),
                "app".into(),
                None,
                Some("sha256:ab".into())
            )
        );
        assert_eq!(
            Reference::parse("alpine").expect("valid").to_string(),
            "docker.io/library/alpine:latest"
        );
        for bad in ["", "a b", "Upper/x", "x:", "x@nodigest", "/x", "x//y"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rewrites_drop_digests_and_mirrors_come_first() {
        let cfg = RegistryConfig {
            rewrite: vec![Rewrite {
                prefix: "mirror.gcr.io/".into(),
                replace: "127.0.0.1:5000/library/".into(),
                drop_digest: true,
            }],
            mirrors: [("docker.io".to_string(), vec!["127.0.0.1:5001".to_string()])].into(),
        };
        let names = |img: &str| -> Vec<String> {
            cfg.candidates(img)
                .expect("valid")
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            names("mirror.gcr.io/bash@sha256:e320"),
            ["127.0.0.1:5000/library/bash:latest"]
        );
        assert_eq!(
            names("mirror.gcr.io/ubuntu:24.04"),
            ["127.0.0.1:5000/library/ubuntu:24.04"]
        );
        assert_eq!(
            names("alpine:3"),
            [
                "127.0.0.1:5001/library/alpine:3",
                "docker.io/library/alpine:3"
            ]
        );
        assert_eq!(names("quay.io/x/y"), ["quay.io/x/y:latest"]);
    }

    #[test]
    fn exact_digest_rules() {
        let cfg = RegistryConfig {
            rewrite: vec![Rewrite {
                prefix: "mirror.gcr.io/bash@sha256:e320".into(),
                replace: "127.0.0.1:5000/pinned/bash:5".into(),
                drop_digest: false,
            }],
            ..RegistryConfig::default()
        };
        let got = cfg
            .candidates("mirror.gcr.io/bash@sha256:e320")
            .expect("valid");
        assert_eq!(got[0].to_string(), "127.0.0.1:5000/pinned/bash:5");
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "[a-z0-9./:@_-]{0,40}") {
            if let Ok(r) = Reference::parse(&s) {
                let again = Reference::parse(&r.to_string()).expect("own output parses");
                prop_assert_eq!(again.name(), r.name());
                prop_assert_eq!(again.digest, r.digest);
            }
        }
    }
}
