//! Cross-site and DNS-rebinding protection: which `Host` a request may name, and which
//! origins may change anything.
//!
//! A web page the user visits can send requests to a server on the user's machine; the browser
//! says so in `Origin` and `Sec-Fetch-Site`. A page can also point a name it controls at the
//! server's address (DNS rebinding), and then its requests are "same-origin" to the browser
//! but carry the attacker's name in `Host`. So:
//!
//! - every request (but health checks and webhooks) must name an acceptable `Host`: an IP
//!   literal the server listens on (any loopback one when it listens on loopback, any at all
//!   when it listens on every address: an IP literal cannot be rebound) or `localhost`, with the
//!   port it listens on; or a name on the allow-list (`--allowed-host`). A request without
//!   `Host` is not a browser's and passes.
//! - a request that changes anything (not GET, HEAD or OPTIONS) is refused when its `Origin` is
//!   not the server's own (`http(s)://` + the request's `Host`) or when `Sec-Fetch-Site` says
//!   `cross-site` or `same-site`.
//! - webhooks (`/hooks/...`) come from servers, never from browsers: any request there that
//!   carries `Origin` or `Sec-Fetch-Site` is refused, and there is no `Host` check, so that
//!   senders reach them through proxies that rewrite `Host` without an allow-list entry.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// The names and addresses a request's `Host` may give.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// The address the server listens on; unknown when the router is used without a socket.
    listen: Option<SocketAddr>,
    /// Allowed names, lower case, each with an optional port (`None`: any port).
    allowed: Vec<(String, Option<u16>)>,
}

/// A `Host` (or an origin's authority) split into its name and port.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// `name`, `name:port`, `1.2.3.4:port`, `[::1]:port`; `None` when malformed.
    fn parse(text: &str) -> Option<Authority> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            (inside.to_string(), port)
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
                None => (text.to_string(), None),
            }
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        valid.then_some(Authority { host, port })
    }

    fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Whether `text` is a host name (or IP literal) with an optional port, as an allow-list entry
/// must be.
pub fn is_host(text: &str) -> bool {
    Authority::parse(text).is_some()
}

impl HostPolicy {
    /// The policy of a server listening on `listen`, with extra names (`name` or `name:port`).
    pub fn new(listen: Option<SocketAddr>, allowed: &[String]) -> HostPolicy {
        let allowed = allowed
            .iter()
            .filter_map(|a| Authority::parse(a))
            .map(|a| (a.host, a.port))
            .collect();
        HostPolicy { listen, allowed }
    }

    /// Whether a request may name `a`. A missing port counts as `default_port` (80 for `Host`,
    /// the scheme's for an origin).
    fn accepts(&self, a: &Authority, default_port: u16) -> bool {
        let port = a.port.unwrap_or(default_port);
        if self
            .allowed
            .iter()
            .any(|(h, p)| *h == a.host && p.is_none_or(|p| p == port))
        {
            return true;
        }
        let Some(listen) = self.listen else {
            // No socket (the router called directly): only this machine's own names.
            return a.host == "localhost" || a.ip().is_some_and(|ip| ip.is_loopback());
        };
        if port != listen.port() {
            return false;
        }
        if a.host == "localhost" {
            return true;
        }
        match a.ip() {
            Some(ip) => {
                ip == listen.ip()
                    || listen.ip().is_unspecified()
                    || (listen.ip().is_loopback() && ip.is_loopback())
            }
            None => false,
        }
    }
}

/// Why a request is refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Host,
    Origin,
    SecFetchSite,
    BrowserOnHook,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// `scheme://authority` into the authority and the scheme's default port.
