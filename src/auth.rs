//! Access control: a password (its Argon2 hash configured in DASHBOARD_PASSWORD_HASH), a signed
//! session cookie (HMAC-SHA256, HttpOnly, SameSite=Strict, with an expiry), login attempts
//! limited per client, logout. With no hash configured (allowed only on a loopback address),
//! the dashboard is open to whoever can reach the port.

use crate::i18n::Lang;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub const COOKIE: &str = "wxd_session";
/// Failed logins allowed per client per window.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password checks running at once, at most (each Argon2 check takes 19 MiB and a core for
/// a moment; the login form is open to anyone).
pub const MAX_CONCURRENT_CHECKS: usize = 2;

/// Whether the request carries a valid session (a request extension set by
/// [`require_session`]; with no password configured, everyone is signed in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedIn(pub bool);

/// Paths served without a session: the login page, health checks, static assets.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/logout" | "/healthz" | "/readyz" | "/favicon.svg"
    ) || path.starts_with("/pkg/")
}

/// Hashes a password for DASHBOARD_PASSWORD_HASH (Argon2id, random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < 8 {
        return Err("use a password of at least 8 characters".into());
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks that a configured hash is a usable PHC string.
pub fn check_hash(hash: &str) -> Result<(), String> {
    PasswordHash::new(hash.trim())
        .map(|_| ())
        .map_err(|e| format!("DASHBOARD_PASSWORD_HASH: not an Argon2 hash ({e}); make one with `wxpay-devices hash-password`"))
}

/// The key sessions are signed with, and the one before it (replaced by the one kept in Redis:
/// sessions signed with it stay valid until they expire).
#[derive(Clone, Copy)]
struct SessionKeys {
    current: [u8; 32],
    previous: Option<[u8; 32]>,
}

