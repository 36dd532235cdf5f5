//! The server: the axum router and its layers, and the two ways to run (dashboard, simulator).

use crate::auth::Auth;
use crate::cli::{ServeArgs, SimulateArgs};
use crate::db::Database;
use crate::guard::AccessGuard;
use crate::history::store::HistoryStore;
use crate::simulator::keys::{self as simkeys, SimKeys};
use crate::simulator::service::{Evolve, Simulator, SimulatorOptions};
use crate::sync::quota::{DbLedger, LedgerStore, QuotaLedger};
use crate::sync::service::{Persistence, SyncService, SyncSettings};
use crate::view::AppState;
use crate::wechatpay::client::{CertificateRefresh, WxPayClient};
use std::sync::Arc;
use std::time::Duration;

/// The dashboard's router: the Leptos pages and server functions (with `state` in their
/// context), exports, login, operations endpoints; behind the session check, security headers,
/// body and time limits, and compression.
pub fn router(
    leptos_options: leptos::config::LeptosOptions,
    state: AppState,
    auth: Arc<Auth>,
    guard: Arc<AccessGuard>,
) -> axum::Router {
    router_with_limits(leptos_options, state, auth, guard, Limits::default())
}

/// How much a request may carry and how long it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: MAX_BODY_BYTES,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// [`router`] with other limits (tests use a short timeout).
pub fn router_with_limits(
    leptos_options: leptos::config::LeptosOptions,
    state: AppState,
    auth: Arc<Auth>,
    guard: Arc<AccessGuard>,
    limits: Limits,
) -> axum::Router {
    use crate::app::{shell, App};
    use axum::http::{header, HeaderValue};
    use leptos::prelude::provide_context;
    use leptos_axum::{generate_route_list, LeptosRoutes};
    use tower_http::set_header::SetResponseHeaderLayer;

    let routes = generate_route_list(App);
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // No referrer leaves the dashboard; within it, forms keep their real `Origin` (under
        // `no-referrer` a browser sends `Origin: null` with a form POST, which the access
        // guard must refuse as foreign).
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Pages rendered by Leptos set their own policy, with the nonce of their inline scripts.
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ];
    let mut app = axum::Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options)
        .merge(crate::export::routes(state.clone()))
        .merge(crate::ops::routes(state))
        .merge(crate::auth::routes(auth.clone()))
        .layer(axum::middleware::from_fn(error_status))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::require_session,
        ))
        // Before any route and the session check: foreign Host names, cross-site writes.
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::guard::guard,
        ));
    for (name, value) in headers {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    app.layer(tower_http::limit::RequestBodyLimitLayer::new(
        limits.body_bytes,
    ))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ))
    // Level 1: brotli's one-pass compressor. Measured on a 100,000-device grid page (BENCHMARKS.md,
    // "Under load"): 695 pages/s against 533 at the default level 4, for 17.2 KB instead of
    // 13.8 KB on the wire.
    .layer(
        tower_http::compression::CompressionLayer::new()
            .quality(tower_http::CompressionLevel::Precise(COMPRESSION_LEVEL)),
    )
}

/// The compression level of every response (brotli's and gzip's scales both start at 1).
pub const COMPRESSION_LEVEL: i32 = 1;

