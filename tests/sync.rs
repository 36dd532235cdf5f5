//! The sync engine against the simulator over HTTP.
#![cfg(feature = "ssr")]

mod common;

use common::{always_failing, fast_retries, setup};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wxpay_devices::model::Device;
use wxpay_devices::simulator::service::{RequestRecord, SimulatorOptions};
use wxpay_devices::status::{Failure, IntervalReason, RefreshBlocked};
use wxpay_devices::sync::error::SyncError;
use wxpay_devices::sync::fetch::FetchConfig;
use wxpay_devices::sync::service::{SyncService, SyncSettings};
use wxpay_devices::wechatpay::client::WxPayClient;

fn sns(devices: &[Device]) -> Vec<String> {
    devices
        .iter()
        .map(|d| d.device_sn.clone().unwrap())
        .collect()
}

fn device_requests(log: &[RequestRecord]) -> Vec<&RequestRecord> {
    log.iter()
        .filter(|r| r.path_and_query.starts_with("/v3/iotmanage/devices"))
        .collect()
}

#[tokio::test]
async fn a_full_sync_gets_every_device_once_within_the_rate_limit() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 4_321,
            latency: Duration::from_millis(30),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let view = service.snapshot().await.unwrap();
    assert!(view.fresh);
    assert_eq!(
        sns(&view.snapshot.devices.to_vec()),
        sns(&sim.devices()),
        "every device, in the API's order"
    );
    assert_eq!(view.snapshot.total_count, Some(4_321));
    assert_eq!(
        (view.snapshot.received, view.snapshot.duplicates),
        (4_321, 0)
    );
    let log = sim.log();
    let mut asked: Vec<&str> = device_requests(&log)
        .iter()
        .map(|r| r.path_and_query.as_str())
        .collect();
    asked.sort();
    assert_eq!(
        asked.len(),
        44,
        "each page once: {asked:?} retries {:?}",
        service.progress().retries
    );
    assert!(log.iter().all(|r| r.status == 200), "no 429 or other error");
    let busiest = sim.busiest_second();
    // How close to the limit it runs is a figure (BENCHMARKS.md), not a test.
    assert!(busiest <= 20, "{busiest} requests in one second");
    let status = service.status();
    assert_eq!(
        (status.pages_done, status.pages_total, status.devices),
        (44, 44, 4_321)
    );
    assert_eq!(status.requests_24h, 44);
}

#[tokio::test]
async fn system_errors_are_retried_until_every_page_arrives() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 2_000,
            error_rate: 0.2,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(sns(&snap.devices.to_vec()), sns(&sim.devices()));
    let errors = sim.log().iter().filter(|r| r.status == 500).count();
    assert!(errors > 0, "the simulator injected errors");
    assert_eq!(
        snap.requests as usize,
        20 + errors,
        "each failure retried once more"
    );
    assert!(
        service
            .progress()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed) as usize
            >= errors
    );
}

#[tokio::test]
async fn duplicate_serials_are_removed_and_the_difference_recorded() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 250,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let mut list = sim.devices().to_vec();
    list[180] = list[20].clone(); // the same device on two pages
    sim.set_devices(list);
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(
        (snap.received, snap.duplicates, snap.devices.len()),
        (250, 1, 249)
    );
    assert_eq!(snap.difference(), Some(-1));
    assert_eq!(
        sns(&snap.devices.to_vec())
            .iter()
            .collect::<HashSet<_>>()
            .len(),
        249
    );
}