pub struct Auth {
    /// The Argon2 PHC string; `None`: no access control.
    hash: Option<String>,
    keys: std::sync::RwLock<SessionKeys>,
    /// The key came from `DASHBOARD_SESSION_KEY` (never replaced by one kept in Redis).
    configured_key: bool,
    pub session_ttl: Duration,
    pub cookie_secure: bool,
    failures: moka::sync::Cache<IpAddr, Arc<std::sync::Mutex<Vec<std::time::Instant>>>>,
    /// Sessions signed out before they expired (by their signature), kept until they would
    /// have expired anyway.
    revoked: moka::sync::Cache<String, ()>,
    /// With several replicas: sign-outs and sign-in attempts shared through Redis.
    shared: Option<crate::replicas::sessions::RedisSessions>,
    checks: tokio::sync::Semaphore,
    /// Clients (by [`client_key`]) with a password check under way: one each at a time, so
    /// one client cannot hold every check slot.
    checking: std::sync::Mutex<std::collections::HashSet<IpAddr>>,
    checks_running: std::sync::atomic::AtomicUsize,
    checks_peak: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Sessions are signed with a key made at start (a restart signs everyone out), unless
    /// [`Auth::with_key`] gives one.
    pub fn new(hash: Option<String>, session_ttl: Duration, cookie_secure: bool) -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Auth {
            hash: hash.map(|h| h.trim().to_string()).filter(|h| !h.is_empty()),
            keys: std::sync::RwLock::new(SessionKeys {
                current: key,
                previous: None,
            }),
            configured_key: false,
            session_ttl,
            cookie_secure,
            failures: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(FAILURE_WINDOW)
                .build(),
            revoked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(session_ttl)
                .build(),
            shared: None,
            checks: tokio::sync::Semaphore::new(MAX_CONCURRENT_CHECKS),
            checking: Default::default(),
            checks_running: Default::default(),
            checks_peak: Default::default(),
        }
    }

    /// Signs sessions with a key derived from `secret` (`DASHBOARD_SESSION_KEY`, at least 32
    /// bytes) instead of one made at start: sessions survive a restart and every replica with
    /// the same secret accepts them.
    pub fn with_key(mut self, secret: &str) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!(
                "DASHBOARD_SESSION_KEY: {} bytes; use at least 32 (e.g. `openssl rand -hex 32`)",
                secret.len()
            ));
        }
        self.keys = std::sync::RwLock::new(SessionKeys {
            current: derive_key(secret),
            previous: None,
        });
        self.configured_key = true;
        Ok(self)
    }

    /// Whether `DASHBOARD_SESSION_KEY` gave the key.
    pub fn has_configured_key(&self) -> bool {
        self.configured_key
    }

    /// Signs new sessions with the key derived from `secret` (the one the replicas keep in
    /// Redis), from now on; sessions signed with the key before stay valid. Ignored when
    /// `DASHBOARD_SESSION_KEY` gave the key.
    pub fn adopt_key(&self, secret: &str) {
        if self.configured_key {
            return;
        }
        let key = derive_key(secret);
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.current != key {
            keys.previous = Some(keys.current);
            keys.current = key;
        }
    }

    fn keys(&self) -> SessionKeys {
        *self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Shares sign-outs and sign-in attempts with the other replicas through Redis.
    pub fn with_shared(mut self, sessions: crate::replicas::sessions::RedisSessions) -> Self {
        self.shared = Some(sessions);
        self
    }

    pub fn enabled(&self) -> bool {
        self.hash.is_some()
    }

    fn sign(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.keys().current).expect("any key length");
        mac.update(payload.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A new session token valid until `now + ttl`.
    pub fn new_session(&self, now: i64) -> String {
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let payload = format!(
            "v1.{}.{}",
            now + self.session_ttl.as_secs() as i64,
            URL_SAFE_NO_PAD.encode(nonce)
        );
        format!("{payload}.{}", self.sign(&payload))
    }

    /// The expiry of `token`, if we signed it.
    fn signed_expiry(&self, token: &str) -> Option<i64> {
        let (payload, sig) = token.rsplit_once('.')?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(expiry), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expiry = expiry.parse::<i64>().ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let keys = self.keys();
        let signed_with = |key: &[u8; 32]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(payload.as_bytes());
            mac.verify_slice(&sig).is_ok()
        };
        (signed_with(&keys.current) || keys.previous.as_ref().is_some_and(signed_with))
            .then_some(expiry)
    }

    /// Whether `token` was signed by us, has not expired and was not signed out here.
    pub fn verify_session(&self, token: &str, now: i64) -> bool {
        self.signed_expiry(token).is_some_and(|e| now < e) && !self.revoked.contains_key(token)
    }

    /// [`Auth::verify_session`], and with several replicas, not signed out on another one
    /// either. If Redis cannot be asked, this replica's own sign-outs are what it knows.
    pub async fn session_valid(&self, token: &str, now: i64) -> bool {
        if !self.verify_session(token, now) {
            return false;
        }
        let Some(shared) = &self.shared else {
            return true;
        };
        match shared.is_revoked(signature(token)).await {
            Ok(revoked) => !revoked,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check sign-outs of other replicas; trusting the signed session");
                true
            }
        }
    }

    /// Signs a session out: its token is refused from now on, wherever it was copied to, on
    /// every replica.
    pub async fn revoke(&self, token: &str, now: i64) {
        let Some(expiry) = self.signed_expiry(token).filter(|e| now < *e) else {
            return;
        };
        self.revoked.insert(token.to_string(), ());
        if let Some(shared) = &self.shared {
            let remaining = Duration::from_secs((expiry - now) as u64);
            if let Err(e) = shared.revoke(signature(token), remaining).await {
                tracing::warn!(error = %e, "the sign-out holds on this replica only");
            }
        }
    }

    async fn session_from(&self, headers: &HeaderMap, now: i64) -> bool {
        match cookie(headers, COOKIE) {
            Some(t) => self.session_valid(&t, now).await,
            None => false,
        }
    }

    fn cookie_header(&self, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.cookie_secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie is ASCII")
    }

    /// Marks `client` (a [`client_key`]) as having a password check under way; `None` if it
    /// has one already. The mark goes when the returned guard is dropped.
    fn start_check(&self, client: IpAddr) -> Option<CheckUnderWay<'_>> {
        let fresh = self
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(client);
        // Lazily (`then`, not `then_some`): a guard made and dropped here would take the
        // lock again while it is held.
        fresh.then(|| CheckUnderWay { auth: self, client })
    }

    /// Counts an attempt from `client` (a [`client_key`]) before its password is checked, so
    /// parallel guesses cannot get past the limit; `None` (nothing counted) when the limit is
    /// reached. With several replicas the count is shared (in Redis), or this replica's if
    /// Redis cannot be asked.
    async fn begin_attempt(&self, ip: IpAddr) -> Option<Attempt> {
        if let Some(shared) = &self.shared {
            match shared
                .begin_attempt(&ip.to_string(), MAX_FAILURES, FAILURE_WINDOW)
                .await
            {
                Ok(id) => return id.map(Attempt::Shared),
                Err(e) => {
                    tracing::warn!(error = %e, "counting sign-in attempts on this replica only")
                }
            }
        }
        self.begin_local_attempt(ip).then_some(Attempt::Local)
    }

    fn begin_local_attempt(&self, ip: IpAddr) -> bool {
        let entry = self.failures.get_with(ip, Default::default);
        let mut v = entry.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|t| t.elapsed() < FAILURE_WINDOW);
        if v.len() >= MAX_FAILURES {
            return false;
        }
        v.push(std::time::Instant::now());
        true
    }

    /// The password was right: that attempt does not count as a failure.
    async fn attempt_succeeded(&self, ip: IpAddr, attempt: Attempt) {
        match (attempt, &self.shared) {
            (Attempt::Shared(id), Some(shared)) => {
                if let Err(e) = shared.succeeded(&ip.to_string(), &id).await {
                    tracing::warn!(error = %e, "a right password still counts as an attempt");
                }
            }
            _ => self.local_attempt_succeeded(ip),
        }
    }

    fn local_attempt_succeeded(&self, ip: IpAddr) {
        if let Some(entry) = self.failures.get(&ip) {
            entry.lock().unwrap_or_else(|p| p.into_inner()).pop();
        }
    }

    /// The most password checks that ran at once so far.
    pub fn peak_concurrent_checks(&self) -> usize {
        self.checks_peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Checks a password, waiting for one of the few check slots.
    async fn check_password(self: &Arc<Self>, password: String) -> Option<bool> {
        use std::sync::atomic::Ordering::SeqCst;
        let _slot = tokio::time::timeout(Duration::from_secs(30), self.checks.acquire())
            .await
            .ok()?
            .ok()?;
        let now = self.checks_running.fetch_add(1, SeqCst) + 1;
        self.checks_peak.fetch_max(now, SeqCst);
        let me = self.clone();
        let ok = tokio::task::spawn_blocking(move || me.password_ok(&password))
            .await
            .unwrap_or(false);
        self.checks_running.fetch_sub(1, SeqCst);
        Some(ok)
    }

    fn password_ok(&self, password: &str) -> bool {
        let Some(hash) = &self.hash else { return false };
        PasswordHash::new(hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

/// The signing key for a secret (`DASHBOARD_SESSION_KEY`, or the one kept in Redis).
fn derive_key(secret: &str) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(secret.as_bytes()).into()
}

/// A new random secret for [`Auth::adopt_key`] (64 hex digits).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who a sign-in attempt is counted against: an IPv4 address, or an IPv6 address's /64 (one
/// household or server usually holds a whole /64, and can use any address in it).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
        v4 => v4,
    }
}

