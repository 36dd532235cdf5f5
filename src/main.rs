//! The dashboard's entry point: command line and configuration, then the HTTP server (or the
//! standalone simulator, or a password hash).

/// mimalloc, not glibc's malloc: with many threads glibc keeps an arena per thread and returns
/// little to the system, so after a load the process held 1.7× the memory it needed
/// (BENCHMARKS.md, "Under load"). Its 2.x line (Cargo.toml's `v2`): the 3.x line waits a second
/// (ten for its arenas) before giving freed memory back, and after a first sync the process
/// still held 190 MB where 2.x holds 79 MB, at the same speed.
#[cfg(feature = "ssr")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() {
    use clap::Parser;
    use wxpay_devices::cli::{Cli, Command};

    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Logs go to standard error (the README says so; standard output is for what a command
    // prints, such as `simulate`'s settings or `hash-password`'s hash).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        wxpay_devices::cli::LogFormat::Json => builder.json().init(),
        wxpay_devices::cli::LogFormat::Text => builder.init(),
    }

    let result = match cli.command {
        Some(Command::Simulate(args)) => wxpay_devices::server::run_simulator(args).await,
        Some(Command::HashPassword) => hash_password(),
        None => wxpay_devices::server::run_dashboard(cli.serve).await,
    };
    if let Err(message) = result {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

/// `wxpay-devices hash-password`: the first line of standard input, hashed.
#[cfg(feature = "ssr")]
fn hash_password() -> Result<(), String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprintln!("Password (the input is shown; pipe it in to keep it off the screen):");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let hash = wxpay_devices::auth::hash_password(line.trim_end_matches(['\r', '\n']))?;
    println!("{hash}");
    Ok(())
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser entry point is `hydrate()` in lib.rs.
}