#[tokio::test]
async fn a_list_that_shifts_during_the_sync_loses_no_device() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 3_000,
            latency: Duration::from_millis(40),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let original = sns(&sim.devices());
    // After the first 20 pages (the first rate-limit window), 7 devices appear at the front:
    // every later device moves 7 places down.
    sim.change_list_after(20, |list| {
        for i in 0..7 {
            list.insert(
                0,
                Device {
                    device_sn: Some(format!("NEW{i}")),
                    ..Default::default()
                },
            );
        }
    });
    let snap = service.snapshot().await.unwrap().snapshot;
    let got: HashSet<String> = sns(&snap.devices.to_vec()).into_iter().collect();
    assert_eq!(got.len(), snap.devices.len(), "no duplicates kept");
    assert!(
        original.iter().all(|sn| got.contains(sn)),
        "every original device is there"
    );
    // Page 21 began 7 devices early (7 read twice) and the list ended 7 later than page 0
    // said: the first pass does not add up, and a second reads the list as it now is.
    assert_eq!(
        sns(&snap.devices.to_vec()),
        sns(&sim.devices()),
        "the 7 new ones too"
    );
    assert!(snap.complete);
    assert_eq!(
        (snap.requests, snap.repair_requests),
        (62, 31),
        "31 pages twice"
    );
}

#[tokio::test]
async fn concurrent_views_on_a_cold_cache_cause_exactly_one_sync() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 1_234,
            latency: Duration::from_millis(20),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let views = futures::future::join_all((0..100).map(|_| {
        let s = service.clone();
        async move { s.snapshot().await.map(|v| v.snapshot.devices.len()) }
    }))
    .await;
    assert!(views.iter().all(|v| v.as_ref().ok() == Some(&1_234)));
    assert_eq!(
        device_requests(&sim.log()).len(),
        13,
        "ceil(1234/100) requests, once"
    );
    // Inside the TTL, views cost nothing.
    sim.clear_log();
    for _ in 0..50 {
        assert!(service.snapshot().await.unwrap().fresh);
    }
    assert!(sim.log().is_empty());
}

#[tokio::test]
async fn a_failed_sync_keeps_the_last_snapshot_on_screen_marked_stale() {
    // A huge quota, so the 300 ms TTL is the interval in force.
    let settings = SyncSettings {
        ttl: Duration::from_millis(300),
        daily_limit: 100_000_000,
        manual_min_interval: Duration::ZERO,
        ..fast_retries()
    };
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 500,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    let good = service.snapshot().await.unwrap().snapshot;
    sim.update_options(|o| o.error_rate = 1.0);
    wait_until(|| !service.status().fresh).await;
    // Past the TTL: the old snapshot is served at once while a refresh runs, and fails.
    let view = service.snapshot().await.unwrap();
    assert!(!view.fresh);
    assert!(Arc::ptr_eq(&view.snapshot, &good));
    wait_until(|| service.status().last_error.is_some()).await;
    let status = service.status();
    let err = status.last_error.unwrap();
    assert_eq!(
        err.failure,
        Failure::Api {
            code: "SYSTEM_ERROR".into()
        }
    );
    assert!(err.detail.contains("SYSTEM_ERROR"), "{}", err.detail);
    assert!(err.request_id.is_some());
    assert!(!status.fresh);
    assert_eq!(status.devices, 500, "still the last good snapshot");
    // Views go on being served, without starting a sync per view (the failure is remembered).
    let before = sim.log().len();
    for _ in 0..20 {
        assert!(Arc::ptr_eq(
            &service.snapshot().await.unwrap().snapshot,
            &good
        ));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        sim.log().len(),
        before,
        "no new sync while the failure is remembered"
    );
    // Recovery: a manual refresh replaces the snapshot.
    sim.update_options(|o| o.error_rate = 0.0);
    service.refresh_now().await.unwrap();
    wait_until(|| service.status().fresh && service.status().last_error.is_none()).await;
    assert!(!Arc::ptr_eq(
        &service.snapshot().await.unwrap().snapshot,
        &good
    ));
}

#[tokio::test]
async fn a_cold_failure_is_remembered_and_errors_are_clear() {
    let (sim, service) = always_failing(2).await;
    let e = service.snapshot().await.unwrap_err();
    assert!(matches!(*e, SyncError::Upstream(_)), "{e}");
    assert_eq!(sim.log().len(), 2, "two attempts");
    let again = service.snapshot().await.unwrap_err();
    assert!(Arc::ptr_eq(&e, &again), "remembered, not retried");
    assert_eq!(sim.log().len(), 2);
}

#[tokio::test]
async fn signature_failures_stop_the_sync_without_retrying() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 500,
            fault: wxpay_devices::simulator::service::Fault::TamperBody,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let e = service.snapshot().await.unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    assert_eq!(sim.log().len(), 1);
}