/// A password check under way for one client (see [`Auth::start_check`]).
struct CheckUnderWay<'a> {
    auth: &'a Auth,
    client: IpAddr,
}

impl Drop for CheckUnderWay<'_> {
    fn drop(&mut self) {
        self.auth
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.client);
    }
}

/// A sign-in attempt counted: in this replica, or in Redis under an id.
enum Attempt {
    Local,
    Shared(String),
}

/// The signature part of a session token (what a sign-out is recorded under).
fn signature(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(_, sig)| sig)
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    crate::cookies::in_headers(headers, name)
}

fn now() -> i64 {
    crate::clock::unix_now()
}

/// Refuses requests without a valid session: pages redirect to the login page, everything else
/// (server functions, exports, metrics) gets 401.
pub async fn require_session(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let signed_in = !auth.enabled() || auth.session_from(req.headers(), now()).await;
    let path = req.uri().path();
    if signed_in || is_public(path) {
        let mut req = req;
        req.extensions_mut().insert(SignedIn(signed_in));
        return next.run(req).await;
    }
    let wants_page = req.method() == Method::GET
        && !path.starts_with("/api/")
        && !path.starts_with("/export")
        && path != "/metrics"
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let next = form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>();
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    crate::error::AppError::Unauthorized.into_response()
}

