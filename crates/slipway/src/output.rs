//! Printing objects as JSON or YAML, and small formatting helpers.

use serde_json::Value;

use crate::cli::Output;
use crate::error::CliError;

/// Prints `v` to stdout in the chosen format.
pub fn print(v: &Value, format: Output) -> Result<(), CliError> {
    let text = match format {
        Output::Json => serde_json::to_string_pretty(v)
            .map_err(|e| CliError::Internal(format!("failed to print JSON: {e}")))?,
        Output::Yaml => serde_saphyr::to_string(v)
            .map_err(|e| CliError::Internal(format!("failed to print YAML: {e}")))?,
    };
    println!("{}", text.trim_end());
    Ok(())
}

/// Prints the final objects of the runs a command started: one object alone, several as a
/// Kubernetes `List` (as kubectl prints them), so the output always parses as one document.
pub fn print_all(objects: Vec<Value>, format: Output) -> Result<(), CliError> {
    match <[Value; 1]>::try_from(objects) {
        Ok([one]) => print(&one, format),
        Err(objects) if objects.is_empty() => Ok(()),
        Err(objects) => print(&list(objects), format),
    }
}

/// A Kubernetes `List` of `items`.
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": { "resourceVersion": "" },
        "items": items,
    })
}

/// `1.2s`, `3m4s`, `1h2m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// How long ago, roughly.
pub fn age(ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// Status words as tkn shows them.
pub fn status_word(status: &str, reason: &str) -> String {
    match (status, reason) {
        ("Unknown", "PipelineRunPending") => "Pending".into(),
        ("Unknown", _) => "Running".into(),
        _ => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms(250), "250ms");
        assert_eq!(duration_ms(1500), "1.5s");
        assert_eq!(duration_ms(125_000), "2m5s");
        assert_eq!(duration_ms(7_200_000), "2h0m");
    }
}
