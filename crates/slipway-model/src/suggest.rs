//! "Did you mean" suggestions for misspelt names.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a, S: AsRef<str>>(word: &str, candidates: &'a [S]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                c.as_ref(),
                strsim::damerau_levenshtein(&word.to_lowercase(), &c.as_ref().to_lowercase()),
            )
        })
        .filter(|(c, d)| *d <= (word.len().max(c.len()) / 3).max(1))
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

/// "did you mean `x`?" when a candidate is close, else `otherwise`.
pub fn did_you_mean<S: AsRef<str>>(
    word: &str,
    candidates: &[S],
    otherwise: impl Into<String>,
) -> String {
    match closest(word, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => otherwise.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        assert_eq!(
            closest("runAftr", &["runAfter", "retries"]),
            Some("runAfter")
        );
        assert_eq!(closest("zzz", &["runAfter"]), None);
    }
}
