//! The figures in BENCHMARKS.md: sync against the simulator at the real rate limit, the query
//! model on 100,000 devices, memory held, and export times. Run with
//! `cargo bench --features ssr` (add `-- quick` to replace the two 20,000-device syncs by one of
//! 2,000, or `-- sync` for the syncs only). `make test` runs the quick form.
//!
//! Times are printed, never asserted (the machines are shared and noisy). What does not depend
//! on timing is asserted, so a run that prints a figure also proves it: no 429, exactly one
//! request per page, every device once, exports with flat memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wxpay_devices::query::apply::{run, SnapshotIndex};
use wxpay_devices::query::DeviceQuery;
use wxpay_devices::simulator::dataset::{generate, DatasetSpec};
use wxpay_devices::simulator::keys::SimKeys;
use wxpay_devices::simulator::service::{Simulator, SimulatorOptions};
use wxpay_devices::sync::service::{SyncService, SyncSettings};
use wxpay_devices::sync::snapshot::{Snapshot, FORMAT};
use wxpay_devices::view::AppState;
use wxpay_devices::wechatpay::client::WxPayClient;

/// Counts live heap bytes and their peak.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A simulator with `options` on a loopback port, and a sync service reading it.
async fn service_over(
    keys: &SimKeys,
    options: SimulatorOptions,
    data_dir: Option<std::path::PathBuf>,
    source: &str,
) -> (Simulator, Arc<SyncService>) {
    let sim = Simulator::new(keys.clone(), options);
    let url = sim.spawn_local().await.unwrap();
    let client = WxPayClient::new(&sim.client_config(&url, true, false)).unwrap();
    (
        sim,
        SyncService::new(
            Arc::new(client),
            source.into(),
            true,
            SyncSettings::default(),
            data_dir,
        ),
    )
}

async fn sync_run(keys: &SimKeys, devices: usize, error_rate: f64) {
    let options = SimulatorOptions {
        devices,
        latency: Duration::from_millis(150),
        error_rate,
        ..Default::default()
    };
    let (sim, service) = service_over(keys, options, None, "bench").await;
    let start = Instant::now();
    let snap = service.snapshot().await.unwrap().snapshot;
    let took = start.elapsed();
    let log = sim.log();
    let limited = log.iter().filter(|r| r.status == 429).count();
    let errors = log.iter().filter(|r| r.status == 500).count();
    let busiest = sim.busiest_second();
    let unique: std::collections::HashSet<_> =
        snap.devices.iter().map(|d| d.device_sn.clone()).collect();
    assert_eq!(limited, 0, "no request may be refused with 429");
    assert!(busiest <= 20, "{busiest} requests in one second");
    assert_eq!(
        log.len(),
        devices.div_ceil(100) + errors,
        "one request per page, plus one per injected error"
    );
    assert_eq!((snap.devices.len(), unique.len()), (devices, devices));
    println!(
        "sync {devices} devices, 150 ms latency, {:.0} % SYSTEM_ERROR: {:.2} s, {} requests ({errors} injected errors retried), {limited} × 429, busiest second {busiest} requests, {} devices ({} unique, {} expected)",
        error_rate * 100.0,
        took.as_secs_f64(),
        log.len(),
        snap.devices.len(),
        unique.len(),
        devices
    );
}

/// A sync during which the merchant's list changes: 50 devices removed after 60 pages, 50
/// added after 120. It must end with exactly the list as it then is.
async fn sync_with_changes(keys: &SimKeys, devices: usize) {
    let options = SimulatorOptions {
        devices,
        latency: Duration::from_millis(150),
        ..Default::default()
    };
    let (sim, service) = service_over(keys, options, None, "bench").await;
    sim.change_list_after(60, |list| {
        let step = list.len() / 50;
        let mut i = 0;
        list.retain(|_| {
            i += 1;
            !(i % step == 0 && i / step <= 50)
        });
    });
    sim.change_list_after(120, |list| {
        let step = list.len() / 50;
        for k in 0..50 {
            list.insert(
                k * step,
                wxpay_devices::model::Device {
                    device_sn: Some(format!("NEW{k:04}")),
                    ..Default::default()
                },
            );
        }
    });
    let start = Instant::now();
    let snap = service.snapshot().await.unwrap().snapshot;
    let took = start.elapsed();
    let log = sim.log();
    let limited = log.iter().filter(|r| r.status == 429).count();
    let sns = |d: &[wxpay_devices::model::Device]| -> Vec<Option<String>> {
        d.iter().map(|d| d.device_sn.clone()).collect()
    };
    let exact = sns(&snap.devices) == sns(&sim.devices());
    println!(
        "sync {devices} devices, 150 ms latency, 50 removed and 50 added during the sync: {:.2} s, {} requests ({} of them reading the list again), {limited} × 429, busiest second {} requests, {} devices, exactly the final list: {exact}, complete: {}",
        took.as_secs_f64(),
        log.len(),
        snap.repair_requests,
        sim.busiest_second(),
        snap.devices.len(),
        snap.complete,
    );
    assert!(exact, "the snapshot is the list as it ended");
    assert!(snap.complete);
    assert_eq!(limited, 0);
    assert!(sim.busiest_second() <= 20);
}

