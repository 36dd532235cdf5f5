//! Several replicas' shared request budget, against a real redis-server the test starts
//! (`common::redis`): at most 20 grants in any second across replicas, measured where it
//! matters (at the simulator, which answers 429 past 20 a second); one daily quota; one pause.
#![cfg(feature = "ssr")]

mod common;

use common::redis::RedisServer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wxpay_devices::replicas::budget::RedisBudget;
use wxpay_devices::simulator::service::{Simulator, SimulatorOptions};
use wxpay_devices::sync::budget::RequestBudget;
use wxpay_devices::sync::error::SyncError;
use wxpay_devices::sync::quota::{NoLedger, QuotaLedger};
use wxpay_devices::sync::service::{Persistence, SyncService};
use wxpay_devices::sync::snapshot::NoStore;
use wxpay_devices::wechatpay::client::WxPayClient;
use wxpay_devices::wechatpay::error::WxPayError;

async fn budget(redis: &RedisServer, merchant: &str, daily: u64) -> Arc<RedisBudget> {
    let conn = wxpay_devices::replicas::connect(&redis.url())
        .await
        .unwrap();
    Arc::new(RedisBudget::new(conn, merchant, daily))
}

/// The most instants in any window of `width`.
fn busiest(mut times: Vec<Instant>, width: Duration) -> usize {
    times.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// A simulator of `devices` answering after `latency`, on a loopback port, and its URL.
async fn simulator(devices: usize, latency: Duration) -> (Simulator, String) {
    let sim = Simulator::new(
        common::keys(),
        SimulatorOptions {
            devices,
            latency,
            ..Default::default()
        },
    );
    let url = sim.spawn_local().await.unwrap();
    (sim, url)
}

/// A sync service of `merchant` reading `sim` (at `url`) through a client of its own.
fn sync_service(
    sim: &Simulator,
    url: &str,
    merchant: &str,
    settings: wxpay_devices::sync::service::SyncSettings,
    state: Persistence,
) -> Arc<SyncService> {
    let client = WxPayClient::new(&sim.client_config(url, true, false)).unwrap();
    SyncService::with_state(Arc::new(client), merchant.into(), false, settings, state)
}

/// Nothing kept in the process; the budget and the lease as given (the process's own without).
fn kept_nowhere(
    budget: Option<Arc<dyn RequestBudget>>,
    lease: Option<Arc<dyn wxpay_devices::sync::lease::SyncLease>>,
) -> Persistence {
    Persistence {
        snapshots: Arc::new(NoStore),
        ledger: QuotaLedger::in_memory(),
        ledger_store: Arc::new(NoLedger),
        shared_budget: budget,
        shared_lease: lease,
    }
}

#[tokio::test]
async fn three_replicas_together_get_at_most_twenty_grants_in_any_second() {
    let redis = RedisServer::start();
    let replicas = [
        budget(&redis, "m1", 50_000).await,
        budget(&redis, "m1", 50_000).await,
        budget(&redis, "m1", 50_000).await,
    ];
    let until = Instant::now() + Duration::from_millis(2_500);
    let mut tasks = Vec::new();
    for b in &replicas {
        for _ in 0..8 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < until {
                    b.grant("GET /x").await.unwrap();
                    times.push(Instant::now());
                }
                times
            }));
        }
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let most = busiest(times.clone(), Duration::from_secs(1));
    assert!(most <= 20, "{most} grants in one second");
    // And it does grant: 20 per 1.1 s for 2.5 s.
    assert!(times.len() >= 45, "only {} grants", times.len());
    for b in &replicas {
        b.refresh().await.unwrap();
        assert_eq!(b.used(), times.len() as u64, "one ledger for all");
    }
}

/// Three sync services, each with its own client, syncing one simulator at once: with the
/// shared budget the simulator sees no 429 and never more than 20 requests in a second;
/// each with its own limiter (the control), it sees both.
#[tokio::test]
async fn three_syncs_at_once_stay_within_the_apis_limit_only_with_the_shared_budget() {
    let redis = RedisServer::start();
    let (sim, url) = simulator(3_000, Duration::from_millis(20)).await;
    let service = |shared: Option<Arc<dyn RequestBudget>>| {
        sync_service(
            &sim,
            &url,
            "m2",
            common::fast_retries(),
            kept_nowhere(shared, None),
        )
    };
    let run = |services: Vec<Arc<SyncService>>| async move {
        let syncs = futures::future::join_all(services.iter().map(|s| s.snapshot())).await;
        syncs.into_iter().map(|r| r.is_ok()).collect::<Vec<_>>()
    };
    let log = |sim: &Simulator| {
        let log = sim.log();
        let limited = log.iter().filter(|r| r.status == 429).count();
        let most = busiest(log.iter().map(|r| r.at).collect(), Duration::from_secs(1));
        (log.len(), limited, most)
    };

    let mut shared = Vec::new();
    for _ in 0..3 {
        let b: Arc<dyn RequestBudget> = budget(&redis, "m2", 50_000).await;
        shared.push(service(Some(b)));
    }
    assert_eq!(run(shared).await, [true, true, true]);
    let (requests, limited, most) = log(&sim);
    assert_eq!(limited, 0, "no 429 with one budget");
    assert!(most <= 20, "{most} requests in one second");
    assert_eq!(
        requests, 90,
        "three syncs of 30 pages (no lease yet: each syncs)"
    );

    // The control: three processes with a limiter each send up to 60 a second.
    sim.clear_log();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let own = vec![service(None), service(None), service(None)];
    run(own).await;
    let (_, limited, most) = log(&sim);
    assert!(
        most > 20 && limited > 0,
        "the control: {most} a second, {limited} × 429"
    );
}

