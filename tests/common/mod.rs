//! Shared by the HTTP tests: one key set per test binary, and a simulator with a sync service
//! that talks to it through the real client.
#![allow(dead_code)]

pub mod oracle;
pub mod postgres;
pub mod process;
pub mod redis;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wxpay_devices::simulator::keys::SimKeys;
use wxpay_devices::simulator::service::{Simulator, SimulatorOptions};
use wxpay_devices::sync::fetch::FetchConfig;
use wxpay_devices::sync::service::{SyncService, SyncSettings};
use wxpay_devices::wechatpay::client::WxPayClient;

pub fn keys() -> SimKeys {
    static KEYS: OnceLock<SimKeys> = OnceLock::new();
    KEYS.get_or_init(|| SimKeys::generate().unwrap()).clone()
}

/// Sync settings with quick retries, so fault tests stay short.
pub fn fast_retries() -> SyncSettings {
    SyncSettings {
        fetch: FetchConfig {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A simulator on a loopback port and a sync service that reads it.
pub async fn setup(
    options: SimulatorOptions,
    settings: SyncSettings,
    dir: Option<PathBuf>,
) -> (Simulator, Arc<SyncService>) {
    let sim = Simulator::new(keys(), options);
    let url = sim.spawn_local().await.unwrap();
    let client = WxPayClient::new(&sim.client_config(&url, true, false)).unwrap();
    let service = SyncService::new(Arc::new(client), "test-source".into(), true, settings, dir);
    (sim, service)
}

/// Serves the router `make` builds for the address bound (a loopback port); returns the base
/// URL.
pub async fn serve(make: impl FnOnce(std::net::SocketAddr) -> axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = make(addr).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    format!("http://{addr}")
}

/// A simulator whose every device-list request fails with SYSTEM_ERROR, and a sync service that
/// tries each page `attempts` times.
pub async fn always_failing(attempts: u32) -> (Simulator, Arc<SyncService>) {
    let settings = SyncSettings {
        fetch: FetchConfig {
            max_attempts: attempts,
            ..fast_retries().fetch
        },
        ..fast_retries()
    };
    setup(
        SimulatorOptions {
            devices: 500,
            error_rate: 1.0,
            ..Default::default()
        },
        settings,
        None,
    )
    .await
}

/// A new, empty directory of this test's own (unique per call: tests run in parallel, and a
/// name may be used twice), removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wxpay-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, part: impl AsRef<std::path::Path>) -> PathBuf {
        self.0.join(part)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