/// A server function's error carries its own status when our code produced it; when the
/// framework did (arguments that do not decode), the answer is 500 with our `AppError`, encoded
/// as JSON: read it back and give its status (400 for bad arguments). Our own type, decoded: no
/// matching on the framework's wording.
async fn error_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let is_server_fn = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    if !is_server_fn || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    if let Ok(e) = serde_json::from_slice::<crate::error::AppError>(&bytes) {
        parts.status =
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Largest request body accepted (server-function arguments and the login form are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request may wait this long (a cold start waits for the first sync).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What serves the data: the sync service, and the history it records as it saves snapshots.
pub struct Backend {
    pub sync: Arc<SyncService>,
    pub history: Arc<HistoryStore>,
    /// The demo's simulator (demo mode only).
    pub demo: Option<Simulator>,
    /// With `REDIS_URL`: the shared snapshot this replica follows.
    pub replica: Option<Replica>,
}

/// Opens the database (`DATABASE_URL`, default `history.db` in the data directory) for
/// `source`'s history; refuses to start if it cannot be opened, migrated, or belongs to another
/// merchant.
async fn open_history(
    args: &ServeArgs,
    data_dir: &std::path::Path,
    source: &str,
    demo: bool,
) -> Result<Arc<HistoryStore>, String> {
    let url = args
        .database_url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| crate::db::default_url(data_dir));
    if redis_url(args).is_some() && url.trim().starts_with("sqlite:") {
        return Err(
            "REDIS_URL is set but DATABASE_URL is SQLite, a file only this process can use: set \
             DATABASE_URL to a postgres:// server every replica shares"
                .into(),
        );
    }
    let db = Database::open(url.trim()).await?;
    let history = HistoryStore::new(db, source, args.history_days)
        .with_legacy_file(SyncService::snapshot_file(data_dir, source));
    history.claim(demo).await?;
    Ok(Arc::new(history))
}

/// The snapshot and the request ledger, both in the database (the files of before imported
/// once).
async fn persistence(
    args: &ServeArgs,
    history: &Arc<HistoryStore>,
    data_dir: &std::path::Path,
    source: &str,
) -> Result<(Persistence, Option<Replica>), String> {
    if let Some(url) = redis_url(args) {
        let conn = crate::replicas::connect(&url).await?;
        let (state, shared) = crate::replicas::persistence(
            &conn,
            source,
            crate::sync::quota::DAILY_LIMIT,
            history.clone(),
            crate::replicas::lease::TTL,
        );
        tracing::info!("several replicas: the budget, the sync lease and the snapshot are shared through Redis");
        let sessions = crate::replicas::sessions::RedisSessions::new(
            conn,
            &crate::replicas::merchant_key(source),
        );
        return Ok((
            state,
            Some(Replica {
                shared,
                sessions,
                url,
            }),
        ));
    }
    Ok((local_persistence(history, data_dir, source).await, None))
}

/// What a replica follows: the shared snapshot, and Redis's address for its subscription.
pub struct Replica {
    shared: crate::replicas::snapshot::SharedSnapshot,
    /// Sign-outs and sign-in attempts, shared.
    sessions: crate::replicas::sessions::RedisSessions,
    url: String,
}

/// `REDIS_URL`, if set.
fn redis_url(args: &ServeArgs) -> Option<String> {
    args.redis_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

/// One process's state: the snapshot and the ledger in its database.
pub async fn local_persistence(
    history: &Arc<HistoryStore>,
    data_dir: &std::path::Path,
    source: &str,
) -> Persistence {
    let ledger_store = DbLedger::new(history.database().clone(), source)
        .with_legacy_file(SyncService::ledger_file(data_dir, source));
    Persistence {
        shared_budget: None,
        shared_lease: None,
        ledger: QuotaLedger::from_buckets(ledger_store.load().await),
        ledger_store: Arc::new(ledger_store),
        snapshots: history.clone(),
    }
}

/// Builds the client and the sync service: against the embedded simulator without credentials,
/// against WeChat Pay with them.
pub async fn build_sync(args: &ServeArgs) -> Result<Backend, String> {
    let settings = SyncSettings {
        ttl: Duration::from_secs(args.cache_ttl_secs.max(1)),
        ..Default::default()
    };
    match args.wechatpay.load().map_err(|e| e.to_string())? {
        None => {
            let keys = SimKeys::generate()?;
            let options = SimulatorOptions {
                devices: args.demo_devices as usize,
                latency: Duration::from_millis(args.demo_latency_ms),
                evolve: per_minute(args.demo_changes_per_minute),
                ..Default::default()
            };
            let source = format!("demo:{}:{}:{}", keys.mchid, options.devices, options.seed);
            let data_dir = args.data_dir.join("demo");
            let history = open_history(args, &data_dir, &source, true).await?;
            let sim = Simulator::new(keys, options);
            let demo = Some(sim.clone());
            let url = sim
                .spawn_local()
                .await
                .map_err(|e| format!("cannot start the demo simulator: {e}"))?;
            tracing::info!(%url, devices = args.demo_devices, "demo mode: serving simulated devices from the built-in WeChat Pay simulator");
            let client = WxPayClient::new(&sim.client_config(&url, true, false))
                .map_err(|e| e.to_string())?;
            let (state, replica) = persistence(args, &history, &data_dir, &source).await?;
            let sync = SyncService::with_state(Arc::new(client), source, true, settings, state);
            Ok(Backend {
                sync,
                history,
                demo,
                replica,
            })
        }
        Some(config) => {
            let source = format!("wechatpay:{}@{}", config.mchid, config.base_url);
            let history = open_history(args, &args.data_dir, &source, false).await?;
            let client = Arc::new(WxPayClient::new(&config).map_err(|e| e.to_string())?);
            // The service first: it routes the client's requests, certificate downloads
            // included, through its rate limiter and quota ledger.
            let (state, replica) = persistence(args, &history, &args.data_dir, &source).await?;
            let sync = SyncService::with_state(client.clone(), source, false, settings, state);
            if config.apiv3_key.is_some() {
                match client.refresh_certificates().await {
                    Ok(CertificateRefresh::Loaded(serials)) => tracing::info!(?serials, "platform certificates loaded"),
                    Ok(CertificateRefresh::PublicKeyOnly) => tracing::warn!("this merchant has no platform certificates (404 RESOURCE_NOT_EXISTS): it uses the WeChat Pay public key; set WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID"),
                    Err(e) => tracing::warn!(error = %e, "could not download platform certificates; will retry when needed"),
                }
                spawn_certificate_refresh(client);
            }
            Ok(Backend {
                sync,
                history,
                demo: None,
                replica,
            })
        }
    }
}

/// `n` changes a minute, as evolution steps of one change each (spread over the minute).
fn per_minute(n: u32) -> Option<Evolve> {
    (n > 0).then(|| Evolve {
        every: Duration::from_millis(60_000 / n as u64).max(Duration::from_millis(1)),
        changes: 1,
    })
}

/// Syncs when the snapshot is due, whether or not anyone is looking, so the change history
/// has no gaps (within the quota: the refresh interval is stretched to fit it). Looks every
/// `every`: with several replicas every second, so that when the replica holding the sync lease
/// dies, another takes the lease within a second of its expiry (docs/replicas.md).
fn spawn_scheduled_refresh(sync: Arc<SyncService>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sync.refresh_if_due();
        }
    });
}

