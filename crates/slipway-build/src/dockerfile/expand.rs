//! Docker's word expansion: `$a`, `${a}`, `${a:-b}`, `${a:+b}`, `${a-b}`, `${a+b}`,
//! `${a:?msg}`, `${a#p}`/`${a%p}`/`${a/p/r}`, quotes and the escape character, as Docker's
//! shell lexer treats them (no command substitution, no globbing: the builder is not a shell).

/// Why a word could not be expanded; reads after "failed to expand the word: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${a:?msg}` or `${a?msg}` with `a` unset (or empty, with `:`).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The word after `?`, or Docker's default message.
        message: String,
    },
    /// A `'` without its closing `'`.
    #[error("a single quote is not closed")]
    UnclosedSingleQuote,
    /// A `"` without its closing `"`.
    #[error("a double quote is not closed")]
    UnclosedDoubleQuote,
    /// `${` without `}`.
    #[error("`${{` has no closing `}}`")]
    MissingBrace,
    /// `${a/pattern` without the second `/`.
    #[error("`${{name/pattern/replacement}}` is missing its second `/`")]
    MissingSlash,
    /// `${}`, `${:a}`, `${{a}`.
    #[error("bad substitution: `${{` must be followed by a variable name")]
    BadSubstitution,
    /// `${a:=b}` and other shell forms Docker does not support.
    #[error("unsupported modifier `{0}` in `${{...}}`")]
    UnsupportedModifier(String),
    /// A pattern in `${a#p}`, `${a%p}` or `${a/p/r}` with a bad escape.
    #[error("invalid pattern `{0}` in `${{...}}`: only `\\*`, `\\?` and `\\\\` are escapes")]
    BadPattern(String),
}

/// Looks a variable up; `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands `word` into one string (quotes removed, escapes applied, spaces kept).
pub fn expand_word(word: &str, escape: char, lookup: Lookup<'_>) -> Result<String, ExpandError> {
    Lexer::new(word, escape, lookup).run().map(|(text, _)| text)
}

/// Expands `word` and splits it into words at unquoted whitespace (including whitespace that
/// came from a variable's value), as `EXPOSE $PORTS` needs.
pub fn expand_words(
    word: &str,
    escape: char,
    lookup: Lookup<'_>,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(word, escape, lookup)
        .run()
        .map(|(_, words)| words)
}

/// Whether expanding `word` could change it (it has `$`, a quote or the escape character).
pub fn is_literal(word: &str, escape: char) -> bool {
    !word
        .chars()
        .any(|c| matches!(c, '$' | '\'' | '"') || c == escape)
}

/// Words being collected: unquoted whitespace separates them, quoted or escaped text does not.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
}

impl Words {
    /// Unquoted text: whitespace ends the current word.
    fn split(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.flush();
            } else {
                self.current.push(c);
            }
        }
    }

    /// Quoted or escaped text, kept whole.
    fn raw(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.done
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: Lookup<'a>,
}

