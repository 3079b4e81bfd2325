//! `slipway serve` as a process, and the CLI against it with `--server`: apply, run, logs,
//! describe, cancel, errors with file positions; and a server killed with SIGKILL while runs are
//! in flight.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::{bin, spawn_with, text};

/// A `slipway serve` process on a free port.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin token printed at the first start over this home (kept in the home for the
    /// next starts); `None` when the server asks for none or had tokens already.
    pub token: Option<String>,
    /// What the server printed before it started serving.
    pub banner: String,
}

/// Where the harness keeps the first start's admin token for later starts over the same home.
const KEPT_TOKEN: &str = "test-admin-token";

impl Served {
    /// Starts one over `home` with extra arguments.
    pub fn start(home: &Path, extra: &[&str]) -> Served {
        Served::start_with(home, extra, &[])
    }

    /// Starts one over `home` with extra arguments and environment.
    pub fn start_with(home: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Served::spawned(home, spawn_with(home, &args, env))
    }

    /// Reads the banner of a started `slipway serve` (its token and address).
    pub fn spawned(home: &Path, mut child: Child) -> Served {
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut banner = String::new();
        let mut first = String::new();
        loop {
            first.clear();
            let n = stderr.read_line(&mut first).expect("banner");
            assert!(n > 0, "slipway serve exited:\n{banner}");
            banner.push_str(&first);
            if first.starts_with("serving the slipway API on") {
                break;
            }
        }
        // Keep reading stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr.lines() {});
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        let printed = banner
            .split("#token=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string);
        let kept = home.join(KEPT_TOKEN);
        let token = match printed {
            Some(t) => {
                std::fs::write(&kept, &t).expect("keep the token");
                Some(t)
            }
            None => std::fs::read_to_string(&kept).ok(),
        };
        Served {
            child,
            url: format!("http://{addr}"),
            token,
            banner,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Authorization: Bearer …` with the admin token, when the server asks for one.
    pub fn auth_header(&self) -> String {
        self.token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default()
    }

    /// One request with a YAML body (if any), with the admin token; the status and the body.
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/yaml\r\n{}Content-Length: {}\r\n\r\n{body}",
            self.auth_header(),
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut response = Vec::new();
        s.read_to_end(&mut response).expect("response");
        let response = String::from_utf8_lossy(&response);
        status_and_body(&response)
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, home: &Path, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(args)
            .env("SLIPWAY_HOME", home)
            .env("SLIPWAY_SERVER", &self.url)
            .env("NO_COLOR", "1");
        if let Some(t) = &self.token {
            cmd.env("SLIPWAY_TOKEN", t);
        }
        cmd.output().expect("slipway runs")
    }

    /// Sends SIGTERM, as a supervisor stopping it would; waits for it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("server exits")
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TASK: &str = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: count\nspec:\n  params:\n  - name: lines\n    default: \"3\"\n  steps:\n  - name: lines\n    image: busybox\n    script: |\n      i=1\n      while [ $i -le $(params.lines) ]; do echo \"line $i\"; i=$((i+1)); sleep 0.1; done\n";

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

#[test]
fn the_cli_works_against_a_server() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &[]);
    let task = write(files.path(), "task.yaml", TASK);
    let out = s.cli(client.path(), &["apply", "-f", &task]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "task.tekton.dev/count created\n");
    // A Task on the server starts by name, with typed -p values; lines come back live.
    let out = s.cli(
        client.path(),
        &["run", "task", "count", "-p", "lines=2", "--logs"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("[count-run-") && lines[0].ends_with("/lines] line 1"),
        "{stdout}"
    );
    assert!(lines[1].ends_with("/lines] line 2"), "{stdout}");
    let name = text(&out.stderr)
        .lines()
        .next()
        .and_then(|l| l.strip_suffix(" queued"))
        .expect("queued line")
        .to_string();
    let out = s.cli(client.path(), &["logs", &name]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
    let out = s.cli(client.path(), &["describe", &name]);
    assert!(
        text(&out.stdout).contains("Status:    Succeeded"),
        "{}",
        text(&out.stdout)
    );
    // The same table as `slipway runs` on this machine.
    let out = s.cli(client.path(), &["runs"]);
    let table = text(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "KIND", "TARGET", "STATUS", "STARTED", "DURATION"]
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[0], row[1], row[2], row[3]),
        (name.as_str(), "TaskRun", "count", "Succeeded"),
        "{table}"
    );
    // Nothing was written to the client's own history.
    assert!(!client.path().join("db").exists());
    // A bad reference is reported at the user's file, line and column, exit 2.
    let bad = write(
        files.path(),
        "bad.yaml",
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {generateName: x-}\nspec:\n  taskRef: {name: cuont}\n",
    );
    let out = s.cli(client.path(), &["run", "-f", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr).replace(&files.path().display().to_string(), "<dir>");
    insta::assert_snapshot!("server_diagnostic_in_the_users_file", err);
    // A server's own refusal (no position) reads the same way as a local one.
    let out = s.cli(client.path(), &["run", "task", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("server_refusal", text(&out.stderr));
    // Detached: the name at once; cancel while it waits or runs; a finished run cannot be.
    let out = s.cli(
        client.path(),
        &["run", "task", "count", "-p", "lines=100", "-d"],
    );
    let detached = text(&out.stdout).trim().to_string();
    assert!(detached.starts_with("count-run-"), "{detached}");
    // Without --server, on the server's own data directory, cancel refuses rather than signal
    // the server process.
    let out = crate::slipway(home.path(), &["cancel", &detached]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("belongs to a slipway server"),
        "{}",
        text(&out.stderr)
    );
    let out = s.cli(client.path(), &["cancel", &detached]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = s.cli(client.path(), &["logs", "-f", &detached]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = s.cli(client.path(), &["describe", &detached, "-o", "json"]);
    let o: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let reason = o["status"]["conditions"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason == "Cancelled" || reason == "TaskRunCancelled", "{o}");
    let out = s.cli(client.path(), &["cancel", &name]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already finished"),
        "{}",
        text(&out.stderr)
    );
    // apply is for servers only.
    let out = crate::slipway(client.path(), &["apply", "-f", &task]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--server"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_second_server_on_one_data_directory_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    let _s = Served::start(home.path(), &[]);
    let out = crate::slipway(home.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("another `slipway serve`"),
        "{}",
        text(&out.stderr)
    );
}

/// What the API says about a run: (status, reason).
fn state(s: &Served, client: &Path, name: &str) -> (String, String) {
    let out = s.cli(client, &["describe", name, "-o", "json"]);
    let o: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{name}: {e}: {}", text(&out.stderr)));
    let c = &o["status"]["conditions"][0];
    (
        c["status"].as_str().unwrap_or("").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn sigkill_with_twenty_runs_in_flight_loses_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let task = write(files.path(), "task.yaml", TASK);
    let s = Served::start(home.path(), &["--max-runs", "5"]);
    assert_eq!(
        s.cli(client.path(), &["apply", "-f", &task]).status.code(),
        Some(0)
    );
    // 20 acknowledged runs: 5 run (about 4 s each), 15 wait.
    let mut names = Vec::new();
    for _ in 0..20 {
        let out = s.cli(
            client.path(),
            &["run", "task", "count", "-p", "lines=40", "-d"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        names.push(text(&out.stdout).trim().to_string());
    }
    // Wait until the running ones have printed a few lines, and keep what the API showed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let running: Vec<(String, String)> = loop {
        let seen: Vec<(String, String)> = names
            .iter()
            .filter(|n| state(&s, client.path(), n).1 == "Running")
            .map(|n| (n.clone(), text(&s.cli(client.path(), &["logs", n]).stdout)))
            .collect();
        if seen.len() == 5 && seen.iter().all(|(_, l)| l.lines().count() >= 3) {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "5 runs never got going: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    s.kill();
    let s = Served::start(home.path(), &["--max-runs", "20"]);
    for (name, before) in &running {
        assert_eq!(
            state(&s, client.path(), name),
            ("False".to_string(), "Interrupted".to_string()),
            "{name}"
        );
        let after = text(&s.cli(client.path(), &["logs", name]).stdout);
        assert!(
            after.starts_with(before.as_str()),
            "{name} lost lines:\nbefore:\n{before}\nafter:\n{after}"
        );
    }
    let queued: Vec<&String> = names
        .iter()
        .filter(|n| !running.iter().any(|(r, _)| r == *n))
        .collect();
    assert_eq!(queued.len(), 15);
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in queued {
        loop {
            let (status, reason) = state(&s, client.path(), name);
            if status != "Unknown" {
                assert_eq!(
                    (status.as_str(), reason.as_str()),
                    ("True", "Succeeded"),
                    "{name}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "{name} is still {reason}");
            std::thread::sleep(Duration::from_millis(200));
        }
        let lines = text(&s.cli(client.path(), &["logs", name]).stdout);
        assert_eq!(lines.lines().count(), 40, "{name}");
    }
    let out = s.cli(client.path(), &["runs", "-o", "json", "--limit", "100"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(20),
        "none lost, none doubled"
    );
}

/// One HTTP/1.1 POST over a fresh connection; the status code and body.
fn post(url: &str, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("response");
    status_and_body(&response)
}

const LISTENER: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: hook}
stringData: {token: k3y}
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: build}
spec:
  params: [{name: revision}]
  tasks:
  - name: t
    taskSpec:
      params: [{name: revision}]
      steps: [{name: s, image: busybox, script: "echo $(params.revision)"}]
    params: [{name: revision, value: $(params.revision)}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: build}
spec:
  params: [{name: revision}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: build-}
    spec:
      status: PipelineRunPending
      pipelineRef: {name: build}
      params: [{name: revision, value: $(tt.params.revision)}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: ci}
spec:
  triggers:
  - name: push
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: hook, secretKey: token}}
      - {name: eventTypes, value: [push]}
    bindings: [{name: revision, value: $(body.after)}]
    template: {ref: build}
"#;

/// 1,000 signed deliveries from 10 senders at once, 200 of them delivered twice: exactly 1,000
/// runs, one per delivery ID. The runs are created held (`spec.status: PipelineRunPending`), so
/// the count is not blurred by runs still starting.
#[test]
fn a_thousand_deliveries_make_a_thousand_runs() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &[]);
    let defs = write(files.path(), "listener.yaml", LISTENER);
    let out = s.cli(client.path(), &["apply", "-f", &defs]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let started = Instant::now();
    let senders: Vec<_> = (0..10)
        .map(|t| {
            let url = s.url.clone();
            std::thread::spawn(move || {
                let mut created = Vec::new();
                for i in 0..100 {
                    let n = t * 100 + i;
                    let body = format!(r#"{{"ref":"refs/heads/main","after":"sha-{n}"}}"#);
                    let sig = slipway_triggers::sign_github(b"k3y", body.as_bytes());
                    let headers = [
                        ("X-GitHub-Event", "push".to_string()),
                        ("X-GitHub-Delivery", format!("delivery-{n}")),
                        ("X-Hub-Signature-256", sig),
                    ];
                    let (code, reply) = post(&url, "/hooks/ci", &headers, &body);
                    assert_eq!(code, 202, "{reply}");
                    created.push(reply);
                    // Every fifth delivery is sent again, as a sender retrying after a timeout.
                    if i % 5 == 0 {
                        let (code, again) = post(&url, "/hooks/ci", &headers, &body);
                        assert_eq!(code, 200, "{again}");
                        assert!(again.contains("\"duplicate\":true"), "{again}");
                    }
                }
                created
            })
        })
        .collect();
    let replies: Vec<String> = senders
        .into_iter()
        .flat_map(|h| h.join().expect("sender"))
        .collect();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "1,200 deliveries took {took:?}"
    );
    assert_eq!(replies.len(), 1000);
    let out = s.cli(client.path(), &["runs", "-o", "json", "--limit", "5000"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1000, "none lost, none doubled");
    let mut ids: Vec<&str> = items
        .iter()
        .filter_map(|o| o["metadata"]["labels"]["triggers.tekton.dev/triggers-eventid"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "one run per delivery");
    assert!(
        items
            .iter()
            .all(|o| o["status"]["conditions"][0]["reason"] == "PipelineRunPending")
    );
}

#[test]
fn a_token_made_on_the_server_machine_opens_the_api() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let out = crate::slipway(home.path(), &["token", "create", "ci", "--scope", "write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(token.starts_with("slw_") && token.len() == 68, "{token}");
    let listed = text(&crate::slipway(home.path(), &["token", "list"]).stdout);
    assert!(
        listed.starts_with("ci") && listed.contains("write") && !listed.contains(&token),
        "{listed}"
    );
    let s = Served::start(home.path(), &[]);
    assert_eq!(s.token, None, "a token existed: none is made at start");
    let out = s.cli(client.path(), &["runs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--token or SLIPWAY_TOKEN"),
        "{}",
        text(&out.stderr)
    );
    let out = s.cli(client.path(), &["runs", "--token", &token]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = crate::slipway(home.path(), &["token", "revoke", "ci"]);
    assert_eq!(out.status.code(), Some(0));
}

/// SIGTERM stops taking runs but lets the running one finish within the grace period; the one
/// still queued stays queued for the next start.
#[test]
fn sigterm_lets_running_runs_finish_and_keeps_queued_ones() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let task = write(files.path(), "task.yaml", TASK);
    let s = Served::start(home.path(), &["--max-runs", "1", "--grace", "20s"]);
    assert_eq!(
        s.cli(client.path(), &["apply", "-f", &task]).status.code(),
        Some(0)
    );
    let first = text(
        &s.cli(
            client.path(),
            &["run", "task", "count", "-p", "lines=15", "-d"],
        )
        .stdout,
    )
    .trim()
    .to_string();
    let second = text(
        &s.cli(
            client.path(),
            &["run", "task", "count", "-p", "lines=2", "-d"],
        )
        .stdout,
    )
    .trim()
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&s, client.path(), &first).1 != "Running" {
        assert!(Instant::now() < deadline, "{first} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopped = Instant::now();
    let status = s.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "took {:?}",
        stopped.elapsed()
    );
    let s = Served::start(home.path(), &[]);
    assert_eq!(
        state(&s, client.path(), &first),
        ("True".to_string(), "Succeeded".to_string())
    );
    let lines = text(&s.cli(client.path(), &["logs", &first]).stdout);
    assert_eq!(lines.lines().count(), 15, "{lines}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, reason) = state(&s, client.path(), &second);
        if status != "Unknown" {
            assert_eq!(reason, "Succeeded");
            break;
        }
        assert!(Instant::now() < deadline, "{second} is still {reason}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `slipway apply -f DIR`: the definitions are stored and the PipelineRun in the directory is
/// created and runs, as `kubectl apply -f` would do (it used to refuse the whole directory).
/// The directory holds the sample pipeline only: the other examples need a registry, a
/// repository or a token Secret first.
#[test]
fn apply_of_a_directory_with_a_run_stores_the_definitions_and_starts_the_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &[]);
    let examples = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-pipeline.yaml"),
        examples.path().join("hello-pipeline.yaml"),
    )
    .expect("copy the sample");
    let out = s.cli(
        client.path(),
        &["apply", "-f", &examples.path().to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("task.tekton.dev/make-source created"),
        "{printed}"
    );
    let run = printed
        .lines()
        .find_map(|l| l.strip_prefix("pipelinerun.tekton.dev/"))
        .and_then(|l| l.strip_suffix(" created"))
        .unwrap_or_else(|| panic!("no run created: {printed}"))
        .to_string();
    let out = s.cli(client.path(), &["logs", "-f", &run]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("[package/")),
        "{}",
        text(&out.stdout)
    );
    let described = text(&s.cli(client.path(), &["describe", &run]).stdout);
    assert!(described.contains("Status:    Succeeded"), "{described}");
    s.terminate();
}

/// The status code and the body of a raw HTTP/1.1 response.
pub fn status_and_body(response: &str) -> (u16, String) {
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
