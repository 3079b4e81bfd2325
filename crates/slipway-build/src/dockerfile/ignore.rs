//! `.dockerignore` (and `<Dockerfile>.dockerignore`) patterns with Docker's semantics.
//!
//! A minimal version written beside the context work so it compiles; the full one (with its
//! own tests and diagnostics) replaces it.

/// Why an ignore file was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IgnoreError {
    /// A line is not a valid pattern.
    #[error("parse .dockerignore line {line}: {pattern:?} is not a valid pattern")]
    BadPattern {
        /// 1-based line number.
        line: usize,
        /// The pattern as written.
        pattern: String,
    },
}

/// One pattern: its path components and whether it re-includes (`!`).
#[derive(Debug, Clone)]
struct Rule {
    parts: Vec<String>,
    negated: bool,
}

/// The patterns of one ignore file, in order (the last matching one decides).
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    rules: Vec<Rule>,
}

impl Patterns {
    /// Parses an ignore file's text: one pattern a line, `#` comments, `!` re-includes.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let parts = clean(body);
            if parts.is_empty() {
                continue;
            }
            if parts.iter().any(|p| p != "**" && !well_formed(p)) {
                return Err(IgnoreError::BadPattern {
                    line: index + 1,
                    pattern: raw.to_string(),
                });
            }
            rules.push(Rule { parts, negated });
        }
        Ok(Self { rules })
    }

    /// Whether `rel` (a `/`-separated path relative to the context) is left out.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let path = clean(rel);
        if path.is_empty() {
            return false;
        }
        let mut excluded = false;
        for rule in &self.rules {
            // Docker: a pattern naming a directory excludes everything below it too.
            let hit = (1..=path.len()).any(|n| match_parts(&rule.parts, &path[..n]));
            if hit {
                excluded = !rule.negated;
            }
        }
        excluded
    }

    /// Whether something below the excluded directory `dir` may be re-included by a `!`
    /// pattern, so a walk must still descend into it.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let path = clean(dir);
        self.rules
            .iter()
            .filter(|r| r.negated)
            .any(|r| prefix_may_match(&r.parts, &path))
    }
}

/// Splits a pattern or path into components, dropping `.`, resolving `..` lexically and
/// treating it as rooted at the context (a leading `/` or `..` cannot leave it).
fn clean(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_string()),
        }
    }
    out
}

/// Whether a component pattern parses (balanced classes, no trailing escape).
fn well_formed(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return false;
                }
                i += 2;
            }
            '[' => match class_end(&chars, i) {
                Some(end) => i = end + 1,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// Matches pattern components against path components; `**` spans any number of them.
fn match_parts(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((head, tail)) => glob_match(first, head) && match_parts(rest, tail),
            None => false,
        },
    }
}

/// Whether some path below `dir` could match `pattern`.
fn prefix_may_match(pattern: &[String], dir: &[String]) -> bool {
    match (pattern.split_first(), dir.split_first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some((first, _)), Some(_)) if first == "**" => true,
        (Some((first, rest)), Some((head, tail))) => {
            glob_match(first, head) && prefix_may_match(rest, tail)
        }
    }
}

/// Go's `filepath.Match` on `/`-separated paths: `*` and `?` never match `/`, `[...]` classes
/// (`^` negates, `a-z` ranges), `\` escapes. A malformed pattern matches nothing.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    if !well_formed(pattern) {
        return false;
    }
    match_from(&p, 0, &s, 0)
}

fn match_from(p: &[char], mut pi: usize, s: &[char], mut si: usize) -> bool {
    while pi < p.len() {
        match p[pi] {
            '*' => {
                while pi < p.len() && p[pi] == '*' {
                    pi += 1;
                }
                let mut k = si;
                loop {
                    if match_from(p, pi, s, k) {
                        return true;
                    }
                    if k >= s.len() || s[k] == '/' {
                        return false;
                    }
                    k += 1;
                }
            }
            '?' => {
                if si >= s.len() || s[si] == '/' {
                    return false;
                }
                pi += 1;
                si += 1;
            }
            '[' => {
                let Some(end) = class_end(p, pi) else {
                    return false;
                };
                if si >= s.len() || s[si] == '/' || !class_matches(&p[pi + 1..end], s[si]) {
                    return false;
                }
                pi = end + 1;
                si += 1;
            }
            '\\' => {
                if pi + 1 >= p.len() || si >= s.len() || p[pi + 1] != s[si] {
                    return false;
                }
                pi += 2;
                si += 1;
            }
            c => {
                if si >= s.len() || s[si] != c {
                    return false;
                }
                pi += 1;
                si += 1;
            }
        }
    }
    si == s.len()
}

/// The index of the `]` closing the class opened at `start`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && p[i] == '^' {
        i += 1;
    }
    let first = i;
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            ']' if i > first => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether `c` is in the class body (between `[` and `]`).
fn class_matches(body: &[char], c: char) -> bool {
    let (negated, body) = match body.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, body),
    };
    let mut items = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let ch = if body[i] == '\\' && i + 1 < body.len() {
            i += 1;
            body[i]
        } else {
            body[i]
        };
        items.push(ch);
        i += 1;
    }
    let mut found = false;
    let mut j = 0;
    while j < items.len() {
        if j + 2 < items.len() && items[j + 1] == '-' {
            if items[j] <= c && c <= items[j + 2] {
                found = true;
            }
            j += 3;
        } else {
            if items[j] == c {
                found = true;
            }
            j += 1;
        }
    }
    found != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_follows_go_filepath_match() {
        let cases = [
            ("*.txt", "a.txt", true),
            ("*.txt", "dir/a.txt", false),
            ("[ab]?", "bx", true),
            ("[ab]?", "cx", false),
            ("[^a]*", "b1", true),
            ("[^a]*", "a1", false),
            ("[a-c]", "b", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("dir/*", "dir/x", true),
            ("[", "[", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(glob_match(pattern, path), want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn negation_and_parents() {
        let p = Patterns::parse("# c\nsecret\n*.log\n!keep.log\nbuild/**\n!build/out\n")
            .expect("parse");
        assert!(p.is_excluded("secret"));
        assert!(p.is_excluded("secret/inner"));
        assert!(p.is_excluded("a.log"));
        assert!(!p.is_excluded("keep.log"));
        assert!(!p.is_excluded("sub/a.log"));
        assert!(p.is_excluded("build/x"));
        assert!(!p.is_excluded("build/out"));
        assert!(p.may_include_below("build"));
        assert!(!p.may_include_below("secret"));
        assert!(!p.is_excluded("src/main.rs"));
    }

    #[test]
    fn bad_pattern_is_refused() {
        assert!(Patterns::parse("ok\n[abc\n").is_err());
    }
}
