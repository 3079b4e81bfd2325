//! A Dockerfile's logical lines: parser directives, continuation lines joined, comments
//! dropped, and here-document bodies cut out (the parser crate only knows a heredoc that
//! starts a RUN's command, so RUN bodies are hidden from it and read here).

use std::ops::Range;

/// One instruction's line(s), as Docker joins them.
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    /// Offset of the keyword.
    pub start: usize,
    /// Offset just past the instruction (its last heredoc terminator included).
    pub end: usize,
    /// The line with continuations joined and comment lines inside them dropped.
    pub joined: String,
    /// For each byte of `joined`, its offset in the source.
    map: Vec<usize>,
    /// Here-documents in the order their markers appear.
    pub heredocs: Vec<FoundHeredoc>,
}

/// A here-document found after an instruction.
#[derive(Debug, Clone)]
pub(crate) struct FoundHeredoc {
    /// The delimiter, quotes removed.
    pub name: String,
    /// The body, leading tabs removed with `<<-`.
    pub content: String,
    /// `<<-`.
    pub strip_tabs: bool,
    /// The delimiter was quoted (`<<'EOF'`): no expansion.
    pub quoted: bool,
    /// The marker (`<<EOF`) in the source.
    pub marker: Range<usize>,
    /// The body and terminator lines in the source.
    pub body: Range<usize>,
    /// The body as written (tabs kept), terminator line included.
    pub raw: String,
}

/// Why the lines could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineError {
    /// A here-document reached the end of the file.
    UnclosedHeredoc {
        /// Its delimiter.
        name: String,
        /// Where its marker is.
        offset: usize,
    },
}

impl Logical {
    /// The source offset of byte `i` of `joined`.
    pub fn source_offset(&self, i: usize) -> usize {
        self.map.get(i).copied().unwrap_or(self.end)
    }
}

/// The escape character set by a `# escape=` directive at the top of `text`.
pub(crate) fn escape_directive(text: &str) -> char {
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        if key == "escape" {
            return if value.trim() == "`" { '`' } else { '\\' };
        }
        if key != "syntax" && key != "check" {
            break;
        }
    }
    '\\'
}

/// Splits `text` (without BOM) into logical lines.
pub(crate) fn scan(text: &str, escape: char) -> Result<Vec<Logical>, LineError> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        pos = skip_blank_and_comments(text, pos);
        if pos >= text.len() {
            return Ok(out);
        }
        let mut logical = join(text, &mut pos, escape);
        if takes_heredocs(&logical) {
            for (marker, name, strip_tabs, quoted) in markers(&logical, escape) {
                let heredoc = read_body(text, &mut pos, marker, name, strip_tabs, quoted)?;
                logical.end = heredoc.body.end;
                logical.heredocs.push(heredoc);
            }
        }
        out.push(logical);
    }
}

/// The source with RUN here-document markers and bodies blanked (newlines kept, so every
/// offset stays valid), for the parser crate.
pub(crate) fn mask_run_heredocs(text: &str, lines: &[Logical]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for logical in lines.iter().filter(|l| is_run(l)) {
        for h in &logical.heredocs {
            for range in [h.marker.clone(), h.body.clone()] {
                for b in bytes.get_mut(range).into_iter().flatten() {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
            }
        }
    }
    // Only ASCII bytes were replaced, by ASCII spaces, so UTF-8 sequences are either kept
    // whole or blanked whole.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
}

fn is_run(l: &Logical) -> bool {
    let mut words = l.joined.split_whitespace();
    match words.next() {
        Some(k) if k.eq_ignore_ascii_case("RUN") => true,
        Some(k) if k.eq_ignore_ascii_case("ONBUILD") => {
            words.next().is_some_and(|k| k.eq_ignore_ascii_case("RUN"))
        }
        _ => false,
    }
}

fn takes_heredocs(l: &Logical) -> bool {
    let mut words = l.joined.split_whitespace();
    let mut keyword = words.next().unwrap_or_default();
    if keyword.eq_ignore_ascii_case("ONBUILD") {
        keyword = words.next().unwrap_or_default();
    }
    ["RUN", "COPY", "ADD"]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
}

fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i)
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn skip_blank_and_comments(text: &str, mut pos: usize) -> usize {
    while pos < text.len() {
        let end = line_end(text, pos);
        if !is_blank_or_comment(&text[pos..end]) {
            let indent = text[pos..end].len() - text[pos..end].trim_start().len();
            return pos + indent;
        }
        pos = end + 1;
    }
    text.len()
}

