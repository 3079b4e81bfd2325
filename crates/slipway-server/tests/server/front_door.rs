//! The server's front door over real sockets: cross-site and DNS-rebinding guards, body types,
//! sizes and timeouts, every refusal a `Status`, and the connection cap and timeouts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use slipway_server::{AuthMode, ServeOptions};

use crate::Server;

/// `slipway_server::serve` on a loopback port over a [`Server`]'s state.
struct Listening {
    addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
}

impl Listening {
    async fn start(s: &Server, auth: AuthMode, options: ServeOptions) -> Listening {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = tokio_util::sync::CancellationToken::new();
        let state = s.state.clone().with_auth(auth);
        tokio::spawn(slipway_server::serve(
            listener,
            state,
            options,
            stop.clone().cancelled_owned(),
        ));
        Listening { addr, stop }
    }

    /// One request over a new connection (blocking I/O on a worker thread); the status code,
    /// the head and the body.
    async fn send(&self, head: &str, body: &str) -> (u16, String, String) {
        let (addr, head, body) = (self.addr, head.to_string(), body.to_string());
        tokio::task::spawn_blocking(move || exchange(addr, &head, &body))
            .await
            .expect("client thread")
    }

    /// `METHOD PATH` with `Host: 127.0.0.1:PORT` unless `headers` has one.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        self.send(&head, body).await
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn exchange(addr: SocketAddr, head: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    // A server that refuses a request from its head may answer and close before the body is
    // all sent (a broken pipe here); its answer is still there to read.
    if let Err(e) = s.write_all(format!("{head}\r\n{body}").as_bytes()) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "send: {e}"
        );
    }
    answer(s)
}

/// Reads a response to its end (the server closes the connection).
fn answer(mut s: TcpStream) -> (u16, String, String) {
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (code, head.to_string(), body.to_string())
}

/// The body as a `Status`; fails the test when it is not one.
fn status(code: u16, body: &str) -> Value {
    let v: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{code}: not JSON ({e}): {body:?}"));
    assert_eq!(v["kind"], "Status", "{body}");
    assert_eq!(v["code"], code, "{body}");
    assert!(!v["message"].as_str().unwrap_or("").is_empty(), "{body}");
    v
}

const RUN: &str = r#"{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"pwned"},"spec":{"taskSpec":{"steps":[{"name":"s","image":"busybox","script":"id"}]}}}"#;