/// Several replicas without `DASHBOARD_SESSION_KEY`: puts this replica's session key back into
/// Redis should Redis lose it (a restart without persistence), and adopts another one found
/// there (sessions signed with the one before stay valid). Runs until the process ends.
async fn keep_session_key(
    sessions: crate::replicas::sessions::RedisSessions,
    auth: Arc<Auth>,
    mut secret: String,
) {
    loop {
        tokio::time::sleep(crate::replicas::snapshot::POLL).await;
        match sessions.session_key(&secret).await {
            Ok(held) if held != secret => {
                tracing::info!("another replica's session key is in Redis: signing with it");
                auth.adopt_key(&held);
                secret = held;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot check the shared session key"),
        }
    }
}

/// Platform certificates are replaced 24 h before use: download them twice a day.
fn spawn_certificate_refresh(client: Arc<WxPayClient>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(12 * 3600));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = client.refresh_certificates().await {
                tracing::warn!(error = %e, "scheduled certificate refresh failed");
            }
        }
    });
}

/// Serves the dashboard until SIGTERM or Ctrl-C, then finishes in-flight requests and saves
/// the request ledger.
pub async fn run_dashboard(args: ServeArgs) -> Result<(), String> {
    let conf = leptos::prelude::get_configuration(None)
        .map_err(|e| format!("cannot read the Leptos configuration: {e}"))?;
    let mut options = conf.leptos_options;
    if let Some(addr) = args.site_addr {
        options.site_addr = addr;
    }
    let addr = options.site_addr;
    if let Some(hash) = &args.password_hash {
        crate::auth::check_hash(hash)?;
    }
    if !addr.ip().is_loopback()
        && args
            .password_hash
            .as_deref()
            .is_none_or(|h| h.trim().is_empty())
    {
        return Err(format!(
            "LEPTOS_SITE_ADDR={addr} is not a loopback address, and no password is set: set DASHBOARD_PASSWORD_HASH \
             (make one with `wxpay-devices hash-password`), or listen on 127.0.0.1"
        ));
    }
    let mut auth = Auth::new(
        args.password_hash.clone(),
        Duration::from_secs(args.session_hours * 3600),
        args.cookie_secure,
    );
    if let Some(secret) = args.session_key.as_deref().filter(|k| !k.is_empty()) {
        auth = auth.with_key(secret)?;
    }
    // Checked before anything is started, with the port to come (the guard's own settings).
    AccessGuard::new(addr, &args.allowed_hosts, &args.trusted_proxies)?;
    ensure_writable(&args.data_dir)?;
    let Backend {
        sync,
        history,
        demo,
        replica,
    } = build_sync(&args).await?;
    let mut shared = None;
    let mut key_keeper = None;
    if let Some(replica) = replica {
        tokio::spawn(crate::replicas::snapshot::follow(
            replica.shared.clone(),
            sync.clone(),
            replica.url,
        ));
        if !auth.has_configured_key() {
            // One key for every replica, kept in Redis, so a sign-in on one holds on all.
            let secret = replica
                .sessions
                .session_key(&crate::auth::random_secret())
                .await
                .map_err(|e| {
                    format!(
                        "REDIS_URL: cannot read the replicas' session key ({e}); set \
                         DASHBOARD_SESSION_KEY, or make Redis reachable"
                    )
                })?;
            auth.adopt_key(&secret);
            key_keeper = Some((replica.sessions.clone(), secret));
        }
        auth = auth.with_shared(replica.sessions);
        shared = Some(replica.shared);
    }
    let auth = Arc::new(auth);
    if let Some((sessions, secret)) = key_keeper {
        tokio::spawn(keep_session_key(sessions, auth.clone(), secret));
    }
    match sync.load_saved().await {
        // The demo's merchant carries on from where it was, so its history continues.
        Some(saved) => {
            if let Some(sim) = &demo {
                sim.set_devices(saved.devices.to_vec());
            }
        }
        // Warm up: the first visitor should not have to start the sync.
        None => sync.refresh_in_background(),
    }
    let every = if shared.is_some() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(15)
    };
    spawn_scheduled_refresh(sync.clone(), every);
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        format!("cannot listen on {addr}: {e} (set LEPTOS_SITE_ADDR to another address)")
    })?;
    // The address actually bound: with port 0 the system picks a free one, and tests read it
    // from this line.
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let guard = Arc::new(
        AccessGuard::new(bound, &args.allowed_hosts, &args.trusted_proxies)?
            .behind_https(args.cookie_secure),
    );
    let app = router(
        options,
        {
            let state = AppState::new(sync.clone())
                .with_auth(auth.enabled())
                .with_history(history.clone());
            match shared {
                Some(shared) => state.with_replica(shared),
                None => state,
            }
        },
        auth,
        guard,
    );
    tracing::info!("dashboard listening on http://{bound}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server stopped: {e}"))?;
    sync.flush().await;
    history.database().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The data directory must exist (it is created) and be writable, or the request ledger would
