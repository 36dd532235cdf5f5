//! The command line: `wxpay-devices` serves the dashboard (demo mode unless WECHATPAY_MCHID is
//! set); `wxpay-devices simulate` runs the WeChat Pay simulator on its own. Every option is also
//! an environment variable.

use crate::wechatpay::config::WxPayArgs;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "wxpay-devices",
    version,
    about = "Dashboard over WeChat Pay APIv3's smart-device list"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Log lines as text or as JSON (one object a line), on standard error.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text, ignore_case = true)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the WeChat Pay simulator standalone, for any WeChat Pay client.
    Simulate(SimulateArgs),
    /// Read a password from standard input and print its Argon2 hash for DASHBOARD_PASSWORD_HASH.
    HashPassword,
}

/// Options of the dashboard server.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub wechatpay: WxPayArgs,
    /// Address to listen on (default 127.0.0.1:3000; port 0 picks a free port and logs it).
    #[arg(long, env = "LEPTOS_SITE_ADDR")]
    pub site_addr: Option<std::net::SocketAddr>,
    /// More Host names the dashboard answers to, comma-separated (`name` for any port, or
    /// `name:port`): its name behind a reverse proxy or on the LAN.
    #[arg(long, env = "DASHBOARD_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated).
    #[arg(long, env = "DASHBOARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Devices in the demo's simulated merchant (demo mode only).
    #[arg(long, env = "DEMO_DEVICES", default_value_t = 3_000, value_parser = within::<u32>("DEMO_DEVICES", 0, 200_000))]
    pub demo_devices: u32,
    /// Devices the demo's merchant changes per minute: activated, added, moved to another
    /// sub-merchant or removed, so the change history has something to show (0: a still list).
    #[arg(long, env = "DEMO_CHANGES_PER_MINUTE", default_value_t = 3, value_parser = within::<u32>("DEMO_CHANGES_PER_MINUTE", 0, 10_000))]
    pub demo_changes_per_minute: u32,
    /// Latency the demo simulator adds to each page, in milliseconds (demo mode only).
    #[arg(long, env = "DEMO_LATENCY_MS", default_value_t = 120)]
    pub demo_latency_ms: u64,
    /// Where state that must survive a restart lives (request ledger, last snapshot).
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The database of the change history, the snapshot and the request ledger:
    /// `sqlite://<file>` or `postgres://user@host/db` (default: `history.db` in DATA_DIR, or in
    /// DATA_DIR/demo in demo mode).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis shared by several replicas of this dashboard (`redis://[:password@]host:port/`):
    /// one request budget, one sync at a time, one snapshot. Needs a PostgreSQL DATABASE_URL.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Days of change history kept (older events are deleted after each sync).
    #[arg(long, env = "HISTORY_DAYS", default_value_t = 400, value_parser = within::<u32>("HISTORY_DAYS", 1, 36_500))]
    pub history_days: u32,
    /// How long a synced snapshot counts as fresh, in seconds (stretched to fit the daily quota).
    #[arg(long, env = "CACHE_TTL_SECS", default_value_t = 600)]
    pub cache_ttl_secs: u64,
    /// Argon2 hash of the dashboard password (`wxpay-devices hash-password` makes one). Required
    /// to listen on anything but a loopback address.
    #[arg(long, env = "DASHBOARD_PASSWORD_HASH", hide_env_values = true)]
    pub password_hash: Option<String>,
    /// Mark the session cookie `Secure` (set this when the dashboard is served over HTTPS).
    #[arg(long, env = "DASHBOARD_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,
    /// Secret that signs sessions (at least 32 bytes), so they survive a restart and every
    /// replica accepts them; unset: a key made at start.
    #[arg(long, env = "DASHBOARD_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,
    /// Hours a sign-in lasts.
    #[arg(long, env = "DASHBOARD_SESSION_HOURS", default_value_t = 12, value_parser = within::<u64>("DASHBOARD_SESSION_HOURS", 1, 720))]
    pub session_hours: u64,
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Devices in the simulated list (up to 1,000,000: a million-device sync takes some 500 s at the rate limit).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub devices: u32,
    /// Directory of the key files; created with fresh keys if absent.
    #[arg(long, default_value = "./sim-keys")]
    pub keys_dir: PathBuf,
    /// Seed of the generated device list.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of device-list requests answered with SYSTEM_ERROR (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Latency added to each device-list response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Requests allowed per merchant per rolling 24 hours.
    #[arg(long, default_value_t = 50_000)]
    pub daily_limit: usize,
    /// Devices the simulated merchant changes per minute (activated, added, moved, removed).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub changes_per_minute: u32,
    /// Answer /v3/certificates with 404 RESOURCE_NOT_EXISTS (a public-key-only merchant).
    #[arg(long)]
    pub no_certificates: bool,
}

/// A whole number within `lo..=hi`; the error names the environment variable (clap's own
/// names only the flag), so it reads as every other start-up refusal does.
fn within<T>(
    var: &'static str,
    lo: u64,
    hi: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s| {
        let out_of_range = || format!("{var}: {s:?} is not a whole number from {lo} to {hi}");
        let n: u64 = s.trim().parse().map_err(|_| out_of_range())?;
        if !(lo..=hi).contains(&n) {
            return Err(out_of_range());
        }
        T::try_from(n).map_err(|_| out_of_range())
    }
}