/// The reproduced attack: a page on another site posting a run as `text/plain` (no preflight)
/// to a server without tokens, directly and through a rebound name. Every variant is refused
/// and no run exists afterwards; the UI's own same-origin request passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_rebinding_requests_are_refused() {
    let s = Server::start(Default::default()).await;
    let l = Listening::start(
        &s,
        AuthMode::Off,
        ServeOptions {
            allowed_hosts: vec!["ci.example.com".into()],
            ..Default::default()
        },
    )
    .await;
    let own = format!("http://{}", l.addr);
    let rebound = format!("evil.example:{}", l.addr.port());
    let rebound_origin = format!("http://{rebound}");
    let attacks: Vec<Vec<(&str, &str)>> = vec![
        // The reproduction: text/plain, foreign Origin, foreign Host.
        vec![
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
            ("Host", &rebound),
        ],
        vec![
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
        ],
        vec![
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
        vec![("Content-Type", "application/json"), ("Origin", "null")],
        vec![
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "same-site"),
            ("Origin", &own),
        ],
        // DNS rebinding: same-origin to the browser, but the Host is the attacker's name.
        vec![
            ("Content-Type", "application/json"),
            ("Origin", &rebound_origin),
            ("Host", &rebound),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    ];
    for headers in &attacks {
        let (code, _, body) = l.request("POST", "/api/v1/runs", headers, RUN).await;
        assert_eq!(code, 403, "{headers:?}: {body}");
        status(403, &body);
    }
    let (code, _, body) = l
        .request(
            "POST",
            "/api/v1/runs",
            &[("Content-Type", "text/plain")],
            RUN,
        )
        .await;
    assert_eq!(code, 415, "{body}");
    let message = status(415, &body)["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("application/json"), "{message}");
    assert!(
        s.store.find_run("pwned").await.is_err(),
        "a refused request created a run"
    );
    // Reads under a rebound name are refused too; the server's own names are fine.
    let (code, _, body) = l
        .request("GET", "/api/v1/whoami", &[("Host", &rebound)], "")
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        status(403, &body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("--allowed-host evil.example"),
        "{body}"
    );
    let localhost = format!("localhost:{}", l.addr.port());
    let other_port = format!("127.0.0.1:{}", l.addr.port() + 1);
    for (host, want) in [
        (localhost.as_str(), 200),
        ("ci.example.com", 200),
        (other_port.as_str(), 403),
    ] {
        let (code, _, body) = l
            .request("GET", "/api/v1/whoami", &[("Host", host)], "")
            .await;
        assert_eq!(code, want, "{host}: {body}");
    }
    // Health checks answer whatever the Host (they say nothing).
    let (code, _, _) = l
        .request("GET", "/healthz", &[("Host", &rebound)], "")
        .await;
    assert_eq!(code, 200);
    // Webhooks: no browser, but any Host (senders come through proxies).
    let (code, _, body) = l
        .request(
            "POST",
            "/hooks/ci",
            &[("Content-Type", "application/json"), ("Origin", &own)],
            "{}",
        )
        .await;
    assert_eq!(code, 403, "{body}");
    let (code, _, body) = l
        .request(
            "POST",
            "/hooks/ci",
            &[
                ("Content-Type", "application/json"),
                ("Host", "hooks.public.example"),
            ],
            "{}",
        )
        .await;
    assert_eq!(
        code, 404,
        "the listener is missing, the request passed: {body}"
    );
    status(404, &body);
    // The web UI's own request: same origin, JSON.
    let (code, _, body) = l
        .request(
            "POST",
            "/api/v1/runs",
            &[
                ("Content-Type", "application/json"),
                ("Origin", &own),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            RUN,
        )
        .await;
    assert_eq!(code, 201, "{body}");
    drop(l);
    s.shut_down().await;
}

/// A request (method, path, headers, body) and the code it gets.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str, u16);

/// Every refusal is a `Status`: unknown routes, wrong methods, bad queries and paths, bodies
/// too large, of the wrong type or too slow, missing tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_status() {
    let s = Server::start(Default::default()).await;
    let l = Listening::start(
        &s,
        AuthMode::Tokens,
        ServeOptions {
            body_timeout: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await;
    let auth = format!("Bearer {}", s.token);
    let a = ("Authorization", auth.as_str());
    let ns = "/apis/tekton.dev/v1/namespaces/default";
    let big = "x".repeat(slipway_server::MAX_BODY + 1);
    let cases: Vec<Case> = vec![
        ("GET", "/no/such/route".into(), vec![a], "", 404),
        ("GET", "/ui/missing.js".into(), vec![a], "", 404),
        ("DELETE", "/api/v1/runs".into(), vec![a], "", 405),
        ("PUT", format!("{ns}/pipelineruns"), vec![a], "", 405),
        (
            "GET",
            format!("{ns}/pipelineruns?limit=abc"),
            vec![a],
            "",
            400,
        ),
        ("GET", "/api/v1/runs/%FF/logs".into(), vec![a], "", 400),
        ("GET", format!("{ns}/pipelineruns"), vec![], "", 401),
        (
            "POST",
            "/api/v1/apply".into(),
            vec![a, ("Content-Type", "application/x-www-form-urlencoded")],
            "a=b",
            415,
        ),
        ("POST", "/api/v1/apply".into(), vec![a], "kind: Task", 415),
        (
            "PATCH",
            format!("{ns}/pipelineruns/x"),
            vec![a, ("Content-Type", "application/json-patch+json")],
            "[]",
            415,
        ),
        (
            "POST",
            "/api/v1/apply".into(),
            vec![a, ("Content-Type", "application/yaml")],
            &big,
            413,
        ),
    ];
    for (method, path, headers, body, want) in &cases {
        let (code, head, text) = l.request(method, path, headers, body).await;
        assert_eq!(code, *want, "{method} {path}: {head}\n{text}");
        let v = status(code, &text);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        if path == "/no/such/route" {
            assert_eq!(v["details"]["kind"], "route", "{text}");
        }
        if code == 405 {
            assert_eq!(v["reason"], "MethodNotAllowed");
            assert!(head.to_ascii_lowercase().contains("allow:"), "{head}");
        }
    }
    // A body that stops arriving: 408 after the body timeout, not a handler held forever.
    let head = format!(
        "POST /api/v1/apply HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/yaml\r\nContent-Length: 1000\r\nConnection: close\r\n",
        l.addr
    );
    let started = Instant::now();
    let (code, _, body) = l.send(&head, "kind: Ta").await;
    assert_eq!(code, 408, "{body}");
    status(408, &body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(l);
    s.shut_down().await;
}

/// Past the cap a connection is answered 503 with a `Status`; connections that send half a
/// header are closed after the header timeout, idle keep-alive ones after the idle timeout,
/// and a log stream that stays quiet longer than both keeps going to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_idle_ones_closed() {
    let s = Server::start(Default::default()).await;
    let l = Listening::start(
        &s,
        AuthMode::Off,
        ServeOptions {
            max_connections: 4,
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    // A run with a quiet stretch longer than the timeouts, followed live.
    let (code, _, body) = l
        .request(
            "POST",
            "/api/v1/runs",
            &[("Content-Type", "application/yaml")],
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: quiet}\nspec:\n  taskSpec:\n    steps:\n    - name: s\n      image: busybox\n      script: 'echo before; sleep 4; echo after'\n",
        )
        .await;
    assert_eq!(code, 201, "{body}");
    // The client sees the end of that exchange a moment before the server's task for it ends
    // and frees its slot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let follow = {
        let head = format!(
            "GET /api/v1/runs/quiet/logs?follow=true HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            l.addr
        );
        // Connected here, so that it is accepted (and counted) before the idle ones below.
        let mut s = TcpStream::connect(l.addr).expect("connect");
        s.write_all(format!("{head}\r\n").as_bytes()).expect("send");
        tokio::task::spawn_blocking(move || answer(s))
    };
    // Three idle connections with half a header: with the follower, the cap is reached.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(l.addr).expect("connect");
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x")
                .expect("send");
            c
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, head, body) = l.request("GET", "/healthz", &[], "").await;
    assert_eq!(code, 503, "{head}\n{body}");
    assert_eq!(status(503, &body)["reason"], "ServiceUnavailable");
    // The half headers are cut off after the header timeout...
    let closed = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .map(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                let started = Instant::now();
                let mut buf = Vec::new();
                let _ = c.read_to_end(&mut buf);
                started.elapsed()
            })
            .max()
    })
    .await
    .expect("reader")
    .expect("three");
    assert!(closed < Duration::from_secs(5), "closed after {closed:?}");
    // ...and the server answers again.
    let (code, _, _) = l.request("GET", "/healthz", &[], "").await;
    assert_eq!(code, 200);
    // A keep-alive connection is closed once idle.
    let mut c = TcpStream::connect(l.addr).expect("connect");
    c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", l.addr).as_bytes())
        .expect("send");
    let idle_closed = tokio::task::spawn_blocking(move || {
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let started = Instant::now();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        (
            started.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    })
    .await
    .expect("reader");
    assert!(
        idle_closed.1.starts_with("HTTP/1.1 200"),
        "{}",
        idle_closed.1
    );
    assert!(
        idle_closed.0 < Duration::from_secs(5),
        "{:?}",
        idle_closed.0
    );
    // The quiet log stream outlived every timeout and ended with the run.
    let (code, _, text) = follow.await.expect("follower");
    assert_eq!(code, 200);
    assert!(text.contains("before") && text.contains("after"), "{text}");
    assert!(text.contains("event: end"), "{text}");
    drop(l);
    s.shut_down().await;
}
