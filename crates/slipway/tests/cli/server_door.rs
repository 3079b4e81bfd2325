//! `slipway serve`'s front door as a process over real sockets: the first start's admin token
//! and `--no-auth`, a revocation from another process taking effect at once, and 2,000 idle
//! connections that no longer take the server down.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::Served;
use crate::{bin, text};

/// One HTTP/1.1 request over a new connection: the status code and the body.
fn request(url: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    crate::server::status_and_body(&response)
}

#[test]
fn a_first_start_prints_an_admin_token_and_a_ui_link() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    // Reachable from other machines with no token yet: refused, with what to do.
    let out = crate::slipway(home.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("no API token yet") && err.contains("--no-auth"),
        "{err}"
    );
    let s = Served::start(home.path(), &[]);
    let token = s.token.clone().expect("a token printed at the first start");
    assert!(token.starts_with("slw_") && token.len() == 68, "{token}");
    assert!(
        s.banner.contains(&format!("{}/ui/#token={token}", s.url)),
        "{}",
        s.banner
    );
    let listed = text(&crate::slipway(home.path(), &["token", "list"]).stdout);
    assert!(
        listed.starts_with("admin") && listed.contains("write"),
        "{listed}"
    );
    // The token opens the API; nothing else does.
    let out = s.cli(client.path(), &["runs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, body) = request(&s.url, "GET", "/api/v1/whoami", &[]);
    assert_eq!(code, 401, "{body}");
    let bearer = format!("Bearer {token}");
    let (code, body) = request(
        &s.url,
        "GET",
        "/api/v1/whoami",
        &[("Authorization", &bearer)],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"name\":\"admin\""), "{body}");
    s.kill();
    // A second start prints no token: the first one stays valid.
    let s = Served::start(home.path(), &[]);
    assert!(!s.banner.contains("slw_"), "{}", s.banner);
    let (code, _) = request(
        &s.url,
        "GET",
        "/api/v1/whoami",
        &[("Authorization", &bearer)],
    );
    assert_eq!(code, 200);
    s.kill();
    // --no-auth: loud, open, and still guarded against other sites and rebound names.
    let s = Served::start(home.path(), &["--no-auth"]);
    assert!(
        s.banner.contains("--no-auth") && s.banner.contains("can run any command"),
        "{}",
        s.banner
    );
    let (code, body) = request(&s.url, "GET", "/api/v1/whoami", &[]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = request(
        &s.url,
        "GET",
        "/api/v1/whoami",
        &[("Host", "rebound.example")],
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = request(
        &s.url,
        "POST",
        "/api/v1/runs/x/cancel",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(code, 403, "{body}");
    s.kill();
    // A malformed allow-list entry is refused at start.
    let out = crate::slipway(
        home.path(),
        &["serve", "--listen", "127.0.0.1:0", "--allowed-host", "a b"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`a b` is not a host name"),
        "{}",
        text(&out.stderr)
    );
    // An allowed name passes the Host guard.
    let s = Served::start(
        home.path(),
        &["--no-auth", "--allowed-host", "ci.example.com"],
    );
    let (code, body) = request(
        &s.url,
        "GET",
        "/api/v1/whoami",
        &[("Host", "ci.example.com")],
    );
    assert_eq!(code, 200, "{body}");
}

/// `slipway token revoke` in another process: the next request with the token is refused, and
/// a log stream it opened ends within about a second.
#[test]
fn a_token_revoked_from_another_process_stops_at_once() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &[]);
    let out = crate::slipway(home.path(), &["token", "create", "ci", "--scope", "read"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ci = text(&out.stdout).trim().to_string();
    let task = files.path().join("slow.yaml");
    std::fs::write(
        &task,
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: slow}\nspec:\n  taskSpec:\n    steps:\n    - name: s\n      image: busybox\n      script: 'for i in $(seq 1 300); do echo line $i; sleep 0.1; done'\n",
    )
    .expect("write");
    let out = s.cli(
        client.path(),
        &["run", "-f", &task.display().to_string(), "-d"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let follow = Command::new(bin())
        .args(["logs", "slow", "-f"])
        .env("SLIPWAY_HOME", client.path())
        .env("SLIPWAY_SERVER", &s.url)
        .env("SLIPWAY_TOKEN", &ci)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slipway logs -f");
    let mut follower = Reaped(follow);
    // Lines arrive while the token is valid.
    let mut stdout = follower.0.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("line 3") {
        let n = stdout.read(&mut buf).expect("read");
        assert!(n > 0, "the follower ended early: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let out = crate::slipway(home.path(), &["token", "revoke", "ci"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let revoked = Instant::now();
    let bearer = format!("Bearer {ci}");
    let (code, body) = request(
        &s.url,
        "GET",
        "/api/v1/whoami",
        &[("Authorization", &bearer)],
    );
    assert_eq!(code, 401, "the next request after the revocation: {body}");
    // The follower's stream ends: the CLI exits 2 saying why.
    let status = loop {
        if let Some(st) = follower.0.try_wait().expect("wait") {
            break st;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "the log stream outlived the revocation"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        revoked.elapsed() < Duration::from_secs(3),
        "{:?}",
        revoked.elapsed()
    );
    let mut err = String::new();
    if let Some(mut e) = follower.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("revoked"), "{err}");
}

/// Kills a child when the test ends, however it ends.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Raises this process's soft open-file limit to `want` (or the hard limit); the limit now.
fn raise_open_files(want: u64) -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads and writes the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = want.min(l.rlim_max).max(l.rlim_cur);
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
    }
    l.rlim_cur
}

/// The reproduction: 2,000 connections that send half a header and wait, against a server
/// started with the common default soft limit of 1,024 open files. The server raises its
/// limit, keeps answering `/healthz`, runs a run through, and closes the idle connections after
/// its header timeout.
#[test]
fn two_thousand_idle_connections_do_not_take_the_server_down() {
    const IDLE: usize = 2000;
    assert!(
        raise_open_files(IDLE as u64 + 512) >= IDLE as u64 + 256,
        "this test needs {} open files",
        IDLE + 256
    );
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin());
    // Timeouts long enough that all 2,000 are open at once even on a loaded machine.
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--header-timeout",
        "30s",
        "--idle-timeout",
        "30s",
    ])
    .env("SLIPWAY_HOME", home.path())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: only setrlimit (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
            l.rlim_cur = 1024;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            Ok(())
        });
    }
    let s = Served::spawned(home.path(), cmd.spawn().expect("slipway serve"));
    let addr = s.url.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            let mut c = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
                .expect("half a header");
            c
        })
        .collect();
    let opened = started.elapsed();
    // All of them are open at once: none has been answered or closed.
    let open_now = idle
        .iter()
        .filter(|c| {
            c.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 16];
            let open = matches!((&**c).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            c.set_nonblocking(false).expect("blocking");
            open
        })
        .count();
    assert_eq!(open_now, IDLE, "opening them took {opened:?}");
    // Health, within a moment, while all of them are open.
    let (code, body) = request(&s.url, "GET", "/healthz", &[]);
    assert_eq!(code, 200, "{body}");
    // And a run all the way through.
    let task = files.path().join("hello.yaml");
    std::fs::write(
        &task,
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: through}\nspec:\n  taskSpec:\n    steps:\n    - name: s\n      image: busybox\n      script: 'echo still here'\n",
    )
    .expect("write");
    let out = s.cli(
        client.path(),
        &["run", "-f", &task.display().to_string(), "--logs"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("still here"),
        "{}",
        text(&out.stdout)
    );
    let out = s.cli(client.path(), &["describe", "through"]);
    assert!(
        text(&out.stdout).contains("Status:    Succeeded"),
        "{}",
        text(&out.stdout)
    );
    // The idle connections are closed by the server (header timeout), not kept forever.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut still_open = 0;
    for mut c in idle {
        let left = deadline.saturating_duration_since(Instant::now());
        c.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("timeout");
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(_) => still_open += 1,
        }
    }
    assert_eq!(
        still_open, 0,
        "{still_open} idle connections are still open 45 s later"
    );
    eprintln!(
        "opened {IDLE} idle connections in {opened:?}; all closed by the server {:?} after the start",
        started.elapsed()
    );
}