#[tokio::test]
async fn the_daily_quota_is_one_for_all_replicas() {
    let redis = RedisServer::start();
    let a = budget(&redis, "m3", 30).await;
    let b = budget(&redis, "m3", 30).await;
    let try_20 = |b: Arc<RedisBudget>| async move {
        let mut granted = 0;
        let mut refused = 0;
        for _ in 0..20 {
            match b.grant("GET /x").await {
                Ok(()) => granted += 1,
                Err(WxPayError::QuotaExhausted { limit: 30, .. }) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (granted, refused)
    };
    let (x, y) = tokio::join!(try_20(a.clone()), try_20(b.clone()));
    assert_eq!(x.0 + y.0, 30, "exactly the quota: {x:?} {y:?}");
    assert_eq!(x.1 + y.1, 10);
    a.refresh().await.unwrap();
    assert_eq!(a.used(), 30);
    assert_eq!(a.seconds_until_room(1, 30).map(|s| s > 86_000), Some(true));
    // Another merchant's budget is its own.
    let other = budget(&redis, "m4", 30).await;
    other.grant("GET /x").await.unwrap();
}

#[tokio::test]
async fn a_pause_asked_by_one_replica_holds_them_all() {
    let redis = RedisServer::start();
    let a = budget(&redis, "m5", 50_000).await;
    let b = budget(&redis, "m5", 50_000).await;
    b.grant("GET /x").await.unwrap();
    a.back_off();
    // The pause is set in Redis (in the background): wait for it, not for a time.
    let mut c = wxpay_devices::replicas::connect(&redis.url())
        .await
        .unwrap();
    let pause_left = |c: &mut redis::aio::ConnectionManager| {
        let mut c = c.clone();
        async move {
            redis::cmd("PTTL")
                .arg("wxpay:m5:pause")
                .query_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    let t = Instant::now();
    while pause_left(&mut c).await <= 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "the pause never set");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // B's grant waits it out: when it is granted, the pause is over (-2: no such key).
    b.grant("GET /x").await.unwrap();
    assert_eq!(
        pause_left(&mut c).await,
        -2,
        "granted before the pause ended"
    );
}

#[tokio::test]
async fn without_redis_nothing_is_sent() {
    let redis = RedisServer::start();
    let b = budget(&redis, "m6", 50_000).await;
    b.grant("GET /x").await.unwrap();
    drop(redis);
    let t = Instant::now();
    let e = b.grant("GET /v3/iotmanage/devices").await.unwrap_err();
    assert!(
        matches!(&e, WxPayError::Transport { reason, .. } if reason.contains("not sent") && reason.contains("Redis")),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let e = wxpay_devices::replicas::connect("redis://:s3cret@127.0.0.1:1/")
        .await
        .unwrap_err();
    assert!(e.starts_with("REDIS_URL=") && !e.contains("s3cret"), "{e}");
}

/// Three sync services sharing the budget and the lease, asked at once: one syncs (one sync's
/// requests at the simulator, not three), the others are told another process holds the
/// lease.
#[tokio::test]
async fn three_services_with_the_shared_lease_run_one_sync() {
    use wxpay_devices::replicas::lease::RedisLease;
    let redis = RedisServer::start();
    let (sim, url) = simulator(3_000, Duration::from_millis(20)).await;
    let mut services = Vec::new();
    for _ in 0..3 {
        let conn = wxpay_devices::replicas::connect(&redis.url())
            .await
            .unwrap();
        services.push(sync_service(
            &sim,
            &url,
            "m7",
            common::fast_retries(),
            kept_nowhere(
                Some(Arc::new(RedisBudget::new(conn.clone(), "m7", 50_000))),
                Some(Arc::new(RedisLease::new(
                    conn,
                    "m7",
                    Duration::from_secs(5),
                ))),
            ),
        ));
    }
    let results = futures::future::join_all(services.iter().map(|s| s.snapshot())).await;
    let synced = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(synced, 1, "one sync");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(r.to_string().contains("sync lease"), "{r}");
    }
    assert_eq!(sim.log().len(), 30, "one sync's requests");
    assert!(sim.log().iter().all(|r| r.status == 200));
}

mod lease {
    use super::*;
    use wxpay_devices::replicas::lease::RedisLease;
    use wxpay_devices::sync::lease::SyncLease;

    async fn lease(redis: &RedisServer, merchant: &str, ttl: Duration) -> RedisLease {
        let conn = wxpay_devices::replicas::connect(&redis.url())
            .await
            .unwrap();
        RedisLease::new(conn, merchant, ttl)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_with_growing_fencing_tokens() {
        let redis = RedisServer::start();
        let a = lease(&redis, "l1", Duration::from_secs(5)).await;
        let b = lease(&redis, "l1", Duration::from_secs(5)).await;
        let first = a.acquire().await.expect("free");
        assert!(first.shared && first.fence().is_some());
        let first_fence = first.fencing;
        assert!(b.acquire().await.is_none(), "held by a");
        assert!(a.acquire().await.is_none(), "held, even by its own process");
        // Given back: free at once, not after the TTL.
        first.give_back().await;
        let second = b.acquire().await.expect("given back");
        assert!(second.fencing > first_fence);
        // Dropped (a cancelled sync): given back in the background, well before the TTL.
        drop(second);
        let deadline = Instant::now() + Duration::from_secs(4);
        let third = loop {
            if let Some(t) = a.acquire().await {
                break t;
            }
            assert!(Instant::now() < deadline, "not given back when dropped");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(third.fencing > first_fence + 1);
        // Another merchant's lease is its own.
        assert!(lease(&redis, "l2", Duration::from_secs(5))
            .await
            .acquire()
            .await
            .is_some());
    }

    #[tokio::test]
    async fn a_long_sync_keeps_its_lease_and_a_dead_holder_frees_it_after_the_ttl() {
        let redis = RedisServer::start();
        let ttl = Duration::from_millis(900);
        // Replica A, in a runtime of its own, takes the lease and holds it for 2 s (renewing).
        let url = redis.url();
        let (tx, rx) = std::sync::mpsc::channel();
        let replica_a = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let conn = wxpay_devices::replicas::connect(&url).await.unwrap();
                let a = RedisLease::new(conn, "l3", ttl);
                let mut token = a.acquire().await.unwrap();
                tx.send(token.fencing).unwrap();
                // Renewed past its TTL, never lost.
                tokio::select! {
                    _ = token.lost() => panic!("lost while renewing"),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                std::mem::forget(token);
            });
            // The process dies: its runtime, with the renewer, is gone; nothing is given back.
            rt.shutdown_background();
        });
        let a_fence = rx.recv().unwrap();
        let b = lease(&redis, "l3", ttl).await;
        let t = Instant::now();
        assert!(b.acquire().await.is_none());
        let b_token = loop {
            if let Some(token) = b.acquire().await {
                break token;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "never freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        replica_a.join().unwrap();
        // Held for its 2 s (a lower bound: a loaded machine only makes it longer), then freed
        // by its expiry, not given back: B got it only once the TTL had run out since A's last
        // renewal, which the loop above waited for.
        assert!(
            t.elapsed() >= Duration::from_millis(1_900),
            "{:?}",
            t.elapsed()
        );
        assert!(b_token.fencing > a_fence);
    }

    #[tokio::test]
    async fn a_holder_whose_lease_was_taken_is_told() {
        let redis = RedisServer::start();
        let a = lease(&redis, "l4", Duration::from_millis(600)).await;
        let mut token = a.acquire().await.unwrap();
        // Another holder in its place (as after an expiry the holder did not notice).
        let mut conn = wxpay_devices::replicas::connect(&redis.url())
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("wxpay:l4:lease")
            .arg("someone-else")
            .query_async(&mut conn)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), token.lost())
            .await
            .expect("told within a renewal period");
        // Giving it back (done when this returns) does not delete the other holder's lease.
        token.give_back().await;
        let held: Option<String> = redis::cmd("GET")
            .arg("wxpay:l4:lease")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(held.as_deref(), Some("someone-else"));
    }
}

/// Replicas as the server builds them: a sync service sharing budget, lease and snapshot
/// through Redis, its history in one PostgreSQL database, following the shared snapshot.
mod together {
    use super::*;
    use common::postgres::PgServer;
    use wxpay_devices::db::Database;
    use wxpay_devices::history::store::HistoryStore;
    use wxpay_devices::sync::snapshot::SnapshotStore;

    async fn replica(
        redis: &RedisServer,
        db_url: &str,
        sim: &Simulator,
        sim_url: &str,
        ttl: Duration,
    ) -> Arc<SyncService> {
        let conn = wxpay_devices::replicas::connect(&redis.url())
            .await
            .unwrap();
        let history = HistoryStore::new(Database::open(db_url).await.unwrap(), "merchant-r", 400);
        history.claim(false).await.unwrap();
        let (state, shared) = wxpay_devices::replicas::persistence(
            &conn,
            "merchant-r",
            50_000,
            Arc::new(history),
            ttl,
        );
        let service = sync_service(sim, sim_url, "merchant-r", settings(), state);
        tokio::spawn(wxpay_devices::replicas::snapshot::follow(
            shared,
            service.clone(),
            redis.url(),
        ));
        service
    }

    /// Snapshots due after a second (the quota allows it at this size), so a survivor's timer
    /// would sync again.
    fn settings() -> wxpay_devices::sync::service::SyncSettings {
        wxpay_devices::sync::service::SyncSettings {
            ttl: Duration::from_secs(1),
            daily_limit: 10_000_000,
            ..common::fast_retries()
        }
    }

    async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
        let t = Instant::now();
        while !ok() {
            assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t.elapsed()
    }

    /// A replica as the server builds it, with its own reader of the shared database (to
    /// check what was recorded).
    async fn replica_with_history(
        redis_url: &str,
        db_url: &str,
        sim: &Simulator,
        sim_url: &str,
        settings: wxpay_devices::sync::service::SyncSettings,
    ) -> (
        Arc<SyncService>,
        wxpay_devices::replicas::snapshot::SharedSnapshot,
    ) {
        let conn = wxpay_devices::replicas::connect(redis_url).await.unwrap();
        let history = HistoryStore::new(Database::open(db_url).await.unwrap(), "merchant-h", 400);
        history.claim(false).await.unwrap();
        let (state, shared) = wxpay_devices::replicas::persistence(
            &conn,
            "merchant-h",
            50_000,
            Arc::new(history),
            Duration::from_secs(5),
        );
        let service = sync_service(sim, sim_url, "merchant-h", settings, state);
        tokio::spawn(wxpay_devices::replicas::snapshot::follow(
            shared.clone(),
            service.clone(),
            redis_url.to_string(),
        ));
        (service, shared)
    }

    /// Removes the first `removed` devices, adds `added` new ones and flips the activation
    /// status of the next `changed`: one event each.
    fn change_list(sim: &Simulator, tag: &str, removed: usize, added: usize, changed: usize) {
        let mut list = sim.devices().to_vec();
        list.drain(..removed);
        for d in list.iter_mut().take(changed) {
            d.activation_status = Some(
                if d.activation_status.as_deref() == Some("ACTIVATED") {
                    "INACTIVATED"
                } else {
                    "ACTIVATED"
                }
                .into(),
            );
        }
        for i in 0..added {
            let mut d = list[list.len() - 1].clone();
            d.device_sn = Some(format!("NEW-{tag}-{i}"));
            list.push(d);
        }
        sim.set_devices(list);
    }

    /// The last sync the database recorded: (added, removed, changed, baseline).
    async fn last_recorded(reader: &HistoryStore) -> (u64, u64, u64, bool) {
        let s = reader.recent_syncs(1).await.unwrap().remove(0);
        (s.added, s.removed, s.changed, s.baseline)
    }

    async fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
        let t = Instant::now();
        while !ok() {
            assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The history is the database's, not a replica's memory: whichever replica syncs, each
    /// sync's events are exactly what changed since the sync recorded before it (found by
    /// running three replicas: a replica that had only installed snapshots recorded its first
    /// sync as a new baseline, with no events).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn each_sync_records_exactly_its_changes_whichever_replica_makes_it() {
        let redis = RedisServer::start();
        let pg = PgServer::start();
        let db_url = pg.database("history_replicas").await;
        let (sim, sim_url) = simulator(1_000, Duration::ZERO).await;
        let settings = || wxpay_devices::sync::service::SyncSettings {
            ttl: Duration::from_secs(3_600),
            ..common::fast_retries()
        };
        let (a, _) = replica_with_history(&redis.url(), &db_url, &sim, &sim_url, settings()).await;
        let (b, _) = replica_with_history(&redis.url(), &db_url, &sim, &sim_url, settings()).await;
        let reader = HistoryStore::new(Database::open(&db_url).await.unwrap(), "merchant-h", 400);

        // 1. A syncs: the baseline. B serves it through Redis.
        let first = a.snapshot().await.unwrap().snapshot;
        assert_eq!(last_recorded(&reader).await, (0, 0, 0, true));
        wait_until("B serves A's snapshot", Duration::from_secs(10), || {
            b.last_good()
                .is_some_and(|s| s.synced_at == first.synced_at)
        })
        .await;

        // 2. The list changes; B, which has never synced, makes the next sync.
        change_list(&sim, "b", 3, 2, 4);
        b.refresh_now().await.unwrap();
        wait_until("B's sync", Duration::from_secs(20), || {
            b.last_good().is_some_and(|s| s.devices.len() == 999) && !b.status().running
        })
        .await;
        assert_eq!(
            last_recorded(&reader).await,
            (2, 3, 4, false),
            "B's sync: exactly its changes"
        );
        wait_until("A serves B's snapshot", Duration::from_secs(10), || {
            a.last_good().is_some_and(|s| s.devices.len() == 999)
        })
        .await;

        // 3. Again, by A, whose own memory is of the first list: compared with B's.
        change_list(&sim, "a", 1, 5, 2);
        a.refresh_now().await.unwrap();
        wait_until("A's second sync", Duration::from_secs(20), || {
            a.last_good().is_some_and(|s| s.devices.len() == 1_003) && !a.status().running
        })
        .await;
        assert_eq!(
            last_recorded(&reader).await,
            (5, 1, 2, false),
            "A's sync: the changes since B's, not since its own"
        );
        let (_, total) = reader
            .events(
                &wxpay_devices::changes::ChangesQuery::new(),
                wxpay_devices::clock::unix_now_ms() + 1,
            )
            .await
            .unwrap();
        assert_eq!(total, 2 + 3 + 4 + 5 + 1 + 2, "every event once");
        for r in [&a, &b] {
            assert!(r.status().save_failure.is_none());
        }
    }

    /// Redis restarted empty (no persistence) mid-run: its fencing counter starts again at 1,
    /// below what the database has seen. The next sync must still be saved, recorded and
    /// published, and the other replica must serve it instead of syncing itself (each replica
    /// syncing on its own, every save refused, was what happened).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn after_redis_loses_its_data_the_next_sync_is_saved_and_shared() {
        let redis = RedisServer::start();
        let port = redis.port;
        let pg = PgServer::start();
        let db_url = pg.database("fence_replicas").await;
        let (sim, sim_url) = simulator(1_000, Duration::ZERO).await;
        let settings = || wxpay_devices::sync::service::SyncSettings {
            ttl: Duration::from_secs(5),
            daily_limit: 10_000_000,
            manual_min_interval: Duration::ZERO,
            failure_memory: Duration::from_millis(100),
            ..common::fast_retries()
        };
        let (a, _) = replica_with_history(&redis.url(), &db_url, &sim, &sim_url, settings()).await;
        let (b, b_shared) =
            replica_with_history(&redis.url(), &db_url, &sim, &sim_url, settings()).await;
        let reader = HistoryStore::new(Database::open(&db_url).await.unwrap(), "merchant-h", 400);
        // A few syncs: the database's fencing token climbs.
        a.snapshot().await.unwrap();
        for _ in 0..2 {
            let before = reader.recent_syncs(1).await.unwrap()[0].id;
            a.refresh_now().await.unwrap();
            let t = Instant::now();
            while reader.recent_syncs(1).await.unwrap()[0].id == before || a.status().running {
                assert!(t.elapsed() < Duration::from_secs(20), "sync recorded");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let fence_before = reader.highest_fence().await.unwrap();
        assert!(fence_before >= 3, "{fence_before}");
        let syncs_before = reader.recent_syncs(1).await.unwrap()[0].id;

        // Redis loses everything.
        drop(redis);
        let _redis = RedisServer::start_on(port);
        wait_until("B reaches the new Redis", Duration::from_secs(15), || {
            b_shared.reachable()
        })
        .await;
        change_list(&sim, "r", 2, 0, 0);
        wait_until("both snapshots are due", Duration::from_secs(15), || {
            !a.status().fresh && !b.status().fresh
        })
        .await;
        sim.clear_log();
        // Both replicas' timers ask, as the server's does every second, until B serves a
        // snapshot synced after the restart.
        let t = Instant::now();
        loop {
            a.refresh_if_due();
            b.refresh_if_due();
            let served =
                |r: &Arc<SyncService>| r.last_good().is_some_and(|s| s.devices.len() == 998);
            if served(&a) && served(&b) && !a.status().running && !b.status().running {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "both serve the new list: a {:?}, b {:?}",
                a.status().save_failure,
                b.status().save_failure
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(sim.log().len(), 10, "one sync, not one per replica");
        assert!(a.status().save_failure.is_none() && b.status().save_failure.is_none());
        let last = reader.recent_syncs(1).await.unwrap().remove(0);
        assert_eq!(last.id, syncs_before + 1, "recorded once");
        assert_eq!((last.removed, last.baseline), (2, false));
        assert!(reader.highest_fence().await.unwrap() > fence_before);
    }

    /// A save the database refuses (here: a lease drawn without regard to the database's
    /// tokens, as before the fix) is not only a log line: the status bar, `/readyz` and
    /// `/metrics` say so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_save_is_shown_in_the_status_readyz_and_metrics() {
        use wxpay_devices::replicas::lease::RedisLease;
        let redis = RedisServer::start();
        let pg = PgServer::start();
        let db_url = pg.database("refused_save").await;
        let (sim, sim_url) = simulator(300, Duration::ZERO).await;
        let history = Arc::new(HistoryStore::new(
            Database::open(&db_url).await.unwrap(),
            "merchant-s",
            400,
        ));
        history.claim(false).await.unwrap();
        // The database has seen token 50 already.
        history
            .record_fenced(
                Arc::new(wxpay_devices::sync::snapshot::Snapshot {
                    format: wxpay_devices::sync::snapshot::FORMAT,
                    source: "merchant-s".into(),
                    synced_at: wxpay_devices::clock::unix_now() - 60,
                    sync_millis: 1,
                    total_count: Some(0),
                    received: 0,
                    duplicates: 0,
                    requests: 1,
                    complete: true,
                    expected: Some(0),
                    repair_requests: 0,
                    devices: Default::default(),
                }),
                Some(50),
            )
            .await
            .unwrap();
        assert_eq!(history.highest_fence().await.unwrap(), 50);
        let conn = wxpay_devices::replicas::connect(&redis.url())
            .await
            .unwrap();
        let store: Arc<dyn SnapshotStore> = history.clone();
        let service = sync_service(
            &sim,
            &sim_url,
            "merchant-s",
            common::fast_retries(),
            Persistence {
                snapshots: store,
                ledger: QuotaLedger::in_memory(),
                ledger_store: Arc::new(NoLedger),
                shared_budget: None,
                shared_lease: Some(Arc::new(RedisLease::new(
                    conn,
                    "merchant-s",
                    Duration::from_secs(5),
                ))),
            },
        );
        let before = wxpay_devices::metrics::get()
            .snapshot_save_failures
            .load(std::sync::atomic::Ordering::Relaxed);
        service.snapshot().await.unwrap();
        let failure = service.status().save_failure.expect("shown in the status");
        assert!(
            failure.detail.contains("fencing token 1"),
            "{}",
            failure.detail
        );
        let state = wxpay_devices::view::AppState::new(service.clone()).with_history(history);
        let url = common::serve(move |_| wxpay_devices::ops::routes(state)).await;
        let ready: serde_json::Value = reqwest::get(format!("{url}/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["saved"], false, "{ready}");
        assert!(ready["save_error"]
            .as_str()
            .unwrap()
            .contains("fencing token"));
        let metrics = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("wxpay_snapshot_save_failing 1\n"),
            "{metrics}"
        );
        assert!(
            wxpay_devices::metrics::get()
                .snapshot_save_failures
                .load(std::sync::atomic::Ordering::Relaxed)
                > before
        );
    }

    // Several threads: the simulator and the followers run while the test waits for the
    // leader's thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_replicas_one_sync_one_snapshot_and_a_takeover_when_the_leader_dies() {
        let redis = RedisServer::start();
        let pg = PgServer::start();
        let db_url = pg.database("replicas").await;
        let (sim, sim_url) = simulator(3_000, Duration::from_millis(20)).await;
        let ttl = Duration::from_millis(1_500);
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(replica(&redis, &db_url, &sim, &sim_url, ttl).await);
        }
        // Asked at once, one syncs; the others serve its snapshot within a few seconds.
        let asked = futures::future::join_all(replicas.iter().map(|r| r.snapshot())).await;
        assert_eq!(asked.iter().filter(|r| r.is_ok()).count(), 1);
        wait_for(
            "every replica serves the list",
            Duration::from_secs(10),
            || {
                replicas
                    .iter()
                    .all(|r| r.last_good().is_some_and(|s| s.devices.len() == 3_000))
            },
        )
        .await;
        let log = sim.log();
        assert_eq!(log.len(), 30, "one sync's requests, not three");
        assert!(log.iter().all(|r| r.status == 200));
        // The others did not fail: they wait for the leader's snapshot.
        for r in &replicas {
            assert!(
                r.status().last_error.is_none(),
                "{:?}",
                r.status().last_error
            );
        }

        // The leader dies in the middle of a sync (its runtime is shut down: no goodbye);
        // another replica takes the lease after its TTL and finishes; all serve the new list.
        sim.clear_log();
        sim.set_latency(Duration::from_millis(300));
        let mut list = sim.devices().to_vec();
        list.truncate(2_500);
        sim.set_devices(list);
        let (sim2, sim_url2, redis_url, db2) =
            (sim.clone(), sim_url.clone(), redis.url(), db_url.clone());
        let leader = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let conn = wxpay_devices::replicas::connect(&redis_url).await.unwrap();
                let history =
                    HistoryStore::new(Database::open(&db2).await.unwrap(), "merchant-r", 400);
                let (state, _) = wxpay_devices::replicas::persistence(
                    &conn,
                    "merchant-r",
                    50_000,
                    Arc::new(history),
                    ttl,
                );
                let leader = sync_service(&sim2, &sim_url2, "merchant-r", settings(), state);
                // As the server starts: the shared snapshot first.
                leader.load_saved().await.unwrap();
                leader.refresh_now().await.unwrap();
                // Killed mid-sync: some pages sent, the rest never.
                let deadline = Instant::now() + Duration::from_secs(20);
                while sim2.log().len() < 5 {
                    assert!(
                        Instant::now() < deadline,
                        "the leader never sent: {:?}",
                        leader.status()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            rt.shutdown_background();
        });
        tokio::task::spawn_blocking(move || leader.join().unwrap())
            .await
            .unwrap();
        let killed = Instant::now();
        let pages_before = sim.log().len();
        assert!(pages_before < 25, "killed mid-sync: {pages_before} pages");
        // The survivors keep trying (the server's timer does this every 15 s).
        let took = wait_for(
            "a survivor finishes the sync and every replica serves it",
            ttl + Duration::from_secs(12),
            || {
                for r in &replicas[..2] {
                    r.refresh_if_due();
                }
                replicas
                    .iter()
                    .all(|r| r.last_good().is_some_and(|s| s.devices.len() == 2_500))
            },
        )
        .await;
        println!("takeover: every replica served the new list {took:?} after the leader died");
        assert!(
            killed.elapsed() >= ttl / 2,
            "not before the lease could expire"
        );
        assert_eq!(
            sim.log().iter().filter(|r| r.status == 429).count(),
            0,
            "no 429"
        );
    }
}

/// The lease is free the moment its holder finishes, before the others have loaded the new
/// snapshot: a replica that gets it then does not sync the list again, it waits for that
/// snapshot (the race that made three processes sync twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_the_shared_snapshot_does_not_sync_again() {
    let redis = RedisServer::start();
    let (sim, sim_url) = simulator(500, Duration::ZERO).await;
    let conn = wxpay_devices::replicas::connect(&redis.url())
        .await
        .unwrap();
    let replica = || {
        let (state, shared) = wxpay_devices::replicas::persistence(
            &conn,
            "m9",
            50_000,
            Arc::new(NoStore),
            Duration::from_secs(5),
        );
        (
            sync_service(&sim, &sim_url, "m9", common::fast_retries(), state),
            shared,
        )
    };
    let (leader, _) = replica();
    // No follower: this one has not loaded the leader's snapshot (as in the instant after the
    // leader's sync ended).
    let (late, late_shared) = replica();
    leader.snapshot().await.unwrap();
    assert_eq!(sim.log().len(), 5);
    sim.clear_log();
    // The leader has given the lease back.
    let mut c = conn.clone();
    let t = Instant::now();
    while redis::cmd("EXISTS")
        .arg("wxpay:m9:lease")
        .query_async::<bool>(&mut c)
        .await
        .unwrap()
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the lease is given back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = late.snapshot().await;
    assert!(
        matches!(asked.as_ref().map_err(|e| &**e), Err(SyncError::LeaseHeld)),
        "{:?}",
        asked.map(|v| v.snapshot.devices.len())
    );
    assert_eq!(sim.log().len(), 0, "the list is not synced twice");
    // Once loaded, it is up to date: when due, it may sync.
    use wxpay_devices::sync::snapshot::SnapshotStore;
    let store = wxpay_devices::replicas::snapshot::ReplicatedStore {
        database: Arc::new(NoStore),
        shared: late_shared,
    };
    assert!(store.behind().await);
    assert_eq!(store.load().await.unwrap().devices.len(), 500);
    assert!(!store.behind().await);
}

/// What a replica reads from Redis is untrusted input: a version with too many chunks, a chunk
/// too big, bytes that are not a snapshot, another merchant's snapshot, or one that inflates
/// past the limit is refused (counted, said in `refusal()`, not read again), and the replica
/// keeps serving its own; at start, loading falls back to the database's copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_redis_holds_is_checked_before_it_is_served() {
    use std::io::Write;
    use wxpay_devices::replicas::snapshot::ReplicatedStore;
    use wxpay_devices::sync::snapshot::{FileStore, Snapshot, SnapshotStore};
    let redis = RedisServer::start();
    let (sim, sim_url) = simulator(200, Duration::ZERO).await;
    let conn = wxpay_devices::replicas::connect(&redis.url())
        .await
        .unwrap();
    let (state, shared) = wxpay_devices::replicas::persistence(
        &conn,
        "m10",
        50_000,
        Arc::new(NoStore),
        Duration::from_secs(5),
    );
    let shared = shared.with_max_json(1 << 20);
    let service = sync_service(&sim, &sim_url, "m10", common::fast_retries(), state);
    tokio::spawn(wxpay_devices::replicas::snapshot::follow(
        shared.clone(),
        service.clone(),
        redis.url(),
    ));
    let mine = service.snapshot().await.unwrap().snapshot;
    let deflate = |bytes: &[u8]| {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
    };
    let foreign = serde_json::to_vec(&Snapshot {
        source: "someone-else".into(),
        ..(*mine).clone()
    })
    .unwrap();
    let mut c = conn.clone();
    let refused = || {
        wxpay_devices::metrics::get()
            .shared_snapshots_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // A version, its chunks, the count its pointer claims (else theirs), what the refusal says.
    type Case = (u64, Vec<Vec<u8>>, Option<usize>, &'static str);
    let cases: Vec<Case> = vec![
        (100, vec![], Some(99_999_999), "chunks (1 to 1024 allowed)"),
        (
            101,
            vec![vec![b'x'; (1 << 20) + 1]],
            None,
            "holds 1048577 bytes",
        ),
        (
            102,
            vec![b"not deflate, not JSON".to_vec()],
            None,
            "is not a snapshot",
        ),
        (103, vec![deflate(&foreign)], None, "not of this merchant"),
        (
            104,
            vec![deflate(&vec![b' '; 2 << 20])],
            None,
            "inflates to more than",
        ),
    ];
    for (version, chunks, claimed, expected) in cases {
        let before = refused();
        for (i, chunk) in chunks.iter().enumerate() {
            let _: () = redis::cmd("SET")
                .arg(format!("wxpay:m10:snapshot:{version}:{i}"))
                .arg(chunk)
                .query_async(&mut c)
                .await
                .unwrap();
        }
        let pointer = format!("{version}:{}", claimed.unwrap_or(chunks.len()));
        let _: () = redis::cmd("SET")
            .arg("wxpay:m10:snapshot:current")
            .arg(&pointer)
            .query_async(&mut c)
            .await
            .unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(shared.channel())
            .arg(version)
            .query_async(&mut c)
            .await
            .unwrap();
        let t = Instant::now();
        while !shared.refusal().is_some_and(|why| why.contains(expected)) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{pointer}: {:?} should say {expected:?}",
                shared.refusal()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(refused(), before + 1, "counted once, not read again");
        assert!(
            Arc::ptr_eq(&service.last_good().unwrap(), &mine),
            "still serving its own"
        );
        // At start, a bad version in Redis falls back to the database's copy.
        let dir = std::env::temp_dir().join(format!(
            "wxpay-replica-load-{}-{version}",
            std::process::id()
        ));
        let file = FileStore {
            path: dir.join("snapshot.json"),
            source: "m10".into(),
        };
        file.save(mine.clone(), None).await.unwrap();
        let store = ReplicatedStore {
            database: Arc::new(file),
            shared: shared.clone(),
        };
        let loaded = store.load().await.expect("the database's copy");
        assert_eq!(loaded.devices.len(), 200);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // A good version again: the refusal is over.
    service.refresh_now().await.unwrap();
    let t = Instant::now();
    while shared.refusal().is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            shared.refusal()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis stopped mid-run: the replica says so, keeps serving its last snapshot and sends
/// nothing upstream; Redis back (empty, on the same port), it carries on by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_loses_redis_says_so_sends_nothing_and_recovers() {
    let redis = RedisServer::start();
    let port = redis.port;
    let url = redis.url();
    let (sim, sim_url) = simulator(300, Duration::ZERO).await;
    let conn = wxpay_devices::replicas::connect(&url).await.unwrap();
    let (state, shared) = wxpay_devices::replicas::persistence(
        &conn,
        "m8",
        50_000,
        Arc::new(NoStore),
        Duration::from_secs(2),
    );
    let service = sync_service(
        &sim,
        &sim_url,
        "m8",
        wxpay_devices::sync::service::SyncSettings {
            manual_min_interval: Duration::ZERO,
            ..common::fast_retries()
        },
        state,
    );
    tokio::spawn(wxpay_devices::replicas::snapshot::follow(
        shared.clone(),
        service.clone(),
        url.clone(),
    ));
    service.snapshot().await.unwrap();
    let wait = |what: &'static str, ok: Box<dyn Fn() -> bool + Send>| async move {
        let t = Instant::now();
        while !ok() {
            assert!(t.elapsed() < Duration::from_secs(15), "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(shared.reachable());

    drop(redis);
    let s = shared.clone();
    wait("the replica notices", Box::new(move || !s.reachable())).await;
    sim.clear_log();
    service.refresh_now().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sim.log().len(), 0, "nothing sent without Redis");
    assert_eq!(
        service.last_good().unwrap().devices.len(),
        300,
        "still served"
    );

    let _redis = RedisServer::start_on(port);
    let s = shared.clone();
    wait("the replica reconnects", Box::new(move || s.reachable())).await;
    service.refresh_now().await.unwrap();
    let s = sim.clone();
    wait("syncing again", Box::new(move || s.log().len() >= 3)).await;
    // Its snapshot is published to the new Redis again.
    let s2 = shared.clone();
    let t = Instant::now();
    loop {
        if s2.current().await.unwrap().is_some() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "published again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The dashboard's sessions across replicas: two replicas' sign-in routes in front of one Redis.
mod sessions {
    use super::*;
    use axum::http::{header, StatusCode};
    use wxpay_devices::auth::{self, Auth};
    use wxpay_devices::replicas::sessions::RedisSessions;

    const PASSWORD: &str = "correct horse battery";
    const KEY: &str = "a session key shared by the replicas, 32+ bytes";

    /// A replica's door: the sign-in routes and one page behind `require_session`.
    async fn replica(hash: &str, redis: Option<&RedisServer>) -> String {
        let mut a = Auth::new(Some(hash.into()), Duration::from_secs(3600), false)
            .with_key(KEY)
            .unwrap();
        if let Some(redis) = redis {
            let conn = wxpay_devices::replicas::connect(&redis.url())
                .await
                .unwrap();
            a = a.with_shared(RedisSessions::new(conn, "m-sessions"));
        }
        let a = Arc::new(a);
        common::serve(move |_| {
            axum::Router::new()
                .route("/inside", axum::routing::get(|| async { "inside" }))
                .merge(auth::routes(a.clone()))
                .layer(axum::middleware::from_fn_with_state(
                    a,
                    auth::require_session,
                ))
        })
        .await
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    async fn sign_in(http: &reqwest::Client, url: &str, password: &str) -> reqwest::Response {
        http.post(format!("{url}/login"))
            .form(&[("password", password), ("next", "/inside")])
            .send()
            .await
            .unwrap()
    }

    async fn inside(http: &reqwest::Client, url: &str, cookie: &str) -> StatusCode {
        http.get(format!("{url}/inside"))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn sign_out(http: &reqwest::Client, url: &str, cookie: &str) {
        let r = http
            .post(format!("{url}/logout"))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }

    /// The session cookie (`name=value`) a successful sign-in set.
    fn cookie_of(r: &reqwest::Response) -> String {
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
        let set = r.headers()[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_sign_in_holds_on_every_replica_and_a_sign_out_on_one_ends_it_on_all() {
        let redis = RedisServer::start();
        let hash = auth::hash_password(PASSWORD).unwrap();
        let (a, b) = (
            replica(&hash, Some(&redis)).await,
            replica(&hash, Some(&redis)).await,
        );
        // The control: a replica with the same key but without Redis.
        let lone = replica(&hash, None).await;
        let http = client();
        let first = cookie_of(&sign_in(&http, &a, PASSWORD).await);
        let second = cookie_of(&sign_in(&http, &b, PASSWORD).await);
        for url in [&a, &b, &lone] {
            assert_eq!(inside(&http, url, &first).await, StatusCode::OK, "{url}");
        }
        sign_out(&http, &b, &first).await;
        assert_eq!(inside(&http, &a, &first).await, StatusCode::UNAUTHORIZED);
        assert_eq!(inside(&http, &b, &first).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            inside(&http, &lone, &first).await,
            StatusCode::OK,
            "a replica that does not share sign-outs does not know (what Redis is for)"
        );
        assert_eq!(
            inside(&http, &a, &second).await,
            StatusCode::OK,
            "other sessions stay"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failed_sign_ins_are_counted_across_replicas_and_per_replica_without_redis() {
        let redis = RedisServer::start();
        let hash = auth::hash_password(PASSWORD).unwrap();
        let (a, b) = (
            replica(&hash, Some(&redis)).await,
            replica(&hash, Some(&redis)).await,
        );
        let http = client();
        // Five guesses spread over the two replicas, then the limit holds on both.
        for url in [&a, &b, &a, &b, &a] {
            assert_eq!(
                sign_in(&http, url, "guess").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        for url in [&a, &b] {
            let r = sign_in(&http, url, PASSWORD).await;
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{url}");
            assert_eq!(r.headers()[header::RETRY_AFTER], "900");
        }

        // Without Redis each replica still limits its own attempts (and says so in /metrics).
        let errors = || wxpay_devices::metrics::get().redis_error_count("logins");
        let before = errors();
        drop(redis);
        for _ in 0..5 {
            assert_eq!(
                sign_in(&http, &b, "guess").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            sign_in(&http, &b, PASSWORD).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert!(errors() > before, "the Redis errors are counted");
    }
}