async fn cold_views(keys: &SimKeys) {
    let n = 5_000;
    let options = SimulatorOptions {
        devices: n,
        latency: Duration::from_millis(50),
        ..Default::default()
    };
    let (sim, service) = service_over(keys, options, None, "bench").await;
    let state = AppState::new(service);
    let views = futures::future::join_all((0..100).map(|i| {
        let s = state.clone();
        async move {
            s.view(&format!("page={}", i % 7 + 1))
                .await
                .map(|v| v.total)
        }
    }))
    .await;
    assert!(views.iter().all(|v| v.as_ref().ok() == Some(&n)));
    println!("100 concurrent page views on a cold cache ({n} devices): {} upstream requests (ceil(N/100) = {})", sim.log().len(), n.div_ceil(100));
    assert_eq!(sim.log().len(), n.div_ceil(100), "one sync for all views");
    sim.clear_log();
    for _ in 0..100 {
        state.view("os=LINUX").await.unwrap();
    }
    println!(
        "100 views inside the TTL: {} upstream requests",
        sim.log().len()
    );
    assert_eq!(sim.log().len(), 0, "views inside the TTL cost nothing");
}

fn query_bench() {
    let n = 100_000;
    let before = LIVE.load(Ordering::Relaxed);
    let devices = Arc::new(generate(&DatasetSpec {
        devices: n,
        ..Default::default()
    }));
    let held = LIVE.load(Ordering::Relaxed) - before;
    let t = Instant::now();
    let index = SnapshotIndex::build(devices.clone());
    let build = t.elapsed();
    let with_index = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "{n} devices held in {} (the snapshot), {} with the query index; index built in {:.0} ms",
        mb(held),
        mb(with_index),
        build.as_secs_f64() * 1000.0
    );
    let sub = devices.iter().find_map(|d| d.sub_mchid.clone()).unwrap();
    let views = [
        ("no filter, page 1".to_string(), String::new()),
        ("one sub_mchid".into(), format!("sub_mchid={sub}")),
        ("filters + facets + group + sort + page".into(), "category=2&category=1&os=ANDROID&status=ACTIVATED&group=class&sort=activation_time&dir=desc&page=3".into()),
        ("text search + group by sub-merchant + sort".into(), "q=pro&group=sub_merchant&sort=device_model".into()),
        ("sort by device SN, last page".into(), "sort=device_sn&page=2000".into()),
    ];
    for (name, qs) in views {
        let q = DeviceQuery::parse(&qs).0;
        let first = Instant::now();
        let out = run(&index, &q);
        let first = first.elapsed();
        let times: Vec<Duration> = (0..41)
            .map(|_| {
                let t = Instant::now();
                let out = run(&index, &q);
                std::hint::black_box(out.page_range(q.page, q.per_page));
                t.elapsed()
            })
            .collect();
        println!(
            "query on {n}: {name}: median {:.2} ms (first run {:.1} ms, includes lazy sort ranks/search text), {} rows",
            median(times).as_secs_f64() * 1000.0,
            first.as_secs_f64() * 1000.0,
            out.total()
        );
    }
    let after_queries = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "after the queries (lazy sort ranks and search text built): {}",
        mb(after_queries)
    );
}

