//! The client for `--server`: requests, Kubernetes Status errors turned into CLI errors, and
//! server diagnostics mapped back to the user's files.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use slipway_model::node::Pos;
use slipway_model::{Diagnostic, Diagnostics, SourceFile};

use crate::error::CliError;

/// A slipway server.
#[derive(Debug, Clone)]
pub struct Remote {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// Files sent as one multi-document body, remembering where each starts so that the server's
/// line numbers point back into the files.
#[derive(Debug, Default)]
pub struct Body {
    /// The text sent.
    pub text: String,
    /// (first line in the body, the file, the line of the file it starts at).
    files: Vec<(usize, Arc<SourceFile>, usize)>,
}

impl Body {
    /// Appends one file (or generated document) as its own document(s).
    pub fn push(&mut self, path: &str, text: &str) {
        let file = Arc::new(SourceFile {
            path: path.to_string(),
            text: text.to_string(),
        });
        self.push_piece(&file, 1, text);
    }

    /// Appends a piece of `file` that starts at its line `line`.
    pub fn push_piece(&mut self, file: &Arc<SourceFile>, line: usize, text: &str) {
        self.text.push_str("---\n");
        let first_line = self.text.matches('\n').count() + 1;
        self.files.push((first_line, file.clone(), line));
        self.text.push_str(text);
        if !text.ends_with('\n') {
            self.text.push('\n');
        }
    }

    /// A server diagnostic (`line`, `column` in the body) as one about the file it came from.
    fn locate(&self, d: &Value) -> Diagnostic {
        let message = d["message"].as_str().unwrap_or("invalid").to_string();
        let line = d["line"].as_u64().unwrap_or(1) as usize;
        let col = d["column"].as_u64().unwrap_or(1) as u32;
        let mut diag = match self.files.iter().rev().find(|(start, _, _)| *start <= line) {
            Some((start, file, from)) => {
                let line_in_file = (line - start + from) as u32;
                let offset = file
                    .text
                    .split_inclusive('\n')
                    .take(line_in_file as usize - 1)
                    .map(str::len)
                    .sum::<usize>()
                    + col as usize
                    - 1;
                Diagnostic::at(
                    file,
                    Pos {
                        line: line_in_file,
                        col,
                        offset: offset.min(file.text.len()),
                    },
                    message,
                )
            }
            None => Diagnostic::new(message),
        };
        if let Some(h) = d["hint"].as_str() {
            diag = diag.with_hint(h);
        }
        diag
    }
}

impl Remote {
    /// A client for `url` (`http://host:port`).
    pub fn new(url: &str, token: Option<String>) -> Result<Remote, CliError> {
        if url.starts_with("https://") {
            return Err(CliError::usage(
                format!("cannot reach {url}: this slipway speaks plain HTTP only"),
                "put the server behind a TLS proxy and reach it over http:// from a trusted network, or use an SSH tunnel",
            ));
        }
        if !url.starts_with("http://") {
            return Err(CliError::usage(
                format!("`{url}` is not a server URL"),
                "pass --server http://HOST:PORT (or set SLIPWAY_SERVER)",
            ));
        }
        Ok(Remote {
            base: url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        })
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        body: Option<&Body>,
    ) -> Result<reqwest::Response, CliError> {
        let resp = req.send().await.map_err(|e| {
            CliError::usage(
                format!("failed to reach the slipway server at {}: {e}", self.base),
                "start it with `slipway serve`, or check --server / SLIPWAY_SERVER",
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let code = resp.status();
        let path = resp.url().path().to_string();
        let text = resp.text().await.unwrap_or_default();
        let status: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let (Some(body), Some(diags)) = (body, status["diagnostics"].as_array())
            && !diags.is_empty()
        {
            return Err(CliError::Invalid(Diagnostics(
                diags.iter().map(|d| body.locate(d)).collect(),
            )));
        }
        let message = status["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered {code}: {text}"));
        let hint = match code.as_u16() {
            401 => "pass a token with --token or SLIPWAY_TOKEN",
            403 => {
                "changes need a token with the write scope; a host name the server refuses needs its `--allowed-host`"
            }
            404 if path.contains("runs") => "list the server's runs with `slipway runs`",
            404 => {
                "apply it to the server first with `slipway apply -f FILE`, or pass its file with -f"
            }
            409 => "the object's current state does not allow it",
            _ => "see the server's log for more",
        };
        Err(CliError::usage(message, hint))
    }

    /// GET as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        let resp = self
            .send(self.request(reqwest::Method::GET, path), None)
            .await?;
        resp.json()
            .await
            .map_err(|e| CliError::Internal(format!("failed to read the server's answer: {e}")))
    }

    /// GET as text with an `Accept` header.
    pub async fn get_text(&self, path: &str, accept: &str) -> Result<String, CliError> {
        let req = self
            .request(reqwest::Method::GET, path)
            .header("accept", accept);
        let resp = self.send(req, None).await?;
        resp.text()
            .await
            .map_err(|e| CliError::Internal(format!("failed to read the server's answer: {e}")))
    }

    /// POST a YAML body (or none); the answer as JSON.
    pub async fn post(&self, path: &str, body: Option<&Body>) -> Result<Value, CliError> {
        let mut req = self.request(reqwest::Method::POST, path);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/yaml")
                .body(b.text.clone());
        }
        let resp = self.send(req, body).await?;
        resp.json()
            .await
            .map_err(|e| CliError::Internal(format!("failed to read the server's answer: {e}")))
    }

