//! Platforms (`linux/amd64`, `linux/arm64/v8`): the host's, parsing, and matching index
//! entries.

/// An OS, architecture and optional variant, as OCI names them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, `v7`, ...
    pub variant: Option<String>,
}

/// Why a platform string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read `{text}` as a platform: expected `os/arch` or `os/arch/variant` (`linux/amd64`)")]
pub struct BadPlatform {
    /// The text.
    pub text: String,
}

impl Platform {
    /// The platform this process runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, BadPlatform> {
        let bad = || BadPlatform {
            text: s.chars().take(80).collect(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// True when an index entry for `os`/`architecture`/`variant` runs here; arm64's
    /// variant is `v8` when unnamed, and an entry without a variant fits any.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let norm = |v: Option<&str>| match (architecture, v) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.os == os
            && self.architecture == architecture
            && (variant.is_none() || norm(self.variant.as_deref()) == norm(variant))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let p = Platform::parse("linux/arm64/v8").expect("valid");
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            Platform::parse("linux/amd64").map(|p| p.to_string()),
            Ok("linux/amd64".to_string())
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "Linux/AMD64",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arm64_without_variant_is_v8() {
        let p = Platform::parse("linux/arm64").expect("valid");
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "arm", Some("v7")));
        let v7 = Platform::parse("linux/arm/v7").expect("valid");
        assert!(!v7.matches("linux", "arm", Some("v6")));
    }

    #[test]
    fn host_is_a_valid_platform() {
        let h = Platform::host();
        assert_eq!(Platform::parse(&h.to_string()), Ok(h));
    }

    proptest! {
        #[test]
        fn parse_round_trips(s in "[a-z0-9/]{0,20}") {
            if let Ok(p) = Platform::parse(&s) {
                prop_assert_eq!(p.to_string(), s);
            }
        }
    }
}
