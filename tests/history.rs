//! The change history's store on both backends: every scenario runs on SQLite (a file in a
//! temporary directory) and on PostgreSQL (a server this test starts: `common::postgres`).
#![cfg(feature = "ssr")]

mod common;

use common::postgres::PgServer;
use futures::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use wxpay_devices::changes::{ChangeEvent, ChangeKind, ChangesQuery};
use wxpay_devices::db::Database;
use wxpay_devices::history::store::{HistoryStore, EXPORT_BATCH};
use wxpay_devices::model::{Device, Field};
use wxpay_devices::sync::snapshot::{Snapshot, SnapshotStore, FORMAT};

/// 2026-11-28 20:00:00 in China.
const T0: i64 = 1_795_867_200;
const HOUR: i64 = 3_600;

type Scenario = fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("records_exact_events", |u| {
        Box::pin(records_exact_events(u))
    }),
    ("filters_and_pages", |u| Box::pin(filters_and_pages(u))),
    ("incomplete_syncs_remove_nothing", |u| {
        Box::pin(incomplete_syncs_remove_nothing(u))
    }),
    ("a_restart_keeps_the_history", |u| {
        Box::pin(a_restart_keeps_the_history(u))
    }),
    ("exports_stream_every_event_newest_first", |u| {
        Box::pin(exports_stream_every_event_newest_first(u))
    }),
    ("old_events_are_pruned", |u| {
        Box::pin(old_events_are_pruned(u))
    }),
    ("a_database_belongs_to_one_merchant", |u| {
        Box::pin(a_database_belongs_to_one_merchant(u))
    }),
    ("files_of_before_are_imported_once", |u| {
        Box::pin(files_of_before_are_imported_once(u))
    }),
    ("a_stale_lease_holder_writes_nothing", |u| {
        Box::pin(a_stale_lease_holder_writes_nothing(u))
    }),
    ("the_text_search_folds_any_case_alike", |u| {
        Box::pin(the_text_search_folds_any_case_alike(u))
    }),
    ("changes_over_http_after_the_merchant_changed", |u| {
        Box::pin(changes_over_http_after_the_merchant_changed(u))
    }),
];

#[tokio::test]
async fn every_scenario_on_sqlite() {
    let dir = common::TempDir::new("history");
    for (name, scenario) in SCENARIOS {
        let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
        scenario(url).await;
    }
}

#[tokio::test]
async fn every_scenario_on_postgres() {
    let pg = PgServer::start();
    for (name, scenario) in SCENARIOS {
        let url = pg.database(name).await;
        scenario(url).await;
    }
}

fn dev(sn: &str, sub: &str, name: &str) -> Device {
    Device {
        device_sn: Some(sn.into()),
        device_model: Some("T2".into()),
        activation_status: Some("ACTIVATED".into()),
        sub_mchid: (!sub.is_empty()).then(|| sub.into()),
        sub_merchant_shortname: (!name.is_empty()).then(|| name.into()),
        ..Default::default()
    }
}

fn snap(devices: Vec<Device>, at: i64, complete: bool) -> Arc<Snapshot> {
    Arc::new(Snapshot {
        format: FORMAT,
        source: "merchant-a".into(),
        synced_at: at,
        sync_millis: 1_500,
        total_count: Some(devices.len() as u64),
        received: devices.len(),
        duplicates: 0,
        requests: devices.len().div_ceil(100).max(1) as u64,
        complete,
        expected: Some(devices.len() as u64),
        repair_requests: 0,
        devices: Arc::new(devices.into()),
    })
}

async fn open(url: &str) -> Arc<HistoryStore> {
    open_as(url, "merchant-a", 400).await
}

async fn open_as(url: &str, source: &str, days: u32) -> Arc<HistoryStore> {
    let db = Database::open(url).await.unwrap();
    let store = HistoryStore::new(db, source, days);
    store.claim(false).await.unwrap();
    Arc::new(store)
}

/// (kind, serial, field, old, new, sub_mchid) of each event, in the order given.
fn brief(events: &[ChangeEvent]) -> Vec<(ChangeKind, String, String, String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.device_sn.clone(),
                e.field.map(|f| f.name().to_string()).unwrap_or_default(),
                e.old_value.clone().unwrap_or_default(),
                e.new_value.clone().unwrap_or_default(),
                e.sub_mchid.clone(),
            )
        })
        .collect()
}

