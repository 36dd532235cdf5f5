//! The dashboard's entry point: command line and configuration, then the HTTP server (or the
//! standalone simulator).

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() {
    use clap::Parser;
    use wxpay_devices::cli::{Cli, Command};

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Simulate(args)) => wxpay_devices::server::run_simulator(args).await,
        None => wxpay_devices::server::run_dashboard(cli.serve).await,
    };
    if let Err(message) = result {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser entry point is `hydrate()` in lib.rs.
}
