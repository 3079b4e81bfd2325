//! Model diagnostics as JSON: message, hint, and the span as 1-based lines and columns, which
//! the UI's editor turns into markers.

use serde_json::{Value, json};
use slipway_model::Diagnostics;
use slipway_model::diagnostic::Diagnostic;

/// One diagnostic. `line_offset` shifts lines when the text was part of a larger body.
pub fn to_json(d: &Diagnostic, severity: &str) -> Value {
    let (end_line, end_col) = match &d.source {
        Some(s) => {
            let end = (d.pos.offset + d.len).min(s.text.len());
            let piece = s.text.get(d.pos.offset..end).unwrap_or("");
            let newlines = piece.matches('\n').count() as u32;
            let col = match piece.rfind('\n') {
                Some(i) => piece[i + 1..].chars().count() as u32 + 1,
                None => d.pos.col + piece.chars().count() as u32,
            };
            (d.pos.line + newlines, col)
        }
        None => (d.pos.line, d.pos.col),
    };
    json!({
        "severity": severity,
        "message": d.message,
        "hint": d.hint.as_deref().map(for_the_server),
        "file": d.source.as_ref().map(|s| s.path.clone()),
        "line": d.pos.line.max(1),
        "column": d.pos.col.max(1),
        "endLine": end_line.max(1),
        "endColumn": end_col.max(1),
        "field": d.field,
    })
}

/// Every diagnostic about `file` (others point into stored objects the request did not send).
pub fn about(diags: &Diagnostics, file: &str, severity: &str) -> Vec<Value> {
    diags
        .0
        .iter()
        .filter(|d| d.source.as_ref().is_none_or(|s| s.path == file))
        .map(|d| to_json(d, severity))
        .collect()
}

/// The model's hints speak to `slipway run -f`; a server user applies definitions instead.
fn for_the_server(hint: &str) -> String {
    hint.replace(
        "load the file that defines it with -f",
        "apply it first, or send it in the same body",
    )
    .replace(" with -f and refer", " to the server and refer")
    .replace(" with -f", " to the server first")
}
