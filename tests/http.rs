//! The whole dashboard router over HTTP: access control, security headers, limits, health and
//! metrics.
#![cfg(feature = "ssr")]

mod common;

use common::{fast_retries, serve, setup};
use leptos::server_fn::ServerFn;
use reqwest::{header, redirect::Policy, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use wxpay_devices::api::LoadView;
use wxpay_devices::auth::{hash_password, Auth};
use wxpay_devices::simulator::service::SimulatorOptions;
use wxpay_devices::view::{AppState, DeviceView};

const PASSWORD: &str = "correct horse battery";

/// The whole router over a simulator with `options`; with a password when asked.
async fn dashboard_with(
    options: SimulatorOptions,
    password: bool,
) -> (wxpay_devices::simulator::service::Simulator, String) {
    let (sim, sync) = setup(options, fast_retries(), None).await;
    let (url, _) = Served::new(sync).password(password).serve().await;
    (sim, url)
}

/// The whole router over a sync service, served on a loopback port: the Leptos settings of
/// Cargo.toml, no password, the guard with no extra names, the default limits, unless told.
struct Served {
    sync: Arc<wxpay_devices::sync::service::SyncService>,
    site: leptos::config::LeptosOptions,
    password: bool,
    hosts: Vec<String>,
    proxies: Vec<String>,
    limits: wxpay_devices::server::Limits,
}

impl Served {
    fn new(sync: Arc<wxpay_devices::sync::service::SyncService>) -> Self {
        Served {
            sync,
            site: leptos::prelude::get_configuration(Some("Cargo.toml"))
                .unwrap()
                .leptos_options,
            password: false,
            hosts: Vec::new(),
            proxies: Vec::new(),
            limits: Default::default(),
        }
    }

    fn password(self, password: bool) -> Self {
        Served { password, ..self }
    }

    /// Its base URL, and the sign-in settings (to read their counters).
    async fn serve(self) -> (String, Arc<Auth>) {
        let hash = self.password.then(|| hash_password(PASSWORD).unwrap());
        let auth = Arc::new(Auth::new(hash, Duration::from_secs(3600), false));
        let state = AppState::new(self.sync).with_auth(auth.enabled());
        let a = auth.clone();
        let (site, hosts, proxies, limits) = (self.site, self.hosts, self.proxies, self.limits);
        let url = serve(move |addr| {
            let g =
                Arc::new(wxpay_devices::guard::AccessGuard::new(addr, &hosts, &proxies).unwrap());
            wxpay_devices::server::router_with_limits(site, state, a, g, limits)
        })
        .await;
        (url, auth)
    }
}

async fn dashboard(password: bool) -> String {
    dashboard_with(
        SimulatorOptions {
            devices: 300,
            ..Default::default()
        },
        password,
    )
    .await
    .1
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn load_view(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut r = http
        .post(format!("{url}{}", LoadView::PATH))
        .json(&serde_json::json!({ "query": "os=LINUX" }));
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn without_a_session_every_data_route_is_refused_and_with_one_it_works() {
    let url = dashboard(true).await;
    let http = client();
    let page = http
        .get(format!("{url}/?os=LINUX"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()[header::LOCATION],
        "/login?next=%2F%3Fos%3DLINUX"
    );
    assert_eq!(
        load_view(&http, &url, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for path in ["/export.csv", "/export.xlsx", "/metrics"] {
        assert_eq!(
            http.get(format!("{url}{path}"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        http.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let login_page = http
        .get(format!("{url}/login?next=/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(login_page.status(), StatusCode::OK);
    assert!(login_page
        .text()
        .await
        .unwrap()
        .contains("type=\"password\""));

    let wrong = http
        .post(format!("{url}/login"))
        .form(&[("password", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    let ok = http
        .post(format!("{url}/login"))
        .form(&[("password", PASSWORD), ("next", "/?os=LINUX")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[header::LOCATION], "/?os=LINUX");
    let set = ok.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age=3600"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();

    let page = http
        .get(format!("{url}/?os=LINUX"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("data-testid=\"sign-out\""));
    let view = load_view(&http, &url, Some(&cookie)).await;
    assert_eq!(view.status(), StatusCode::OK);
    assert!(view.text().await.unwrap().contains("\"total\""));
    let csv = http
        .get(format!("{url}/export.csv"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let metrics = http
        .get(format!("{url}/metrics"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("wxpay_upstream_requests_total{outcome=\"OK\"}"),
        "{text}"
    );
    assert!(text.contains("wxpay_snapshot_devices 300"), "{text}");
    assert!(text.contains("wxpay_quota_used_24h 3"), "{text}");

    // A forged or expired cookie is no session.
    let forged = format!("{}x", cookie);
    assert_eq!(
        load_view(&http, &url, Some(&forged)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let out = http
        .post(format!("{url}/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie, kept by whoever copied it, no longer opens anything.
    assert_eq!(
        load_view(&http, &url, Some(&cookie)).await.status(),
        StatusCode::UNAUTHORIZED,
        "signed out on the server, not only in the browser"
    );
    let csv = http
        .get(format!("{url}/export.csv"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_attempts_are_limited_per_client() {
    let url = dashboard(true).await;
    let http = client();
    for _ in 0..5 {
        let r = http
            .post(format!("{url}/login"))
            .form(&[("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = http
        .post(format!("{url}/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert_eq!(r.headers()[header::RETRY_AFTER], "900");
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_csp_nonce_on_their_scripts() {
    let url = dashboard(false).await;
    let http = client();
    let page = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::REFERRER_POLICY], "same-origin");
    let csp = h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let body = page.text().await.unwrap();
    let scripts = body.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        body.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every script carries the nonce"
    );
    // Other responses get a strict default policy.
    let export = http.get(format!("{url}/export.csv")).send().await.unwrap();
    assert!(export.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(export.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn oversized_or_malformed_requests_get_4xx_never_5xx() {
    let url = dashboard(false).await;
    let http = client();
    let big = "x".repeat(200 * 1024);
    let r = http
        .post(format!("{url}{}", LoadView::PATH))
        .header(header::CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let long_query = "os=LINUX&".repeat(3_000);
    let r = http
        .post(format!("{url}{}", LoadView::PATH))
        .json(&serde_json::json!({ "query": long_query }))
        .send()
        .await
        .unwrap();
    // The grid and the export: one policy, the same status and the same words.
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let grid: wxpay_devices::error::AppError =
        serde_json::from_str(&r.text().await.unwrap()).expect("our error, as JSON");
    for path in ["/export.csv", "/export.xlsx"] {
        let r = http
            .get(format!("{url}{path}?{long_query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.text().await.unwrap().trim(), grid.to_string(), "{path}");
    }
    for (path, body) in [
        (LoadView::PATH, "{not json"),
        (LoadView::PATH, "{\"query\": 5}"),
        ("/login", "password=%ZZ&next="),
    ] {
        let r = http
            .post(format!("{url}{path}"))
            .header(
                header::CONTENT_TYPE,
                if path == "/login" {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                },
            )
            .body(body)
            .send()
            .await
            .unwrap();
        // Server functions: 400. The login form with no password configured just redirects.
        let ok = if path == "/login" {
            r.status().as_u16() < 500
        } else {
            r.status() == StatusCode::BAD_REQUEST
        };
        assert!(ok, "{path} {body}: {}", r.status());
    }
    for path in [
        "/export.csv?per_page=%FF%FE&page=-1&sort=%00",
        "/?group=%F0%9F%98%80&page=99999999999",
        "/nope",
    ] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
}

/// Sends `path` exactly as given (no client normalises it) and returns the status and body.
async fn raw_get(url: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("answered in time")
        .unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, text)
}

#[tokio::test]
async fn paths_that_climb_out_of_the_site_are_refused_as_sent() {
    // A site root of our own, with a secret file right beside it.
    let dir = std::env::temp_dir().join(format!("wxpay-site-{}", std::process::id()));
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/app.css"), "body{}").unwrap();
    std::fs::write(dir.join("secret.txt"), "TOP-SECRET").unwrap();
    let (_sim, sync) = setup(
        SimulatorOptions {
            devices: 10,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let mut served = Served::new(sync);
    served.site.site_root = site.display().to_string().into();
    let (url, _) = served.serve().await;
    // Sanity: raw requests reach the site's files.
    let (status, body) = raw_get(&url, "/pkg/app.css").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("body{}"), "{body}");
    for path in [
        "/pkg/../../secret.txt",
        "/pkg/../../../../../../etc/passwd",
        "/../secret.txt",
        "/pkg/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e/secret.txt",
        "/pkg/..%2f..%2fsecret.txt",
        "/pkg/..%5c..%5csecret.txt",
        "/pkg/%2e%2e%2f%2e%2e%2fsecret.txt",
        "//secret.txt",
        "/pkg//../../secret.txt",
    ] {
        let (status, body) = raw_get(&url, path).await;
        assert!(status == 400 || status == 404, "{path}: {status}\n{body}");
        assert!(
            !body.contains("TOP-SECRET"),
            "{path} leaked the file beside the site"
        );
        assert!(!body.contains("root:"), "{path} leaked /etc/passwd");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn responses_are_compressed_for_browsers_that_accept_it() {
    let url = dashboard(false).await;
    let http = client(); // reqwest here has no decompression: it sees what is sent.
    for (accept, expected) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let r = http
            .get(format!("{url}/export.csv"))
            .header(header::ACCEPT_ENCODING, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_string())
                .as_deref(),
            expected,
            "Accept-Encoding: {accept}"
        );
        let bytes = r.bytes().await.unwrap();
        let is_plain_csv = bytes.starts_with("\u{feff}device_sn,".as_bytes());
        assert_eq!(is_plain_csv, expected.is_none(), "{accept}");
    }
    let page = http
        .get(format!("{url}/"))
        .header(header::ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()[header::CONTENT_ENCODING], "br");
}

#[tokio::test]
async fn bodies_are_limited_to_64_kib_exactly() {
    let url = dashboard(false).await;
    let http = client();
    assert_eq!(wxpay_devices::server::MAX_BODY_BYTES, 64 * 1024);
    // A login form of exactly the limit is read (no password is set: it redirects); one byte
    // more is refused unread.
    let form = |len: usize| {
        let prefix = "next=%2F&password=";
        format!("{prefix}{}", "x".repeat(len - prefix.len()))
    };
    for (len, expected) in [
        (64 * 1024, StatusCode::SEE_OTHER),
        (64 * 1024 + 1, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let body = form(len);
        assert_eq!(body.len(), len);
        let r = http
            .post(format!("{url}/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{len} bytes");
    }
}

#[tokio::test]
async fn a_request_that_takes_too_long_gets_408() {
    use wxpay_devices::server::Limits;
    assert_eq!(Limits::default().request_timeout, Duration::from_secs(120));
    // A first sync that takes about 2 s, and a 500 ms limit: the first export, which waits for
    // the sync (the grid does not: it shows the devices so far), is cut off; once the data is
    // there, requests are quick and pass.
    let (_sim, sync) = setup(
        SimulatorOptions {
            devices: 300,
            latency: Duration::from_secs(2),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let served = Served {
        limits: Limits {
            request_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..Served::new(sync.clone())
    };
    let (url, _) = served.serve().await;
    let http = client();
    // 408, not the export: the request gave up at its limit instead of waiting for the sync
    // (whose first answer takes 2 s).
    let r = http.get(format!("{url}/export.csv")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
    // The sync goes on without the request that started it; then views are answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sync.last_good().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sync never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(load_view(&http, &url, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_says_when_a_snapshot_is_available() {
    let url = dashboard(false).await;
    let http = client();
    assert_eq!(
        http.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok\n"
    );
    // No sync yet: not ready, and it says why.
    let before = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(before.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason: serde_json::Value = before.json().await.unwrap();
    assert_eq!(reason["ready"], false);
    assert!(
        reason["reason"].as_str().unwrap().contains("first sync"),
        "{reason}"
    );
    // The first view syncs; then the dashboard is ready.
    assert_eq!(load_view(&http, &url, None).await.status(), StatusCode::OK);
    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["devices"], 300);
}

#[tokio::test]
async fn metrics_count_a_429_injected_by_the_simulator() {
    // A simulator that allows 5 requests a second: the client's bursts of up to 20 get 429s,
    // which it backs off from and retries.
    let (sim, url) = dashboard_with(
        SimulatorOptions {
            devices: 1_500,
            per_second_limit: 5,
            ..Default::default()
        },
        false,
    )
    .await;
    let http = client();
    assert_eq!(
        load_view(&http, &url, None).await.status(),
        StatusCode::OK,
        "completes despite the 429s"
    );
    let refused = sim.log().iter().filter(|r| r.status == 429).count();
    assert!(refused > 0, "the simulator refused some requests");
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("wxpay_upstream_requests_total{outcome=\"FREQUENCY_LIMITED\"} ")
        })
        .expect("a FREQUENCY_LIMITED line")
        .parse()
        .unwrap();
    assert!(
        counted >= refused as u64,
        "{counted} counted, {refused} refused"
    );
    assert!(text.contains("wxpay_sync_retries_total "), "{text}");
}

/// A dashboard over a 300-device simulator, with a password when asked, and a guard with these
/// extra host names and trusted proxies. Returns the simulator, the base URL and the auth.
async fn guarded_dashboard(
    password: bool,
    allowed_hosts: &[&str],
    trusted_proxies: &[&str],
) -> (
    wxpay_devices::simulator::service::Simulator,
    String,
    Arc<Auth>,
) {
    let (sim, sync) = setup(
        SimulatorOptions {
            devices: 300,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let served = Served {
        hosts: allowed_hosts.iter().map(|s| s.to_string()).collect(),
        proxies: trusted_proxies.iter().map(|s| s.to_string()).collect(),
        ..Served::new(sync).password(password)
    };
    let (url, auth) = served.serve().await;
    (sim, url, auth)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn foreign_host_names_are_refused_before_any_route() {
    let (sim, url, _) = guarded_dashboard(false, &["dash.example"], &[]).await;
    let port = port_of(&url);
    let http = client();
    let get = |path: &str, host: String| {
        http.get(format!("{url}{path}"))
            .header(header::HOST, host)
            .send()
    };
    // A web page at evil.example, whose name resolves to 127.0.0.1, in a browser on this
    // machine: every route is closed to it, and nothing is started.
    for path in [
        "/",
        "/export.csv",
        "/export.xlsx",
        "/metrics",
        "/readyz",
        "/healthz",
        "/login",
        "/favicon.svg",
    ] {
        for host in [
            format!("evil.example:{port}"),
            format!("127.0.0.1.evil.example:{port}"),
            format!("localhost:{}", port.wrapping_add(1)),
            String::new(),
        ] {
            let r = get(path, host.clone()).await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{path} with Host {host:?}"
            );
            let text = r.text().await.unwrap();
            assert!(text.contains("DASHBOARD_ALLOWED_HOSTS"), "{text}");
            assert_eq!(text.trim().lines().count(), 1, "{text}");
        }
    }
    let r = http
        .post(format!("{url}{}", LoadView::PATH))
        .header(header::HOST, format!("evil.example:{port}"))
        .json(&serde_json::json!({ "query": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "server functions too");
    assert!(
        sim.log().is_empty(),
        "no sync was started for a foreign page"
    );
    // Our own names, and the allowed one (any port), are served.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "dash.example".to_string(),
        "Dash.Example:8443".to_string(),
    ] {
        let r = get("/healthz", host.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "Host {host:?}");
    }
}

/// `Host` without a port means the scheme's default port, not any port: an `Origin` on the
/// same name with another port or scheme is another site (both were accepted before).
#[tokio::test]
async fn an_origin_on_the_same_name_with_another_port_or_scheme_is_refused() {
    let (_sim, url, _) = guarded_dashboard(true, &["dash.example"], &[]).await;
    let http = client();
    let login = |origin: &'static str| {
        http.post(format!("{url}/login"))
            .header(header::HOST, "dash.example")
            .header("origin", origin)
            .form(&[("password", "guess")])
            .send()
    };
    for foreign in [
        "http://dash.example:8080",
        "https://dash.example",
        "https://dash.example:80",
    ] {
        let r = login(foreign).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{foreign}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("DASHBOARD_COOKIE_SECURE"),
            "says what to set: {text}"
        );
    }
    // The site itself (plain HTTP, port 80) may: the wrong password is checked.
    for own in ["http://dash.example", "http://dash.example:80"] {
        assert_eq!(
            login(own).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{own}"
        );
    }
}

#[tokio::test]
async fn cross_site_writes_are_refused_and_start_nothing() {
    use wxpay_devices::api::RefreshNow;
    let (sim, url, _) = guarded_dashboard(false, &[], &[]).await;
    let http = client();
    assert_eq!(load_view(&http, &url, None).await.status(), StatusCode::OK);
    let synced = sim.log().len();
    assert_eq!(synced, 3);
    let refresh = |headers: &[(&str, &str)]| {
        let mut r = http
            .post(format!("{url}{}", RefreshNow::PATH))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://localhost:1")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", url.as_str()), ("sec-fetch-site", "cross-site")],
    ] {
        let r = refresh(&headers).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    // A cross-site login attempt is refused the same way (no password check is spent).
    let r = http
        .post(format!("{url}/login"))
        .header("origin", "http://evil.example")
        .form(&[("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.log().len(), synced, "no sync started, no quota spent");
    // The dashboard's own page may.
    let r = refresh(&[("origin", url.as_str()), ("sec-fetch-site", "same-origin")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sim.log().len() < synced + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn parallel_guesses_get_five_tries_in_all() {
    let (_sim, url, auth) = guarded_dashboard(true, &[], &[]).await;
    let http = client();
    let attempts = futures::future::join_all((0..20).map(|_| {
        http.post(format!("{url}/login"))
            .form(&[("password", "guess")])
            .send()
    }))
    .await;
    let statuses: Vec<u16> = attempts
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    // One client holds one check slot at a time: the guesses that arrive while one is checked
    // are turned away at once (429), uncounted; the others are counted and checked.
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!((1..=5).contains(&checked), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20 - checked,
        "{statuses:?}"
    );
    assert_eq!(
        auth.peak_concurrent_checks(),
        1,
        "one client, one check at a time"
    );
    // Guessing on, one at a time: five checked guesses in all, then refused before any check.
    let mut failed = checked;
    loop {
        let r = http
            .post(format!("{url}/login"))
            .form(&[("password", "guess")])
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            401 => failed += 1,
            429 => break,
            other => panic!("{other}"),
        }
        assert!(failed <= 5, "more than five guesses checked");
    }
    assert_eq!(failed, 5);
}

/// IPv6 clients are counted per /64: five guesses from five addresses of one /64 use up its
/// tries (each address had five of its own before); the next /64 has its own.
#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let (_sim, url, _) = guarded_dashboard(true, &[], &["127.0.0.1"]).await;
    let http = client();
    let guess = |client_ip: String| {
        http.post(format!("{url}/login"))
            .header("x-forwarded-for", client_ip)
            .form(&[("password", "guess")])
            .send()
    };
    for i in 1..=5 {
        let r = guess(format!("2001:db8:7:7::{i:x}")).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = guess("2001:db8:7:7:abcd:ef01:2345:6789".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "another address of the same /64");
    let r = guess("2001:db8:7:8::1".into()).await.unwrap();
    assert_eq!(r.status(), 401, "the next /64 is another client");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit_and_checks_queue() {
    let (_sim, url, auth) = guarded_dashboard(true, &[], &["127.0.0.1"]).await;
    let http = client();
    let guess = |client_ip: String| {
        http.post(format!("{url}/login"))
            .header("x-forwarded-for", client_ip)
            .form(&[("password", "guess")])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(guess("203.0.113.1".into()).await.unwrap().status(), 401);
    }
    assert_eq!(guess("203.0.113.1".into()).await.unwrap().status(), 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(guess("203.0.113.2".into()).await.unwrap().status(), 401);
    // Twenty clients at once: every check runs, a few at a time.
    let all = futures::future::join_all((10..30).map(|i| guess(format!("198.51.100.{i}")))).await;
    assert!(all.iter().all(|r| r.as_ref().unwrap().status() == 401));
    let peak = auth.peak_concurrent_checks();
    assert!(
        (1..=wxpay_devices::auth::MAX_CONCURRENT_CHECKS).contains(&peak),
        "{peak} Argon2 checks at once"
    );
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (_sim, url, _) = guarded_dashboard(true, &[], &[]).await;
    let http = client();
    for i in 0..5 {
        let r = http
            .post(format!("{url}/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .form(&[("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http
        .post(format!("{url}/login"))
        .header("x-forwarded-for", "203.0.113.99")
        .form(&[("password", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "a forged header does not buy more tries");
}

#[tokio::test]
async fn login_redirects_only_to_paths_of_this_dashboard() {
    let (_sim, url, _) = guarded_dashboard(true, &[], &[]).await;
    let http = client();
    for (next, expected) in [
        ("/?os=LINUX", "/?os=LINUX"),
        ("/\t/evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
    ] {
        let r = http
            .post(format!("{url}/login"))
            .form(&[("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], expected, "{next:?}");
    }
}

#[tokio::test]
async fn readiness_details_need_a_session_when_a_password_is_set() {
    let (_sim, url, _) = guarded_dashboard(true, &[], &[]).await;
    let http = client();
    let anonymous: serde_json::Value = http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous, serde_json::json!({ "ready": false }));
    let ok = http
        .post(format!("{url}/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = ok.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        load_view(&http, &url, Some(&cookie)).await.status(),
        StatusCode::OK
    );
    let anonymous: serde_json::Value = http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        anonymous,
        serde_json::json!({ "ready": true }),
        "no device count"
    );
    let signed_in: serde_json::Value = http
        .get(format!("{url}/readyz"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(signed_in["devices"], 300);
    assert_eq!(signed_in["complete"], true);
}

#[tokio::test]
async fn an_incomplete_snapshot_is_said_so_in_the_page_readyz_and_metrics() {
    use wxpay_devices::sync::fetch::FetchConfig;
    use wxpay_devices::sync::service::SyncSettings;
    let settings = SyncSettings {
        fetch: FetchConfig {
            repair_passes: 1,
            ..fast_retries().fetch
        },
        ..fast_retries()
    };
    let (sim, sync) = setup(
        SimulatorOptions {
            devices: 1_000,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    // Two devices appear after every 4th page answered, all through the sync.
    for n in (4..100).step_by(4) {
        sim.change_list_after(n, move |list| {
            for k in 0..2 {
                list.insert(
                    0,
                    wxpay_devices::model::Device {
                        device_sn: Some(format!("LATE-{n}-{k}")),
                        ..Default::default()
                    },
                );
            }
        });
    }
    let (url, _) = Served::new(sync.clone()).serve().await;
    let http = client();
    sync.snapshot().await.unwrap();
    let html = http
        .get(format!("{url}/"))
        .header(header::ACCEPT_LANGUAGE, "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let snap = sync.last_good().unwrap();
    assert!(!snap.complete);
    let expected = snap.expected.unwrap();
    assert!(
        html.contains("data-testid=\"incomplete\""),
        "the status banner says so"
    );
    assert!(html.contains("kept changing during the sync"));
    let ready: serde_json::Value = http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["complete"], false);
    assert_eq!(ready["expected_devices"], expected);
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("wxpay_snapshot_complete 0\n"), "{metrics}");
    assert!(metrics.contains(&format!("wxpay_snapshot_expected_devices {expected}\n")));
}

/// The visible text of a page: no scripts (hydration data), styles, tags or the grid's rows and
/// chart (device data, which is the merchant's, in whatever language).
fn visible_text(html: &str) -> String {
    let mut s = html.to_string();
    for (open, close) in [
        ("<script", "</script>"),
        ("<style", "</style>"),
        ("<tbody", "</tbody>"),
        ("<svg", "</svg>"),
        ("<ul class=\"mt-1 space-y", "</ul>"),
    ] {
        while let Some(i) = s.find(open) {
            let Some(j) = s[i..].find(close) else { break };
            s.replace_range(i..i + j + close.len(), " ");
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&#x27;", "'").replace("&amp;", "&")
}

/// Runs of two or more English words (what a sentence in English looks like).
fn english_phrases(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_word = |w: &str| {
        let w = w.trim_matches(|c: char| ",.:;()!?\"'".contains(c));
        w.len() >= 2 && w.chars().all(|c| c.is_ascii_alphabetic())
    };
    let mut found = Vec::new();
    let mut run = Vec::new();
    for w in words {
        if is_word(w) {
            run.push(w);
        } else {
            if run.len() >= 2 {
                found.push(run.join(" "));
            }
            run.clear();
        }
    }
    if run.len() >= 2 {
        found.push(run.join(" "));
    }
    found
}

#[tokio::test]
async fn the_chinese_pages_say_nothing_in_english() {
    let zh = |r: reqwest::RequestBuilder| r.header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9");
    let http = client();
    // The sign-in page, and its answers to a wrong password.
    let (_sim, url, _) = guarded_dashboard(true, &[], &[]).await;
    let mut pages = vec![(
        "login",
        zh(http.get(format!("{url}/login")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )];
    pages.push((
        "wrong password",
        zh(http
            .post(format!("{url}/login"))
            .form(&[("password", "nope")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap(),
    ));
    // The grid with its status bar; a page that does not exist.
    let open = dashboard(false).await;
    pages.push((
        "status",
        zh(http.get(format!("{open}/?q=x&per_page=7")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ));
    let missing = zh(http.get(format!("{open}/no-such-page")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    pages.push(("not found", missing.text().await.unwrap()));
    // A sync that failed: the error screen.
    let (_sim2, sync) = common::always_failing(1).await;
    let (failing, _) = Served::new(sync).serve().await;
    pages.push((
        "error",
        zh(http.get(format!("{failing}/")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ));
    for (name, html) in &pages {
        let text = visible_text(html);
        assert!(
            text.contains(|c: char| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{name}: {text}"
        );
        let english = english_phrases(&text);
        assert!(
            english.is_empty(),
            "{name} has English: {english:?}\n{text}"
        );
    }
    // The same pages in English say it in English (the check above can see English).
    let en = http
        .get(format!("{url}/login"))
        .header(header::ACCEPT_LANGUAGE, "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!english_phrases(&visible_text(&en)).is_empty());
}

#[tokio::test]
async fn on_the_english_page_codes_read_in_english_with_the_api_name_beside() {
    let url = dashboard(false).await;
    let http = client();
    let page = |lang: &'static str| {
        http.get(format!("{url}/?category=2&group=category"))
            .header(header::ACCEPT_LANGUAGE, lang)
            .send()
    };
    let en = page("en").await.unwrap().text().await.unwrap();
    // The grid: the English label shown, the API's own name and the code on hover.
    assert!(
        en.contains(" · 2\">Desktop checkout</span>"),
        "grid cell in English"
    );
    assert!(!en.contains(" · 2\">桌面收银设备</span>"));
    // The filter panel and the group headers: the English label, the API's name beside it.
    assert!(
        en.contains("Desktop checkout (桌面收银设备)"),
        "facet in English"
    );
    let zh = page("zh-CN").await.unwrap().text().await.unwrap();
    assert!(
        zh.contains("title=\"Desktop checkout · 2\">"),
        "the English label on hover"
    );
    assert!(!zh.contains("Desktop checkout (桌面收银设备)"));
}

/// A first sync does not hold the page: the grid answers with the devices fetched so far,
/// marked partial, the exports offered only when it is complete; then the full view.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_page_does_not_wait_for_the_first_sync() {
    // 4,000 devices, 300 ms a page: the sync takes about 2 s at 20 requests a second.
    let (sim, sync) = setup(
        SimulatorOptions {
            devices: 4_000,
            latency: Duration::from_millis(300),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let (url, _) = Served::new(sync.clone()).serve().await;
    let http = client();
    let page = |lang: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.get(format!("{url}/"))
                .header(header::ACCEPT_LANGUAGE, lang)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let cold = page("en").await;
    assert!(sync.last_good().is_none(), "answered before the sync ended");
    assert!(cold.contains("data-testid=\"partial\""), "{cold}");
    assert!(cold.contains("First sync in progress"), "{cold}");
    assert!(cold.contains("data-testid=\"export-later\""));
    assert!(!cold.contains("data-testid=\"export-menu\""));
    // The server function, once pages have come: some devices, not all, said so.
    let mut fetched = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sync.last_good().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first sync never ended"
        );
        let v: DeviceView = load_view(&http, &url, None).await.json().await.unwrap();
        if let Some(p) = v.partial {
            assert_eq!(p.fetched, v.unfiltered);
            assert!(p.fetched < 4_000);
            if p.fetched > 0 {
                assert_eq!(p.of, Some(4_000));
                fetched = p.fetched;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fetched > 0, "a partial view with devices was seen");
    let zh = page("zh-CN").await;
    assert!(!zh.contains("data-testid=\"partial\""), "complete now");
    let v: DeviceView = load_view(&http, &url, None).await.json().await.unwrap();
    assert_eq!(v.partial, None);
    assert_eq!(v.unfiltered, 4_000);
    assert_eq!(sim.log().iter().filter(|r| r.status == 200).count(), 40);
}

/// Views are kept for the snapshot they were computed over: asked again, the same view (with
/// the status of now); after a new snapshot, the new list.
#[tokio::test(flavor = "multi_thread")]
async fn views_kept_are_of_the_current_snapshot() {
    let (sim, sync) = setup(
        SimulatorOptions {
            devices: 300,
            ..Default::default()
        },
        wxpay_devices::sync::service::SyncSettings {
            manual_min_interval: Duration::ZERO,
            ..fast_retries()
        },
        None,
    )
    .await;
    let state = AppState::new(sync.clone());
    sync.snapshot().await.unwrap();
    let first = state.view("os=LINUX&page=2").await.unwrap();
    let again = state.view("os=LINUX&page=2").await.unwrap();
    assert_eq!(first.rows, again.rows);
    assert_eq!(first.total, again.total);
    assert_eq!(first.unfiltered, 300);
    let mut list = sim.devices().to_vec();
    list.truncate(120);
    sim.set_devices(list);
    sync.refresh_now().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sync.last_good().is_none_or(|s| s.devices.len() != 120) {
        assert!(std::time::Instant::now() < deadline, "no new snapshot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = state.view("os=LINUX&page=2").await.unwrap();
    assert_eq!(
        after.unfiltered, 120,
        "the new snapshot's view, not the one kept"
    );
    assert_eq!(after.status.devices, 120);
}