#[tokio::test]
async fn a_browser_that_goes_away_does_not_cancel_the_sync() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 800,
            latency: Duration::from_millis(50),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let s = service.clone();
    let view = tokio::spawn(async move { s.snapshot().await.map(|_| ()) });
    // The browser goes away once the sync it started is under way.
    wait_until(|| !sim.log().is_empty()).await;
    view.abort();
    wait_until(|| service.status().devices == 800).await;
    assert_eq!(device_requests(&sim.log()).len(), 8);
}

/// A sync service for `sim`'s merchant as the server builds it after a (re)start: a new
/// client, the snapshot and the ledger in the database at `db_url` (`server::local_persistence`),
/// the saved snapshot loaded.
async fn restarted_on(
    sim: &wxpay_devices::simulator::service::Simulator,
    db_url: &str,
    source: &str,
    settings: SyncSettings,
) -> (
    Arc<SyncService>,
    Arc<wxpay_devices::history::store::HistoryStore>,
) {
    use wxpay_devices::history::store::HistoryStore;
    let db = wxpay_devices::db::Database::open(db_url).await.unwrap();
    let history = Arc::new(HistoryStore::new(db, source, 400));
    history.claim(false).await.unwrap();
    // A data directory without files of before.
    let nowhere = common::TempDir::new("sync-no-files");
    let state = wxpay_devices::server::local_persistence(&history, nowhere.path(), source).await;
    let service = SyncService::with_state(
        restarted_client(sim).await,
        source.into(),
        true,
        settings,
        state,
    );
    (service, history)
}

/// The database's URL for a scenario: a SQLite file in `dir`, or a new database on `pg`.
async fn database_url(
    pg: Option<&common::postgres::PgServer>,
    dir: &common::TempDir,
    name: &str,
) -> String {
    match pg {
        Some(pg) => pg.database(name).await,
        None => format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
    }
}

#[tokio::test]
async fn restarts_serve_the_saved_snapshot_on_sqlite() {
    let dir = common::TempDir::new("sync-restart");
    restarts_serve_the_saved_snapshot_and_keep_the_quota_count(
        database_url(None, &dir, "restart").await,
    )
    .await;
}

#[tokio::test]
async fn restarts_serve_the_saved_snapshot_on_postgres() {
    let pg = common::postgres::PgServer::start();
    let dir = common::TempDir::new("sync-restart-pg");
    restarts_serve_the_saved_snapshot_and_keep_the_quota_count(
        database_url(Some(&pg), &dir, "restart").await,
    )
    .await;
}

/// After a restart on the same database (the binary's own wiring): the saved snapshot is
/// served at once, the request count is kept, nothing is asked upstream; a corrupt saved
/// snapshot is ignored, not fatal.
async fn restarts_serve_the_saved_snapshot_and_keep_the_quota_count(db_url: String) {
    let sim = wxpay_devices::simulator::service::Simulator::new(
        common::keys(),
        SimulatorOptions {
            devices: 700,
            ..Default::default()
        },
    );
    let (first, history) = restarted_on(&sim, &db_url, "test-source", fast_retries()).await;
    assert!(first.load_saved().await.is_none(), "nothing saved yet");
    first.snapshot().await.unwrap();
    assert_eq!(first.requests_24h(), 7);
    // The sync frees its slot once the snapshot and the ledger are saved.
    wait_until(|| !first.status().running).await;
    first.flush().await;
    drop(first);
    history.database().close().await;

    sim.clear_log();
    let (second, history) = restarted_on(&sim, &db_url, "test-source", fast_retries()).await;
    assert_eq!(second.requests_24h(), 7, "the ledger survived");
    let loaded = second.load_saved().await.unwrap();
    assert_eq!(loaded.devices.len(), 700);
    let view = second.snapshot().await.unwrap();
    assert!(view.fresh, "inside its interval");
    assert!(sim.log().is_empty(), "no upstream request after a restart");
    drop(second);

    // A corrupt snapshot in the database is ignored, not fatal.
    sqlx::query("UPDATE snapshots SET body = $1 WHERE role = 'served'")
        .bind(b"{ broken".to_vec())
        .execute(history.database().pool())
        .await
        .unwrap();
    history.database().close().await;
    let (third, _) = restarted_on(&sim, &db_url, "test-source", fast_retries()).await;
    assert!(third.load_saved().await.is_none());
    assert_eq!(third.requests_24h(), 7, "the ledger is still there");
}

