//! HTTP readiness probes as the kubelet judges them, for executors that reach the port themselves.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Whether an HTTP answer read from `stream` says ready (a status in 200..400), after sending
/// `GET path` to `port`.
pub fn http_get(
    mut stream: TcpStream,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<(), String> {
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: localhost:{port}\r\nUser-Agent: slipway-probe\r\n\r\n"
    )
    .map_err(|e| format!("sending the request: {e}"))?;
    // The status line may come in several reads (a server writing it piece by piece).
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() && !head[..n].contains(&b'\n') {
        match stream.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(got) => n += got,
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path} answered something that is not HTTP"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot HTTP server on the loopback answering `status`.
    fn answering(status: u16) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                // The whole request first: closing with unread bytes would reset the connection.
                let mut request = Vec::new();
                let mut buf = [0u8; 256];
                while !request.ends_with(b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(s, "HTTP/1.0 {status} X\r\n\r\n");
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
        });
        port
    }

    #[test]
    fn http_probes_read_the_status() {
        let t = Duration::from_secs(5);
        let port = answering(204);
        assert_eq!(
            http_get(
                TcpStream::connect(("127.0.0.1", port)).expect("connect"),
                port,
                "ready",
                t
            ),
            Ok(())
        );
        let port = answering(503);
        let err = http_get(
            TcpStream::connect(("127.0.0.1", port)).expect("connect"),
            port,
            "/",
            t,
        );
        assert_eq!(err, Err("GET / answered 503".into()));
    }
}