/// Change history's diff: two 100,000-device snapshots, 1 % of the devices changed (a field
/// edited on 500, 250 removed, 250 added).
fn diff_bench() {
    use wxpay_devices::history::diff::{diff, ChangeKind};
    let n = 100_000;
    let before = generate(&DatasetSpec {
        devices: n,
        ..Default::default()
    });
    let mut after = before.clone();
    for (i, d) in after.iter_mut().enumerate().filter(|(i, _)| i % 200 == 0) {
        d.device_model = Some(format!("changed-{i}"));
    }
    let mut k = 0;
    after.retain(|_| {
        k += 1;
        k % 400 != 7
    });
    for i in 0..250 {
        after.push(wxpay_devices::model::Device {
            device_sn: Some(format!("NEWDEVICE{i:05}")),
            ..Default::default()
        });
    }
    let times: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(diff(&before, &after, true));
            t.elapsed()
        })
        .collect();
    let changes = diff(&before, &after, true);
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    let (added, removed, changed) = (
        count(ChangeKind::Added),
        count(ChangeKind::Removed),
        count(ChangeKind::Changed),
    );
    println!(
        "diff of two {n}-device snapshots, 1 % changed: median {:.1} ms ({added} added, {removed} removed, {changed} changed)",
        median(times).as_secs_f64() * 1000.0
    );
    assert_eq!(
        (added, removed, changed),
        (250, 250, 500),
        "exactly what was done"
    );
}

async fn export_bench() {
    let n = 100_000;
    let dir = std::env::temp_dir().join(format!("wxpay-bench-{}", std::process::id()));
    let devices = generate(&DatasetSpec {
        devices: n,
        ..Default::default()
    });
    let snap = Snapshot {
        format: FORMAT,
        source: "bench-export".into(),
        synced_at: wxpay_devices::clock::unix_now(),
        sync_millis: 0,
        total_count: Some(n as u64),
        received: n,
        duplicates: 0,
        requests: 1000,
        complete: true,
        expected: Some(n as u64),
        repair_requests: 0,
        devices: Arc::new(devices),
    };
    // As after a restart: the saved snapshot is served, no upstream request.
    let keys = SimKeys::generate().unwrap();
    let options = SimulatorOptions {
        devices: 0,
        ..Default::default()
    };
    let (_sim, service) = service_over(&keys, options, Some(dir.clone()), "bench-export").await;
    service.store().save(Arc::new(snap)).await.unwrap();
    service.load_saved().await.unwrap();
    let state = AppState::new(service);
    state.view("").await.unwrap(); // index built
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, wxpay_devices::export::routes(state))
            .await
            .unwrap()
    });
    let http = reqwest::Client::new();
    for (path, label) in [
        ("/export.csv", "CSV"),
        (
            "/export.csv?group=category&sort=activation_time&dir=desc",
            "CSV grouped + sorted",
        ),
        ("/export.xlsx", "XLSX"),
    ] {
        let mut times = Vec::new();
        let mut peak_extra = 0;
        let mut size = 0;
        for _ in 0..3 {
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let t = Instant::now();
            let mut response = http
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let mut bytes = 0;
            while let Some(chunk) = response.chunk().await.unwrap() {
                bytes += chunk.len();
            }
            times.push(t.elapsed());
            peak_extra = peak_extra.max(PEAK.load(Ordering::Relaxed).saturating_sub(base));
            size = bytes;
        }
        println!(
            "export {label} of {n} rows over HTTP: median {:.2} s, {} file, peak extra heap while exporting {}",
            median(times).as_secs_f64(),
            mb(size),
            mb(peak_extra)
        );
        // Flat memory: a streamed CSV holds a chunk of rows, never the file (18 MB here); the
        // XLSX's constant-memory worksheet holds about a row block (the default mode: 360 MB).
        let ceiling = if label.starts_with("CSV") { 8 } else { 48 } << 20;
        assert!(
            peak_extra < ceiling,
            "{label}: {} extra heap for a {} file",
            mb(peak_extra),
            mb(size)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let only_sync = std::env::args().any(|a| a == "sync");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let keys = SimKeys::generate().unwrap();
        if quick {
            sync_run(&keys, 2_000, 0.0).await;
        } else {
            sync_run(&keys, 20_000, 0.0).await;
            sync_run(&keys, 20_000, 0.02).await;
            sync_with_changes(&keys, 20_000).await;
        }
        cold_views(&keys).await;
    });
    if only_sync {
        return;
    }
    query_bench();
    diff_bench();
    rt.block_on(export_bench());
}