/// Reads one logical line from `pos` (at its first non-blank character).
fn join(text: &str, pos: &mut usize, escape: char) -> Logical {
    let start = *pos;
    let mut joined = String::new();
    let mut map = Vec::new();
    let mut end;
    loop {
        let eol = line_end(text, *pos);
        let line = text[*pos..eol].trim_end_matches('\r');
        let trimmed = line.trim_end_matches([' ', '\t']);
        let continues = trimmed.ends_with(escape);
        let keep = if continues {
            &trimmed[..trimmed.len() - escape.len_utf8()]
        } else {
            line
        };
        joined.push_str(keep);
        map.extend((0..keep.len()).map(|i| *pos + i));
        end = *pos + line.len();
        *pos = (eol + 1).min(text.len());
        if !continues || eol >= text.len() {
            break;
        }
        // Comment and empty lines inside a continuation are dropped.
        while *pos < text.len() {
            let e = line_end(text, *pos);
            if !is_blank_or_comment(&text[*pos..e]) {
                break;
            }
            *pos = (e + 1).min(text.len());
        }
        if *pos >= text.len() {
            break;
        }
    }
    let trimmed = joined.trim_end().len();
    joined.truncate(trimmed);
    map.truncate(trimmed);
    Logical {
        start,
        end,
        joined,
        map,
        heredocs: Vec::new(),
    }
}

/// Heredoc markers in a logical line: words like `<<EOF`, `<<-EOF`, `2<<"EOF"` outside
/// quotes, in the order written. Yields (marker range in the source, name, strip, quoted).
fn markers(l: &Logical, escape: char) -> Vec<(Range<usize>, String, bool, bool)> {
    let body = l.joined.as_str();
    // Exec form has no heredocs.
    if body
        .split_whitespace()
        .skip(1)
        .find(|w| !w.starts_with("--"))
        .is_some_and(|w| w.starts_with('['))
    {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (range, word) in shell_words(body, escape) {
        let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let Some(rest) = word[digits..].strip_prefix("<<") else {
            continue;
        };
        let (strip_tabs, delim) = match rest.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, rest),
        };
        if delim.is_empty() || delim.contains('<') {
            continue;
        }
        let quoted = delim.contains(['\'', '"']);
        let name: String = delim.chars().filter(|c| !matches!(c, '\'' | '"')).collect();
        if name.is_empty() {
            continue;
        }
        let marker = l.source_offset(range.start)..l.source_offset(range.end - 1) + 1;
        found.push((marker, name, strip_tabs, quoted));
    }
    found
}

/// Whitespace-separated words outside quotes, with their byte ranges.
fn shell_words(text: &str, escape: char) -> Vec<(Range<usize>, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if start.is_none() && !c.is_whitespace() {
            start = Some(i);
        }
        match (quote, c) {
            (None, c) if c == escape => {
                chars.next();
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    words.push((s..i, &text[s..i]));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s..text.len(), &text[s..]));
    }
    words
}

fn read_body(
    text: &str,
    pos: &mut usize,
    marker: Range<usize>,
    name: String,
    strip_tabs: bool,
    quoted: bool,
) -> Result<FoundHeredoc, LineError> {
    let body_start = *pos;
    let mut content = String::new();
    loop {
        if *pos >= text.len() {
            return Err(LineError::UnclosedHeredoc {
                name,
                offset: marker.start,
            });
        }
        let eol = line_end(text, *pos);
        let line = text[*pos..eol].trim_end_matches('\r');
        let line = if strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        let next = (eol + 1).min(text.len());
        if line == name {
            *pos = next;
            return Ok(FoundHeredoc {
                raw: text[body_start..eol].to_owned(),
                name,
                content,
                strip_tabs,
                quoted,
                marker,
                body: body_start..eol,
            });
        }
        content.push_str(line);
        content.push('\n');
        *pos = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_drops_comment_lines() {
        let text = "FROM a\nRUN echo a \\\n# note\n\n    && echo b\n  # c\nCMD x";
        let lines = scan(text, '\\').unwrap_or_default();
        let joined: Vec<&str> = lines.iter().map(|l| l.joined.as_str()).collect();
        assert_eq!(joined, ["FROM a", "RUN echo a     && echo b", "CMD x"]);
        assert_eq!(lines[1].start, 7);
        assert_eq!(&text[lines[2].start..lines[2].end], "CMD x");
    }

    #[test]
    fn backtick_escape_continues() {
        let text = "# escape=`\nFROM a\nRUN dir `\n  c:\\";
        assert_eq!(escape_directive(text), '`');
        let lines = scan(text, '`').unwrap_or_default();
        assert_eq!(lines[1].joined, "RUN dir   c:\\");
    }

    #[test]
    fn heredocs_anywhere_in_run() {
        let text =
            "FROM a\nRUN cat <<EOF >f && cat <<-'END' >g\nhello $X\nEOF\n\tbye\n\tEND\nCMD x\n";
        let lines = scan(text, '\\').unwrap_or_default();
        assert_eq!(lines.len(), 3);
        let h = &lines[1].heredocs;
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].name.as_str(), h[0].content.as_str()),
            ("EOF", "hello $X\n")
        );
        assert!(!h[0].quoted && h[1].quoted && h[1].strip_tabs);
        assert_eq!(h[1].content, "bye\n");
        assert_eq!(&text[h[0].marker.clone()], "<<EOF");
        let masked = mask_run_heredocs(text, &lines);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("hello") && !masked.contains("<<") && masked.contains("CMD x"));
    }

    #[test]
    fn unclosed_heredoc() {
        assert_eq!(
            scan("FROM a\nCOPY <<EOF /f\nx\n", '\\').map(|_| ()),
            Err(LineError::UnclosedHeredoc {
                name: "EOF".into(),
                offset: 12
            })
        );
    }
}