#[tokio::test]
async fn the_daily_ceiling_holds_after_a_restart_on_sqlite() {
    let dir = common::TempDir::new("sync-quota");
    a_sync_that_would_pass_the_daily_ceiling_is_refused_even_after_a_restart(
        database_url(None, &dir, "quota").await,
    )
    .await;
}

#[tokio::test]
async fn the_daily_ceiling_holds_after_a_restart_on_postgres() {
    let pg = common::postgres::PgServer::start();
    let dir = common::TempDir::new("sync-quota-pg");
    a_sync_that_would_pass_the_daily_ceiling_is_refused_even_after_a_restart(
        database_url(Some(&pg), &dir, "quota").await,
    )
    .await;
}

async fn a_sync_that_would_pass_the_daily_ceiling_is_refused_even_after_a_restart(db_url: String) {
    let settings = SyncSettings {
        daily_limit: 45,
        reserve: 10,
        ..fast_retries()
    };
    let sim = wxpay_devices::simulator::service::Simulator::new(
        common::keys(),
        SimulatorOptions {
            devices: 3_000,
            ..Default::default()
        },
    );
    let (service, history) = restarted_on(&sim, &db_url, "test-source", settings.clone()).await;
    // 30 pages needed, 35 allowed to automatic syncs: the first fits.
    service.snapshot().await.unwrap();
    assert_eq!(service.requests_24h(), 30);
    wait_until(|| !service.status().running).await;
    // The next one (30 more) does not: refused before sending, with a clear message.
    service
        .refresh_now()
        .await
        .expect_err("manual refresh: 60 > 45");
    let status = service.status();
    assert!(matches!(
        status.manual_refresh_blocked,
        Some(RefreshBlocked::Quota {
            used: 30,
            limit: 45
        })
    ));
    assert_eq!(sim.log().len(), 30);
    service.flush().await;
    drop(service);
    history.database().close().await;

    // A restart: the same merchant, the same database.
    let (restarted, _) = restarted_on(&sim, &db_url, "test-source", settings.clone()).await;
    assert_eq!(
        restarted.requests_24h(),
        30,
        "the ledger survived the restart"
    );
    assert_eq!(restarted.load_saved().await.unwrap().devices.len(), 3_000);
    // An automatic refresh is refused before any request is sent (30 used + 30 > 35)...
    restarted.refresh_in_background();
    wait_until(|| restarted.status().last_error.is_some()).await;
    let err = restarted.status().last_error.unwrap();
    assert!(
        matches!(
            err.failure,
            Failure::Quota {
                needed: 30,
                used: 30,
                ceiling: 35,
                ..
            }
        ),
        "{err:?}"
    );
    // ...and so is a manual one (30 + 30 > 45).
    let why = restarted.refresh_now().await.unwrap_err();
    assert_eq!(
        why,
        RefreshBlocked::Quota {
            used: 30,
            limit: 45
        }
    );
    assert_eq!(sim.log().len(), 30, "nothing sent after the restart");
    // The saved snapshot goes on being served.
    assert_eq!(
        restarted.snapshot().await.unwrap().snapshot.devices.len(),
        3_000
    );
}

