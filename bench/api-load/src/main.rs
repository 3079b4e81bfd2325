//! Open-loop load on slipway's HTTP API: requests at a constant rate over a mix of read
//! endpoints while log followers hold Server-Sent Events streams open on live runs.
//!
//! Requests are sent on a fixed schedule (request `i` at `start + i / rate`) whether or not
//! earlier ones have answered, and each latency is measured from its *scheduled* send time to the
//! end of its body, so a stalled server shows up in the figures instead of slowing the load down
//! (no coordinated omission). Prints percentiles per endpoint class and overall, then one line of
//! JSON with the same figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

const NS: &str = "/apis/tekton.dev/v1/namespaces/default";

/// The default mix: what the web UI and the CLI read, by weight.
const DEFAULT_MIX: &str = "list=15,list20=15,get=30,taskruns=20,logs=15,tasks=5";

/// Constant-rate load on slipway's API with live log followers.
#[derive(Debug, Parser)]
#[command(name = "slipway-api-load")]
struct Args {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// Requests per second, sent on a fixed schedule.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// How long requests are measured.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Sent at the same rate before the measurement, not counted.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Server-Sent Events log followers held open on live runs.
    #[arg(long, default_value_t = 50)]
    followers: usize,
    /// Runs to read, comma-separated [default: every run the list endpoint returns].
    #[arg(long, value_delimiter = ',')]
    runs: Vec<String>,
    /// Runs to follow, comma-separated [default: the runs the list endpoint shows still running].
    #[arg(long, value_delimiter = ',')]
    follow: Vec<String>,
    /// Endpoint classes and weights: list (all PipelineRuns, as the web UI asks), list20
    /// (`?limit=20`, as the CLI asks), get (one PipelineRun), taskruns (a run's TaskRuns), logs
    /// (a run's logs as text), tasks (the Task list), healthz, metrics.
    #[arg(long, alias = "paths-mix", default_value = DEFAULT_MIX)]
    mix: String,
    /// A request slower than this counts as an error.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Seed of the endpoint and run choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The server's process id, to report its CPU use during the measurement (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The API token (the server's admin token, printed at its first start).
    #[arg(long, env = "SLIPWAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A label for the JSON summary.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    List,
    List20,
    Get,
    TaskRuns,
    Logs,
    Tasks,
    Healthz,
    Metrics,
}

impl Class {
    fn parse(s: &str) -> Option<Class> {
        Some(match s {
            "list" => Class::List,
            "list20" => Class::List20,
            "get" => Class::Get,
            "taskruns" => Class::TaskRuns,
            "logs" => Class::Logs,
            "tasks" => Class::Tasks,
            "healthz" => Class::Healthz,
            "metrics" => Class::Metrics,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Class::List => "list",
            Class::List20 => "list20",
            Class::Get => "get",
            Class::TaskRuns => "taskruns",
            Class::Logs => "logs",
            Class::Tasks => "tasks",
            Class::Healthz => "healthz",
            Class::Metrics => "metrics",
        }
    }

    fn needs_run(self) -> bool {
        matches!(self, Class::Get | Class::TaskRuns | Class::Logs)
    }

    fn path(self, run: &str) -> String {
        match self {
            Class::List => format!("{NS}/pipelineruns"),
            Class::List20 => format!("{NS}/pipelineruns?limit=20"),
            Class::Get => format!("{NS}/pipelineruns/{run}"),
            Class::TaskRuns => format!("/api/v1/runs/{run}/taskruns"),
            Class::Logs => format!("/api/v1/runs/{run}/logs"),
            Class::Tasks => format!("{NS}/tasks"),
            Class::Healthz => "/healthz".into(),
            Class::Metrics => "/metrics".into(),
        }
    }
}

fn parse_mix(s: &str) -> Result<Vec<(Class, u32)>, String> {
    let mut mix = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let class = Class::parse(name.trim()).ok_or_else(|| format!("unknown class {name:?}"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("bad weight in {part:?}"))?;
        if weight > 0 {
            mix.push((class, weight));
        }
    }
    if mix.is_empty() {
        return Err("the mix is empty".into());
    }
    Ok(mix)
}

/// One measured request.
struct Sample {
    class: Class,
    /// From the scheduled send time to the end of the body.
    latency: Duration,
    ok: bool,
    bytes: u64,
}

/// What the followers saw.
#[derive(Default)]
struct SseCounters {
    connected: AtomicU64,
    failed: AtomicU64,
    ended: AtomicU64,
    /// `event: log` received during the measurement.
    events: AtomicU64,
    /// `event: log` received before it (the backlog sent on connecting, warm-up).
    events_before: AtomicU64,
}

/// Busy and total jiffies of the whole machine, from `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3)? + cpu.get(4)?;
    Some((total - idle, total))
}

