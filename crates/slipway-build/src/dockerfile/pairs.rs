//! ENV, LABEL and ARG arguments: Docker's split into words (quotes and escapes kept for the
//! expansion that follows) and into `key=value` pairs.

/// Why the arguments do not form pairs; reads after "failed to read the arguments: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// `ENV a=1 b` (a word without `=` after the first pair).
    #[error("`{0}` has no `=`: write name=value")]
    MissingEquals(String),
    /// `ENV name` (legacy form without a value).
    #[error("`{0}` needs a value: write {0}=value")]
    MissingValue(String),
    /// `ENV =x`.
    #[error("a name is empty")]
    EmptyName,
}

/// Splits at whitespace outside quotes; quotes and escapes stay in the words.
pub fn split(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            None if c == escape => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                continue;
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            // Inside double quotes the escape still protects the next character.
            Some('"') if c == escape => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `k=v k2="v 2"`, or the legacy `k v w` (one pair: the rest of the line is the value); raw
/// (unexpanded) keys and values.
pub fn pairs(text: &str, escape: char) -> Result<Vec<(String, String)>, PairError> {
    let words = split(text, escape);
    let Some(first) = words.first() else {
        return Err(PairError::EmptyName);
    };
    if !first.contains('=') {
        let key = first.clone();
        let rest = text.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(PairError::MissingValue(key));
        }
        return Ok(vec![(key, rest.to_owned())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(PairError::EmptyName),
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(PairError::MissingEquals(w)),
        })
        .collect()
}

/// `ARG a b=1`: names with optional raw defaults.
pub fn args(text: &str, escape: char) -> Result<Vec<(String, Option<String>)>, PairError> {
    split(text, escape)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(PairError::EmptyName),
            Some((k, v)) => Ok((k.to_owned(), Some(v.to_owned()))),
            None => Ok((w, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn splitting_keeps_quotes_and_escapes() {
        assert_eq!(
            split(r#"a="x y" b='c d' e=f\ g"#, '\\'),
            [r#"a="x y""#, "b='c d'", r"e=f\ g"]
        );
        assert_eq!(split(r#"a="q\"uote d""#, '\\'), [r#"a="q\"uote d""#]);
    }

    #[test]
    fn pair_forms() {
        assert_eq!(
            pairs(r#"k=v k2="v 2""#, '\\'),
            Ok(vec![p("k", "v"), p("k2", "\"v 2\"")])
        );
        assert_eq!(pairs("k v  w ", '\\'), Ok(vec![p("k", "v  w")]));
        assert_eq!(pairs("k=", '\\'), Ok(vec![p("k", "")]));
        assert_eq!(
            pairs("a=1 b", '\\'),
            Err(PairError::MissingEquals("b".into()))
        );
        assert_eq!(
            pairs("lonely", '\\'),
            Err(PairError::MissingValue("lonely".into()))
        );
        assert_eq!(pairs("=x", '\\'), Err(PairError::EmptyName));
    }

    #[test]
    fn arg_forms() {
        assert_eq!(
            args("A B=1 C=\"x y\"", '\\'),
            Ok(vec![
                ("A".into(), None),
                ("B".into(), Some("1".into())),
                ("C".into(), Some("\"x y\"".into()))
            ])
        );
    }
}