/// Only paths of this dashboard are followed after login: one leading `/`, then no second `/`,
/// and no scheme, backslash, whitespace or control character anywhere (browsers drop tabs and
/// line breaks from URLs, so `/\t/evil.example` would become `//evil.example`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n[1..].starts_with('/')
                && !n.contains("://")
                && !n
                    .chars()
                    .any(|c| c == '\\' || c.is_control() || c.is_whitespace()) =>
        {
            n.to_string()
        }
        _ => "/".into(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The sign-in page, in the visitor's language.
fn login_page(lang: Lang, next: &str, error: Option<&str>) -> Html<String> {
    let t = lang.texts();
    let error = error
        .map(|e| format!(r#"<p role="alert" class="mt-3 rounded border border-red-300 dark:border-red-800 bg-red-50 dark:bg-red-950 px-3 py-2 text-sm text-red-900 dark:text-red-200">{}</p>"#, escape(e)))
        .unwrap_or_default();
    Html(format!(
        r#"<!DOCTYPE html><html lang="{code}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{page_title}</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/pkg/wxpay-devices.css"></head>
<body class="bg-slate-50 dark:bg-slate-950 text-slate-900 dark:text-slate-100 antialiased"><main class="mx-auto mt-24 max-w-sm rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-6 shadow-sm">
<h1 class="text-lg font-semibold">{title} <span class="font-normal text-slate-500 dark:text-slate-400">{subtitle}</span></h1>
<form method="post" action="/login" class="mt-4 flex flex-col gap-3">
<input type="hidden" name="next" value="{next}">
<label class="flex flex-col text-sm">{password}<input type="password" name="password" autocomplete="current-password" required autofocus class="mt-1 rounded border border-slate-300 dark:border-slate-600 px-3 py-2"></label>
<button type="submit" class="rounded bg-emerald-700 px-3 py-2 font-medium text-white hover:bg-emerald-800">{sign_in}</button></form>{error}</main></body></html>"#,
        code = lang.code(),
        page_title = t.sign_in_title,
        title = t.title,
        subtitle = t.subtitle,
        password = t.password,
        sign_in = t.sign_in,
        next = escape(next)
    ))
}

pub async fn login_form(
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Html<String> {
    login_page(
        crate::i18n::from_headers(&headers),
        &safe_next(q.get("next").map(String::as_str)),
        None,
    )
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn login(
    State(auth): State<Arc<Auth>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    client: Option<axum::Extension<crate::guard::ClientIp>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let lang = crate::i18n::from_headers(&headers);
    let t = lang.texts();
    let next = safe_next(form.next.as_deref());
    if !auth.enabled() {
        return Redirect::to(&next).into_response();
    }
    // Behind a trusted proxy, the address it forwarded for; else the peer's. Counted per
    // address, or per /64 for IPv6.
    let ip = client_key(client.map(|c| c.0 .0).unwrap_or(peer.ip()));
    // One check at a time per client, before anything is counted: a client cannot hold every
    // check slot (and keep the others waiting), and a double submit costs no attempt.
    let Some(_under_way) = auth.start_check(ip) else {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            login_page(lang, &next, Some(t.check_under_way)),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return r;
    };
    let Some(attempt) = auth.begin_attempt(ip).await else {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            login_page(lang, &next, Some(t.too_many_attempts)),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
        return r;
    };
    let password = form.password.chars().take(1024).collect::<String>();
    let Some(ok) = auth.check_password(password).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            login_page(lang, &next, Some(t.checks_busy)),
        )
            .into_response();
    };
    if ok {
        auth.attempt_succeeded(ip, attempt).await;
    } else {
        tracing::warn!(client = %ip, "failed dashboard login");
        return (
            StatusCode::UNAUTHORIZED,
            login_page(lang, &next, Some(t.wrong_password)),
        )
            .into_response();
    }
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        auth.cookie_header(&auth.new_session(now()), auth.session_ttl.as_secs() as i64),
    );
    r
}

pub async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, COOKIE) {
        auth.revoke(&token, now()).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, auth.cookie_header("", 0));
    r
}