#[tokio::test]
async fn automatic_syncs_leave_the_reserve_to_manual_ones() {
    // 10 pages a sync; 25 a day, 10 of them kept for manual refreshes: automatic syncs may
    // use 15, so after one, the second automatic sync is refused, and a manual one is not.
    let settings = SyncSettings {
        daily_limit: 25,
        reserve: 10,
        manual_min_interval: Duration::ZERO,
        failure_memory: Duration::from_millis(1),
        ..fast_retries()
    };
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 1_000,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    service.snapshot().await.unwrap();
    assert_eq!(service.requests_24h(), 10);
    // (The interval in force is stretched to 16 h by this tiny quota: start the refresh the
    // interval would start.)
    service.refresh_in_background();
    wait_until(|| service.status().last_error.is_some()).await;
    let err = service.status().last_error.unwrap();
    assert!(
        matches!(
            err.failure,
            Failure::Quota {
                used: 10,
                ceiling: 15,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.log().len(), 10, "the automatic sync sent nothing");
    // The manual one may use the reserve.
    service.refresh_now().await.unwrap();
    wait_until(|| service.requests_24h() == 20 && !service.status().running).await;
    assert_eq!(sim.log().len(), 20);
}

#[tokio::test]
async fn a_list_bigger_than_the_budget_is_refused_after_its_first_page() {
    // Budget 25 requests; the first page says 3,000 devices (30 pages): stop there.
    let settings = SyncSettings {
        daily_limit: 25,
        reserve: 0,
        ..fast_retries()
    };
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 3_000,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    let e = service.snapshot().await.unwrap_err();
    assert!(
        matches!(
            *e,
            SyncError::Quota {
                needed: 30,
                ceiling: 25,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(sim.log().len(), 1, "only the first page was fetched");
    assert_eq!(service.requests_24h(), 1);
}

#[tokio::test]
async fn without_total_count_the_sync_follows_links_next() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 1_234,
            omit_total_count: true,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(sns(&snap.devices.to_vec()), sns(&sim.devices()));
    // 13 pages; asked for 1, 1, 2, 4 and 8 at a time: 3 past the end.
    assert_eq!(device_requests(&sim.log()).len(), 16);
    assert_eq!(snap.total_count, None);
    assert!(snap.complete);
}

#[tokio::test]
async fn the_refresh_interval_stretches_to_fit_the_quota() {
    let (_sim, service) = setup(
        SimulatorOptions {
            devices: 10,
            ..Default::default()
        },
        SyncSettings::default(),
        None,
    )
    .await;
    let (small, why) = service.interval(3_000);
    assert_eq!(small, Duration::from_secs(600));
    assert_eq!(why, IntervalReason::CacheLifetime);
    // 100,000 devices: 1,000 requests a sync; 47,500 a day for automatic refreshes.
    let (big, why) = service.interval(100_000);
    assert_eq!(big.as_secs(), 1_818, "{big:?}");
    assert_eq!(
        why,
        IntervalReason::Quota {
            devices: 100_000,
            cost: 1_000,
            per_day: 47_500,
            reserve: 2_500
        }
    );
    let syncs_a_day = 86_400 / big.as_secs();
    assert!(syncs_a_day * 1_000 <= 47_500);
}

async fn restarted_client(sim: &wxpay_devices::simulator::service::Simulator) -> Arc<WxPayClient> {
    let url = sim.spawn_local().await.unwrap();
    Arc::new(WxPayClient::new(&sim.client_config(&url, true, false)).unwrap())
}

async fn wait_until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_sync_retried_after_a_failure_does_not_refetch_pages_it_has() {
    let settings = SyncSettings {
        manual_min_interval: Duration::ZERO,
        fetch: FetchConfig {
            max_attempts: 1,
            ..fast_retries().fetch
        },
        ..fast_retries()
    };
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 3_000,
            failing_offsets: vec![2_500],
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    let failed = service.snapshot().await;
    assert!(
        failed.is_err(),
        "page 25 fails and is not retried: the first sync fails"
    );
    wait_until(|| !service.status().running).await;
    let fetched_before = sim.log().iter().filter(|r| r.status == 200).count();
    assert!(fetched_before > 0);
    sim.update_options(|o| o.failing_offsets.clear());
    sim.clear_log();
    service.refresh_now().await.unwrap();
    wait_until(|| service.status().devices == 3_000).await;
    let second = sim.log().len();
    assert!(
        second < 30,
        "{second} requests: pages already fetched came from the page cache"
    );
    assert!(second + fetched_before >= 30, "{second} + {fetched_before}");
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(sns(&snap.devices.to_vec()), sns(&sim.devices()));
}
/// Serials of `devices`, with a placeholder for devices without one (kept in their place).
fn all_sns(devices: &[Device]) -> Vec<String> {
    devices
        .iter()
        .map(|d| d.device_sn.clone().unwrap_or_else(|| "<none>".into()))
        .collect()
}

#[tokio::test]
async fn devices_removed_during_a_sync_are_repaired_to_exactly_the_final_list() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 3_000,
            latency: Duration::from_millis(20),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    // After 20 pages, 50 devices spread over the pages already read disappear: later pages
    // shift up, and the devices that slid into read pages would be missed.
    sim.change_list_after(20, |list| {
        let mut i = 0;
        list.retain(|_| {
            i += 1;
            !(i % 37 == 0 && i < 37 * 51)
        });
    });
    let snap = service.snapshot().await.unwrap().snapshot;
    let now = sim.devices();
    assert_eq!(now.len(), 2_950);
    assert_eq!(
        all_sns(&snap.devices.to_vec()),
        all_sns(&now),
        "exactly the final list"
    );
    assert!(snap.complete, "adds up after the repair");
    assert_eq!(snap.expected, Some(2_950));
    // The first pass (30 pages) did not add up; one more pass (30 pages) did.
    assert_eq!(snap.requests, 60);
    assert_eq!(snap.repair_requests, 30);
}

#[tokio::test]
async fn devices_added_during_a_sync_are_repaired_to_exactly_the_final_list() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 3_000,
            latency: Duration::from_millis(20),
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    sim.change_list_after(20, |list| {
        for i in 0..50 {
            list.insert(
                i * 40,
                Device {
                    device_sn: Some(format!("ADDED{i:02}")),
                    ..Default::default()
                },
            );
        }
    });
    let snap = service.snapshot().await.unwrap().snapshot;
    let now = sim.devices();
    assert_eq!(now.len(), 3_050);
    assert_eq!(all_sns(&snap.devices.to_vec()), all_sns(&now));
    assert!(snap.complete);
    assert_eq!(
        snap.duplicates, 0,
        "the repaired pass read each device once"
    );
}

#[tokio::test]
async fn without_total_count_or_links_the_sync_pages_until_a_short_page() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 1_234,
            omit_total_count: true,
            omit_links: true,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(all_sns(&snap.devices.to_vec()), all_sns(&sim.devices()));
    assert!(snap.complete);
    assert_eq!(snap.expected, Some(1_234));
    // Pages are asked for 1, 1, 2, 4, 8 at a time: the 13th is short, 3 were past the end.
    assert_eq!(device_requests(&sim.log()).len(), 16);
}

#[tokio::test]
async fn a_list_of_exactly_full_pages_ends_without_an_extra_request() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 2_000,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let snap = service.snapshot().await.unwrap().snapshot;
    assert!(snap.complete);
    assert_eq!(snap.devices.len(), 2_000);
    assert_eq!(device_requests(&sim.log()).len(), 20);
}