/// User plus system clock ticks of one process, from `/proc/PID/stat`.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU use between two readings: the machine's busy share of all cores, and the server's share
/// of one core (clock ticks of 10 ms, Linux's usual `USER_HZ`).
struct CpuReading {
    machine: Option<(u64, u64)>,
    server: Option<u64>,
    at: Instant,
}

impl CpuReading {
    fn take(pid: Option<u32>) -> CpuReading {
        CpuReading {
            machine: machine_jiffies(),
            server: pid.and_then(process_ticks),
            at: Instant::now(),
        }
    }

    fn since(&self, before: &CpuReading) -> (Option<f64>, Option<f64>) {
        let machine = match (before.machine, self.machine) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                Some(round2((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0))
            }
            _ => None,
        };
        let secs = self.at.saturating_duration_since(before.at).as_secs_f64();
        let server = match (before.server, self.server) {
            (Some(a), Some(b)) if secs > 0.0 => Some(round2((b - a) as f64 / 100.0 / secs * 100.0)),
            _ => None,
        };
        (machine, server)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn stats(mut us: Vec<u64>) -> Value {
    us.sort_unstable();
    json!({
        "n": us.len(),
        "p50_ms": round2(pct(&us, 50.0)),
        "p90_ms": round2(pct(&us, 90.0)),
        "p99_ms": round2(pct(&us, 99.0)),
        "max_ms": round2(pct(&us, 100.0)),
    })
}

async fn discover(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Vec<String>, Vec<String>), String> {
    let list: Value = client
        .get(format!("{url}{NS}/pipelineruns?limit=10000"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("failed to list runs: {e}"))?
        .json()
        .await
        .map_err(|e| format!("failed to read the run list: {e}"))?;
    let (mut all, mut live) = (Vec::new(), Vec::new());
    for item in list["items"].as_array().into_iter().flatten() {
        let Some(name) = item["metadata"]["name"].as_str() else {
            continue;
        };
        all.push(name.to_string());
        let running = item["status"]["conditions"]
            .as_array()
            .and_then(|c| c.first())
            .is_some_and(|c| c["status"] == "Unknown");
        if running {
            live.push(name.to_string());
        }
    }
    Ok((all, live))
}

/// Follows one run's logs until `stop`, counting `event: log` and measuring how old each line
/// is when it arrives (the line's store timestamp against this clock).
async fn follow(
    client: reqwest::Client,
    url: String,
    counters: Arc<SseCounters>,
    measuring: Arc<tokio::sync::watch::Receiver<bool>>,
    lags: Arc<std::sync::Mutex<Vec<u64>>>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let resp = match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => r,
        _ => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            let _ = ready.send(()).await;
            return;
        }
    };
    counters.connected.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(()).await;
    drop(ready);
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut event = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                let on = *measuring.borrow();
                match event.as_str() {
                    "log" if on => {
                        counters.events.fetch_add(1, Ordering::Relaxed);
                        let ts = serde_json::from_str::<Value>(data.trim())
                            .ok()
                            .and_then(|v| v["ts"].as_i64());
                        if let Some(ts) = ts {
                            let lag = (now_ms() - ts).max(0) as u64;
                            if let Ok(mut l) = lags.lock() {
                                l.push(lag * 1000);
                            }
                        }
                    }
                    "log" => {
                        counters.events_before.fetch_add(1, Ordering::Relaxed);
                    }
                    "end" => {
                        counters.ended.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    _ => {}
                }
            } else if line.is_empty() {
                event.clear();
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("slipway-api-load: {e}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let url = args.url.trim_end_matches('/').to_string();
    let mix = parse_mix(&args.mix)?;
    if args.rate.is_nan() || args.rate <= 0.0 {
        return Err("--rate must be positive".into());
    }
    let mut auth = reqwest::header::HeaderMap::new();
    if let Some(t) = &args.token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|_| "--token has characters a header cannot carry".to_string())?;
        auth.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .timeout(args.timeout)
        .default_headers(auth.clone())
        .build()
        .map_err(|e| e.to_string())?;
    // Followers' streams last the whole measurement: no overall timeout.
    let sse_client = reqwest::Client::builder()
        .default_headers(auth)
        .build()
        .map_err(|e| e.to_string())?;

    let needs_runs = mix.iter().any(|(c, _)| c.needs_run());
    let (mut runs, mut live) = (args.runs.clone(), args.follow.clone());
    if (needs_runs && runs.is_empty()) || (args.followers > 0 && live.is_empty()) {
        let (all, running) = discover(&client, &url).await?;
        if runs.is_empty() {
            runs = all;
        }
        if live.is_empty() {
            live = running;
        }
    }
    if needs_runs && runs.is_empty() {
        return Err("no runs to read: seed some, or pass --runs".into());
    }
    if args.followers > 0 && live.is_empty() {
        return Err("no live runs to follow: start some, or pass --follow".into());
    }

    // Followers connect first; the measurement starts once each has its response headers.
    let counters = Arc::new(SseCounters::default());
    let lags = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (measure_tx, measure_rx) = tokio::sync::watch::channel(false);
    let measure_rx = Arc::new(measure_rx);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.followers.max(1));
    let mut followers = Vec::new();
    for i in 0..args.followers {
        let run = &live[i % live.len()];
        followers.push(tokio::spawn(follow(
            sse_client.clone(),
            format!("{url}/api/v1/runs/{run}/logs?follow=true"),
            counters.clone(),
            measure_rx.clone(),
            lags.clone(),
            ready_tx.clone(),
        )));
    }
    drop(ready_tx);
    for _ in 0..args.followers {
        if tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            break;
        }
    }

    let total_weight: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let warmup_n = (args.warmup.as_secs_f64() * args.rate).round() as u64;
    let measured_n = (args.duration.as_secs_f64() * args.rate).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + args.warmup;
    let mut handles = Vec::with_capacity(measured_n as usize);
    // How late the scheduler itself sent requests (the generator's own saturation).
    let mut send_lag_max = Duration::ZERO;
    let mut cpu_before = None;
    for i in 0..warmup_n + measured_n {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        if i == warmup_n {
            let _ = measure_tx.send(true);
            cpu_before = Some(CpuReading::take(args.server_pid));
        }
        let measured = i >= warmup_n;
        if measured {
            send_lag_max = send_lag_max.max(Instant::now().saturating_duration_since(at));
        }
        let mut pick = rng.u32(0..total_weight);
        let class = mix
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(mix[0].0, |(c, _)| *c);
        let run = if class.needs_run() {
            runs[rng.usize(0..runs.len())].as_str()
        } else {
            ""
        };
        let req = client.get(format!("{url}{}", class.path(run)));
        let h = tokio::spawn(async move {
            let mut bytes = 0u64;
            let ok = match req.send().await {
                Ok(resp) => {
                    let success = resp.status().is_success();
                    let mut body = resp.bytes_stream();
                    let mut complete = true;
                    while let Some(chunk) = body.next().await {
                        match chunk {
                            Ok(c) => bytes += c.len() as u64,
                            Err(_) => {
                                complete = false;
                                break;
                            }
                        }
                    }
                    success && complete
                }
                Err(_) => false,
            };
            Sample {
                class,
                latency: Instant::now().saturating_duration_since(at),
                ok,
                bytes,
            }
        });
        if measured {
            handles.push(h);
        }
    }
    let sent_done = Instant::now();
    let (machine_busy, server_cpu) = cpu_before.map_or((None, None), |b| {
        CpuReading::take(args.server_pid).since(&b)
    });
    let mut samples = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(s) = h.await {
            samples.push(s);
        }
    }
    let all_done = Instant::now();
    let _ = measure_tx.send(false);
    let sse_window = sent_done.saturating_duration_since(measure_from);
    for f in &followers {
        f.abort();
    }

    // Figures.
    let window = all_done
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let sent_window = sent_done
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let mut per: BTreeMap<Class, (Vec<u64>, u64, u64)> = BTreeMap::new();
    let mut overall = Vec::new();
    let mut errors = 0u64;
    let mut bytes_total = 0u64;
    for s in &samples {
        let e = per.entry(s.class).or_default();
        if s.ok {
            let us = s.latency.as_micros() as u64;
            e.0.push(us);
            overall.push(us);
            e.2 += s.bytes;
            bytes_total += s.bytes;
        } else {
            e.1 += 1;
            errors += 1;
        }
    }
    let mut classes = serde_json::Map::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<10} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "class", "ok", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "KB/req"
    );
    let row = |t: &mut String, name: &str, st: &Value, errs: u64, kb: f64| {
        let _ = writeln!(
            t,
            "{:<10} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
            name,
            st["n"],
            errs,
            st["p50_ms"].as_f64().unwrap_or(0.0),
            st["p90_ms"].as_f64().unwrap_or(0.0),
            st["p99_ms"].as_f64().unwrap_or(0.0),
            st["max_ms"].as_f64().unwrap_or(0.0),
            kb
        );
    };
    for (class, (us, errs, bytes)) in per {
        let n = us.len();
        let mut st = stats(us);
        let kb = if n > 0 {
            bytes as f64 / n as f64 / 1024.0
        } else {
            0.0
        };
        st["errors"] = json!(errs);
        st["kb_per_req"] = json!(round2(kb));
        row(&mut table, class.name(), &st, errs, kb);
        classes.insert(class.name().into(), st);
    }
    let n_ok = overall.len();
    let overall = stats(overall);
    let kb = if n_ok > 0 {
        bytes_total as f64 / n_ok as f64 / 1024.0
    } else {
        0.0
    };
    row(&mut table, "overall", &overall, errors, kb);
    let lag = stats(lags.lock().map(|l| l.clone()).unwrap_or_default());
    let events = counters.events.load(Ordering::Relaxed);
    let summary = json!({
        "label": args.label,
        "url": url,
        "mix": args.mix,
        "rate": args.rate,
        "duration_s": args.duration.as_secs_f64(),
        "requests": samples.len(),
        "errors": errors,
        "achieved_rps": round2(samples.len() as f64 / window.max(1e-9)),
        "sent_rps": round2(samples.len() as f64 / sent_window.max(1e-9)),
        "send_lag_max_ms": round2(send_lag_max.as_secs_f64() * 1000.0),
        "machine_busy_pct": machine_busy,
        "server_cpu_pct": server_cpu,
        "overall": overall,
        "classes": classes,
        "sse": {
            "followers": args.followers,
            "runs_followed": live.len().min(args.followers),
            "connected": counters.connected.load(Ordering::Relaxed),
            "failed": counters.failed.load(Ordering::Relaxed),
            "ended_early": counters.ended.load(Ordering::Relaxed),
            "events": events,
            "events_per_s": round2(events as f64 / sse_window.as_secs_f64().max(1e-9)),
            "events_before_measurement": counters.events_before.load(Ordering::Relaxed),
            "lag": lag,
        },
    });
    println!(
        "{} req/s for {:?} (+{:?} warm-up), mix {}, {} runs to read, {} followers on {} live runs",
        args.rate,
        args.duration,
        args.warmup,
        args.mix,
        runs.len(),
        args.followers,
        live.len().min(args.followers)
    );
    print!("{table}");
    println!(
        "requests {} errors {} achieved {:.1} req/s (sent {:.1} req/s, scheduler late by at most {:.2} ms)",
        samples.len(),
        errors,
        summary["achieved_rps"].as_f64().unwrap_or(0.0),
        summary["sent_rps"].as_f64().unwrap_or(0.0),
        summary["send_lag_max_ms"].as_f64().unwrap_or(0.0),
    );
    if let Some(busy) = machine_busy {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        print!("machine busy {busy:.0}% of {cores} cores");
        if let Some(server) = server_cpu {
            print!(", server {server:.0}% of one core");
        }
        println!(" (while requests were sent)");
    }
    if args.followers > 0 {
        let sse = &summary["sse"];
        println!(
            "sse: {} of {} followers connected ({} failed, {} saw their run end), {} log events in the measurement ({:.1}/s), line age on arrival p50 {} ms p99 {} ms",
            sse["connected"],
            args.followers,
            sse["failed"],
            sse["ended_early"],
            events,
            sse["events_per_s"].as_f64().unwrap_or(0.0),
            sse["lag"]["p50_ms"],
            sse["lag"]["p99_ms"],
        );
    }
    println!("{summary}");
    Ok(())
}
