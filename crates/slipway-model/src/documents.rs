//! Each document's own text in a multi-document YAML stream, so that one applied object can be
//! kept exactly as written (comments and layout included).

/// One document's text and the 1-based line it starts on in the whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentText<'a> {
    /// First line (1-based) of `text` in the stream.
    pub line: usize,
    /// The text, without its `---` marker line.
    pub text: &'a str,
}

/// Splits at document markers (`---` and `...` at the start of a line). Every document, empty or
/// not, is returned; callers skip the empty ones as the parser does.
pub fn split_documents(stream: &str) -> Vec<DocumentText<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in stream.split_inclusive('\n').enumerate() {
        if is_marker(line) {
            out.push(DocumentText {
                line: start_line,
                text: &stream[start..offset],
            });
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    out.push(DocumentText {
        line: start_line,
        text: &stream[start..],
    });
    out
}

/// A line that starts or ends a document: `---` or `...` alone, or followed by whitespace (a
/// `--- ` line may carry content after the marker; slipway's inputs do not use that form).
fn is_marker(line: &str) -> bool {
    let l = line.trim_end_matches(['\n', '\r']);
    ["---", "..."].iter().any(|m| {
        l.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_text_and_first_line() {
        let s = "# head\na: 1\n---\nb: 2\n# tail\n--- \nc: |\n  ---x\n";
        let d = split_documents(s);
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].line, d[0].text), (1, "# head\na: 1\n"));
        assert_eq!((d[1].line, d[1].text), (4, "b: 2\n# tail\n"));
        assert_eq!((d[2].line, d[2].text), (7, "c: |\n  ---x\n"));
    }

    #[test]
    fn a_leading_marker_gives_an_empty_first_document() {
        let d = split_documents("---\na: 1\n...\n");
        assert_eq!(
            d.iter().map(|d| d.text).collect::<Vec<_>>(),
            ["", "a: 1\n", ""]
        );
        assert_eq!(d[1].line, 2);
    }

    #[test]
    fn a_marker_must_stand_alone() {
        assert_eq!(split_documents("a: ---\n----\n").len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn the_pieces_and_markers_make_up_the_stream(s in "([-.a-z :#]{0,6}\n){0,12}") {
            let docs = split_documents(&s);
            let total: usize = docs.iter().map(|d| d.text.len()).sum();
            let markers = s.split_inclusive('\n').filter(|l| is_marker(l)).map(str::len).sum::<usize>();
            proptest::prop_assert_eq!(total + markers, s.len());
        }
    }
}
