//! The server as operators see it (issue 17, BENCHMARKS.md "Under load"): the release binary
//! against the simulator in a process of its own (as against WeChat Pay) with 100,000 devices, its resident memory (VmRSS) after the first sync and
//! after a load, and page views under load with `wrk` (Debian's package) on the same machine:
//! the grid page for a mix of filtered URLs with `Accept-Encoding: br` as browsers send, and
//! the grid's server function likewise.
//!
//! `cargo bench --features ssr --bench server_load` (about two minutes: the first sync of
//! 100,000 devices takes ~55 s at the rate limit; `-- 20000` for a smaller list). Figures are
//! printed with the command lines that made them; nothing is timed in a test.

#[allow(dead_code)]
#[path = "../tests/common/process.rs"]
mod process;

use process::Proc;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wxpay-devices");

/// The grid URLs of the mix: no filter, filters, grouping, sorting, paging, a search.
const VIEWS: &[&str] = &[
    "/",
    "/?os=ANDROID",
    "/?category=2&status=ACTIVATED",
    "/?group=class&page=3",
    "/?sort=activation_time&dir=desc",
    "/?os=LINUX&group=sub_merchant&page=2",
    "/?q=pro",
    "/?status=INACTIVATED&sort=device_model",
];

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Runs wrk with a Lua script; returns (requests/s, p50 ms, p99 ms) and prints the command.
fn wrk(base: &str, script: &str, name: &str) -> (f64, f64, f64) {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("wxpay-wrk-{}-{name}.lua", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let args = [
        "-t2",
        "-c32",
        "-d15s",
        "--latency",
        "-s",
        path.to_str().unwrap(),
        base,
    ];
    let out = Command::new("wrk")
        .args(args)
        .output()
        .expect("wrk is installed (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = std::fs::remove_file(&path);
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let pct = |p: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .map(|v| {
                let v = v.trim();
                if let Some(ms) = v.strip_suffix("ms") {
                    ms.parse().unwrap_or(f64::NAN)
                } else if let Some(us) = v.strip_suffix("us") {
                    us.parse::<f64>().unwrap_or(f64::NAN) / 1000.0
                } else if let Some(s) = v.strip_suffix('s') {
                    s.parse::<f64>().unwrap_or(f64::NAN) * 1000.0
                } else {
                    f64::NAN
                }
            })
            .unwrap_or(f64::NAN)
    };
    let non2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map(|v| v.trim().to_string());
    assert!(non2xx.is_none(), "{name}: errors under load\n{text}");
    println!("  $ wrk {} <{name}.lua>", args[..4].join(" "));
    (rate, pct("50%"), pct("99%"))
}

fn main() {
    let devices: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("wxpay-load-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The WeChat Pay side in a process of its own, as a real merchant's API would be: the
    // dashboard's memory is its own.
    let keys_dir = dir.join("keys");
    let mut sim = Command::new(BIN);
    sim.args([
        "simulate",
        "--port",
        "0",
        "--latency-ms",
        "20",
        "--devices",
        &devices.to_string(),
        "--keys-dir",
    ])
    .arg(&keys_dir);
    let mut sim = Proc::spawn(sim);
    let sim_port = sim.wait_for_port("WECHATPAY_BASE_URL=", Duration::from_secs(120));
    let mut cmd = process::dashboard_command(BIN);
    process::simulator_credentials(&mut cmd, &keys_dir, &format!("http://127.0.0.1:{sim_port}"))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("LEPTOS_SITE_ROOT", "target/site")
        .env("DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "warn,wxpay_devices::server=info");
    let mut server = Proc::spawn(cmd);
    let port = server.wait_for_port("dashboard listening on", Duration::from_secs(60));
    let base = format!("http://127.0.0.1:{port}");
    let pid = server.id();
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    // The first sync runs at the rate limit (20 pages a second): a generous bound on it.
    let limit = Duration::from_secs(120 + devices as u64 / 100 / 10);
    // During the first sync: a grid page every second (is the UI there, and how fast), and
    // the process' memory.
    let (mut during, mut rss_max, mut with_progress) = (Vec::new(), 0f64, 0usize);
    rt.block_on(async {
        let mut next_view = Instant::now();
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                started.elapsed() < limit,
                "no snapshot: {}",
                server.output()
            );
            rss_max = rss_max.max(rss_mb(pid));
            if Instant::now() >= next_view {
                next_view += Duration::from_secs(1);
                let t = Instant::now();
                // Uncompressed, to read it (this client does not decode brotli).
                let r = http
                    .get(format!("{base}/?group=class"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "the grid answers during the first sync");
                let body = r.text().await.unwrap_or_default();
                during.push(t.elapsed());
                if body.contains("data-testid=\"partial\"") {
                    with_progress += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    during.sort();
    println!(
        "server load: {devices} devices (the simulator in its own process, 20 ms a request), first sync done after {:.1} s; VmRSS {:.0} MB (at most {:.0} MB during the sync)",
        started.elapsed().as_secs_f64(),
        rss_mb(pid),
        rss_max
    );
    if !during.is_empty() {
        println!(
            "  during the first sync: {} grid pages (one a second), {} of them showing the sync's progress and the devices so far; answered in median {:.0} ms, slowest {:.0} ms",
            during.len(),
            with_progress,
            during[during.len() / 2].as_secs_f64() * 1000.0,
            during.last().unwrap().as_secs_f64() * 1000.0
        );
    }
    // A few hundred page views, as after a morning's use.
    rt.block_on(async {
        for i in 0..400 {
            let url = format!("{base}{}", VIEWS[i % VIEWS.len()]);
            let r = http
                .get(url)
                .header("accept-encoding", "br")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await;
        }
    });
    println!("  after 400 page views: VmRSS {:.0} MB", rss_mb(pid));
    let size = rt.block_on(async {
        let r = http
            .get(format!("{base}/?group=class"))
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap().len()
    });
    println!("  a 50-row grouped page: {} KB of HTML", size / 1024);

    let urls = VIEWS
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let pages = format!(
        r#"local views = {{ {urls} }}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", views[(n % #views) + 1], {{ ["Accept-Encoding"] = "br", ["Accept"] = "text/html" }})
end
"#
    );
    let (rate, p50, p99) = wrk(&base, &pages, "pages");
    println!(
        "  grid pages, {} filtered URLs, Accept-Encoding: br, 32 connections: {rate:.0} requests/s, p50 {p50:.1} ms, p99 {p99:.1} ms; VmRSS after {:.0} MB",
        VIEWS.len(),
        rss_mb(pid)
    );
    let queries = VIEWS
        .iter()
        .map(|v| format!("\"{}\"", v.trim_start_matches("/?").trim_start_matches('/')))
        .collect::<Vec<_>>()
        .join(", ");
    let calls = format!(
        r#"local queries = {{ {queries} }}
local n = 0
request = function()
  n = n + 1
  local body = '{{"query":"' .. queries[(n % #queries) + 1] .. '"}}'
  return wrk.format("POST", "/api/load_view", {{ ["Content-Type"] = "application/json", ["Accept-Encoding"] = "br", ["Origin"] = "{base}" }}, body)
end
"#
    );
    let (rate, p50, p99) = wrk(&base, &calls, "server-fn");
    println!(
        "  the grid's server function (load_view), same views, br: {rate:.0} requests/s, p50 {p50:.1} ms, p99 {p99:.1} ms; VmRSS after {:.0} MB",
        rss_mb(pid)
    );
    // First contentful paint of the grid in headless Chromium (end2end's Playwright).
    if std::path::Path::new("end2end/node_modules/playwright-core").exists() {
        let out = Command::new("node")
            .args(["end2end/perf/fcp.mjs", &format!("{base}/"), "5"])
            .output()
            .expect("node runs");
        println!(
            "  first contentful paint of the grid, headless Chromium, a new context each (ms): {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    server.signal("TERM");
    let _ = server.wait(Duration::from_secs(30));
    sim.signal("TERM");
    let _ = sim.wait(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
}
