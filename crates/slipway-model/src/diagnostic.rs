//! Diagnostics about user input: what is wrong, where (file:line:col) and a hint.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

use crate::node::Pos;

/// A loaded source file, shared by every diagnostic that points into it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it.
    pub path: String,
    /// The whole text.
    pub text: String,
}

/// One problem in the user's input.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// What is wrong, as a sentence fragment.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The file it is in, if it is in one.
    pub source: Option<Arc<SourceFile>>,
    /// Where in that file.
    pub pos: Pos,
    /// Length of the marked span in bytes.
    pub len: usize,
    /// The field it is about (`spec.selector.names`), when it is about one.
    pub field: Option<String>,
}

impl Diagnostic {
    /// A diagnostic that is not tied to a place in a file.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            hint: None,
            source: None,
            pos: Pos::default(),
            len: 0,
            field: None,
        }
    }

    /// A diagnostic about a whole file (`path:1:1`), for files that cannot be parsed at all.
    pub fn in_file(path: &str, message: impl Into<String>) -> Self {
        let source = Arc::new(SourceFile {
            path: path.to_string(),
            text: String::new(),
        });
        Diagnostic {
            message: message.into(),
            hint: None,
            source: Some(source),
            pos: Pos {
                line: 1,
                col: 1,
                offset: 0,
            },
            len: 0,
            field: None,
        }
    }

    /// A diagnostic at a position in a file.
    pub fn at(source: &Arc<SourceFile>, pos: Pos, message: impl Into<String>) -> Self {
        let len = token_len(&source.text, pos.offset);
        Diagnostic {
            message: message.into(),
            hint: None,
            source: Some(source.clone()),
            pos,
            len,
            field: None,
        }
    }

    /// Names the field it is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col`, or `<input>` when there is no file.
    pub fn location(&self) -> String {
        match &self.source {
            Some(s) => format!("{}:{}:{}", s.path, self.pos.line, self.pos.col),
            None => "<input>".to_string(),
        }
    }
}

/// Length of the token starting at `offset`: up to the end of the word or line.
fn token_len(text: &str, offset: usize) -> usize {
    let rest = text.get(offset..).unwrap_or("");
    let line = rest.split('\n').next().unwrap_or("");
    let end = line.find([':', ' ', ',', ']', '}']).unwrap_or(line.len());
    end.max(1).min(line.len().max(1))
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("slipway::invalid"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.hint
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| &s.text as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let offset = self.pos.offset;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some("here".into()),
            offset,
            self.len,
        ))))
    }
}

impl Diagnostic {
    /// A copy whose source is named, for renderers that print the file name.
    pub fn named_source(&self) -> Option<NamedSource<String>> {
        self.source
            .as_ref()
            .map(|s| NamedSource::new(s.path.clone(), s.text.clone()))
    }
}

/// Every problem found in one pass over the input.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// `Ok(v)` when empty, else the diagnostics.
    pub fn into_result<T>(self, v: T) -> Result<T, Diagnostics> {
        if self.is_empty() { Ok(v) } else { Err(self) }
    }
    /// Plain-text rendering, one `file:line:col: message` block per problem.
    pub fn render_plain(&self) -> String {
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&format!("error: {d}\n"));
            if let Some(h) = &d.hint {
                out.push_str(&format!("  hint: {h}\n"));
            }
        }
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "{}", self.0[0]),
            n => write!(f, "{n} problems in the input"),
        }
    }
}

impl std::error::Error for Diagnostics {}

impl miette::Diagnostic for Diagnostics {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(
            self.0.iter().map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}
