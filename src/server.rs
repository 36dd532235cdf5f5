//! The server: shared state, the axum router, and the two ways to run (dashboard, simulator).

use crate::api::{DeviceTable, DEFAULT_PER_PAGE, PAGE_SIZES};
use crate::cli::{ServeArgs, SimulateArgs};
use crate::model::Device;
use crate::simulator::keys::{self as simkeys, SimKeys};
use crate::simulator::service::{Simulator, SimulatorOptions};
use crate::sync::error::SyncError;
use crate::sync::service::{SyncService, SyncSettings};
use crate::wechatpay::client::{CertificateRefresh, WxPayClient};
use std::sync::Arc;
use std::time::Duration;

/// State shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub sync: Arc<SyncService>,
}

impl AppState {
    /// A page of the current snapshot.
    pub async fn device_table(
        &self,
        page: u32,
        per_page: u32,
    ) -> Result<DeviceTable, Arc<SyncError>> {
        let view = self.sync.snapshot().await?;
        Ok(page_of(
            &view.snapshot.devices,
            page,
            per_page,
            self.sync.is_demo(),
        ))
    }
}

/// A page of `devices`. Out-of-range input is corrected, never an error: an unknown page size
/// falls back to the default, a page past the end shows the last page.
pub fn page_of(devices: &[Device], page: u32, per_page: u32, demo: bool) -> DeviceTable {
    let per_page = if PAGE_SIZES.contains(&per_page) {
        per_page
    } else {
        DEFAULT_PER_PAGE
    };
    let total = devices.len();
    let pages = total.div_ceil(per_page as usize).max(1) as u32;
    let page = page.clamp(1, pages);
    let start = (page as usize - 1) * per_page as usize;
    let rows = devices
        .iter()
        .skip(start)
        .take(per_page as usize)
        .cloned()
        .collect();
    DeviceTable {
        rows,
        total,
        page,
        per_page,
        demo,
    }
}

/// The dashboard's router: the Leptos pages and server functions, with `state` in their context.
pub fn router(leptos_options: leptos::config::LeptosOptions, state: AppState) -> axum::Router {
    use crate::app::{shell, App};
    use leptos::prelude::provide_context;
    use leptos_axum::{generate_route_list, LeptosRoutes};

    let routes = generate_route_list(App);
    axum::Router::new()
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
}

/// Builds the client and the sync service: against the embedded simulator without credentials,
/// against WeChat Pay with them.
pub async fn build_sync(args: &ServeArgs) -> Result<Arc<SyncService>, String> {
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
                ..Default::default()
            };
            let source = format!("demo:{}:{}:{}", keys.mchid, options.devices, options.seed);
            let sim = Simulator::new(keys, options);
            let url = sim
                .spawn_local()
                .await
                .map_err(|e| format!("cannot start the demo simulator: {e}"))?;
            tracing::info!(%url, devices = args.demo_devices, "demo mode: serving simulated devices from the built-in WeChat Pay simulator");
            let client = WxPayClient::new(&sim.client_config(&url, true, false))
                .map_err(|e| e.to_string())?;
            Ok(SyncService::new(
                Arc::new(client),
                source,
                true,
                settings,
                Some(args.data_dir.join("demo")),
            ))
        }
        Some(config) => {
            let source = format!("wechatpay:{}@{}", config.mchid, config.base_url);
            let client = Arc::new(WxPayClient::new(&config).map_err(|e| e.to_string())?);
            if config.apiv3_key.is_some() {
                match client.refresh_certificates().await {
                    Ok(CertificateRefresh::Loaded(serials)) => tracing::info!(?serials, "platform certificates loaded"),
                    Ok(CertificateRefresh::PublicKeyOnly) => tracing::warn!("this merchant has no platform certificates (404 RESOURCE_NOT_EXISTS): it uses the WeChat Pay public key; set WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID"),
                    Err(e) => tracing::warn!(error = %e, "could not download platform certificates; will retry when needed"),
                }
                spawn_certificate_refresh(client.clone());
            }
            Ok(SyncService::new(
                client,
                source,
                false,
                settings,
                Some(args.data_dir.clone()),
            ))
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
    let options = conf.leptos_options;
    let addr = options.site_addr;
    let sync = build_sync(&args).await?;
    if sync.load_saved().await.is_none() {
        // Warm up: the first visitor should not have to start the sync.
        sync.refresh_in_background();
    }
    let app = router(options, AppState { sync: sync.clone() });
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        format!("cannot listen on {addr}: {e} (set LEPTOS_SITE_ADDR to another address)")
    })?;
    tracing::info!("dashboard listening on http://{addr}");
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server stopped: {e}"))?;
    sync.flush();
    tracing::info!("stopped");
    Ok(())
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
        ..Default::default()
    };
    let sim = Simulator::new(keys.clone(), options);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(n: usize) -> Vec<Device> {
        (0..n)
            .map(|i| Device {
                device_sn: Some(format!("SN{i:05}")),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn pages_are_clamped_and_sizes_checked() {
        let d = devices(120);
        let t = page_of(&d, 1, 50, true);
        assert_eq!((t.rows.len(), t.total, t.page), (50, 120, 1));
        assert_eq!(t.rows[0].device_sn.as_deref(), Some("SN00000"));
        let last = page_of(&d, 3, 50, true);
        assert_eq!((last.rows.len(), last.page), (20, 3));
        assert_eq!(last.rows[0].device_sn.as_deref(), Some("SN00100"));
        assert_eq!(
            page_of(&d, 99, 50, true).page,
            3,
            "past the end shows the last page"
        );
        assert_eq!(page_of(&d, 0, 50, true).page, 1);
        assert_eq!(
            page_of(&d, 1, 7, true).per_page,
            DEFAULT_PER_PAGE,
            "unknown size"
        );
        let empty = page_of(&[], 5, 50, true);
        assert_eq!((empty.rows.len(), empty.page, empty.total), (0, 1, 0));
    }
}
