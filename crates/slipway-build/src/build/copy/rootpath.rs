//! Resolving a path inside a root file system as if that root were `/`: symlinks are followed
//! within the root and neither `..` nor an absolute link target can leave it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Links followed before giving up, as Linux does (`ELOOP`).
const MAX_HOPS: usize = 40;

/// Resolves `path` (absolute or relative, both taken from `root`) to a host path inside
/// `root`. Symlinks in every component are followed inside the root; the last component's
/// only when `follow_last`. Components that do not exist are kept as written, so the result
/// may name something to be created.
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> std::io::Result<PathBuf> {
    let mut queue: VecDeque<String> = components(path).collect();
    let mut stack: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = queue.pop_front() {
        if part == ".." {
            stack.pop();
            continue;
        }
        let last = queue.is_empty();
        let candidate = join(root, &stack).join(&part);
        if (!last || follow_last)
            && std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink())
        {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(std::io::Error::other(format!(
                    "too many levels of symbolic links at {}",
                    candidate.display()
                )));
            }
            let target = std::fs::read_link(&candidate)?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                stack.clear();
            }
            for (i, c) in components(&target).enumerate() {
                queue.insert(i, c);
            }
            continue;
        }
        stack.push(part);
    }
    Ok(join(root, &stack))
}

/// The non-empty, non-`.` components of a `/`-separated path.
fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

fn join(root: &Path, stack: &[String]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(stack);
    path
}

/// Lexically cleans `path` as if rooted: no `.`, no `..` above the root, no leading `/`;
/// `/`-separated, empty for the root itself.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn hostile_links_stay_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).expect("mkdir");
        symlink("/../../../tmp/x", root.join("etc")).expect("link");
        symlink("../../../../outside", root.join("up")).expect("link");
        symlink("usr/lib", root.join("lib")).expect("link");
        symlink("/lib", root.join("abs")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        let cases = [
            ("/etc/passwd", true, root.join("tmp/x/passwd")),
            ("/etc", true, root.join("tmp/x")),
            ("/etc", false, root.join("etc")),
            ("up/file", true, root.join("outside/file")),
            ("/lib/libc.so", true, root.join("usr/lib/libc.so")),
            ("/abs/x", true, root.join("usr/lib/x")),
            ("../../lib", true, root.join("usr/lib")),
            ("/new/dir/", true, root.join("new/dir")),
            ("/", true, root.clone()),
        ];
        for (path, follow, want) in cases {
            let got = resolve(&root, path, follow).expect("resolve");
            assert_eq!(got, want, "{path}");
            assert!(
                got.starts_with(&root),
                "{path} escaped to {}",
                got.display()
            );
        }
        assert!(resolve(&root, "/loop/x", true).is_err());
    }

    #[test]
    fn clean_never_climbs() {
        assert_eq!(clean("../x"), "x");
        assert_eq!(clean("/a/./b/../c/"), "a/c");
        assert_eq!(clean("."), "");
    }
}