    /// Follows a run's logs over Server-Sent Events, calling `line` for each `log` event; returns
    /// the data of the `end` event (the outcome).
    pub async fn follow(
        &self,
        path: &str,
        mut line: impl FnMut(&Value),
    ) -> Result<Value, CliError> {
        let req = self
            .request(reqwest::Method::GET, path)
            .header("accept", "text/event-stream");
        let resp = self.send(req, None).await?;
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        let (mut event, mut data) = (String::new(), String::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| CliError::Internal(format!("failed to read the log stream: {e}")))?;
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find('\n') {
                let l = buf[..i].trim_end_matches('\r').to_string();
                buf.drain(..=i);
                if l.is_empty() {
                    let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    match event.as_str() {
                        "log" => line(&v),
                        "end" => return Ok(v),
                        // The server ends the stream early with a Status (a revoked token).
                        "error" => {
                            return Err(CliError::usage(
                                v["message"]
                                    .as_str()
                                    .unwrap_or("the server ended the log stream")
                                    .to_string(),
                                "pass a valid token with --token or SLIPWAY_TOKEN",
                            ));
                        }
                        _ => {}
                    }
                    event.clear();
                    data.clear();
                } else if let Some(e) = l.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = l.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
        }
        Err(CliError::Internal(
            "the server closed the log stream before the run ended".into(),
        ))
    }
}

/// `s` as one URL path segment or query value: everything but unreserved characters
/// percent-encoded, so a name cannot reach another path or add a query.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape_their_place() {
        assert_eq!(segment("build-1.x_y"), "build-1.x_y");
        assert_eq!(segment("../a?b=%"), "..%2Fa%3Fb%3D%25");
    }

    #[test]
    fn body_lines_map_back_to_files() {
        let mut b = Body::default();
        b.push("a.yaml", "x: 1\ny: 2\n");
        b.push("b.yaml", "kind: Task\nspec:\n  stepz: []");
        assert_eq!(
            b.text,
            "---\nx: 1\ny: 2\n---\nkind: Task\nspec:\n  stepz: []\n"
        );
        let d = b.locate(
            &serde_json::json!({"message": "unknown field", "line": 7, "column": 3, "hint": "h"}),
        );
        assert_eq!(d.location(), "b.yaml:3:3");
        assert_eq!(d.pos.offset, "kind: Task\nspec:\n  ".len());
        let d = b.locate(&serde_json::json!({"message": "m", "line": 3, "column": 1}));
        assert_eq!(d.location(), "a.yaml:2:1");
    }
}
