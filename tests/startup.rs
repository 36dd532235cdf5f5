//! The real binary: bad configuration stops start-up with one line naming the variable; the
//! standalone simulator serves clients that use the key files it writes; a real configuration
//! logs without secrets, finishes in-flight requests and saves its ledger on SIGTERM.
//!
//! Every process binds port 0 and prints the port it got; every wait has a deadline.
#![cfg(feature = "ssr")]

mod common;

use common::process::{port_in, run_to_end, Proc};
use leptos::server_fn::ServerFn;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wxpay_devices::simulator::keys as simkeys;
use wxpay_devices::wechatpay::client::WxPayClient;
use wxpay_devices::wechatpay::config::WxPayArgs;

const BIN: &str = env!("CARGO_BIN_EXE_wxpay-devices");
const START: Duration = Duration::from_secs(60);

/// The dashboard binary with no setting inherited from the test's environment.
fn dashboard_command() -> Command {
    common::process::dashboard_command(BIN)
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A new directory of its own for each call (tests run in parallel, some use one name several
/// times), removed when the guard drops.
fn temp_dir(name: &str) -> common::TempDir {
    common::TempDir::new(&format!("startup-{name}"))
}

/// Runs the dashboard with `env`; expects it to stop with exit code 2 and an `error:` line.
/// Returns that line and everything printed.
fn refused(env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = dashboard_command();
    cmd.env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", temp_dir("refused").path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A server that starts instead of refusing is killed at the deadline and fails the test.
    let (status, output) = run_to_end(cmd, START);
    assert_eq!(
        status.code(),
        Some(2),
        "must stop with exit code 2:\n{output}"
    );
    let line = output
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {output:?}"))
        .to_string();
    (line, output)
}

#[test]
fn each_bad_configuration_stops_start_up_with_one_line() {
    let key = fixture("merchant_key_pkcs8.pem");
    let pubkey = fixture("platform_pub.pem");
    let base = [
        ("WECHATPAY_MCHID", "1900000001"),
        ("WECHATPAY_MERCHANT_SERIAL_NO", "5E1E4B7F"),
        ("WECHATPAY_MERCHANT_PRIVATE_KEY", key.as_str()),
        ("WECHATPAY_PUBLIC_KEY", pubkey.as_str()),
        (
            "WECHATPAY_PUBLIC_KEY_ID",
            "PUB_KEY_ID_0114232134912410000000000000000001",
        ),
    ];
    let with = |k: &str, v: &str| -> Vec<(String, String)> {
        base.iter()
            .map(|(a, b)| {
                let value = if *a == k { v } else { b };
                (a.to_string(), value.to_string())
            })
            .collect()
    };
    let without = |k: &str| -> Vec<(String, String)> {
        base.iter()
            .filter(|(a, _)| *a != k)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let ec = fixture("ec_key.pem");
    let readme = fixture("README.md");
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (with("WECHATPAY_MCHID", "19x"), "error: WECHATPAY_MCHID: "),
        (
            without("WECHATPAY_MERCHANT_SERIAL_NO"),
            "error: WECHATPAY_MERCHANT_SERIAL_NO: required",
        ),
        (
            with("WECHATPAY_MERCHANT_PRIVATE_KEY", "/nonexistent/key.pem"),
            "error: WECHATPAY_MERCHANT_PRIVATE_KEY: cannot read",
        ),
        (with("WECHATPAY_MERCHANT_PRIVATE_KEY", &readme), "not a PEM"),
        (
            with("WECHATPAY_MERCHANT_PRIVATE_KEY", &ec),
            "not an RSA private key",
        ),
        (
            without("WECHATPAY_PUBLIC_KEY_ID"),
            "error: WECHATPAY_PUBLIC_KEY_ID: ",
        ),
        (
            without("WECHATPAY_PUBLIC_KEY"),
            "error: WECHATPAY_PUBLIC_KEY: ",
        ),
        (
            {
                let mut v = without("WECHATPAY_PUBLIC_KEY");
                v.retain(|(k, _)| k != "WECHATPAY_PUBLIC_KEY_ID");
                v.push(("WECHATPAY_APIV3_KEY".into(), "short".into()));
                v
            },
            "error: WECHATPAY_APIV3_KEY: the APIv3 key must be exactly 32 bytes",
        ),
    ];
    for (env, expected) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (line, _) = refused(&env);
        assert!(
            line.contains(expected),
            "{line:?} should contain {expected:?}"
        );
        assert!(!line.contains("MII"), "no key material: {line}");
    }
}

#[test]
fn a_database_redis_or_session_key_that_cannot_be_used_stops_start_up() {
    for (url, expected) in [
        (
            "postgres://app:s3cret@127.0.0.1:1/history",
            "error: DATABASE_URL=postgres://app:***@127.0.0.1:1/history: cannot open the database",
        ),
        ("mysql://app:s3cret@db/history", "not a database URL"),
        (
            "sqlite:///proc/self/no-such-dir/h.db",
            "error: DATABASE_URL=sqlite://",
        ),
    ] {
        let (line, output) = refused(&[("DATABASE_URL", url)]);
        assert!(
            line.contains(expected),
            "{line:?} should contain {expected:?}"
        );
        assert!(!output.contains("s3cret"), "no password: {output}");
    }
}

/// Settings of replicas, sessions and the history that cannot be used: exit code 2, one line
/// naming the variable (never the secret given).
#[test]
fn replica_session_and_history_settings_that_cannot_be_used_stop_start_up() {
    let secret = "short-secret";
    for (env, expected) in [
        (
            vec![("REDIS_URL", "redis://127.0.0.1:1/")],
            "error: REDIS_URL is set but DATABASE_URL is SQLite",
        ),
        (
            vec![("DASHBOARD_SESSION_KEY", secret)],
            "error: DASHBOARD_SESSION_KEY: 12 bytes; use at least 32",
        ),
        (vec![("HISTORY_DAYS", "0")], "HISTORY_DAYS"),
        (vec![("HISTORY_DAYS", "36501")], "HISTORY_DAYS"),
        (
            vec![("DASHBOARD_SESSION_HOURS", "0")],
            "DASHBOARD_SESSION_HOURS",
        ),
        (
            vec![("DASHBOARD_SESSION_HOURS", "721")],
            "DASHBOARD_SESSION_HOURS",
        ),
    ] {
        let (line, output) = refused(&env);
        assert!(
            line.contains(expected),
            "{env:?}: {line:?} should contain {expected:?}"
        );
        assert!(!output.contains(secret), "no secret: {output}");
    }
}

/// Signs in on `base` (a dashboard with a password); returns the session cookie
/// (`name=value`).
async fn sign_in(http: &reqwest::Client, base: &str, password: &str) -> String {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("password", password), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in on {base}");
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Whether `base` accepts `cookie` as a session (`/metrics` answers 401 without one).
async fn signed_in(http: &reqwest::Client, base: &str, cookie: &str) -> bool {
    let r = http
        .get(format!("{base}/metrics"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("{base}/metrics answered {other}"),
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// With `DASHBOARD_SESSION_KEY`, a session signed before a restart is accepted after it.
#[tokio::test]
async fn a_session_survives_a_restart_with_a_configured_key() {
    let hash = hash_password("correct horse battery\n");
    let dir = temp_dir("session-restart");
    let keys_dir = dir.join("keys");
    let (_sim, base_url) = simulator(&keys_dir, 10, 0);
    let start = |key: Option<&str>| {
        let mut cmd = dashboard_command();
        common::process::simulator_credentials(&mut cmd, &keys_dir, &base_url)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("DATA_DIR", dir.join("data"))
            .env("DASHBOARD_PASSWORD_HASH", &hash);
        if let Some(key) = key {
            cmd.env("DASHBOARD_SESSION_KEY", key);
        }
        let mut p = Proc::spawn(cmd);
        let port = p.wait_for_port("dashboard listening on", START);
        (p, format!("http://127.0.0.1:{port}"))
    };
    let http = no_redirects();
    let key = "a session key of at least thirty-two bytes";
    let (mut first, url) = start(Some(key));
    let cookie = sign_in(&http, &url, "correct horse battery").await;
    assert!(signed_in(&http, &url, &cookie).await);
    first.signal("TERM");
    assert!(first.wait(START).success());
    let (_second, url) = start(Some(key));
    assert!(
        signed_in(&http, &url, &cookie).await,
        "accepted after the restart"
    );
    // The control: without the key, a restart signs everyone out.
    let (_third, url) = start(None);
    assert!(!signed_in(&http, &url, &cookie).await);
}

/// Several replicas with `REDIS_URL` and no `DASHBOARD_SESSION_KEY`: a sign-in on one holds on
/// the others (the key is kept in Redis), also on a replica started after Redis lost its data.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_one_session_key_through_redis_without_configuration() {
    let hash = hash_password("correct horse battery\n");
    let pg = common::postgres::PgServer::start();
    let redis = common::redis::RedisServer::start();
    let redis_port = redis.port;
    let db = pg.database("sessions").await;
    let dir = temp_dir("session-replicas");
    let keys_dir = dir.join("keys");
    let (_sim, base_url) = simulator(&keys_dir, 10, 0);
    let redis_url = redis.url();
    let start = |n: u32| {
        let mut cmd = dashboard_command();
        common::process::simulator_credentials(&mut cmd, &keys_dir, &base_url)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("DATA_DIR", dir.join(format!("data-{n}")))
            .env("DATABASE_URL", &db)
            .env("REDIS_URL", &redis_url)
            .env("DASHBOARD_PASSWORD_HASH", &hash);
        let mut p = Proc::spawn(cmd);
        let port = p.wait_for_port("dashboard listening on", START);
        (p, format!("http://127.0.0.1:{port}"))
    };
    let http = no_redirects();
    let (_a, a) = start(1);
    let (_b, b) = start(2);
    let cookie = sign_in(&http, &a, "correct horse battery").await;
    assert!(signed_in(&http, &a, &cookie).await);
    assert!(
        signed_in(&http, &b, &cookie).await,
        "signed in on a, accepted by b"
    );
    let on_b = sign_in(&http, &b, "correct horse battery").await;
    assert!(signed_in(&http, &a, &on_b).await, "and the other way");

    // Redis restarted empty: the replicas put the key back, and a replica started now reads
    // it instead of making one of its own.
    drop(redis);
    let redis = common::redis::RedisServer::start_on(redis_port);
    let mut conn = wxpay_devices::replicas::connect(&redis.url())
        .await
        .unwrap();
    let deadline = Instant::now() + START;
    loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("wxpay:*:session-key")
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the key was never put back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_c, c) = start(3);
    assert!(
        signed_in(&http, &c, &cookie).await,
        "a replica started later accepts it"
    );
}

/// Demo mode with `DATABASE_URL` on a PostgreSQL server (started by the test): the snapshot,
/// the ledger and the history go there, not into `DATA_DIR`, and `/changes.csv` serves them.
#[tokio::test]
async fn the_binary_keeps_its_history_in_postgresql() {
    use sqlx::Connection;
    let pg = common::postgres::PgServer::start();
    let url = pg.database("binary").await;
    let dir = temp_dir("pg-binary");
    let mut cmd = dashboard_command();
    cmd.args(["--site-addr", "127.0.0.1:0"])
        .env("DATA_DIR", dir.path())
        .env("DATABASE_URL", &url)
        .env("DEMO_DEVICES", "300")
        .env("DEMO_LATENCY_MS", "0")
        .env("DEMO_CHANGES_PER_MINUTE", "600")
        .env("CACHE_TTL_SECS", "1");
    let mut p = Proc::spawn(cmd);
    let port = p.wait_for_port("dashboard listening on", START);
    let base = format!("http://127.0.0.1:{port}");
    // The first sync is the baseline; the timer's next sync finds the merchant's changes.
    let deadline = Instant::now() + START;
    let csv = loop {
        let text = reqwest::get(format!("{base}/changes.csv"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().count() > 1 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no changes recorded: {}",
            p.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(csv.starts_with(
        "\u{feff}time,kind,device_sn,field,old_value,new_value,sub_mchid,sub_merchant_shortname\r\n"
    ));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    assert!(
        count("SELECT COUNT(*) FROM syncs")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            >= 2
    );
    assert!(
        count("SELECT COUNT(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM snapshots WHERE role = 'served'")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        1
    );
    assert!(
        count("SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM ledger")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            >= 6
    );
    assert!(
        !dir.join("demo/history.db").exists(),
        "nothing in DATA_DIR's default database"
    );
    p.signal("TERM");
    assert!(p.wait(Duration::from_secs(15)).success());
}

/// One replica as the binary runs it (`REDIS_URL`, PostgreSQL): `/metrics` tells the lease and
/// Redis errors, and with Redis gone the page and `/readyz` say so while the list is served.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_reports_its_lease_and_losing_redis() {
    let pg = common::postgres::PgServer::start();
    let redis = common::redis::RedisServer::start();
    let url = pg.database("replica").await;
    let dir = temp_dir("replica-binary");
    let mut cmd = dashboard_command();
    cmd.args(["--site-addr", "127.0.0.1:0"])
        .env("DATA_DIR", dir.path())
        .env("DATABASE_URL", &url)
        .env("REDIS_URL", redis.url())
        .env("DEMO_DEVICES", "300")
        .env("DEMO_LATENCY_MS", "0");
    let mut p = Proc::spawn(cmd);
    let port = p.wait_for_port("dashboard listening on", START);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http
                .get(url)
                .header("accept", "text/html")
                .header("accept-language", "en")
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let metric = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
    };
    let deadline = Instant::now() + START;
    loop {
        let (_, m) = get("/metrics").await;
        // Synced, saved and the lease given back (the list is served before it is saved).
        if metric(&m, "wxpay_snapshot_devices") == Some(300.0)
            && metric(&m, "wxpay_replica_lease_held") == Some(0.0)
        {
            assert_eq!(metric(&m, "wxpay_replica_lease_fence"), Some(1.0), "{m}");
            assert!(!m.contains("wxpay_redis_errors_total{"), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {}", p.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ready) = get("/readyz").await;
    assert_eq!(status, 200);
    assert!(ready.contains(r#""redis":"reachable""#), "{ready}");

    drop(redis);
    loop {
        let (_, ready) = get("/readyz").await;
        if ready.contains(r#""redis":"unreachable""#) {
            break;
        }
        assert!(Instant::now() < deadline, "Redis never missed: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, page) = get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Redis cannot be reached: this replica shows its last data"),
        "the banner: {page}"
    );
    let (_, m) = get("/metrics").await;
    assert!(
        metric(&m, "wxpay_redis_errors_total{op=\"snapshot\"}").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "wxpay_snapshot_devices"),
        Some(300.0),
        "still served"
    );
    assert!(
        p.output()
            .contains("Redis cannot be reached: serving the last snapshot"),
        "warned once in the log"
    );
    p.signal("TERM");
    assert!(p.wait(Duration::from_secs(15)).success());
}

#[cfg(unix)]
#[test]
fn a_private_key_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("key-mode");
    let key = dir.join("apiclient_key.pem");
    std::fs::copy(fixture("merchant_key_pkcs8.pem"), &key).unwrap();
    let env_for = |key: &Path| {
        vec![
            ("WECHATPAY_MCHID", "1900000001".to_string()),
            ("WECHATPAY_MERCHANT_SERIAL_NO", "5E1E4B7F".into()),
            ("WECHATPAY_MERCHANT_PRIVATE_KEY", key.display().to_string()),
            // Read after the key: start-up stops here, after the warning was written.
            ("WECHATPAY_APIV3_KEY", "short".into()),
            ("LOG_FORMAT", "text".into()),
        ]
    };
    let run = |key: &Path| {
        let env = env_for(key);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        refused(&env).1
    };
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = run(&key);
    assert!(
        loose.contains("readable by other users") && loose.contains("chmod 600"),
        "{loose}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tight = run(&key);
    assert!(!tight.contains("readable by other users"), "{tight}");
}

/// `wxpay-devices simulate --port 0` with its keys in `dir`: the process and its base URL.
fn simulator(dir: &Path, devices: u32, latency_ms: u64) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "simulate",
        "--port",
        "0",
        "--devices",
        &devices.to_string(),
        "--latency-ms",
        &latency_ms.to_string(),
        "--keys-dir",
    ])
    .arg(dir);
    let mut sim = Proc::spawn(cmd);
    let port = sim.wait_for_port("WECHATPAY_BASE_URL=", START);
    (sim, format!("http://127.0.0.1:{port}"))
}

fn read_key_file(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test]
async fn the_standalone_simulator_serves_any_client_from_its_key_files() {
    let dir = temp_dir("simulate");
    let (sim, base_url) = simulator(dir.path(), 1234, 0);
    // Configure a client from the files alone, as the README tells other clients to.
    let read = |name: &str| read_key_file(dir.path(), name);
    let args = WxPayArgs {
        mchid: Some(read(simkeys::MCHID_FILE)),
        merchant_serial_no: Some(read(simkeys::MERCHANT_SERIAL_FILE)),
        merchant_private_key: Some(dir.join(simkeys::MERCHANT_KEY_FILE)),
        public_key: Some(dir.join(simkeys::PLATFORM_PUBLIC_KEY_FILE)),
        public_key_id: Some(read(simkeys::PLATFORM_PUBLIC_KEY_ID_FILE)),
        apiv3_key: Some(read(simkeys::APIV3_KEY_FILE)),
        base_url: base_url.clone(),
    };
    let client = WxPayClient::new(&args.load().unwrap().unwrap()).unwrap();
    let page = client.list_devices(0, 100).await.unwrap();
    assert_eq!(page.total_count, Some(1234));
    assert_eq!(page.data.len(), 100);
    // Certificate mode works from the files too.
    assert!(matches!(
        client.refresh_certificates().await.unwrap(),
        wxpay_devices::wechatpay::client::CertificateRefresh::Loaded(_)
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(simkeys::MERCHANT_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "private key files are not readable by others"
        );
    }
    assert!(
        sim.output().contains("WECHATPAY_MCHID="),
        "{}",
        sim.output()
    );
    drop(sim);
}

#[test]
fn listening_beyond_loopback_requires_a_password() {
    let (line, _) = refused(&[("LEPTOS_SITE_ADDR", "0.0.0.0:0")]);
    assert!(
        line.contains("not a loopback address") && line.contains("DASHBOARD_PASSWORD_HASH"),
        "{line}"
    );
    let (line, _) = refused(&[
        ("LEPTOS_SITE_ADDR", "0.0.0.0:0"),
        ("DASHBOARD_PASSWORD_HASH", "hunter2"),
    ]);
    assert!(
        line.contains("DASHBOARD_PASSWORD_HASH: not an Argon2 hash"),
        "{line}"
    );
}

/// Runs `hash-password` with `input` on standard input; returns the hash printed.
fn hash_password(input: &str) -> String {
    use std::io::{Read, Write};
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let deadline = Instant::now() + START;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hash-password did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out.trim().to_string()
}

#[test]
fn hash_password_prints_a_usable_hash() {
    let hash = hash_password("correct horse battery\n");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(wxpay_devices::auth::check_hash(&hash).is_ok());
    assert!(!hash.contains("correct horse"));
}

/// A merchant as a real deployment has one: the standalone simulator, and the dashboard
/// configured from its key files (public key and APIv3 key), on a port of its own choosing.
struct Deployment {
    _sim: Proc,
    dashboard: Proc,
    url: String,
    apiv3: String,
    private_pem: String,
    /// Last: removed once the processes above are gone (fields drop in order).
    dir: common::TempDir,
}

fn deploy(name: &str, devices: u32, latency_ms: u64, extra: &[(&str, &str)]) -> Deployment {
    let dir = temp_dir(name);
    let keys_dir = dir.join("keys");
    let (sim, base_url) = simulator(&keys_dir, devices, latency_ms);
    let read = |name: &str| read_key_file(&keys_dir, name);
    let apiv3 = read(simkeys::APIV3_KEY_FILE);
    let private_pem = read(simkeys::MERCHANT_KEY_FILE);
    let mut cmd = dashboard_command();
    common::process::simulator_credentials(&mut cmd, &keys_dir, &base_url)
        .env("WECHATPAY_APIV3_KEY", &apiv3)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", dir.join("data"));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut dashboard = Proc::spawn(cmd);
    let port = dashboard.wait_for_port("dashboard listening on", START);
    Deployment {
        dir,
        _sim: sim,
        dashboard,
        url: format!("http://127.0.0.1:{port}"),
        apiv3,
        private_pem,
    }
}

impl Deployment {
    /// The request ledger as saved in the data directory: requests counted in it (0 when it
    /// is not written yet).
    /// Requests counted in the ledger the dashboard saved (in its database).
    async fn saved_ledger_count(&self) -> u64 {
        use sqlx::Connection;
        let file = self.dir.join("data/history.db");
        if !file.exists() {
            return 0;
        }
        let url = format!("sqlite://{}?mode=ro", file.display());
        let Ok(mut conn) = sqlx::SqliteConnection::connect(&url).await else {
            return 0;
        };
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(SUM(requests), 0) FROM ledger")
            .fetch_one(&mut conn)
            .await
            .map(|n| n as u64)
            .unwrap_or(0)
    }

    async fn metric(&self, http: &reqwest::Client, name: &str) -> f64 {
        let text = http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + START;
        loop {
            let r = http
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status within a deadline.
    async fn terminate(self) -> (std::process::ExitStatus, Self) {
        self.dashboard.signal("TERM");
        let mut me = self;
        let status = tokio::task::spawn_blocking(move || {
            let s = me.dashboard.wait(START);
            (s, me)
        })
        .await
        .unwrap();
        status
    }
}

/// The dashboard against the standalone simulator, as a merchant would run it: JSON logs with
/// one line per upstream request, no secret in any line.
#[tokio::test]
async fn a_real_configuration_logs_requests_without_secrets() {
    let d = deploy(
        "logs",
        777,
        0,
        &[("LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
    );
    let http = reqwest::Client::new();
    d.wait_ready(&http).await;
    let (status, d) = d.terminate().await;
    assert!(status.success(), "SIGTERM ends it cleanly: {status:?}");

    let logs = d.dashboard.output();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10, "{logs}");
    for line in &lines {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(json["level"].is_string(), "{line}");
    }
    let upstream: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("\"wechatpay request\""))
        .collect();
    assert!(
        upstream.len() >= 8,
        "one line per upstream request (8 pages at least): {}",
        upstream.len()
    );
    assert!(
        upstream
            .iter()
            .filter(|l| l.contains("/v3/iotmanage/devices"))
            .all(|l| l.contains("\"request_id\":\"SIM") && l.contains("\"outcome\":\"OK\"")),
        "{upstream:?}"
    );
    // No secret in any line: not the APIv3 key, not any line of the private key's base64.
    assert!(!logs.contains(&d.apiv3));
    for pem_line in d.private_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!logs.contains(pem_line), "private key material in the logs");
    }
}

/// Requests counted after the last save (a sync still running) are saved by SIGTERM.
#[tokio::test]
async fn sigterm_saves_requests_counted_since_the_last_save() {
    // 777 devices: 8 pages, all sent at once; each answer takes 2 s.
    let d = deploy("ledger", 777, 2_000, &[]);
    let http = reqwest::Client::new();
    d.wait_ready(&http).await;
    // The first sync saves the ledger as it finishes (just after the snapshot is served):
    // 8 pages and the certificate download at start (certificate mode is configured too).
    let deadline = Instant::now() + START;
    while d.saved_ledger_count().await < 9 {
        assert!(
            Instant::now() < deadline,
            "the first sync never saved the ledger"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.saved_ledger_count().await, 9);
    // The first sync frees its slot just after saving: until then a refresh is refused.
    while d.metric(&http, "wxpay_sync_running").await != 0.0 {
        assert!(Instant::now() < deadline, "the first sync never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second sync: its 8 requests are counted when sent, and it is still waiting for the
    // answers when the dashboard is told to stop.
    let r = http
        .post(format!("{}{}", d.url, wxpay_devices::api::RefreshNow::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + START;
    while d.metric(&http, "wxpay_quota_used_24h").await < 17.0 {
        assert!(Instant::now() < deadline, "the second sync never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.metric(&http, "wxpay_sync_running").await, 1.0);
    assert_eq!(d.saved_ledger_count().await, 9, "not saved yet");
    let (status, d) = d.terminate().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(d.saved_ledger_count().await, 17, "saved at shutdown");
}

/// SIGTERM lets a request that is being answered finish.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    // The first sync takes about 2 s; an export asked for meanwhile waits for it.
    let d = deploy("drain", 777, 2_000, &[]);
    let url = d.url.clone();
    let export = tokio::spawn(async move {
        let r = reqwest::get(format!("{url}/export.csv")).await.unwrap();
        (r.status(), r.text().await.unwrap())
    });
    // The export has reached the dashboard when it asks the sync for its snapshot (the only
    // caller that does here), and finds none: a cache miss.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + START;
    while d.metric(&http, "wxpay_snapshot_cache_misses_total").await < 1.0 {
        assert!(Instant::now() < deadline, "the export never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!export.is_finished(), "the export waits for the first sync");
    let (status, _d) = d.terminate().await;
    assert!(status.success(), "{status:?}");
    let (code, body) = export.await.unwrap();
    assert_eq!(code, 200);
    // A header and one line per device (the demo data has no line breaks inside quotes that
    // start with a serial, so count records by their serial column).
    let mut reader = csv::Reader::from_reader(body.trim_start_matches('\u{feff}').as_bytes());
    assert_eq!(reader.records().count(), 777, "the whole export arrived");
}

#[tokio::test]
async fn dashboard_cookie_secure_marks_the_session_cookie_secure() {
    let hash = hash_password("correct horse battery\n");
    for (secure, expected) in [("true", true), ("false", false)] {
        let d = deploy(
            "cookie",
            10,
            0,
            &[
                ("DASHBOARD_PASSWORD_HASH", &hash),
                ("DASHBOARD_COOKIE_SECURE", secure),
            ],
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = http
            .post(format!("{}/login", d.url))
            .form(&[("password", "correct horse battery"), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert_eq!(
            cookie.split(';').any(|a| a.trim() == "Secure"),
            expected,
            "DASHBOARD_COOKIE_SECURE={secure}: {cookie}"
        );
    }
}

#[test]
fn ports_are_read_from_printed_lines() {
    assert_eq!(
        port_in("\u{1b}[2m..\u{1b}[0m dashboard listening on http://127.0.0.1:41234"),
        Some(41234)
    );
    assert_eq!(
        port_in("  WECHATPAY_BASE_URL=http://127.0.0.1:8090 \\"),
        Some(8090)
    );
    assert_eq!(port_in("nothing here"), None);
}

#[test]
fn a_data_dir_that_cannot_be_written_stops_start_up() {
    // Under a regular file: no user, root included, can create a directory there.
    let (line, _) = refused(&[("DATA_DIR", "/etc/hostname/wxpay-data")]);
    assert!(
        line.contains("DATA_DIR=/etc/hostname/wxpay-data") && line.contains("writable"),
        "{line}"
    );
}

#[test]
fn bad_allowed_hosts_or_trusted_proxies_stop_start_up() {
    let (line, _) = refused(&[("DASHBOARD_ALLOWED_HOSTS", "good.example,bad/host")]);
    assert!(
        line.contains("DASHBOARD_ALLOWED_HOSTS") && line.contains("bad/host"),
        "{line}"
    );
    let (line, _) = refused(&[("DASHBOARD_TRUSTED_PROXIES", "10.0.0.0/99")]);
    assert!(line.contains("DASHBOARD_TRUSTED_PROXIES"), "{line}");
}

#[test]
fn the_listen_address_and_log_format_are_flags_too() {
    let dir = temp_dir("flags");
    let mut cmd = dashboard_command();
    cmd.args(["--site-addr", "127.0.0.1:0", "--log-format", "json"])
        .env("DATA_DIR", dir.path())
        .env("DEMO_DEVICES", "10");
    let mut p = Proc::spawn(cmd);
    let line = p.wait_for_line("dashboard listening on", START);
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert!(json["fields"]["message"]
        .as_str()
        .unwrap()
        .starts_with("dashboard listening on http://127.0.0.1:"));
    drop(p);
}

#[cfg(unix)]
#[tokio::test]
async fn saved_state_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = deploy("modes", 300, 0, &[]);
    let http = reqwest::Client::new();
    d.wait_ready(&http).await;
    let data = d.dir.join("data");
    let deadline = Instant::now() + START;
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&data)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        // The database (snapshot, ledger and history) with its write-ahead log.
        if names.iter().any(|n| n == "history.db") && names.iter().any(|n| n == "history.db-wal") {
            break files;
        }
        assert!(
            Instant::now() < deadline,
            "saved files never appeared: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for f in files {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}