fn row(
    kind: ChangeKind,
    sn: &str,
    field: &str,
    old: &str,
    new: &str,
    sub: &str,
) -> (ChangeKind, String, String, String, String, String) {
    (
        kind,
        sn.into(),
        field.into(),
        old.into(),
        new.into(),
        sub.into(),
    )
}

async fn all(store: &HistoryStore, query: &str) -> (Vec<ChangeEvent>, u64) {
    let mut q = ChangesQuery::parse(query).unwrap();
    q.per_page = 200;
    store.events(&q, (T0 + 1_000 * HOUR) * 1000).await.unwrap()
}

/// The first sync is the baseline; the second records removed, added and one event per changed
/// field, at the second sync's finish time.
async fn records_exact_events(url: String) {
    let store = open(&url).await;
    let first = store
        .record(snap(
            vec![
                dev("A", "1600000001", "杭州鲜果超市"),
                dev("B", "1600000001", "杭州鲜果超市"),
                dev("C", "1600000002", "Smith, Jones & Co"),
            ],
            T0,
            true,
        ))
        .await
        .unwrap();
    assert!(first.baseline);
    assert_eq!(first.events(), 0);
    assert_eq!(all(&store, "").await.1, 0);

    let second = store
        .record(snap(
            vec![
                dev("A", "1600000002", "Smith, Jones & Co"),
                dev("C", "1600000002", "Smith, Jones & Co"),
                dev("D", "", ""),
            ],
            T0 + HOUR,
            true,
        ))
        .await
        .unwrap();
    assert!(!second.baseline);
    assert_eq!(
        (second.added, second.removed, second.changed),
        (1, 1, 2),
        "{second:?}"
    );
    let (events, total) = all(&store, "").await;
    assert_eq!(total, 4);
    assert!(events.iter().all(|e| e.at_ms == (T0 + HOUR) * 1000));
    // Newest first; within one sync, in the order found: removed, added, then changed field by
    // field (the CSV's order).
    assert_eq!(
        brief(&events),
        vec![
            row(ChangeKind::Removed, "B", "", "", "", "1600000001"),
            row(ChangeKind::Added, "D", "", "", "", ""),
            row(
                ChangeKind::Changed,
                "A",
                "sub_mchid",
                "1600000001",
                "1600000002",
                "1600000002"
            ),
            row(
                ChangeKind::Changed,
                "A",
                "sub_merchant_shortname",
                "杭州鲜果超市",
                "Smith, Jones & Co",
                "1600000002"
            ),
        ]
    );
    assert_eq!(events[0].sub_merchant_shortname, "杭州鲜果超市");
    let timeline = store.timeline("A").await.unwrap();
    assert_eq!(timeline.len(), 2);
    assert_eq!(
        store.timeline("B").await.unwrap()[0].kind,
        ChangeKind::Removed
    );
    assert!(store.timeline("nope").await.unwrap().is_empty());
    let syncs = store.syncs(None).await.unwrap();
    assert_eq!(syncs.len(), 2);
    assert_eq!(syncs[1].finished_ms, (T0 + HOUR) * 1000);
    assert_eq!(syncs[1].started_ms, (T0 + HOUR) * 1000 - 1_500);
    assert_eq!(store.last_sync().unwrap(), second);
}