impl<'a> Lexer<'a> {
    fn new(word: &str, escape: char, lookup: Lookup<'a>) -> Self {
        Lexer {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            lookup,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn run(mut self) -> Result<(String, Vec<String>), ExpandError> {
        let (text, words) = self.until(None, false)?;
        Ok((text, words.finish()))
    }

    /// Processes up to `stop` (consumed) or the end; `raw_escapes` keeps escape characters (a
    /// pattern needs them to tell `\*` from `*`).
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Words), ExpandError> {
        let mut text = String::new();
        let mut words = Words::default();
        loop {
            let Some(c) = self.peek() else {
                return match stop {
                    Some(_) => Err(ExpandError::MissingBrace),
                    None => Ok((text, words)),
                };
            };
            if Some(c) == stop {
                self.pos += 1;
                return Ok((text, words));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    words.split(&value);
                    text.push_str(&value);
                }
                '\'' => {
                    let value = self.single_quoted()?;
                    words.raw(&value);
                    text.push_str(&value);
                }
                '"' => {
                    let value = self.double_quoted()?;
                    words.raw(&value);
                    text.push_str(&value);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        if raw_escapes {
                            text.push(c);
                            words.raw(&c.to_string());
                        }
                        // An escape at the very end escapes nothing and disappears.
                        let Some(escaped) = self.next_char() else {
                            continue;
                        };
                        text.push(escaped);
                        words.raw(&escaped.to_string());
                    } else {
                        text.push(c);
                        words.split(&c.to_string());
                    }
                }
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next_char() {
                None => return Err(ExpandError::UnclosedSingleQuote),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnclosedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            // Inside double quotes only these are escapable; any other escape
                            // character stays, as in sh.
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
                            Some(_) => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(c) if matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let value = (self.lookup)(&name);
        match self.next_char() {
            None => Err(ExpandError::MissingBrace),
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let modifier = self.next_char().ok_or(ExpandError::MissingBrace)?;
                self.modifier(&name, value, modifier, true)
            }
            Some(modifier @ ('+' | '-' | '?' | '#' | '%')) => {
                self.modifier(&name, value, modifier, false)
            }
            Some('/') => self.replace(value),
            Some(other) => Err(ExpandError::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name<modifier>word}`; `colon` makes an empty value count as unset.
    fn modifier(
        &mut self,
        name: &str,
        value: Option<String>,
        modifier: char,
        colon: bool,
    ) -> Result<String, ExpandError> {
        if !matches!(modifier, '+' | '-' | '?' | '#' | '%') {
            return Err(ExpandError::UnsupportedModifier(format!(":{modifier}")));
        }
        let (word, _) = self.until(Some('}'), matches!(modifier, '#' | '%'))?;
        let unset = match &value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match modifier {
            '-' if unset => Ok(word),
            '+' if unset => Ok(String::new()),
            '+' => Ok(word),
            '?' if unset => {
                let message = match (&value, word.is_empty()) {
                    (_, false) => word,
                    (None, true) => "is not allowed to be unset".to_owned(),
                    (Some(_), true) => "is not allowed to be empty".to_owned(),
                };
                Err(ExpandError::Required {
                    name: name.to_owned(),
                    message,
                })
            }
            '#' | '%' => {
                let value = value.unwrap_or_default();
                let (longest, pattern) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pattern = Pattern::parse(pattern)?;
                Ok(if modifier == '#' {
                    pattern.trim_prefix(&value, longest)
                } else {
                    pattern.trim_suffix(&value, longest)
                })
            }
            _ => Ok(value.unwrap_or_default()),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn replace(&mut self, value: Option<String>) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let (pattern, _) = self.until(Some('/'), true).map_err(|e| match e {
            ExpandError::MissingBrace => ExpandError::MissingSlash,
            other => other,
        })?;
        let (replacement, _) = self.until(Some('}'), true)?;
        let pattern = Pattern::parse(&pattern)?;
        Ok(pattern.replace(&value.unwrap_or_default(), &replacement, all))
    }
}

/// A shell pattern in a substitution: `*`, `?`, `\` escapes; no bracket expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
}

struct Pattern(Vec<Token>);

impl Pattern {
    fn parse(text: &str) -> Result<Self, ExpandError> {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => match chars.peek() {
                    // `\}` and `\/` only protect the delimiters of `${...}`.
                    Some('}' | '/') => continue,
                    Some(&e @ ('*' | '?' | '\\')) => {
                        chars.next();
                        Token::Char(e)
                    }
                    _ => return Err(ExpandError::BadPattern(text.to_owned())),
                },
                c => Token::Char(c),
            });
        }
        Ok(Pattern(tokens))
    }

    fn matches(&self, s: &[char]) -> bool {
        fn go(p: &[Token], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((Token::Star, rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
                Some((Token::Any, rest)) => !s.is_empty() && go(rest, &s[1..]),
                Some((Token::Char(c), rest)) => s.first() == Some(c) && go(rest, &s[1..]),
            }
        }
        go(&self.0, s)
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut ends: Vec<usize> = (0..=chars.len()).collect();
        if longest {
            ends.reverse();
        }
        match ends.into_iter().find(|&i| self.matches(&chars[..i])) {
            Some(i) => chars[i..].iter().collect(),
            None => value.to_owned(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut starts: Vec<usize> = (0..=chars.len()).collect();
        if !longest {
            starts.reverse();
        }
        match starts.into_iter().find(|&i| self.matches(&chars[i..])) {
            Some(i) => chars[..i].iter().collect(),
            None => value.to_owned(),
        }
    }

    /// Replaces the leftmost-longest match (every non-overlapping one with `all`).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        while pos <= chars.len() {
            let found = (pos..=chars.len()).find_map(|start| {
                (start..=chars.len())
                    .rev()
                    .find(|&end| self.matches(&chars[start..end]))
                    .map(|end| (start, end))
            });
            let Some((start, end)) = found else { break };
            out.extend(&chars[pos..start]);
            out.push_str(replacement);
            if !all {
                pos = end;
                break;
            }
            if end == start {
                // An empty match still moves on, or the loop would never end.
                if let Some(c) = chars.get(start) {
                    out.push(*c);
                }
                pos = start + 1;
            } else {
                pos = end;
            }
        }
        if pos < chars.len() {
            out.extend(&chars[pos..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "a" => Some("x".into()),
            "empty" => Some(String::new()),
            "spaced" => Some("one two".into()),
            "path" => Some("/usr/local/bin.tar.gz".into()),
            _ => None,
        }
    }

    fn word(w: &str) -> Result<String, ExpandError> {
        expand_word(w, '\\', &env)
    }

    #[test]
    fn rules_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$a", "x"),
            ("${a}", "x"),
            ("$a$a", "xx"),
            ("${a}b", "xb"),
            ("$ab", ""),
            ("$unset", ""),
            ("a$", "a$"),
            ("$-", ""),
            ("$1x", "x"),
            ("${unset:-d}", "d"),
            ("${empty:-d}", "d"),
            ("${empty-d}", ""),
            ("${unset-d}", "d"),
            ("${a:-d}", "x"),
            ("${a:+set}", "set"),
            ("${empty:+set}", ""),
            ("${empty+set}", "set"),
            ("${unset+set}", ""),
            ("${unset:-$a}", "x"),
            ("${unset:-${unset2:-deep}}", "deep"),
            ("${unset:-'lit $a'}", "lit $a"),
            ("${unset:-\"q $a\"}", "q x"),
            ("'$a'", "$a"),
            ("\"$a\"", "x"),
            ("\"${a}y\"", "xy"),
            ("\\$a", "$a"),
            ("\\\"", "\""),
            ("a\\ b", "a b"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\nb\"", "a\\nb"),
            ("\"\\$a\"", "$a"),
            ("'a\\b'", "a\\b"),
            ("end\\", "end"),
            ("a'b'\"c\"", "abc"),
            ("${path#*/}", "usr/local/bin.tar.gz"),
            ("${path##*/}", "bin.tar.gz"),
            ("${path%.*}", "/usr/local/bin.tar"),
            ("${path%%.*}", "/usr/local/bin"),
            ("${path/local/opt}", "/usr/opt/bin.tar.gz"),
            ("${path//./_}", "/usr/local/bin_tar_gz"),
            ("${path/nomatch/x}", "/usr/local/bin.tar.gz"),
        ];
        for (input, want) in cases {
            assert_eq!(word(input).as_deref(), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand_word("`$a", '`', &env).as_deref(), Ok("$a"));
        assert_eq!(expand_word("C:\\dir", '`', &env).as_deref(), Ok("C:\\dir"));
    }

    #[test]
    fn errors_table() {
        let cases: &[(&str, ExpandError)] = &[
            (
                "${unset:?must be set}",
                ExpandError::Required {
                    name: "unset".into(),
                    message: "must be set".into(),
                },
            ),
            (
                "${unset?}",
                ExpandError::Required {
                    name: "unset".into(),
                    message: "is not allowed to be unset".into(),
                },
            ),
            (
                "${empty:?}",
                ExpandError::Required {
                    name: "empty".into(),
                    message: "is not allowed to be empty".into(),
                },
            ),
            ("'open", ExpandError::UnclosedSingleQuote),
            ("\"open", ExpandError::UnclosedDoubleQuote),
            ("${a", ExpandError::MissingBrace),
            ("${a:-x", ExpandError::MissingBrace),
            ("${}", ExpandError::BadSubstitution),
            ("${:a}", ExpandError::BadSubstitution),
            ("${a:=b}", ExpandError::UnsupportedModifier(":=".into())),
            ("${a^}", ExpandError::UnsupportedModifier("^".into())),
            ("${a/x", ExpandError::MissingSlash),
            ("${a#\\x}", ExpandError::BadPattern("\\x".into())),
        ];
        for (input, want) in cases {
            assert_eq!(word(input).as_ref(), Err(want), "input {input:?}");
        }
        assert!(
            word("${empty?}").is_ok(),
            "set but empty passes without `:`"
        );
    }

    #[test]
    fn words_split_on_unquoted_space_only() {
        let words = |w| expand_words(w, '\\', &env);
        assert_eq!(words("80 443/udp").unwrap_or_default(), ["80", "443/udp"]);
        assert_eq!(words("$spaced").unwrap_or_default(), ["one", "two"]);
        assert_eq!(words("\"$spaced\" z").unwrap_or_default(), ["one two", "z"]);
        assert_eq!(words("a\\ b c").unwrap_or_default(), ["a b", "c"]);
        assert_eq!(words("  ").unwrap_or_default(), Vec::<String>::new());
    }

    proptest! {
        #[test]
        fn never_panics(input in "\\PC{0,40}", escape in prop::sample::select(vec!['\\', '`'])) {
            let _ = expand_word(&input, escape, &env);
            let _ = expand_words(&input, escape, &env);
        }

        #[test]
        fn literal_words_expand_to_themselves(input in "[^$'\"\\\\`]{0,40}") {
            prop_assert!(is_literal(&input, '\\'));
            prop_assert_eq!(expand_word(&input, '\\', &env), Ok(input.clone()));
        }
    }
}
