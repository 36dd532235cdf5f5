//! The access guard, in front of every route (docs/security.md):
//!
//! - **Host.** A request is served only when its `Host` names this dashboard: `localhost`,
//!   `127.0.0.1` or `[::1]` with the bound port, or a name in `DASHBOARD_ALLOWED_HOSTS`. A web
//!   page whose name resolves to 127.0.0.1 (DNS rebinding) is refused, so it cannot read the
//!   device list from a browser on the same machine. On a non-loopback bind without
//!   `DASHBOARD_ALLOWED_HOSTS`, any name is served (the password protects).
//! - **Cross-site writes.** A request other than GET/HEAD whose `Origin` is not this dashboard
//!   (`null` included) or whose `Sec-Fetch-Site` is `cross-site` is refused before it runs.
//! - **Who is asking.** Behind a reverse proxy, the client's address comes from
//!   `X-Forwarded-For`, trusted only from the proxies in `DASHBOARD_TRUSTED_PROXIES`.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// One allowed `Host`: a name, and a port unless any port goes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostRule {
    name: String,
    port: Option<u16>,
}

/// An address or a network (`10.0.0.0/8`) whose `X-Forwarded-For` is believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "DASHBOARD_TRUSTED_PROXIES: {s:?} is not an address or a network (e.g. 10.0.0.1 or 10.0.0.0/8)"
            )
        };
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(TrustedProxy { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v) => u32::from(v) as u128,
                IpAddr::V6(v) => u128::from(v),
            }
        };
        if self.net.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let shift = width - self.prefix as u32;
        let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
        bits(self.net) & mask == bits(ip) & mask
    }
}

/// The guard's settings, made once the listening address is known.
#[derive(Clone, Debug)]
pub struct AccessGuard {
    /// `None`: any `Host` (a non-loopback bind without DASHBOARD_ALLOWED_HOSTS).
    hosts: Option<Vec<HostRule>>,
    proxies: Vec<TrustedProxy>,
    /// The scheme browsers reach the dashboard by: `https` behind a TLS proxy
    /// (`DASHBOARD_COOKIE_SECURE`), else `http` (what the dashboard itself speaks). A trusted
    /// proxy's `X-Forwarded-Proto` says it per request.
    https: bool,
}

