//! Go's `filepath.Match` patterns: `*` and `?` within one path component, `[...]` classes
//! (`^` negates), `\` escapes.

/// Why a pattern is malformed; reads after "failed to read the pattern: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// `[a` or `[]`.
    #[error("a `[` class is not closed or is empty")]
    Class,
    /// `[-a]`, `[a-]`.
    #[error("a `[` class has a `-` without both ends")]
    Range,
    /// A `\` with nothing after it.
    #[error("the pattern ends with a lone `\\`")]
    TrailingEscape,
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Char(char),
    /// `?`: one character but `/`.
    Any,
    /// `*`: any run of characters without `/`.
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Compiles `pattern`, refusing what Go refuses.
pub(crate) fn compile(pattern: &str) -> Result<Vec<Token>, GlobError> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::Star,
            '?' => Token::Any,
            '\\' => Token::Char(chars.next().ok_or(GlobError::TrailingEscape)?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    match chars.peek() {
                        None => return Err(GlobError::Class),
                        Some(']') if !ranges.is_empty() => {
                            chars.next();
                            break;
                        }
                        _ => {}
                    }
                    let lo = class_char(&mut chars)?;
                    let hi = if chars.next_if_eq(&'-').is_some() {
                        class_char(&mut chars)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        });
    }
    Ok(out)
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, GlobError> {
    match chars.next() {
        None => Err(GlobError::Class),
        Some('-') => Err(GlobError::Range),
        Some(']') => Err(GlobError::Class),
        Some('\\') => chars.next().ok_or(GlobError::TrailingEscape),
        Some(c) => Ok(c),
    }
}

/// Whether `tokens` match all of `s`.
pub(crate) fn matches(tokens: &[Token], s: &[char]) -> bool {
    match tokens.split_first() {
        None => s.is_empty(),
        Some((Token::Star, rest)) => {
            let reach = s.iter().position(|&c| c == '/').unwrap_or(s.len());
            (0..=reach).any(|i| matches(rest, &s[i..]))
        }
        Some((t, rest)) => match s.split_first() {
            None => false,
            Some((&c, tail)) => {
                let ok = match t {
                    Token::Char(p) => *p == c,
                    Token::Any => c != '/',
                    Token::Class { negated, ranges } => {
                        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                    }
                    Token::Star => false,
                };
                ok && matches(rest, tail)
            }
        },
    }
}

/// Go's `filepath.Match(pattern, path)` with `/` separators; a malformed pattern matches
/// nothing.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let Ok(tokens) = compile(pattern) else {
        return false;
    };
    let chars: Vec<char> = path.chars().collect();
    matches(&tokens, &chars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abe", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a/b", false),
            ("*.txt", "dir/a.txt", false),
            ("[\\]a]", "]", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(glob_match(p, s), *want, "{p} {s}");
        }
    }

    #[test]
    fn malformed_patterns() {
        for (p, e) in [
            ("[", GlobError::Class),
            ("[]", GlobError::Class),
            ("[a", GlobError::Class),
            ("[-a]", GlobError::Range),
            ("[a-]", GlobError::Class),
            ("a\\", GlobError::TrailingEscape),
        ] {
            assert_eq!(compile(p), Err(e), "{p}");
        }
        assert!(!glob_match("[", "["));
    }

    proptest! {
        #[test]
        fn never_panics(p in "\\PC{0,20}", s in "\\PC{0,20}") {
            let _ = glob_match(&p, &s);
        }

        #[test]
        fn plain_text_matches_itself(s in "[a-z0-9/._-]{0,20}") {
            prop_assert!(glob_match(&s, &s));
        }
    }
}
