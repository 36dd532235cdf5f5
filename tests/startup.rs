//! The real binary: bad configuration stops start-up with one line naming the variable; the
//! standalone simulator serves clients that use the key files it writes.
#![cfg(feature = "ssr")]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wxpay_devices::simulator::keys as simkeys;
use wxpay_devices::wechatpay::client::WxPayClient;
use wxpay_devices::wechatpay::config::WxPayArgs;

const BIN: &str = env!("CARGO_BIN_EXE_wxpay-devices");

/// The dashboard binary with no WECHATPAY_* setting inherited from the test's environment.
fn dashboard_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("WECHATPAY_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the dashboard with `env` (and no other WECHATPAY_* variable); expects it to stop.
fn refused(env: &[(&str, &str)]) -> String {
    let mut cmd = dashboard_command();
    cmd.env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", std::env::temp_dir().join("wxpay-startup"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "must stop with exit code 2: {out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr:?}"))
        .to_string();
    line
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
                (
                    a.to_string(),
                    if *a == k {
                        v.to_string()
                    } else {
                        b.to_string()
                    },
                )
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
        let line = refused(&env);
        assert!(
            line.contains(expected),
            "{line:?} should contain {expected:?}"
        );
        assert!(!line.contains("MII"), "no key material: {line}");
    }
}

#[tokio::test]
async fn the_standalone_simulator_serves_any_client_from_its_key_files() {
    let dir: PathBuf = std::env::temp_dir().join(format!("wxpay-simulate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "simulate",
            "--port",
            &port.to_string(),
            "--devices",
            "1234",
            "--keys-dir",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "simulator did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Configure a client from the files alone, as the README tells other clients to.
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let args = WxPayArgs {
        mchid: Some(read(simkeys::MCHID_FILE)),
        merchant_serial_no: Some(read(simkeys::MERCHANT_SERIAL_FILE)),
        merchant_private_key: Some(dir.join(simkeys::MERCHANT_KEY_FILE)),
        public_key: Some(dir.join(simkeys::PLATFORM_PUBLIC_KEY_FILE)),
        public_key_id: Some(read(simkeys::PLATFORM_PUBLIC_KEY_ID_FILE)),
        apiv3_key: Some(read(simkeys::APIV3_KEY_FILE)),
        base_url: format!("http://127.0.0.1:{port}"),
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
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("WECHATPAY_BASE_URL=http://127.0.0.1:{port}")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn listening_beyond_loopback_requires_a_password() {
    let line = refused(&[("LEPTOS_SITE_ADDR", "0.0.0.0:0")]);
    assert!(
        line.contains("not a loopback address") && line.contains("DASHBOARD_PASSWORD_HASH"),
        "{line}"
    );
    let line = refused(&[
        ("LEPTOS_SITE_ADDR", "0.0.0.0:0"),
        ("DASHBOARD_PASSWORD_HASH", "hunter2"),
    ]);
    assert!(
        line.contains("DASHBOARD_PASSWORD_HASH: not an Argon2 hash"),
        "{line}"
    );
}

#[test]
fn hash_password_prints_a_usable_hash() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.trim().starts_with("$argon2id$"), "{hash}");
    assert!(wxpay_devices::auth::check_hash(hash.trim()).is_ok());
    assert!(!hash.contains("correct horse"));
}

/// The dashboard against the standalone simulator, as a merchant would run it: JSON logs with
/// one line per upstream request, no secret in any line, and SIGTERM saving the ledger.
#[tokio::test]
async fn a_real_configuration_logs_requests_without_secrets_and_stops_cleanly() {
    let dir: PathBuf = std::env::temp_dir().join(format!("wxpay-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys_dir = dir.join("keys");
    let data_dir = dir.join("data");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (sim_port, web_port) = (free_port(), free_port());
    let mut sim = Command::new(BIN)
        .args([
            "simulate",
            "--port",
            &sim_port.to_string(),
            "--devices",
            "777",
            "--keys-dir",
        ])
        .arg(&keys_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(sim_port);
    let read = |name: &str| {
        std::fs::read_to_string(keys_dir.join(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let apiv3 = read(simkeys::APIV3_KEY_FILE);
    let private_pem = read(simkeys::MERCHANT_KEY_FILE);
    let mut cmd = dashboard_command();
    let dashboard = cmd
        .env("WECHATPAY_MCHID", read(simkeys::MCHID_FILE))
        .env(
            "WECHATPAY_MERCHANT_SERIAL_NO",
            read(simkeys::MERCHANT_SERIAL_FILE),
        )
        .env(
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            keys_dir.join(simkeys::MERCHANT_KEY_FILE),
        )
        .env(
            "WECHATPAY_PUBLIC_KEY",
            keys_dir.join(simkeys::PLATFORM_PUBLIC_KEY_FILE),
        )
        .env(
            "WECHATPAY_PUBLIC_KEY_ID",
            read(simkeys::PLATFORM_PUBLIC_KEY_ID_FILE),
        )
        .env("WECHATPAY_APIV3_KEY", &apiv3)
        .env("WECHATPAY_BASE_URL", format!("http://127.0.0.1:{sim_port}"))
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{web_port}"))
        .env("DATA_DIR", &data_dir)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(web_port);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{web_port}/readyz"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = dashboard.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || dashboard.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(
        out.status.success(),
        "SIGTERM ends it cleanly: {:?}",
        out.status
    );
    let ledger = std::fs::read_dir(&data_dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("ledger-"));
    assert!(ledger, "the request ledger was written");

    let logs =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
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
    assert!(!logs.contains(&apiv3));
    for pem_line in private_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!logs.contains(pem_line), "private key material in the logs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(100));
    }
}