async fn filters_and_pages(url: String) {
    let store = open(&url).await;
    let mut list: Vec<Device> = (0..30)
        .map(|i| dev(&format!("SN{i:02}"), "1600000001", "老街加油站"))
        .collect();
    store.record(snap(list.clone(), T0, true)).await.unwrap();
    // Day 1: 5 moved to another sub-merchant; day 2: 3 removed, 2 added.
    for d in &mut list[..5] {
        d.sub_mchid = Some("1600000009".into());
    }
    store
        .record(snap(list.clone(), T0 + 24 * HOUR, true))
        .await
        .unwrap();
    list.drain(10..13);
    list.push(dev("NEW-1", "1600000009", ""));
    list.push(dev("NEW-2", "", ""));
    store
        .record(snap(list.clone(), T0 + 48 * HOUR, true))
        .await
        .unwrap();

    let count = |q: &'static str| {
        let store = store.clone();
        async move { all(&store, q).await.1 }
    };
    assert_eq!(count("").await, 10);
    assert_eq!(count("kind=removed").await, 3);
    assert_eq!(count("kind=removed&kind=added").await, 5);
    assert_eq!(count("field=sub_mchid").await, 5);
    assert_eq!(count("kind=added&field=sub_mchid").await, 0);
    assert_eq!(count("sub_mchid=1600000009").await, 6);
    assert_eq!(count("sub_mchid=1600000009&sub_mchid=1600000001").await, 9);
    // since inclusive, until exclusive; RFC 3339 in any offset.
    assert_eq!(count("since=2026-11-29T20:00:00%2B08:00").await, 10);
    assert_eq!(count("since=2026-11-30T20:00:00%2B08:00").await, 5);
    assert_eq!(count("until=2026-11-30T12:00:00Z").await, 5);
    assert_eq!(count("until=2026-11-30T11:59:59Z").await, 5);
    assert_eq!(
        count("since=2026-11-29T12:00:01Z&until=2026-11-30T12:00:00Z").await,
        0
    );
    // Text: serial, values, sub-merchant; case-insensitive; LIKE's wildcards are literal.
    assert_eq!(count("q=new-").await, 2);
    assert_eq!(count("q=SN1").await, 3);
    assert_eq!(count("q=加油").await, 8);
    assert_eq!(count("q=%25").await, 0);
    assert_eq!(count("q=_").await, 0);
    assert_eq!(count("device_sn=SN00").await, 1);

    // Paging: newest first, no overlap, the total on every page.
    let mut q = ChangesQuery::new();
    q.per_page = 25;
    let mut seen = Vec::new();
    for page in 1..=2 {
        q.page = page;
        let (events, total) = store.events(&q, 0).await.unwrap();
        assert_eq!(total, 10);
        seen.extend(events);
    }
    assert_eq!(seen.len(), 10);
    assert!(seen
        .windows(2)
        .all(|w| (w[0].at_ms, -w[0].id) > (w[1].at_ms, -w[1].id)));
    // `days` counts back from now.
    let now = (T0 + 48 * HOUR + 60) * 1000;
    let mut d = ChangesQuery::parse("days=1").unwrap();
    d.per_page = 200;
    assert_eq!(store.events(&d, now).await.unwrap().1, 5);
    assert!(store
        .events(
            &ChangesQuery::parse("since=2026-11-30T20:00:00%2B08:00").unwrap(),
            0
        )
        .await
        .is_ok());
}

/// An incomplete sync records added and changed events but no removed ones, and a device it
/// missed is not "added" again by the next complete sync.
async fn incomplete_syncs_remove_nothing(url: String) {
    let store = open(&url).await;
    let full = vec![dev("A", "1", ""), dev("B", "1", ""), dev("C", "1", "")];
    store.record(snap(full.clone(), T0, true)).await.unwrap();
    // Missed C; B changed; E is new.
    let mut partial = vec![dev("A", "1", ""), dev("B", "2", ""), dev("E", "1", "")];
    let s = store
        .record(snap(partial.clone(), T0 + HOUR, false))
        .await
        .unwrap();
    assert_eq!(
        (s.added, s.removed, s.changed, s.complete),
        (1, 0, 1, false)
    );
    // The next complete sync has C again: nothing to say about C.
    partial.push(dev("C", "1", ""));
    let s = store
        .record(snap(partial, T0 + 2 * HOUR, true))
        .await
        .unwrap();
    assert_eq!(s.events(), 0, "{s:?}");
    // And once C is really gone, a complete sync says so.
    let s = store
        .record(snap(
            vec![dev("A", "1", ""), dev("B", "2", ""), dev("E", "1", "")],
            T0 + 3 * HOUR,
            true,
        ))
        .await
        .unwrap();
    assert_eq!((s.added, s.removed, s.changed), (0, 1, 0));
}

