//! Log floods against `slipway serve` as a process: a step that writes 1 GiB as fast as it can
//! is slowed to the store's pace while the server's memory stays small and every byte is kept;
//! a line far longer than the cap is stored in marked pieces; past a run's log cap, lines are
//! dropped and the run says exactly how many.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::Served;

const TASK_RUNS: &str = "/apis/tekton.dev/v1/namespaces/default/taskruns";
/// What the flood writes in lines of 1,000 bytes.
const FLOOD: u64 = 1 << 30;
/// What the flood writes as one line.
const LONG_LINE: u64 = 64 << 20;
/// The line cap (`slipway_engine::output::MAX_LINE`).
pub const CAP: u64 = 64 * 1024;

/// The server's peak resident memory so far, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

pub fn task_run(name: &str, steps: &[(&str, &str)]) -> String {
    let steps: String = steps
        .iter()
        .map(|(n, script)| {
            format!("    - name: {n}\n      image: busybox\n      script: |\n        {script}\n")
        })
        .collect();
    format!(
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: {name}\nspec:\n  taskSpec:\n    steps:\n{steps}"
    )
}

/// Submits a run and waits for it to finish; returns its object.
pub fn run_to_end(s: &Served, body: &str, name: &str, limit: Duration) -> Value {
    let (code, reply) = s.http("POST", TASK_RUNS, body);
    assert_eq!(code, 201, "{reply}");
    let deadline = Instant::now() + limit;
    loop {
        let (code, reply) = s.http("GET", &format!("{TASK_RUNS}/{name}"), "");
        assert_eq!(code, 200, "{reply}");
        let o: Value = serde_json::from_str(&reply).expect("JSON");
        if o["status"]["conditions"][0]["status"] != "Unknown" {
            return o;
        }
        assert!(Instant::now() < deadline, "{name} did not finish: {o}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Reads the plain-text logs at `path` as they stream: how many lines start with `prefix`, and
/// how many bytes follow it on those lines.
fn text_logs(s: &Served, path: &str, prefix: &str) -> (u64, u64) {
    use std::io::{BufRead, BufReader, Write};
    let addr = s.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    // HTTP/1.0: the body ends when the connection does, no chunked framing to undo.
    write!(
        conn,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{}\r\n",
        s.auth_header()
    )
    .expect("send");
    let mut reader = BufReader::with_capacity(1 << 20, conn);
    let mut line = Vec::new();
    let mut head = true;
    let (mut lines, mut bytes) = (0, 0);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        if head {
            head = line != b"\r\n";
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(rest) = text.strip_prefix(prefix.as_bytes()) {
            lines += 1;
            bytes += rest.len() as u64;
        }
    }
    (lines, bytes)
}

/// Per step: (lines, bytes, pieces marked as continuing), read from the stored history.
pub fn stored(home: &Path, run: &str) -> std::collections::BTreeMap<String, (u64, u64, u64)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = slipway_store::SqliteStore::open(&home.join("db"))
            .await
            .expect("store");
        let row = store.find_run(run).await.expect("run");
        let mut per_step = std::collections::BTreeMap::new();
        let mut after = 0;
        loop {
            let batch = store
                .logs(&row.uid, None, None, after, 10_000)
                .await
                .expect("logs");
            for l in &batch {
                let e: &mut (u64, u64, u64) = per_step.entry(l.step.clone()).or_default();
                e.0 += 1;
                e.1 += l.line.len() as u64;
                e.2 += u64::from(l.continued);
                after = l.id;
            }
            if batch.len() < 10_000 {
                break;
            }
        }
        per_step
    })
}

#[test]
fn a_gigabyte_flood_is_stored_whole_in_bounded_memory() {
    let home = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &[]);
    let started = Instant::now();
    let body = task_run(
        "flood",
        &[
            (
                "lines",
                "head -c 1073741824 /dev/zero | tr '\\0' x | fold -w 1000",
            ),
            ("one-line", "head -c 67108864 /dev/zero | tr '\\0' y; echo"),
        ],
    );
    let o = run_to_end(&s, &body, "flood", Duration::from_secs(1800));
    let took = started.elapsed();
    // Every byte comes back through the logs API too, which streams them rather than holding
    // a gigabyte of text.
    let (lines, bytes) = text_logs(&s, "/api/v1/runs/flood/logs?step=lines", "[flood/lines] ");
    assert_eq!((lines, bytes), (FLOOD.div_ceil(1000), FLOOD));
    let peak = peak_rss(s.pid());
    assert_eq!(o["status"]["conditions"][0]["reason"], "Succeeded", "{o}");
    eprintln!(
        "flood: {} MiB stored in {:.1}s; server peak RSS {:.1} MiB",
        (FLOOD + LONG_LINE) >> 20,
        took.as_secs_f64(),
        peak as f64 / (1 << 20) as f64
    );
    assert!(peak < 200 << 20, "server peak RSS {peak} bytes");
    s.terminate();
    let steps = stored(home.path(), "flood");
    // 1,073,741 lines of 1,000 bytes and one of 824; nothing cut, nothing lost.
    assert_eq!(steps["lines"], (FLOOD.div_ceil(1000), FLOOD, 0));
    // One line of 64 MiB: 1,024 pieces of 64 KiB, all but the first marked as continuing.
    let pieces = LONG_LINE / CAP;
    assert_eq!(steps["one-line"], (pieces, LONG_LINE, pieces - 1));
}

#[test]
fn past_the_log_cap_a_run_goes_on_and_says_exactly_what_it_dropped() {
    let home = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &["--max-log-bytes", "100000"]);
    // 3,000 lines of 100 bytes; the cap keeps the first 1,000.
    let body = task_run(
        "capped",
        &[
            (
                "noisy",
                "head -c 300000 /dev/zero | tr '\\0' z | fold -w 100",
            ),
            ("after", "echo still running here"),
        ],
    );
    let o = run_to_end(&s, &body, "capped", Duration::from_secs(120));
    assert_eq!(o["status"]["conditions"][0]["reason"], "Succeeded", "{o}");
    let annotations = &o["metadata"]["annotations"];
    // 2,000 lines of `noisy` and the one line of `after`.
    assert_eq!(
        annotations["slipway.dev/log-bytes-dropped"], "200018",
        "{o}"
    );
    assert_eq!(annotations["slipway.dev/log-lines-dropped"], "2001", "{o}");
    let said = "slipway: 200000 bytes in 2000 lines of this step's output were dropped: the run passed its log cap of 100000 bytes";
    let (code, logs) = s.http("GET", "/api/v1/runs/capped/logs", "");
    assert_eq!(code, 200, "{logs}");
    assert!(
        logs.contains(said),
        "{}",
        &logs[logs.len().saturating_sub(600)..]
    );
    let client = tempfile::tempdir().expect("tempdir");
    let out = s.cli(client.path(), &["describe", "capped"]);
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(
        described.contains("Logs:      200018 bytes in 2001 lines dropped past the run's log cap"),
        "{described}"
    );
    s.terminate();
    let steps = stored(home.path(), "capped");
    // The first 1,000 lines and slipway's own line about the rest.
    assert_eq!(steps["noisy"], (1001, 100_000 + said.len() as u64, 0));
    // `after` ran; its output is past the cap, and its log says so.
    assert_eq!(steps["after"].0, 1, "{steps:?}");
}
