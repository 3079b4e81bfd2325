//! Names and paths as Kubernetes validates them: object names (DNS-1123 subdomains), namespaces
//! and other labels (DNS-1123 labels), ConfigMap and Secret keys, and the relative paths
//! (`subPath`, projected `items[].path`) that must stay inside their volume.

/// Longest DNS-1123 subdomain (most object names).
pub const SUBDOMAIN_MAX: usize = 253;
/// Longest DNS-1123 label (namespaces, pipeline task and step names).
pub const LABEL_MAX: usize = 63;
/// Characters Kubernetes appends to a `generateName` prefix.
const GENERATED_SUFFIX: usize = 5;

/// Why `s` is not a DNS-1123 subdomain (a Kubernetes object name).
pub fn dns_subdomain_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > SUBDOMAIN_MAX {
        return Some("it is longer than 253 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Some("it may hold only lowercase letters, digits, '-' and '.'");
    }
    let first = s.as_bytes()[0];
    let last = s.as_bytes()[s.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Some("it must start and end with a letter or digit");
    }
    if s.split('.').any(str::is_empty) {
        return Some("each '.'-separated part must be non-empty");
    }
    None
}

/// Why `s` is not a DNS-1123 label (namespaces, pipeline task and step names).
pub fn dns_label_problem(s: &str) -> Option<&'static str> {
    if s.len() > LABEL_MAX {
        return Some("it is longer than 63 characters");
    }
    if s.contains('.') {
        return Some("it may not contain '.'");
    }
    dns_subdomain_problem(s)
}

/// Why `prefix` is not a usable `generateName`: with Kubernetes' five random characters
/// appended it must make a valid name, so a trailing '-' is allowed.
pub fn generate_name_problem(prefix: &str) -> Option<&'static str> {
    if prefix.len() + GENERATED_SUFFIX > SUBDOMAIN_MAX {
        return Some("it is longer than 248 characters");
    }
    let masked = match prefix.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => format!("{rest}a"),
        _ => prefix.to_string(),
    };
    dns_subdomain_problem(&masked)
}

/// Why `key` is not a ConfigMap or Secret key (each key becomes a file name when projected).
pub fn config_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("it is empty");
    }
    if key.len() > SUBDOMAIN_MAX {
        return Some("it is longer than 253 characters");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Some("it may hold only letters, digits, '-', '_' and '.'");
    }
    if key == "." || key == ".." || key.starts_with("..") {
        return Some("it may not be '.' or '..' or start with '..'");
    }
    None
}

/// Why `path` is not a relative path that stays below where it is joined (`subPath`, a
/// projected item's `path`): Kubernetes refuses absolute paths and any `..` component.
pub fn local_path_problem(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("it is absolute");
    }
    if path.split('/').any(|c| c == "..") {
        return Some("it may not contain '..'");
    }
    if path.contains('\0') {
        return Some("it may not contain a NUL character");
    }
    None
}

/// Why `path` is not a mount path: absolute, with no `..` component (so it means the same
/// inside a step as it reads).
pub fn mount_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("it is not absolute");
    }
    if path.split('/').any(|c| c == "..") {
        return Some("it may not contain '..'");
    }
    if path.contains('\0') {
        return Some("it may not contain a NUL character");
    }
    None
}

/// `s` as it may be quoted in a message: control characters escaped, cut after 64 characters.
pub fn shown(s: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_default).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_kubernetes_checks_them() {
        for ok in ["a", "build-1", "a.b.c", &"a".repeat(253)] {
            assert_eq!(dns_subdomain_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "..",
            "../../x",
            "a\nb",
            "A",
            "-a",
            "a-",
            "a..b",
            &"a".repeat(254),
            &"a".repeat(10_000),
        ] {
            assert!(dns_subdomain_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(dns_label_problem(&"a".repeat(63)), None);
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
        assert!(dns_label_problem("a.b").is_some());
    }

    #[test]
    fn generate_name_prefixes() {
        assert_eq!(generate_name_problem("build-"), None);
        assert_eq!(generate_name_problem("build"), None);
        assert!(generate_name_problem("../").is_some());
        assert!(generate_name_problem("-").is_some());
        assert!(generate_name_problem(&"a".repeat(249)).is_some());
    }

    #[test]
    fn keys_and_paths_stay_inside() {
        for ok in ["config.json", ".env", "a_b-c"] {
            assert_eq!(config_key_problem(ok), None, "{ok}");
        }
        for bad in ["", ".", "..", "..x", "a/b", "../../etc/passwd"] {
            assert!(config_key_problem(bad).is_some(), "{bad:?}");
        }
        for ok in ["", "a", "a/b", "a/./b", "a..b"] {
            assert_eq!(local_path_problem(ok), None, "{ok}");
        }
        for bad in ["..", "../..", "a/../..", "/etc", "a/.."] {
            assert!(local_path_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(mount_path_problem("/workspace/src"), None);
        assert!(mount_path_problem("workspace").is_some());
        assert!(mount_path_problem("/workspace/../../etc").is_some());
    }

    #[test]
    fn messages_quote_hostile_names_safely() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"x".repeat(10_000)).chars().count(), 65);
    }
}