pub fn routes(auth: Arc<Auth>) -> axum::Router {
    axum::Router::new()
        .route("/login", axum::routing::get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .with_state(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_bad_hashes_are_named() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let auth = Auth::new(Some(h.clone()), Duration::from_secs(60), false);
        assert!(auth.password_ok("correct horse"));
        assert!(!auth.password_ok("wrong horse"));
        assert!(check_hash(&h).is_ok());
        assert!(check_hash("plaintext")
            .unwrap_err()
            .contains("hash-password"));
        assert!(hash_password("short").is_err());
    }

    #[tokio::test]
    async fn sessions_are_signed_and_expire() {
        let auth = Auth::new(Some("x".into()), Duration::from_secs(60), false);
        let t = auth.new_session(1_000);
        assert!(auth.verify_session(&t, 1_059));
        assert!(!auth.verify_session(&t, 1_060), "expired");
        let (payload, _) = t.rsplit_once('.').unwrap();
        let forged = format!(
            "{}.{}",
            payload.replace("v1.1060", "v1.9999"),
            t.rsplit_once('.').unwrap().1
        );
        assert!(!auth.verify_session(&forged, 1_000), "expiry changed");
        let other = Auth::new(Some("x".into()), Duration::from_secs(60), false);
        assert!(!other.verify_session(&t, 1_000), "another key");
        let second = auth.new_session(1_000);
        auth.revoke(&t, 1_000).await;
        assert!(!auth.verify_session(&t, 1_001), "signed out");
        assert!(auth.verify_session(&second, 1_001), "other sessions stay");
        for junk in ["", "v1", "v1.1.2", "v1.x.y.z", "a.b.c.d.e"] {
            assert!(!auth.verify_session(junk, 0));
        }
    }

    #[test]
    fn a_configured_key_signs_sessions_every_replica_accepts() {
        let secret = "a shared secret of at least 32 bytes!";
        let a = Auth::new(Some("x".into()), Duration::from_secs(60), false)
            .with_key(secret)
            .unwrap();
        let b = Auth::new(Some("x".into()), Duration::from_secs(60), false)
            .with_key(secret)
            .unwrap();
        let t = a.new_session(1_000);
        assert!(b.verify_session(&t, 1_001), "signed on a, accepted by b");
        let c = Auth::new(Some("x".into()), Duration::from_secs(60), false)
            .with_key("another secret, also 32 bytes long")
            .unwrap();
        assert!(!c.verify_session(&t, 1_001), "another key");
        let e = Auth::new(None, Duration::from_secs(60), false)
            .with_key("short")
            .err()
            .unwrap();
        assert!(
            e.starts_with("DASHBOARD_SESSION_KEY:") && !e.contains("short"),
            "{e}"
        );
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/?os=LINUX")), "/?os=LINUX");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/x\u{0}y",
            "/?next=https://evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some("/?os=LINUX&page=2")), "/?os=LINUX&page=2");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn failures_are_limited_per_client() {
        let auth = Auth::new(Some("x".into()), Duration::from_secs(60), false);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(auth.begin_local_attempt(ip));
        }
        assert!(!auth.begin_local_attempt(ip));
        assert!(auth.begin_local_attempt("192.0.2.2".parse().unwrap()));
        // A success gives its attempt back.
        let other: IpAddr = "192.0.2.3".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(auth.begin_local_attempt(other));
            auth.local_attempt_succeeded(other);
        }
        assert!(auth.begin_local_attempt(other));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_ipv4_per_address() {
        let key = |s: &str| client_key(s.parse().unwrap()).to_string();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        // Five guesses from five addresses of one /64: the sixth, from a sixth address, is
        // refused (each address had its own five before).
        let auth = Auth::new(Some("x".into()), Duration::from_secs(60), false);
        for i in 1..=MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            assert!(auth.begin_local_attempt(client_key(ip)));
        }
        let sixth: IpAddr = "2001:db8:1:2:dead::beef".parse().unwrap();
        assert!(!auth.begin_local_attempt(client_key(sixth)));
        let neighbour: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(auth.begin_local_attempt(client_key(neighbour)));
    }

    #[test]
    fn one_password_check_at_a_time_per_client() {
        let auth = Auth::new(Some("x".into()), Duration::from_secs(60), false);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = auth.start_check(a).expect("free");
        assert!(auth.start_check(a).is_none(), "a second one waits its turn");
        let b = auth.start_check("192.0.2.2".parse().unwrap());
        assert!(b.is_some(), "another client is not held up");
        drop(first);
        assert!(auth.start_check(a).is_some(), "free again once done");
    }

    #[test]
    fn cookies_parse_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wxd_session=tok.en; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("tok.en"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
