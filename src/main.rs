//! The dashboard's entry point: configuration, then the HTTP server.

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() {
    use leptos::prelude::get_configuration;
    use wxpay_devices::server::{router, AppState};
    use wxpay_devices::simulator::dataset::{generate, DatasetSpec};

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wxpay_devices=info".into()),
        )
        .init();

    let conf = match get_configuration(None) {
        Ok(conf) => conf,
        Err(e) => {
            eprintln!("error: cannot read the Leptos configuration: {e}");
            std::process::exit(2);
        }
    };
    let options = conf.leptos_options;
    let addr = options.site_addr;

    let devices = generate(&DatasetSpec::default());
    let app = router(options, AppState::new(devices, true));

    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {addr}: {e} (set LEPTOS_SITE_ADDR to another address)"
            );
            std::process::exit(2);
        }
    };
    tracing::info!("dashboard listening on http://{addr}");
    if let Err(e) = axum::serve(listener, app.into_make_service()).await {
        eprintln!("error: server stopped: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser entry point is `hydrate()` in lib.rs.
}
