//! Several replicas as processes (issue 16's targets, BENCHMARKS.md "Replicas"): three copies of
//! the built binary with one redis-server, one PostgreSQL and the simulator at 20,000 devices and
//! 150 ms, as a merchant would run them behind a load balancer. Run with
//! `cargo bench --features ssr --bench replica_processes` (about two minutes; needs Debian's
//! `postgresql` and `redis-server`, which `scripts/setup.sh test` installs).
//!
//! 1. **Start**: the three start together; the time until each serves the full list, and the
//!    simulator's log: requests, 429s, the busiest second.
//! 2. **Takeover**: three fresh replicas (their own Redis and database); the one holding the sync
//!    lease is killed with SIGKILL in the middle of the first sync; the time from the kill until
//!    a survivor has finished the sync, and until both serve the list.
//!
//! What does not depend on timing is asserted (0 × 429, ≤ 20 in any second, one sync's worth of
//! requests); times are printed.

#[allow(dead_code)]
#[path = "../tests/common/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "../tests/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/common/redis.rs"]
mod redis_server;

use postgres::PgServer;
use process::Proc;
use redis_server::RedisServer;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wxpay_devices::simulator::keys::SimKeys;
use wxpay_devices::simulator::service::{Simulator, SimulatorOptions};

const BIN: &str = env!("CARGO_BIN_EXE_wxpay-devices");
const DEVICES: usize = 20_000;
const LATENCY: Duration = Duration::from_millis(150);
/// The sync lease's TTL in the binary (`replicas::lease::TTL`).
const LEASE_TTL: Duration = wxpay_devices::replicas::lease::TTL;

/// A replica: the process and its base URL.
struct Replica {
    proc: Proc,
    url: String,
}

/// Starts one replica of the merchant whose keys are in `keys_dir`.
fn start_replica(
    keys_dir: &Path,
    sim_url: &str,
    db_url: &str,
    redis_url: &str,
    data_dir: PathBuf,
) -> Proc {
    let mut cmd = process::dashboard_command(BIN);
    process::simulator_credentials(&mut cmd, keys_dir, sim_url)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", data_dir)
        .env("DATABASE_URL", db_url)
        .env("REDIS_URL", redis_url)
        .env(
            "DASHBOARD_SESSION_KEY",
            "the replicas' shared session key, 32+ bytes",
        )
        .env("RUST_LOG", "info");
    Proc::spawn(cmd)
}

/// Three replicas started together.
fn start_three(
    dir: &Path,
    keys_dir: &Path,
    sim_url: &str,
    db_url: &str,
    redis_url: &str,
) -> Vec<Replica> {
    let procs: Vec<Proc> = (0..3)
        .map(|i| {
            start_replica(
                keys_dir,
                sim_url,
                db_url,
                redis_url,
                dir.join(format!("r{i}")),
            )
        })
        .collect();
    procs
        .into_iter()
        .map(|mut proc| {
            let port = proc.wait_for_port("dashboard listening on", Duration::from_secs(60));
            Replica {
                proc,
                url: format!("http://127.0.0.1:{port}"),
            }
        })
        .collect()
}