/// silently not be kept: refuse to start instead.
fn ensure_writable(dir: &std::path::Path) -> Result<(), String> {
    let fail = |e: std::io::Error| {
        format!(
            "DATA_DIR={}: cannot create or write it ({e}); set DATA_DIR to a writable directory",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    crate::sync::snapshot::write_atomically(&probe, b"ok").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `wxpay-devices simulate`: the simulator alone, with its keys in a directory.
pub async fn run_simulator(args: SimulateArgs) -> Result<(), String> {
    let keys = SimKeys::load_or_create(&args.keys_dir)?;
    let options = SimulatorOptions {
        devices: args.devices as usize,
        seed: args.seed,
        error_rate: args.error_rate.clamp(0.0, 1.0),
        latency: Duration::from_millis(args.latency_ms),
        daily_limit: args.daily_limit,
        certificates: !args.no_certificates,
        evolve: per_minute(args.changes_per_minute),
        ..Default::default()
    };
    let sim = Simulator::new(keys.clone(), options);
    let wanted = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|e| format!("cannot listen on {wanted}: {e}"))?;
    // The port actually bound (`--port 0` picks a free one).
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {wanted}: {e}"))?;
    let dir = args.keys_dir.display();
    println!(
        "WeChat Pay simulator on http://{addr} with {} devices; keys in {dir}",
        args.devices
    );
    println!("Point the dashboard at it with:");
    println!("  WECHATPAY_BASE_URL=http://{addr} \\");
    println!("  WECHATPAY_MCHID={} \\", keys.mchid);
    println!("  WECHATPAY_MERCHANT_SERIAL_NO={} \\", keys.merchant_serial);
    println!(
        "  WECHATPAY_MERCHANT_PRIVATE_KEY={dir}/{} \\",
        simkeys::MERCHANT_KEY_FILE
    );
    println!(
        "  WECHATPAY_PUBLIC_KEY={dir}/{} \\",
        simkeys::PLATFORM_PUBLIC_KEY_FILE
    );
    println!("  WECHATPAY_PUBLIC_KEY_ID={} \\", keys.platform_key_id);
    println!("  make run");
    tokio::select! {
        r = sim.serve(listener) => r.map_err(|e| format!("simulator stopped: {e}")),
        _ = shutdown_signal() => Ok(()),
    }
}
