//! `.dockerignore` (and `<Dockerfile>.dockerignore`) patterns with Docker's semantics.

use crate::dockerfile::glob::{self, Token};
pub use crate::dockerfile::glob::{GlobError, glob_match};

/// Why a `.dockerignore` is refused; reads after "failed to read .dockerignore: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern Go's `filepath.Match` would refuse.
    #[error("line {line}: pattern `{pattern}` is malformed")]
    BadPattern {
        /// 1-based line.
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: GlobError,
    },
}

/// One path component of a pattern.
#[derive(Debug, Clone)]
enum Part {
    /// `**`: any number of components.
    AnyDirs,
    Segment(Vec<Token>),
}

#[derive(Debug, Clone)]
struct Rule {
    /// `!pattern`: re-includes what it matches.
    exception: bool,
    parts: Vec<Part>,
}

/// The patterns of a `.dockerignore`, in order (the last matching one decides).
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    rules: Vec<Rule>,
}

/// `filepath.Clean` for slash paths, without a leading `/`: `.`/empty parts dropped, `..`
/// applied where it can be.
fn clean(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            // Above the root there is nothing: `/..` is `/`.
            ".." if path.starts_with('/') => {}
            p => parts.push(p),
        }
    }
    parts
}

impl Patterns {
    /// Parses a `.dockerignore`: `#` at the start of a line is a comment, lines are trimmed,
    /// blank lines skipped, `!` marks an exception.
    pub fn parse(text: &str) -> Result<Patterns, IgnoreError> {
        let mut rules = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
            }
            if pattern.is_empty() {
                continue;
            }
            let parts = clean(pattern)
                .into_iter()
                .map(|p| match p {
                    "**" => Ok(Part::AnyDirs),
                    p => glob::compile(p).map(Part::Segment),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| IgnoreError::BadPattern {
                    line: i + 1,
                    pattern: line.trim().to_owned(),
                    source,
                })?;
            rules.push(Rule { exception, parts });
        }
        Ok(Patterns { rules })
    }

    /// Whether `rel_path` (slash-separated, relative to the context root) is left out of the
    /// context: the last pattern matching it or one of its parents decides.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = clean(rel_path);
        let mut excluded = false;
        for rule in &self.rules {
            let hit = (1..=path.len()).any(|n| match_parts(&rule.parts, &path[..n]));
            if hit {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether an exception could re-include something below `dir`, so a walker must look
    /// inside an excluded directory (conservative: `true` when unsure).
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = clean(dir);
        self.rules
            .iter()
            .filter(|r| r.exception)
            .any(|r| prefix_compatible(&r.parts, &dir))
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn segment(tokens: &[Token], component: &str) -> bool {
    let chars: Vec<char> = component.chars().collect();
    glob::matches(tokens, &chars)
}

fn match_parts(parts: &[Part], path: &[&str]) -> bool {
    match parts.split_first() {
        None => path.is_empty(),
        // A trailing `**` stands for "everything inside", never for nothing.
        Some((Part::AnyDirs, [])) => !path.is_empty(),
        Some((Part::AnyDirs, rest)) => (0..=path.len()).any(|i| match_parts(rest, &path[i..])),
        Some((Part::Segment(t), rest)) => match path.split_first() {
            Some((c, tail)) => segment(t, c) && match_parts(rest, tail),
            None => false,
        },
    }
}

/// Whether `parts` could match `dir` or a path below it.
fn prefix_compatible(parts: &[Part], dir: &[&str]) -> bool {
    match (parts.split_first(), dir.split_first()) {
        (None, _) | (_, None) | (Some((Part::AnyDirs, _)), _) => true,
        (Some((Part::Segment(t), rest)), Some((c, tail))) => {
            segment(t, c) && prefix_compatible(rest, tail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn patterns(text: &str) -> Patterns {
        Patterns::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn docker_documented_examples() {
        let p = patterns("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        let cases: &[(&str, bool)] = &[
            ("somedir/temporary.txt", true),
            ("somedir/temp", true),
            ("somedir/temp/inner", true),
            ("somedir/subdir/temporary.txt", true),
            ("tempa", true),
            ("temp", false),
            ("temporary.txt", false),
            ("a/b/c/temp", false),
            ("# comment", false),
        ];
        for (path, want) in cases {
            assert_eq!(p.is_excluded(path), *want, "{path}");
        }
    }

    #[test]
    fn double_star_and_exceptions() {
        let p = patterns("**/*.go\n*.md\n!README*.md\nREADME-secret.md\n");
        let cases: &[(&str, bool)] = &[
            ("main.go", true),
            ("a/b/c.go", true),
            ("CHANGES.md", true),
            ("README.md", false),
            ("README-x.md", false),
            ("README-secret.md", true),
            ("docs/x.md", false),
        ];
        for (path, want) in cases {
            assert_eq!(p.is_excluded(path), *want, "{path}");
        }
    }

    #[test]
    fn directories_parents_and_cleaning() {
        let p = patterns("  /node_modules/  \nbuild/**\n!node_modules/keep\n./tmp/../cache\n");
        let cases: &[(&str, bool)] = &[
            ("node_modules", true),
            ("node_modules/a/b.js", true),
            ("node_modules/keep", false),
            ("node_modules/keep/x.js", false),
            ("build", false),
            ("build/out/x", true),
            ("cache/x", true),
            ("tmp", false),
        ];
        for (path, want) in cases {
            assert_eq!(p.is_excluded(path), *want, "{path}");
        }
        assert!(p.may_include_below("node_modules"));
        assert!(!p.may_include_below("build"));
        assert!(patterns("*\n!**/*.rs\n").may_include_below("deep/dir"));
    }

    #[test]
    fn bad_pattern_names_its_line() {
        assert!(matches!(
            Patterns::parse("ok\n\n  [abc\n"),
            Err(IgnoreError::BadPattern { line: 3, ref pattern, .. }) if pattern == "[abc"
        ));
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,60}", path in "[a-z/.*]{0,20}") {
            if let Ok(p) = Patterns::parse(&text) {
                let _ = p.is_excluded(&path);
                let _ = p.may_include_below(&path);
            }
        }
    }
}
