//! The report a step's entrypoint prints at its end: exit code and results, base64 between
//! marker lines on stdout, so the executor reads them from the log stream. Kubernetes'
//! termination message would cap them at 4 KB per Pod.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The line that opens a report.
pub const BEGIN: &str = "--slipway-results-begin--";
/// The line that closes a report.
pub const END: &str = "--slipway-results-end--";
/// Base64 characters per line inside a report.
const CHUNK: usize = 76;

/// How the step's command ended, as the entrypoint saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Ending {
    /// The command exited by itself.
    Exited,
    /// The step's timeout was reached and the command was killed.
    TimedOut,
    /// An earlier step failed, so this one did not run.
    Skipped,
    /// The command could not be started.
    StartFailed,
    /// The entrypoint was told to stop (the Pod is being deleted).
    Terminated,
}

/// What one step reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The command's exit code (1 when it could not start, 137 when killed).
    pub exit_code: i32,
    /// How it ended.
    pub ending: Ending,
    /// Why it could not start, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Files of the step's own results directory.
    #[serde(default)]
    pub step_results: BTreeMap<String, String>,
    /// Files of the TaskRun's results directory (the last step only).
    #[serde(default)]
    pub results: BTreeMap<String, String>,
    /// Result files left out for being over the size limit, with their sizes.
    #[serde(default)]
    pub too_large: BTreeMap<String, u64>,
}

impl Report {
    /// The report as the lines the entrypoint prints, markers included.
    pub fn to_lines(&self) -> Vec<String> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let text = base64::engine::general_purpose::STANDARD.encode(json);
        let mut lines = vec![BEGIN.to_string()];
        // Base64 is ASCII, so cutting at any byte keeps characters whole.
        lines.extend(
            text.as_bytes()
                .chunks(CHUNK)
                .map(|c| String::from_utf8_lossy(c).into_owned()),
        );
        lines.push(END.to_string());
        lines
    }
}

/// What a log line is, for a [`Reader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Output of the step, to show.
    Output(String),
    /// Part of a report; not shown.
    Hidden,
}

/// Picks reports out of a step's log lines; the last complete one counts.
#[derive(Debug, Default)]
pub struct Reader {
    inside: Option<String>,
    last: Option<Report>,
}

impl Reader {
    /// Looks at one line. A line that ends with the begin marker holds output before it: a
    /// stderr line without its newline is joined to the marker by the log API.
    pub fn line(&mut self, line: &str) -> Line {
        if let Some(body) = self.inside.as_mut() {
            if line == END {
                let text = self.inside.take().unwrap_or_default();
                self.last = decode(&text).or(self.last.take());
            } else if body.len() < MAX_REPORT {
                body.push_str(line.trim());
            }
            return Line::Hidden;
        }
        if let Some(before) = line.strip_suffix(BEGIN) {
            self.inside = Some(String::new());
            return if before.is_empty() {
                Line::Hidden
            } else {
                Line::Output(before.to_string())
            };
        }
        Line::Output(line.to_string())
    }

    /// The last complete report read, if any.
    pub fn take(&mut self) -> Option<Report> {
        self.last.take()
    }
}

/// Most base64 text a report may take (results are checked against their own limit later).
const MAX_REPORT: usize = 256 << 20;

fn decode(text: &str) -> Option<Report> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            exit_code: 3,
            ending: Ending::Exited,
            message: None,
            step_results: BTreeMap::from([("r".into(), "x".repeat(10_000))]),
            results: BTreeMap::from([("digest".into(), "sha256:ab\n".into())]),
            too_large: BTreeMap::new(),
        }
    }

    #[test]
    fn reports_round_trip_through_log_lines_past_4_kb() {
        let mut reader = Reader::default();
        let mut shown = Vec::new();
        let mut lines = vec!["hello".to_string()];
        lines.extend(report().to_lines());
        for l in &lines {
            if let Line::Output(o) = reader.line(l) {
                shown.push(o);
            }
        }
        assert_eq!(shown, vec!["hello".to_string()]);
        assert_eq!(reader.take(), Some(report()));
    }

    #[test]
    fn output_joined_to_the_marker_is_kept_and_broken_reports_are_ignored() {
        let mut reader = Reader::default();
        assert_eq!(
            reader.line(&format!("no newline{BEGIN}")),
            Line::Output("no newline".into())
        );
        assert_eq!(reader.line("!!!not base64"), Line::Hidden);
        assert_eq!(reader.line(END), Line::Hidden);
        assert_eq!(reader.take(), None);
        assert_eq!(reader.line("after"), Line::Output("after".into()));
    }
}