#[tokio::test]
async fn devices_without_a_serial_are_kept_and_never_merged() {
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 500,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let mut list = sim.devices().to_vec();
    for (i, d) in list.iter_mut().enumerate().filter(|(i, _)| i % 10 == 0) {
        d.device_sn = match i % 3 {
            0 => None,
            1 => Some(String::new()),
            _ => Some("   ".into()),
        };
    }
    sim.set_devices(list.clone());
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(
        snap.devices.len(),
        500,
        "50 devices without a serial, all kept"
    );
    assert_eq!(snap.devices.to_vec(), list);
    assert!(snap.complete);
    assert_eq!(snap.duplicates, 0);
}

#[tokio::test]
async fn an_answer_for_another_offset_is_refused() {
    let (_sim, service) = setup(
        SimulatorOptions {
            devices: 500,
            fault: wxpay_devices::simulator::service::Fault::WrongOffset,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let e = service.snapshot().await.unwrap_err();
    assert!(e.to_string().contains("offset"), "names what is wrong: {e}");
}

#[tokio::test]
async fn a_list_that_never_settles_is_served_but_marked_incomplete() {
    let settings = SyncSettings {
        fetch: FetchConfig {
            repair_passes: 1,
            ..fast_retries().fetch
        },
        ..fast_retries()
    };
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 1_000,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    // A device disappears after every 5th page answered, all through the sync.
    for n in (5..200).step_by(5) {
        sim.change_list_after(n, |list| {
            list.remove(0);
        });
    }
    let snap = service.snapshot().await.unwrap().snapshot;
    assert!(!snap.complete);
    let expected = snap.expected.expect("the size the API reported");
    assert_eq!(snap.requests - snap.repair_requests, 10, "the first pass");
    assert!(
        snap.repair_requests <= 11,
        "one repair pass: {}",
        snap.repair_requests
    );
    let status = service.status();
    assert!(!status.complete);
    assert_eq!(status.expected, Some(expected));
}

#[tokio::test]
async fn certificate_downloads_pass_the_same_limiter_and_ledger() {
    // Certificate mode: the first answer is signed by a certificate not yet downloaded, so the
    // sync downloads certificates in the middle of its first window of 20 requests.
    let sim = wxpay_devices::simulator::service::Simulator::new(
        common::keys(),
        SimulatorOptions {
            devices: 4_000,
            latency: Duration::from_millis(30),
            ..Default::default()
        },
    );
    let url = sim.spawn_local().await.unwrap();
    let client = Arc::new(WxPayClient::new(&sim.client_config(&url, false, true)).unwrap());
    let service = SyncService::new(client, "cert-mode".into(), true, fast_retries(), None);
    let snap = service.snapshot().await.unwrap().snapshot;
    assert_eq!(snap.devices.len(), 4_000);
    let log = sim.log();
    let downloads = log
        .iter()
        .filter(|r| r.path_and_query == "/v3/certificates")
        .count();
    assert_eq!(downloads, 1);
    assert!(
        log.iter().all(|r| r.status == 200),
        "no 429: {:?}",
        log.iter().filter(|r| r.status != 200).collect::<Vec<_>>()
    );
    assert!(
        sim.busiest_second() <= 20,
        "{} in one second",
        sim.busiest_second()
    );
    assert_eq!(
        service.requests_24h(),
        41,
        "40 pages and the certificate download"
    );
}

#[tokio::test]
async fn a_sync_that_panics_frees_its_slot_and_says_so() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use wxpay_devices::sync::fetch::PageObserver;
    let explode = Arc::new(AtomicBool::new(true));
    let trigger = explode.clone();
    let settings = SyncSettings {
        manual_min_interval: Duration::ZERO,
        fetch: FetchConfig {
            observer: Some(PageObserver(Arc::new(move |offset, _| {
                if offset == 300 && trigger.load(Ordering::SeqCst) {
                    panic!("observer exploded at offset {offset}");
                }
            }))),
            ..fast_retries().fetch
        },
        ..fast_retries()
    };
    let (_sim, service) = setup(
        SimulatorOptions {
            devices: 800,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    let e = service.snapshot().await.unwrap_err();
    assert!(e.to_string().contains("internal error"), "{e}");
    let status = service.status();
    assert!(!status.running, "the slot is free");
    assert!(status.last_error.unwrap().detail.contains("exploded"));
    // The next sync runs (it is not "already running" forever) and succeeds.
    explode.store(false, Ordering::SeqCst);
    service.refresh_now().await.unwrap();
    wait_until(|| service.status().devices == 800).await;
    assert!(service.status().last_error.is_none());
}

#[tokio::test]
async fn retries_stop_at_the_quota_ceiling() {
    // Every page fails and is retried; the ceiling (4 requests) ends the sync before the
    // attempts do (6 per page).
    let settings = SyncSettings {
        daily_limit: 4,
        reserve: 0,
        ..fast_retries()
    };
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 500,
            error_rate: 1.0,
            ..Default::default()
        },
        settings,
        None,
    )
    .await;
    let e = service.snapshot().await.unwrap_err();
    assert!(matches!(*e, SyncError::Quota { .. }), "{e}");
    assert_eq!(sim.log().len(), 4, "four attempts, then the ceiling");
    assert_eq!(service.requests_24h(), 4);
}