/// A new process on the same database serves the saved snapshot and compares the next sync
/// with it (and with the list as the history knew it, after an incomplete sync).
async fn a_restart_keeps_the_history(url: String) {
    {
        let store = open(&url).await;
        store
            .record(snap(vec![dev("A", "1", ""), dev("B", "1", "")], T0, true))
            .await
            .unwrap();
        // Incomplete: B missing. The history still knows B.
        store
            .record(snap(vec![dev("A", "2", "")], T0 + HOUR, false))
            .await
            .unwrap();
        store.database().close().await;
    }
    let store = open(&url).await;
    let loaded = store.load().await.expect("the saved snapshot");
    assert_eq!(loaded.devices.len(), 1);
    assert!(!loaded.complete);
    assert_eq!(store.last_sync().unwrap().changed, 1);
    let s = store
        .record(snap(
            vec![dev("A", "2", ""), dev("B", "1", "")],
            T0 + 2 * HOUR,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(s.events(), 0, "B was known, A unchanged: {s:?}");
    assert_eq!(all(&store, "").await.1, 1);
    assert_eq!(store.syncs(None).await.unwrap().len(), 3);
}

async fn exports_stream_every_event_newest_first(url: String) {
    let store = open(&url).await;
    store.record(snap(vec![], T0, true)).await.unwrap();
    let n = EXPORT_BATCH * 2 + 17;
    let list: Vec<Device> = (0..n).map(|i| dev(&format!("D{i:05}"), "1", "")).collect();
    store
        .record(snap(list[..100].to_vec(), T0 + HOUR, true))
        .await
        .unwrap();
    store
        .record(snap(list.clone(), T0 + 2 * HOUR, true))
        .await
        .unwrap();
    let mut stream = Box::pin(store.export(&ChangesQuery::new(), 0).unwrap());
    let mut events = Vec::new();
    let mut batches = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        assert!(batch.len() <= EXPORT_BATCH);
        batches += 1;
        events.extend(batch);
    }
    assert_eq!(events.len(), n);
    assert_eq!(batches, 3);
    assert!(events
        .windows(2)
        .all(|w| (w[0].at_ms, -w[0].id) > (w[1].at_ms, -w[1].id)));
    let sns: std::collections::HashSet<_> = events.iter().map(|e| e.device_sn.clone()).collect();
    assert_eq!(sns.len(), n);
    // Filtered, the same way as the page.
    let q = ChangesQuery::parse("until=2026-11-28T21:30:00%2B08:00").unwrap();
    let mut stream = Box::pin(store.export(&q, 0).unwrap());
    let mut count = 0;
    while let Some(b) = stream.next().await {
        count += b.unwrap().len();
    }
    assert_eq!(count, 100);
    assert!(store
        .export(
            &ChangesQuery {
                since: Some("not a time".into()),
                ..ChangesQuery::new()
            },
            0
        )
        .is_err());
}

async fn old_events_are_pruned(url: String) {
    let store = open_as(&url, "merchant-a", 2).await;
    store.record(snap(vec![], T0, true)).await.unwrap();
    store
        .record(snap(vec![dev("A", "1", "")], T0 + HOUR, true))
        .await
        .unwrap();
    store
        .record(snap(
            vec![dev("A", "1", ""), dev("B", "1", "")],
            T0 + 24 * HOUR,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(all(&store, "").await.1, 2);
    // Three days later, the sync prunes what is older than two days.
    store
        .record(snap(
            vec![dev("A", "1", ""), dev("B", "1", "")],
            T0 + 72 * HOUR,
            true,
        ))
        .await
        .unwrap();
    let (events, total) = all(&store, "").await;
    assert_eq!(total, 1, "{events:?}");
    assert_eq!(events[0].device_sn, "B");
    assert_eq!(store.syncs(None).await.unwrap().len(), 2);
}

async fn a_database_belongs_to_one_merchant(url: String) {
    let store = open(&url).await;
    store
        .record(snap(vec![dev("A", "1", "")], T0, true))
        .await
        .unwrap();
    let db = Database::open(&url).await.unwrap();
    let other = HistoryStore::new(db.clone(), "merchant-b", 400);
    let e = other.claim(false).await.unwrap_err();
    assert!(
        e.contains("DATABASE_URL") && e.contains("merchant-a"),
        "{e}"
    );
    // The demo never takes a real merchant's database either.
    let e = HistoryStore::new(db.clone(), "demo:1:2:3", 400)
        .claim(true)
        .await
        .unwrap_err();
    assert!(e.contains("merchant-a"), "{e}");
    assert_eq!(all(&store, "").await.1, 0);
    assert_eq!(
        store.syncs(None).await.unwrap().len(),
        1,
        "nothing was wiped"
    );
    // The same merchant again: fine, and the migrations run again harmlessly.
    HistoryStore::new(Database::open(&url).await.unwrap(), "merchant-a", 400)
        .claim(false)
        .await
        .unwrap();
}

/// The snapshot and ledger files of before the database are imported on the first start, once;
/// the files are left where they are.
async fn files_of_before_are_imported_once(url: String) {
    use wxpay_devices::sync::quota::{DbLedger, FileLedger, LedgerStore};
    let dir = common::TempDir::new("legacy");
    let snap_file = dir.join("snapshot.json");
    let ledger_file = dir.join("ledger.json");
    let old = snap(vec![dev("A", "1", ""), dev("B", "1", "")], T0, true);
    wxpay_devices::sync::snapshot::save(&snap_file, &old).unwrap();
    let file_ledger = FileLedger {
        path: ledger_file.clone(),
        source: "merchant-a".into(),
    };
    file_ledger
        .write(vec![(T0 / 60, 40), (T0 / 60 + 1, 2)])
        .unwrap();

    let open_with_files = || async {
        let db = Database::open(&url).await.unwrap();
        let store =
            HistoryStore::new(db.clone(), "merchant-a", 400).with_legacy_file(snap_file.clone());
        store.claim(false).await.unwrap();
        let ledger = DbLedger::new(db, "merchant-a").with_legacy_file(ledger_file.clone());
        (store, ledger)
    };
    let (store, ledger) = open_with_files().await;
    let loaded = store.load().await.expect("imported");
    assert_eq!(loaded.devices.len(), 2);
    assert_eq!(ledger.load().await, vec![(T0 / 60, 40), (T0 / 60 + 1, 2)]);
    // The next sync compares with the imported snapshot.
    let s = store
        .record(snap(vec![dev("A", "1", "")], T0 + HOUR, true))
        .await
        .unwrap();
    assert_eq!((s.removed, s.baseline), (1, false));
    ledger.save(vec![(T0 / 60 + 60, 5)]).await.unwrap();
    assert!(snap_file.exists() && ledger_file.exists(), "files are left");

    // Another start: the database's state, not the files'.
    let (store, ledger) = open_with_files().await;
    assert_eq!(store.load().await.unwrap().devices.len(), 1);
    assert_eq!(ledger.load().await, vec![(T0 / 60 + 60, 5)]);
}

/// Several replicas: a sync whose lease's fencing token is lower than one that has written
/// (its holder lost the lease) saves nothing, neither snapshot nor events.
async fn a_stale_lease_holder_writes_nothing(url: String) {
    let store = open(&url).await;
    store
        .record_fenced(snap(vec![dev("A", "1", "")], T0, true), Some(5))
        .await
        .unwrap();
    let e = store
        .record_fenced(snap(vec![dev("B", "1", "")], T0 + HOUR, true), Some(4))
        .await
        .unwrap_err();
    assert!(e.contains("fencing token 4"), "{e}");
    assert_eq!(store.syncs(None).await.unwrap().len(), 1);
    assert_eq!(all(&store, "").await.1, 0);
    assert_eq!(
        store
            .load()
            .await
            .unwrap()
            .devices
            .value(0, Field::DeviceSn),
        Some("A")
    );
    // The same token again is refused too: each grant writes once, and two holders may get
    // one token (after Redis lost its counter); a higher one is fine.
    let e = store
        .record_fenced(snap(vec![dev("B", "1", "")], T0 + HOUR, true), Some(5))
        .await
        .unwrap_err();
    assert!(e.contains("fencing token 5"), "{e}");
    store
        .record_fenced(
            snap(
                vec![dev("A", "1", ""), dev("C", "1", "")],
                T0 + 2 * HOUR,
                true,
            ),
            Some(6),
        )
        .await
        .unwrap();
    let s = store
        .record_fenced(snap(vec![dev("C", "1", "")], T0 + 3 * HOUR, true), Some(7))
        .await
        .unwrap();
    assert_eq!(s.removed, 1);
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_is_named_without_its_password() {
    for url in [
        "postgres://app:s3cret@127.0.0.1:1/history",
        "mysql://app:s3cret@127.0.0.1/history",
        "sqlite:///proc/no/such/dir/history.db",
    ] {
        let e = Database::open(url).await.unwrap_err();
        assert!(e.starts_with("DATABASE_URL="), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

/// A sync service over the simulator, keeping its snapshot and ledger in `store`'s database:
/// the server's own wiring.
async fn service_on(
    sim: &wxpay_devices::simulator::service::Simulator,
    sim_url: &str,
    settings: &wxpay_devices::sync::service::SyncSettings,
    store: &Arc<HistoryStore>,
) -> Arc<wxpay_devices::sync::service::SyncService> {
    use wxpay_devices::sync::service::SyncService;
    let client = wxpay_devices::wechatpay::client::WxPayClient::new(
        &sim.client_config(sim_url, true, false),
    )
    .unwrap();
    // A data directory that does not exist: no files of before to import.
    let nowhere = std::env::temp_dir().join("wxpay-history-no-files-of-before");
    let state = wxpay_devices::server::local_persistence(store, &nowhere, "merchant-a").await;
    SyncService::with_state(
        Arc::new(client),
        "merchant-a".into(),
        true,
        settings.clone(),
        state,
    )
}

/// Over HTTP against the simulator: a second sync after the merchant changed gives exactly the
/// expected `/changes.csv` (filters included) and `/changes.xlsx`, the status bar says what it
/// found, a restart keeps it all, and a device's timeline lists its events oldest first.
async fn changes_over_http_after_the_merchant_changed(url: String) {
    use wxpay_devices::simulator::service::{Simulator, SimulatorOptions};
    use wxpay_devices::sync::service::SyncSettings;
    use wxpay_devices::view::AppState;

    let sim = Simulator::new(
        common::keys(),
        SimulatorOptions {
            devices: 300,
            ..Default::default()
        },
    );
    let sim_url = sim.spawn_local().await.unwrap();
    let settings = SyncSettings {
        manual_min_interval: std::time::Duration::ZERO,
        ..common::fast_retries()
    };
    let store = open(&url).await;
    let service = service_on(&sim, &sim_url, &settings, &store).await;
    service.snapshot().await.unwrap();
    assert!(store.last_sync().unwrap().baseline);

    // The merchant changes: one device removed, one moved to a new sub-merchant, one added.
    let mut list = sim.devices().to_vec();
    let gone = list.remove(5);
    let moved_before = list[10].clone();
    list[10].sub_mchid = Some("1699999999".into());
    list[10].sub_merchant_shortname = Some("=新店, \"旗舰\"".into());
    let moved = list[10].clone();
    let mut new = list[0].clone();
    new.device_sn = Some("NEWDEV0001".into());
    new.sub_mchid = Some("1699999999".into());
    new.sub_merchant_shortname = Some("=新店, \"旗舰\"".into());
    list.push(new);
    sim.set_devices(list);
    service.refresh_now().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.last_sync().unwrap().baseline {
        assert!(std::time::Instant::now() < deadline, "no second sync");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let finished = store.last_sync().unwrap().finished_ms;
    let time = wxpay_devices::format::ChinaTime::from_unix(finished / 1000).rfc3339();
    assert!(time.ends_with("+08:00") && time.len() == 25, "{time}");

    // The page's status bar says what the sync found, linking to those changes.
    let page = page_html(
        AppState::new(service.clone()).with_history(store.clone()),
        "/",
    )
    .await;
    let status = page
        .split("data-testid=\"last-changes\"")
        .nth(1)
        .and_then(|s| s.split('>').nth(1))
        .and_then(|s| s.split('<').next())
        .expect("the status bar's changes");
    assert_eq!(status, "+1 added · −1 removed · ~2 changed");

    let http_url = common::serve(|_| {
        wxpay_devices::export::routes(AppState::new(service.clone()).with_history(store.clone()))
    })
    .await;
    let get = |query: &'static str| {
        let base = http_url.clone();
        async move {
            let r = reqwest::get(format!("{base}/changes.csv?{query}"))
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (status, text)
        }
    };
    let (status, body) = get("").await;
    assert_eq!(status, 200, "{body}");
    let body = body.strip_prefix('\u{feff}').expect("a BOM");
    let old_sub = moved_before.sub_mchid.clone().unwrap_or_default();
    let old_name = moved_before
        .sub_merchant_shortname
        .clone()
        .unwrap_or_default();
    let name_cell = "\"'=新店, \"\"旗舰\"\"\"";
    let sn = |d: &Device| d.device_sn.clone().unwrap();
    let csv_cell = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let want = [
        "time,kind,device_sn,field,old_value,new_value,sub_mchid,sub_merchant_shortname"
            .to_string(),
        format!(
            "{time},removed,{},,,,{},{}",
            sn(&gone),
            gone.sub_mchid.clone().unwrap_or_default(),
            csv_cell(&gone.sub_merchant_shortname.clone().unwrap_or_default())
        ),
        format!("{time},added,NEWDEV0001,,,,1699999999,{name_cell}"),
        format!(
            "{time},changed,{},sub_mchid,{old_sub},1699999999,1699999999,{name_cell}",
            sn(&moved)
        ),
        format!(
            "{time},changed,{},sub_merchant_shortname,{},{name_cell},1699999999,{name_cell}",
            sn(&moved),
            csv_cell(&old_name)
        ),
    ]
    .join("\r\n")
        + "\r\n";
    assert_eq!(body, want);

    // Filters, as the page's.
    let lines = |body: &str| body.trim_end().split("\r\n").count() - 1;
    let (_, b) = get("kind=removed").await;
    assert_eq!(lines(&b), 1);
    assert!(b.contains(&format!("removed,{}", sn(&gone))));
    let (_, b) = get("sub_mchid=1699999999").await;
    assert_eq!(lines(&b), 3);
    let (_, b) = get("field=sub_mchid&kind=changed").await;
    assert_eq!(lines(&b), 1);
    let (_, b) = get("since=2999-01-01T00:00:00%2B08:00").await;
    assert_eq!(lines(&b), 0, "the header alone: {b}");
    let (status, b) = get("kind=moved").await;
    assert_eq!(status, 400);
    assert!(b.contains("kind"), "{b}");
    let (status, _) = get("since=yesterday").await;
    assert_eq!(status, 400);

    // The XLSX holds the same rows.
    use calamine::Reader;
    let bytes = reqwest::get(format!("{http_url}/changes.xlsx"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("变更").unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0][0], "Time 时间");
    assert_eq!(rows[2][1], "added 新增");
    assert_eq!(rows[2][2], "NEWDEV0001");
    assert_eq!(rows[4][5], "=新店, \"旗舰\"", "a string, never a formula");

    // A restart on the same database: the same history, the saved snapshot, the request count.
    service.flush().await;
    let requests = service.requests_24h();
    assert!(requests >= 6, "two syncs of 300 devices: {requests}");
    drop(service);
    store.database().close().await;
    let store = open(&url).await;
    let service = service_on(&sim, &sim_url, &settings, &store).await;
    assert_eq!(service.requests_24h(), requests);
    assert_eq!(
        service.load_saved().await.unwrap().devices.len(),
        sim.devices().len()
    );
    let again = common::serve(|_| {
        wxpay_devices::export::routes(AppState::new(service.clone()).with_history(store.clone()))
    })
    .await;
    let text = reqwest::get(format!("{again}/changes.csv"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.strip_prefix('\u{feff}').unwrap(), want);

    // A third sync: the moved device is deactivated. Its timeline, oldest first: the two
    // changes of the second sync (in the order found: field by field), then this one.
    let mut list = sim.devices().to_vec();
    let at = list
        .iter()
        .position(|d| d.device_sn == moved.device_sn)
        .unwrap();
    list[at].activation_status = Some(
        if moved.activation_status.as_deref() == Some("ACTIVATED") {
            "INACTIVATED"
        } else {
            "ACTIVATED"
        }
        .into(),
    );
    sim.set_devices(list);
    let second = store.last_sync().unwrap().id;
    service.refresh_now().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.last_sync().unwrap().id == second {
        assert!(std::time::Instant::now() < deadline, "no third sync");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let timeline = store.timeline(&sn(&moved)).await.unwrap();
    let fields: Vec<&str> = timeline
        .iter()
        .map(|e| e.field.map(|f| f.name()).unwrap_or(""))
        .collect();
    assert_eq!(
        fields,
        ["sub_mchid", "sub_merchant_shortname", "activation_status"]
    );
    assert!(timeline[0].at_ms == timeline[1].at_ms && timeline[1].at_ms <= timeline[2].at_ms);
    let page = page_html(
        AppState::new(service.clone()).with_history(store.clone()),
        &format!("/devices/{}", sn(&moved)),
    )
    .await;
    let timeline_html = page
        .split("data-testid=\"timeline\"")
        .nth(1)
        .expect("the device page's timeline");
    assert_eq!(
        timeline_html
            .matches("data-testid=\"timeline-event\"")
            .count(),
        3
    );
    let mut at = 0;
    for field in [
        Field::SubMchid,
        Field::SubMerchantShortname,
        Field::ActivationStatus,
    ] {
        let label = format!(">{}<", wxpay_devices::i18n::Lang::En.field_label(field));
        let found = timeline_html[at..]
            .find(&label)
            .unwrap_or_else(|| panic!("{label} after the events before it"));
        at += found + label.len();
    }
    // Without a history, the files say so.
    let none =
        common::serve(|_| wxpay_devices::export::routes(AppState::new(service.clone()))).await;
    assert_eq!(
        reqwest::get(format!("{none}/changes.csv"))
            .await
            .unwrap()
            .status(),
        503
    );
}

/// The page at `path` as the dashboard renders it (in English) for `state`.
async fn page_html(state: wxpay_devices::view::AppState, path: &str) -> String {
    let site = leptos::prelude::get_configuration(Some("Cargo.toml"))
        .unwrap()
        .leptos_options;
    let url = common::serve(move |addr| {
        let auth = Arc::new(wxpay_devices::auth::Auth::new(
            None,
            std::time::Duration::from_secs(3600),
            false,
        ));
        let guard = Arc::new(wxpay_devices::guard::AccessGuard::new(addr, &[], &[]).unwrap());
        wxpay_devices::server::router(site, state, auth, guard)
    })
    .await;
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The Changes page's text search folds case the same way on both backends, in any script
/// (SQLite's LOWER and LIKE fold ASCII only: `Ä`, `Ω`, `İ` never matched there); events
/// written before the search text was kept get it at the next start.
async fn the_text_search_folds_any_case_alike(url: String) {
    let store = open(&url).await;
    store
        .record(snap(vec![dev("A", "1600000001", "Ärger GmbH")], T0, true))
        .await
        .unwrap();
    store
        .record(snap(
            vec![
                dev("A", "1600000001", "ÄRGER ΩMEGA"),
                dev("B", "1600000002", "İstanbul Straße"),
            ],
            T0 + HOUR,
            true,
        ))
        .await
        .unwrap();
    let search = |store: Arc<HistoryStore>| async move {
        let mut found = Vec::new();
        for q in [
            "ärger",
            "ÄRGER",
            "Ärger",
            "ωmega",
            "ΩMEGA",
            "i̇stanbul",
            "İSTANBUL",
            "straße",
            "gmbh",
            "%",
            "_",
            "a\u{1}b",
        ] {
            let query: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
            found.push((q, all(&store, &format!("q={query}")).await.1));
        }
        found
    };
    let want = vec![
        ("ärger", 1),
        ("ÄRGER", 1),
        ("Ärger", 1),
        ("ωmega", 1),
        ("ΩMEGA", 1),
        ("i̇stanbul", 1),
        ("İSTANBUL", 1),
        ("straße", 1),
        ("gmbh", 1),
        ("%", 0),
        ("_", 0),
        ("a\u{1}b", 0),
    ];
    let everything = all(&store, "").await;
    assert_eq!(everything.1, 2, "{:?}", brief(&everything.0));
    assert_eq!(search(store.clone()).await, want);
    // As a database of before: no search text. The next start fills it in.
    sqlx::query("UPDATE events SET search = NULL")
        .execute(store.database().pool())
        .await
        .unwrap();
    assert_eq!(all(&store, "q=gmbh").await.1, 0, "nothing to search yet");
    let reopened = open(&url).await;
    assert_eq!(search(reopened).await, want);
}