fn origin_authority(origin: &str) -> Option<(Authority, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some((Authority::parse(rest.trim_end_matches('/'))?, default_port))
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What is wrong with a request's `Host`, `Origin` and `Sec-Fetch-Site`, if anything.
fn refusal(
    policy: &HostPolicy,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Refusal> {
    let origin = header_str(headers, header::ORIGIN.as_str());
    let fetch_site = header_str(headers, "sec-fetch-site");
    if path.starts_with("/hooks/") {
        return (origin.is_some() || fetch_site.is_some()).then_some(Refusal::BrowserOnHook);
    }
    let host = match header_str(headers, header::HOST.as_str()) {
        Some(h) => match Authority::parse(h) {
            Some(a) if policy.accepts(&a, 80) => Some(a),
            _ => return Some(Refusal::Host),
        },
        None => None,
    };
    if !changes_state(method) {
        return None;
    }
    if fetch_site.is_some_and(|s| {
        s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site")
    }) {
        return Some(Refusal::SecFetchSite);
    }
    // No Origin: not a browser's request (browsers send it with every change).
    let origin = origin?;
    let Some((from, default_port)) = origin_authority(origin) else {
        // `null` (a sandboxed frame, a file) or garbage.
        return Some(Refusal::Origin);
    };
    let own = match &host {
        // The page's origin is the server's when it names what the request's Host names (a
        // TLS proxy in front keeps Host without a port while the origin has https's 443).
        Some(h) => {
            from.host == h.host
                && (from.port == h.port || (h.port.is_none() && from.port == Some(default_port)))
        }
        None => policy.accepts(&from, default_port),
    };
    (!own).then_some(Refusal::Origin)
}

/// The middleware.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    let Some(why) = refusal(&state.hosts, req.method(), req.uri().path(), req.headers()) else {
        return next.run(req).await;
    };
    let host = header_str(req.headers(), header::HOST.as_str()).unwrap_or("");
    let origin = header_str(req.headers(), header::ORIGIN.as_str()).unwrap_or("");
    let message = match why {
        Refusal::Host => format!(
            "this server does not answer to the host `{host}` (a DNS-rebinding guard): reach it by the address it listens on or `localhost`, or allow the name with `slipway serve --allowed-host {}` (or `allowed_hosts` in the config file's [server] section)",
            Authority::parse(host).map_or_else(|| host.to_string(), |a| a.host)
        ),
        Refusal::Origin => format!(
            "{} from the origin `{origin}` is refused: only pages served by this server may change anything on it (a cross-site request guard); use the CLI or the API from a program (they send no Origin)",
            req.method()
        ),
        Refusal::SecFetchSite => format!(
            "{} from another site is refused: only pages served by this server may change anything on it (a cross-site request guard)",
            req.method()
        ),
        Refusal::BrowserOnHook => "webhooks are for servers sending events, not browsers: this request carries `Origin` or `Sec-Fetch-Site`; send it without them (curl, a webhook sender)".to_string(),
    };
    ApiError::Forbidden(message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    fn policy(listen: &str, allowed: &[&str]) -> HostPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        HostPolicy::new(Some(listen.parse().expect("addr")), &allowed)
    }

    #[test]
    fn hosts_on_loopback() {
        let p = policy("127.0.0.1:7080", &["ci.example.com", "proxy:8443"]);
        let ok = |h: &str| refusal(&p, &Method::GET, "/api", &headers(&[("host", h)])).is_none();
        for good in [
            "127.0.0.1:7080",
            "127.0.0.2:7080",
            "[::1]:7080",
            "localhost:7080",
            "LOCALHOST:7080",
            "ci.example.com",
            "ci.example.com:443",
            "proxy:8443",
        ] {
            assert!(ok(good), "{good} refused");
        }
        for bad in [
            "evil.example:7080",
            "127.0.0.1:7081",
            "127.0.0.1",
            "10.1.2.3:7080",
            "localhost",
            "proxy:8444",
            "ci.example.com.evil:7080",
            "a b",
            "",
        ] {
            assert!(!ok(bad), "{bad} accepted");
        }
        // No Host: not a browser.
        assert!(refusal(&p, &Method::POST, "/api", &HeaderMap::new()).is_none());
    }

    #[test]
    fn hosts_on_every_address() {
        let p = policy("0.0.0.0:80", &[]);
        let ok = |h: &str| refusal(&p, &Method::GET, "/api", &headers(&[("host", h)])).is_none();
        assert!(ok("192.168.1.9"));
        assert!(ok("10.0.0.1:80"));
        assert!(!ok("10.0.0.1:81"));
        assert!(!ok("rebind.evil.example"));
        let p = policy("192.168.1.9:7080", &[]);
        let ok = |h: &str| refusal(&p, &Method::GET, "/api", &headers(&[("host", h)])).is_none();
        assert!(ok("192.168.1.9:7080"));
        assert!(!ok("127.0.0.1:7080"));
    }

    #[test]
    fn origins_of_changes() {
        let p = policy("127.0.0.1:7080", &["ci.example.com"]);
        let post = |pairs: &[(&'static str, &str)]| {
            refusal(&p, &Method::POST, "/api/v1/runs", &headers(pairs))
        };
        let host = ("host", "127.0.0.1:7080");
        assert_eq!(post(&[host]), None, "no Origin: not a browser");
        assert_eq!(post(&[host, ("origin", "http://127.0.0.1:7080")]), None);
        assert_eq!(
            post(&[
                host,
                ("origin", "http://127.0.0.1:7080"),
                ("sec-fetch-site", "same-origin")
            ]),
            None
        );
        assert_eq!(
            post(&[host, ("origin", "http://evil.example")]),
            Some(Refusal::Origin)
        );
        assert_eq!(
            post(&[host, ("origin", "http://127.0.0.1:7081")]),
            Some(Refusal::Origin)
        );
        assert_eq!(post(&[host, ("origin", "null")]), Some(Refusal::Origin));
        assert_eq!(
            post(&[host, ("sec-fetch-site", "cross-site")]),
            Some(Refusal::SecFetchSite)
        );
        assert_eq!(
            post(&[host, ("sec-fetch-site", "same-site")]),
            Some(Refusal::SecFetchSite)
        );
        // Behind a TLS proxy that keeps Host.
        assert_eq!(
            post(&[
                ("host", "ci.example.com"),
                ("origin", "https://ci.example.com")
            ]),
            None
        );
        // Reads are not refused for their origin (the browser does not let the page read them).
        assert_eq!(
            refusal(
                &p,
                &Method::GET,
                "/api",
                &headers(&[host, ("origin", "http://evil.example")])
            ),
            None
        );
        // A rebinding page is same-origin to the browser, but its Host is refused.
        assert_eq!(
            post(&[
                ("host", "evil.example:7080"),
                ("origin", "http://evil.example:7080")
            ]),
            Some(Refusal::Host)
        );
    }

    #[test]
    fn hooks_refuse_browsers_only() {
        let p = policy("127.0.0.1:7080", &[]);
        let hook = |pairs: &[(&'static str, &str)]| {
            refusal(&p, &Method::POST, "/hooks/ci", &headers(pairs))
        };
        assert_eq!(hook(&[("host", "ci.public.example")]), None);
        assert_eq!(
            hook(&[
                ("host", "127.0.0.1:7080"),
                ("origin", "http://127.0.0.1:7080")
            ]),
            Some(Refusal::BrowserOnHook)
        );
        assert_eq!(
            hook(&[("sec-fetch-site", "same-origin")]),
            Some(Refusal::BrowserOnHook)
        );
    }
}