/// A gauge or counter from a replica's `/metrics` (None if it does not answer).
async fn metric(http: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{url}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

/// Waits until each replica in `which` serves all the devices; the time each did, from `t0`.
async fn serving(
    http: &reqwest::Client,
    replicas: &[Replica],
    which: &[usize],
    t0: Instant,
    limit: Duration,
) -> Vec<Duration> {
    let mut when: Vec<Option<Duration>> = vec![None; replicas.len()];
    loop {
        for &i in which {
            if when[i].is_none()
                && metric(http, &replicas[i].url, "wxpay_snapshot_devices").await
                    == Some(DEVICES as f64)
            {
                when[i] = Some(t0.elapsed());
            }
        }
        if which.iter().all(|&i| when[i].is_some()) {
            return which.iter().map(|&i| when[i].unwrap()).collect();
        }
        assert!(
            t0.elapsed() < limit,
            "not every replica serves the list within {limit:?}: {when:?}\n{}",
            replicas
                .iter()
                .map(|r| r.proc.output())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests in the simulator's log: how many, how many 429s, the busiest second (the
/// simulator's own measure).
fn requests(sim: &Simulator) -> (usize, usize, usize) {
    let log = sim.log();
    let most = sim.busiest_second();
    let limited = log.iter().filter(|r| r.status == 429).count();
    // A 429 is explained by the requests around it (ms from it).
    for r in log.iter().filter(|r| r.status == 429) {
        let near: Vec<String> = log
            .iter()
            .map(|other| other.at)
            .map(|t| t.duration_since(r.at).as_secs_f64() - r.at.duration_since(t).as_secs_f64())
            .filter(|d| d.abs() < 1.2)
            .map(|d| format!("{:+.0}", d * 1000.0))
            .collect();
        eprintln!(
            "429 ({:?}) {}: requests around it: {}",
            r.code,
            r.path_and_query,
            near.join(" ")
        );
    }
    (log.len(), limited, most)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn start_bench(
    http: &reqwest::Client,
    dir: &Path,
    keys_dir: &Path,
    sim: &Simulator,
    sim_url: &str,
    pg: &PgServer,
) {
    let redis = RedisServer::start();
    let db_url = pg.database("start").await;
    sim.clear_log();
    let t0 = Instant::now();
    let replicas = start_three(dir, keys_dir, sim_url, &db_url, &redis.url());
    let started = t0.elapsed();
    let times = serving(http, &replicas, &[0, 1, 2], t0, Duration::from_secs(120)).await;
    // Nothing more is sent once every replica serves the list (no second sync).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (n, limited, busiest) = requests(sim);
    let pages = DEVICES.div_ceil(100);
    println!(
        "replica processes: 3 started ({} until all listened); each served all {DEVICES} devices \
         {} / {} / {} after the start; simulator: {n} requests (one sync is {pages}), {limited} × 429, \
         busiest second {busiest}",
        secs(started),
        secs(times[0]),
        secs(times[1]),
        secs(times[2]),
    );
    assert_eq!(limited, 0, "no 429");
    assert!(busiest <= 20, "{busiest} requests in one second");
    assert!(
        n <= pages + 1,
        "{n} requests: one sync's worth ({pages}), not one per replica"
    );
}

async fn takeover_bench(
    http: &reqwest::Client,
    dir: &Path,
    keys_dir: &Path,
    sim: &Simulator,
    sim_url: &str,
    pg: &PgServer,
) {
    let redis = RedisServer::start();
    let db_url = pg.database("takeover").await;
    sim.clear_log();
    let t0 = Instant::now();
    let mut replicas = start_three(dir, keys_dir, sim_url, &db_url, &redis.url());
    // The lease holder, once a third of the first sync's pages are fetched.
    let leader = loop {
        let mut holder = None;
        for (i, r) in replicas.iter().enumerate() {
            if metric(http, &r.url, "wxpay_replica_lease_held").await == Some(1.0) {
                holder = Some(i);
            }
        }
        if let Some(i) = holder.filter(|_| sim.log().len() >= DEVICES / 100 / 3) {
            break i;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no lease holder");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    replicas[leader].proc.signal("KILL");
    let killed = Instant::now();
    let pages_before = sim.log().len();
    let _ = replicas[leader].proc.wait(Duration::from_secs(10));
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // The one that finished the sync first, then both.
    let mut first = None;
    while first.is_none() {
        for &i in &survivors {
            if metric(http, &replicas[i].url, "wxpay_syncs_succeeded_total").await == Some(1.0) {
                first = Some(killed.elapsed());
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(90),
            "no survivor finished the sync"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let both = serving(http, &replicas, &survivors, killed, Duration::from_secs(90)).await;
    let (n, limited, busiest) = requests(sim);
    println!(
        "replica processes: the leader killed (SIGKILL) after {pages_before} of {} pages; a survivor \
         finished the sync {} after the kill (lease TTL {}; target TTL + 12 s = {}), both survivors \
         served the list after {} and {}; simulator: {n} requests in all, {limited} × 429, busiest \
         second {busiest}",
        DEVICES / 100,
        secs(first.unwrap()),
        secs(LEASE_TTL),
        secs(LEASE_TTL + Duration::from_secs(12)),
        secs(both[0]),
        secs(both[1]),
    );
    assert_eq!(limited, 0, "no 429");
    assert!(busiest <= 20, "{busiest} requests in one second");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("wxpay-replica-bench-{}", std::process::id()));
        let keys_dir = dir.join("keys");
        let keys = SimKeys::load_or_create(&keys_dir).unwrap();
        let sim = Simulator::new(
            keys,
            SimulatorOptions {
                devices: DEVICES,
                latency: LATENCY,
                ..Default::default()
            },
        );
        let sim_url = sim.spawn_local().await.unwrap();
        let pg = PgServer::start();
        let http = reqwest::Client::new();
        start_bench(&http, &dir, &keys_dir, &sim, &sim_url, &pg).await;
        takeover_bench(&http, &dir, &keys_dir, &sim, &sim_url, &pg).await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