/// `host[:port]` (IPv6 in brackets), lower-cased, without a trailing dot.
fn split_host(authority: &str) -> Option<(String, Option<u16>)> {
    let a = authority.trim();
    if a.is_empty() || a.contains(['/', '@', ' ', '\\']) {
        return None;
    }
    let (name, port) = if let Some(rest) = a.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{inside}]"), port)
    } else {
        match a.rsplit_once(':') {
            Some((n, p)) => (n.to_string(), Some(p.parse().ok()?)),
            None => (a.to_string(), None),
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some((name, port))
}

impl AccessGuard {
    /// `bound`: the address the dashboard listens on; `allowed`: DASHBOARD_ALLOWED_HOSTS;
    /// `proxies`: DASHBOARD_TRUSTED_PROXIES.
    pub fn new(bound: SocketAddr, allowed: &[String], proxies: &[String]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in allowed.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let (name, port) = split_host(entry).ok_or_else(|| {
                format!("DASHBOARD_ALLOWED_HOSTS: {entry:?} is not a host name (e.g. dashboard.example or dashboard.example:8443)")
            })?;
            rules.push(HostRule { name, port });
        }
        let any_host = !bound.ip().is_loopback() && rules.is_empty();
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            rules.push(HostRule {
                name: name.into(),
                port: Some(bound.port()),
            });
        }
        let proxies = proxies
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(TrustedProxy::parse)
            .collect::<Result<_, _>>()?;
        Ok(AccessGuard {
            hosts: (!any_host).then_some(rules),
            proxies,
            https: false,
        })
    }

    /// Browsers reach the dashboard over HTTPS (through a TLS proxy): a write's `Origin` must
    /// be `https://` (`DASHBOARD_COOKIE_SECURE`).
    pub fn behind_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// The scheme of this request as the browser sent it: a trusted proxy's
    /// `X-Forwarded-Proto`, else the configured one.
    fn scheme(&self, peer: IpAddr, headers: &HeaderMap) -> &'static str {
        let forwarded = self
            .proxies
            .iter()
            .any(|p| p.contains(peer))
            .then(|| headers.get("x-forwarded-proto"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match forwarded.as_deref() {
            Some("https") => "https",
            Some("http") => "http",
            _ if self.https => "https",
            _ => "http",
        }
    }

    /// Whether a request with this `Host` is for us.
    pub fn allows_host(&self, host: &str) -> bool {
        let Some(rules) = &self.hosts else {
            return true;
        };
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        // No port in `Host` means the scheme's default (80 for plain HTTP).
        let port = port.unwrap_or(80);
        rules
            .iter()
            .any(|r| r.name == name && r.port.is_none_or(|p| p == port))
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not one of ours.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.proxies.iter().any(|p| p.contains(peer)) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !self.proxies.iter().any(|p| p.contains(**ip)))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// The port a scheme means when none is written.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the site the request was made to: `scheme` (as
/// the browser used it) and `host` (its `Host`), comparing scheme, name and port (the scheme's
/// default port where none is written, on either side).
fn same_origin(origin: &str, scheme: &str, host: &str) -> bool {
    let Some((origin_scheme, authority)) = origin.split_once("://") else {
        return false; // "null", or garbage
    };
    let origin_scheme = origin_scheme.to_ascii_lowercase();
    let (Some(origin_default), Some(site_default)) =
        (default_port(&origin_scheme), default_port(scheme))
    else {
        return false;
    };
    match (split_host(authority), split_host(host)) {
        (Some((on, op)), Some((hn, hp))) => {
            origin_scheme == scheme
                && on == hn
                && op.unwrap_or(origin_default) == hp.unwrap_or(site_default)
        }
        _ => false,
    }
}

fn refuse(message: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The request's `Host` (HTTP/1.1 header, or the authority of an absolute URI).
fn host_of(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// The client's address as the guard determined it (a request extension for the handlers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The middleware: refuses foreign `Host` names and cross-site writes, before any route runs;
/// tells the handlers who is asking ([`ClientIp`]).
pub async fn guard(
    State(g): State<Arc<AccessGuard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let host = host_of(&req).unwrap_or_default();
    if !g.allows_host(&host) {
        tracing::warn!(client = %peer.ip(), host = %host.escape_debug(), "refused a request for another host name");
        return refuse(format!(
            "403 Forbidden: this dashboard does not answer to the host name {:?}; to allow it, add it to DASHBOARD_ALLOWED_HOSTS.",
            host.chars().take(100).collect::<String>()
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or("(not text)").to_string())
        };
        let cross_site =
            header("sec-fetch-site").is_some_and(|s| s.eq_ignore_ascii_case("cross-site"));
        let scheme = g.scheme(peer.ip(), req.headers());
        let foreign_origin = header("origin").filter(|o| !same_origin(o, scheme, &host));
        if cross_site || foreign_origin.is_some() {
            tracing::warn!(client = %peer.ip(), origin = ?foreign_origin, path = %req.uri().path(), "refused a cross-site request");
            return refuse(match foreign_origin {
                Some(o) => format!(
                    "403 Forbidden: a request from another site ({:?}) may not change anything here \
                     (this site is {scheme}://{}; behind an HTTPS proxy, set \
                     DASHBOARD_COOKIE_SECURE=true or have the proxy send X-Forwarded-Proto).",
                    o.chars().take(100).collect::<String>(),
                    host.chars().take(100).collect::<String>()
                ),
                None => "403 Forbidden: a request from another site may not change anything here.".into(),
            });
        }
    }
    let client = g.client_ip(peer.ip(), req.headers());
    req.extensions_mut().insert(ClientIp(client));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> AccessGuard {
        AccessGuard::new("127.0.0.1:3000".parse().unwrap(), &[], &[]).unwrap()
    }

    #[test]
    fn loopback_names_with_the_bound_port_only() {
        let g = loopback();
        for ok in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "LOCALHOST:3000",
            "localhost.:3000",
        ] {
            assert!(g.allows_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example:3000",
            "localhost",
            "localhost:3001",
            "127.0.0.1.evil.example:3000",
            "localhost:3000@evil",
            "localhost:x",
            "[::1]",
            "127.0.0.2:3000",
        ] {
            assert!(!g.allows_host(bad), "{bad}");
        }
    }

    #[test]
    fn allowed_hosts_add_names_with_any_or_one_port() {
        let g = AccessGuard::new(
            "0.0.0.0:8080".parse().unwrap(),
            &["Dash.Example".into(), "lan-box:9000".into(), " ".into()],
            &[],
        )
        .unwrap();
        assert!(g.allows_host("dash.example"));
        assert!(g.allows_host("dash.example:443"));
        assert!(g.allows_host("lan-box:9000"));
        assert!(!g.allows_host("lan-box:8080"));
        assert!(g.allows_host("localhost:8080"));
        assert!(!g.allows_host("other.example"));
        // A non-loopback bind with no list: any name (the password protects).
        let open = AccessGuard::new("0.0.0.0:8080".parse().unwrap(), &[], &[]).unwrap();
        assert!(open.allows_host("anything.example"));
        assert!(
            AccessGuard::new("127.0.0.1:1".parse().unwrap(), &["a/b".into()], &[])
                .unwrap_err()
                .contains("DASHBOARD_ALLOWED_HOSTS")
        );
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        assert!(same_origin(
            "http://localhost:3000",
            "http",
            "localhost:3000"
        ));
        assert!(same_origin("https://dash.example", "https", "dash.example"));
        assert!(same_origin(
            "https://dash.example",
            "https",
            "dash.example:443"
        ));
        assert!(same_origin(
            "https://dash.example:443",
            "https",
            "dash.example"
        ));
        assert!(same_origin("http://dash.example", "http", "dash.example"));
        assert!(same_origin(
            "HTTP://Dash.Example",
            "http",
            "dash.example:80"
        ));
        assert!(!same_origin(
            "http://dash.example",
            "https",
            "dash.example:443"
        ));
        assert!(!same_origin("null", "http", "localhost:3000"));
        assert!(!same_origin(
            "http://evil.example:3000",
            "http",
            "localhost:3000"
        ));
        assert!(!same_origin(
            "http://localhost:3001",
            "http",
            "localhost:3000"
        ));
        assert!(!same_origin("file://", "http", "localhost:3000"));
        // `Host` without a port is the scheme's default: not any port, not another scheme
        // (these two were accepted before).
        assert!(!same_origin(
            "http://dash.example:8080",
            "http",
            "dash.example"
        ));
        assert!(!same_origin(
            "https://dash.example:8443",
            "https",
            "dash.example"
        ));
        assert!(!same_origin("http://dash.example", "https", "dash.example"));
        assert!(!same_origin("https://dash.example", "http", "dash.example"));
    }

    #[test]
    fn the_scheme_is_the_configured_one_or_a_trusted_proxys() {
        let g =
            AccessGuard::new("0.0.0.0:8080".parse().unwrap(), &[], &["10.0.0.1".into()]).unwrap();
        let mut h = HeaderMap::new();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(g.scheme(proxy, &h), "http");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(g.scheme(proxy, &h), "https");
        assert_eq!(g.scheme(stranger, &h), "http", "only a trusted proxy says");
        let g = g.behind_https(true);
        assert_eq!(g.scheme(stranger, &HeaderMap::new()), "https");
        h.insert("x-forwarded-proto", "http".parse().unwrap());
        assert_eq!(g.scheme(proxy, &h), "http");
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let g = AccessGuard::new(
            "127.0.0.1:3000".parse().unwrap(),
            &[],
            &["10.0.0.0/8".into(), "192.0.2.7".into()],
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1, 10.1.2.3".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            g.client_ip(proxy, &h),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // From anyone else the header is ignored (it is the sender's to forge).
        let stranger: IpAddr = "198.51.100.50".parse().unwrap();
        assert_eq!(g.client_ip(stranger, &h), stranger);
        assert!(TrustedProxy::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxy::parse("nope").is_err());
        assert!(TrustedProxy::parse("::ffff:0:0/96").is_ok());
        assert!(TrustedProxy::parse("192.0.2.7")
            .unwrap()
            .contains("::ffff:192.0.2.7".parse().unwrap()));
    }
}
