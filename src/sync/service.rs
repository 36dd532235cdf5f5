//! The sync service: one per merchant. It answers "the snapshot, please" for every view, and
//! decides when to spend quota on a sync.
//!
//! - Fresh snapshots are cached in moka with a per-entry time-to-live: the refresh interval in
//!   force when they were made (the configured TTL, stretched to fit the daily quota).
//! - Concurrent callers share one sync (single flight). The sync runs in its own task, so a
//!   browser that disconnects does not cancel it.
//! - Once the snapshot is due, it is still served (marked stale) while one background refresh
//!   runs. A failed sync never replaces the last good snapshot, and is remembered briefly (moka,
//!   30 s) so a burst of page views does not start a burst of syncs.
//! - Every request to WeChat Pay, certificate downloads included, passes the one request budget
//!   (rate limiter and quota ledger), which the service installs in the client; the last good
//!   snapshot and the ledger are saved in the data directory and loaded at start.
//! - A sync that panics still ends: its slot is freed and its error shown.

use super::budget::{LocalBudget, RequestBudget};
use super::error::SyncError;
use super::fetch::{page_cache, FetchConfig, Fetcher, PageCache, Progress, PAGE_SIZE};
use super::lease::{LocalLease, SyncLease};
use super::limiter::RateLimiter;
use super::quota::{FileLedger, LedgerStore, NoLedger, QuotaLedger, DAILY_LIMIT};
use super::snapshot::{FileStore, NoStore, Snapshot, SnapshotStore, FORMAT};
use crate::clock::unix_now;
use crate::device_list::DeviceList;
use crate::status::{ErrorInfo, IntervalReason, RefreshBlocked, SaveFailure, SyncStatus};
use crate::wechatpay::client::WxPayClient;
use futures::future::{BoxFuture, FutureExt, Shared};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the service keeps what must survive a restart: one of its seams
/// (docs/architecture.md).
pub struct Persistence {
    pub snapshots: Arc<dyn SnapshotStore>,
    /// The request count so far, as loaded from `ledger_store`.
    pub ledger: QuotaLedger,
    pub ledger_store: Arc<dyn LedgerStore>,
    /// A budget shared with other replicas (`replicas::budget`), in place of this process's
    /// limiter and ledger.
    pub shared_budget: Option<Arc<dyn RequestBudget>>,
    /// A lease shared with other replicas (`replicas::lease`), in place of the embedded one.
    pub shared_lease: Option<Arc<dyn SyncLease>>,
}

#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// How long a snapshot is fresh, at least.
    pub ttl: Duration,
    /// How long a failed sync stops automatic retries.
    pub failure_memory: Duration,
    pub daily_limit: u64,
    /// Requests kept back from automatic refreshes for manual ones.
    pub reserve: u64,
    /// "Refresh now" at most this often.
    pub manual_min_interval: Duration,
    pub page_cache_ttl: Duration,
    pub fetch: FetchConfig,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            ttl: Duration::from_secs(600),
            failure_memory: Duration::from_secs(30),
            daily_limit: DAILY_LIMIT,
            reserve: 2_500,
            manual_min_interval: Duration::from_secs(60),
            page_cache_ttl: Duration::from_secs(120),
            fetch: FetchConfig::default(),
        }
    }
}

/// What a view is answered from.
#[derive(Clone, Debug)]
pub struct SnapshotView {
    pub snapshot: Arc<Snapshot>,
    /// False when the snapshot is past its interval (a refresh is running or deferred).
    pub fresh: bool,
}

type SyncResult = Result<Arc<Snapshot>, Arc<SyncError>>;
type SharedSync = Shared<BoxFuture<'static, SyncResult>>;

#[derive(Clone)]
struct Fresh {
    snapshot: Arc<Snapshot>,
    ttl: Duration,
}

struct FreshExpiry;

impl moka::Expiry<(), Fresh> for FreshExpiry {
    fn expire_after_create(
        &self,
        _: &(),
        value: &Fresh,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

#[derive(Default)]
struct State {
    last_good: Option<Arc<Snapshot>>,
    last_error: Option<ErrorInfo>,
    last_manual: Option<Instant>,
    /// The last save of a synced snapshot failed, and why.
    save_failure: Option<SaveFailure>,
}

pub struct SyncService {
    client: Arc<WxPayClient>,
    source: String,
    demo: bool,
    settings: SyncSettings,
    store: Arc<dyn SnapshotStore>,
    lease: Arc<dyn SyncLease>,
    fresh: moka::future::Cache<(), Fresh>,
    failures: moka::future::Cache<(), Arc<SyncError>>,
    /// The sync running, which callers share. A plain mutex: it is cleared by a guard when the
    /// sync ends, panics included.
    inflight: Mutex<Option<SharedSync>>,
    budget: Arc<dyn RequestBudget>,
    pages: PageCache,
    progress: Progress,
    state: Mutex<State>,
    /// The devices a first sync has fetched so far, rebuilt at most once a second.
    partial: Mutex<Option<PartialList>>,
}

/// How often the partial list of a first sync is rebuilt from its pages.
const PARTIAL_EVERY: Duration = Duration::from_secs(1);

/// The devices a first sync has fetched so far, as last built.
struct PartialList {
    at: Instant,
    /// How long the last build took.
    took: Duration,
    /// Pages it was built from.
    pages: usize,
    /// A caller is building the next one.
    building: bool,
    snapshot: Arc<Snapshot>,
}

/// `source` as a file name.
fn slug(source: &str) -> String {
    source
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Pages (requests) a sync of `devices` devices costs.
pub fn sync_cost(devices: usize) -> u64 {
    (devices as u64).div_ceil(PAGE_SIZE).max(1)
}

impl SyncService {
    /// `data_dir`: where the snapshot and the ledger are kept, as files (`None`: memory only).
    pub fn new(
        client: Arc<WxPayClient>,
        source: String,
        demo: bool,
        settings: SyncSettings,
        data_dir: Option<PathBuf>,
    ) -> Arc<Self> {
        let state = match &data_dir {
            Some(d) => {
                let ledger = FileLedger {
                    path: Self::ledger_file(d, &source),
                    source: source.clone(),
                };
                Persistence {
                    shared_budget: None,
                    shared_lease: None,
                    ledger: QuotaLedger::from_buckets(ledger.read()),
                    ledger_store: Arc::new(ledger),
                    snapshots: Arc::new(FileStore {
                        path: Self::snapshot_file(d, &source),
                        source: source.clone(),
                    }),
                }
            }
            None => Persistence {
                shared_budget: None,
                shared_lease: None,
                ledger: QuotaLedger::in_memory(),
                ledger_store: Arc::new(NoLedger),
                snapshots: Arc::new(NoStore),
            },
        };
        Self::with_state(client, source, demo, settings, state)
    }

    /// The snapshot file of `source` in `data_dir` (before the database, snapshots were kept
    /// there; the database imports it once).
    pub fn snapshot_file(data_dir: &std::path::Path, source: &str) -> PathBuf {
        data_dir.join(format!("snapshot-{}.json", slug(source)))
    }

    /// The ledger file of `source` in `data_dir` (likewise).
    pub fn ledger_file(data_dir: &std::path::Path, source: &str) -> PathBuf {
        data_dir.join(format!("ledger-{}.json", slug(source)))
    }

    /// As [`SyncService::new`], keeping the snapshot and the ledger where `state` says (the
    /// database, which records the change history as it saves snapshots).
    pub fn with_state(
        client: Arc<WxPayClient>,
        source: String,
        demo: bool,
        settings: SyncSettings,
        state: Persistence,
    ) -> Arc<Self> {
        let store = state.snapshots;
        let budget: Arc<dyn RequestBudget> = match state.shared_budget {
            Some(shared) => shared,
            None => Arc::new(LocalBudget::new(
                RateLimiter::for_wechatpay(),
                state.ledger,
                state.ledger_store,
                settings.daily_limit,
            )),
        };
        client.set_gate(budget.clone());
        Arc::new(SyncService {
            client,
            demo,
            store,
            lease: state
                .shared_lease
                .unwrap_or_else(|| Arc::new(LocalLease::default())),
            fresh: moka::future::Cache::builder()
                .max_capacity(1)
                .expire_after(FreshExpiry)
                .build(),
            failures: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(settings.failure_memory.max(Duration::from_millis(1)))
                .build(),
            inflight: Mutex::new(None),
            budget,
            pages: page_cache(settings.page_cache_ttl),
            progress: Progress::default(),
            state: Mutex::new(State::default()),
            partial: Mutex::new(None),
            settings,
            source,
        })
    }

    /// Loads the saved snapshot, if any: served at once, fresh until its interval runs out.
    pub async fn load_saved(&self) -> Option<Arc<Snapshot>> {
        let loaded = Arc::new(self.store.load().await?);
        let age = self.serve(&loaded, None).await;
        tracing::info!(
            devices = loaded.devices.len(),
            age_secs = age.as_secs(),
            "loaded the saved snapshot"
        );
        Some(loaded)
    }

    /// Serves `snapshot`, synced elsewhere (another replica's, through Redis): fresh until its
    /// interval runs out, like a loaded one. Nothing is saved: its sync saved it.
    pub async fn install(&self, snapshot: Arc<Snapshot>) {
        self.serve(&snapshot, None).await;
        tracing::info!(
            devices = snapshot.devices.len(),
            synced_at = snapshot.synced_at,
            "serving the snapshot another replica synced"
        );
    }

    /// Makes `snapshot` the one every view is answered from: fresh for what is left of its
    /// refresh interval (`age`: how old it is; `None`: from its sync time), clearing the
    /// remembered failure and the page cache. Returns its age.
    async fn serve(&self, snapshot: &Arc<Snapshot>, age: Option<Duration>) -> Duration {
        let age = age.unwrap_or_else(|| {
            Duration::from_secs((unix_now() - snapshot.synced_at).max(0) as u64)
        });
        let (interval, _) = self.interval(snapshot.devices.len());
        if age < interval {
            self.fresh
                .insert(
                    (),
                    Fresh {
                        snapshot: snapshot.clone(),
                        ttl: interval - age,
                    },
                )
                .await;
        }
        self.failures.invalidate(&()).await;
        // The pages and the first sync's partial list are of no use now: freed at once (moka
        // drops invalidated entries only at its next maintenance, which an idle cache never
        // runs; a 100,000-device list's pages are ~50 MB).
        self.pages.invalidate_all();
        self.pages.run_pending_tasks().await;
        self.partial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut state = self.lock_state();
        state.last_good = Some(snapshot.clone());
        state.last_error = None;
        age
    }

    /// Where the last good snapshot is kept.
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.store
    }

    pub fn is_demo(&self) -> bool {
        self.demo
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_inflight(&self) -> std::sync::MutexGuard<'_, Option<SharedSync>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The snapshot to answer a view from. Cold: waits for the first sync. Due: serves the last
    /// good snapshot and refreshes in the background.
    pub async fn snapshot(self: &Arc<Self>) -> Result<SnapshotView, Arc<SyncError>> {
        let metrics = crate::metrics::get();
        if let Some(f) = self.fresh.get(&()).await {
            metrics.snapshot_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(SnapshotView {
                snapshot: f.snapshot,
                fresh: true,
            });
        }
        metrics.snapshot_misses.fetch_add(1, Ordering::Relaxed);
        let last_good = self.lock_state().last_good.clone();
        if let Some(snapshot) = last_good {
            self.refresh_in_background();
            return Ok(SnapshotView {
                snapshot,
                fresh: false,
            });
        }
        if let Some(failure) = self.failures.get(&()).await {
            return Err(failure);
        }
        self.sync(false).await.map(|snapshot| SnapshotView {
            snapshot,
            fresh: true,
        })
    }

    /// While there is no snapshot yet: the devices the running sync has fetched so far (its
    /// pages, in order, each device once), marked incomplete. Rebuilt at most once a second,
    /// and at most a fifth of the time (a million devices take most of a second to intern),
    /// by one caller at a time, off the async threads; the others are answered with the list
    /// built last. It never shrinks (the sync empties its pages as it ends). Starts the sync if
    /// none runs. Empty before the first page.
    pub async fn partial(self: &Arc<Self>) -> Arc<Snapshot> {
        if !self.progress_running() {
            self.refresh_in_background();
        }
        let pages_before = {
            let mut kept = self.partial.lock().unwrap_or_else(|e| e.into_inner());
            match kept.as_mut() {
                Some(k) if k.building || k.at.elapsed() < PARTIAL_EVERY.max(k.took * 5) => {
                    return k.snapshot.clone()
                }
                Some(k) => {
                    k.building = true;
                    k.pages
                }
                None => {
                    *kept = Some(PartialList {
                        at: Instant::now(),
                        took: Duration::ZERO,
                        pages: 0,
                        building: true,
                        snapshot: Arc::new(self.partial_snapshot(DeviceList::default(), None)),
                    });
                    0
                }
            }
        };
        let mut pages: Vec<(u64, Arc<super::fetch::Page>)> = self
            .pages
            .iter()
            .map(|(offset, page)| (*offset, page))
            .collect();
        let started = Instant::now();
        let built = if pages.len() > pages_before {
            let n = pages.len();
            tokio::task::spawn_blocking(move || {
                pages.sort_by_key(|(offset, _)| *offset);
                let mut seen = std::collections::HashSet::new();
                let devices: DeviceList = pages
                    .iter()
                    .flat_map(|(_, page)| page.devices.iter())
                    .filter(|d| d.serial().is_none_or(|sn| seen.insert(sn)))
                    .collect();
                (n, devices, pages.first().and_then(|(_, p)| p.total_count))
            })
            .await
            .ok()
        } else {
            None
        };
        let mut kept = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        let Some(k) = kept.as_mut() else {
            // The sync ended meanwhile (`serve` dropped the partial list).
            return Arc::new(self.partial_snapshot(DeviceList::default(), None));
        };
        k.building = false;
        k.at = Instant::now();
        if let Some((n, devices, total_count)) = built {
            k.took = started.elapsed();
            k.pages = n;
            k.snapshot = Arc::new(self.partial_snapshot(devices, total_count));
        }
        k.snapshot.clone()
    }

    fn partial_snapshot(&self, devices: DeviceList, total_count: Option<u64>) -> Snapshot {
        Snapshot {
            format: FORMAT,
            source: self.source.clone(),
            synced_at: unix_now(),
            sync_millis: 0,
            total_count,
            received: devices.len(),
            duplicates: 0,
            requests: self.progress.requests.load(Ordering::Relaxed),
            complete: false,
            expected: total_count,
            repair_requests: 0,
            devices: Arc::new(devices),
        }
    }

    /// No snapshot yet, and a first sync running with more than a couple of pages still to
    /// fetch: a view should not wait for it.
    pub fn first_sync_well_under_way(&self) -> bool {
        let done = self.progress.pages_done.load(Ordering::Relaxed);
        let total = self.progress.pages_total.load(Ordering::Relaxed);
        self.progress_running() && self.last_good().is_none() && total > done + 2
    }

    /// The snapshot if one is held, without starting anything (for `/readyz`).
    pub fn last_good(&self) -> Option<Arc<Snapshot>> {
        self.lock_state().last_good.clone()
    }

    /// Starts a sync in the background unless one runs, a failure is remembered, or the quota
    /// does not allow it now.
    pub fn refresh_in_background(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            if me.failures.get(&()).await.is_some() {
                return;
            }
            if let Err(e) = me.sync(false).await {
                tracing::debug!(error = %e, "background refresh did not complete");
            }
        });
    }

    /// Starts a background refresh if the snapshot is due and none runs: called on a timer, so
    /// the history keeps being recorded while nobody looks at the dashboard.
    pub fn refresh_if_due(self: &Arc<Self>) {
        if !self.fresh.contains_key(&()) && !self.progress_running() {
            self.refresh_in_background();
        }
    }

    /// "Refresh now": allowed once a minute, not while a sync runs, and within the daily quota.
    pub async fn refresh_now(self: &Arc<Self>) -> Result<(), RefreshBlocked> {
        if let Some(why) = self.manual_refresh_blocked() {
            return Err(why);
        }
        self.lock_state().last_manual = Some(Instant::now());
        self.failures.invalidate(&()).await;
        let me = self.clone();
        tokio::spawn(async move {
            let _ = me.sync(true).await;
        });
        Ok(())
    }

    fn manual_refresh_blocked(&self) -> Option<RefreshBlocked> {
        if self.progress_running() {
            return Some(RefreshBlocked::Running);
        }
        if let Some(t) = self.lock_state().last_manual {
            let since = t.elapsed();
            if since < self.settings.manual_min_interval {
                let wait_secs = (self.settings.manual_min_interval - since).as_secs() + 1;
                return Some(RefreshBlocked::TooSoon { wait_secs });
            }
        }
        let cost = sync_cost(self.known_devices());
        let used = self.budget.used();
        if used + cost > self.settings.daily_limit {
            return Some(RefreshBlocked::Quota {
                used,
                limit: self.settings.daily_limit,
            });
        }
        None
    }

    fn progress_running(&self) -> bool {
        self.lock_inflight().is_some()
    }

    fn known_devices(&self) -> usize {
        self.lock_state()
            .last_good
            .as_ref()
            .map(|s| s.devices.len())
            .unwrap_or(0)
    }

    /// The refresh interval in force for a list of `devices`, and why.
    pub fn interval(&self, devices: usize) -> (Duration, IntervalReason) {
        let cost = sync_cost(devices);
        let budget = self
            .settings
            .daily_limit
            .saturating_sub(self.settings.reserve)
            .max(1);
        let needed = Duration::from_millis((86_400_000 * cost).div_ceil(budget));
        if needed > self.settings.ttl {
            (
                needed,
                IntervalReason::Quota {
                    devices,
                    cost,
                    per_day: budget,
                    reserve: self.settings.reserve,
                },
            )
        } else {
            (self.settings.ttl, IntervalReason::CacheLifetime)
        }
    }

    /// Joins the running sync or starts one. `manual` syncs may use the reserve.
    async fn sync(self: &Arc<Self>, manual: bool) -> SyncResult {
        let shared = {
            let mut inflight = self.lock_inflight();
            match inflight.as_ref() {
                Some(running) => running.clone(),
                None => {
                    let me = self.clone();
                    let task = tokio::spawn(async move {
                        // Whatever happens inside, the slot is freed and the outcome recorded.
                        let outcome = AssertUnwindSafe(me.clone().run(manual))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|panic| {
                                let what = panic
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_else(|| "no message".into());
                                Err(Arc::new(SyncError::Internal(format!(
                                    "the sync stopped on an internal error ({what})"
                                ))))
                            });
                        match &outcome {
                            // Another replica syncs: its snapshot comes through Redis.
                            Err(e) if matches!(**e, SyncError::LeaseHeld) => {
                                tracing::debug!("another replica holds the sync lease")
                            }
                            Err(e) => me.record_failure(e).await,
                            Ok(_) => {}
                        }
                        if let Err(e) = me.budget.save().await {
                            tracing::warn!(error = %e, "could not save the request ledger");
                        }
                        *me.lock_inflight() = None;
                        outcome
                    });
                    let fut: SharedSync = async move {
                        task.await
                            .unwrap_or_else(|e| Err(Arc::new(SyncError::Internal(e.to_string()))))
                    }
                    .boxed()
                    .shared();
                    *inflight = Some(fut.clone());
                    fut
                }
            }
        };
        shared.await
    }

    /// One sync, in its own task. Clears the in-flight marker when done.
    async fn run(self: Arc<Self>, manual: bool) -> SyncResult {
        let started = Instant::now();
        // Held until the sync ends (the embedded lease always grants; see sync/lease.rs).
        let Some(mut lease) = self.lease.acquire().await else {
            return Err(Arc::new(SyncError::LeaseHeld));
        };
        // The lease is free because its last holder just finished: its snapshot is on its way
        // here, so syncing again would spend a sync's requests for nothing.
        if self.store.behind().await {
            lease.give_back().await;
            return Err(Arc::new(SyncError::LeaseHeld));
        }
        // A holder that loses its lease (it could not renew it) stops: another may run now.
        let outcome = tokio::select! {
            outcome = self.fetch(manual) => outcome,
            _ = lease.lost() => Err(SyncError::NotNow(
                "this process lost the sync lease (it could not be renewed in time); the sync stopped".into(),
            )),
        };
        let result = match outcome {
            Ok(snapshot) => {
                let snapshot = Arc::new(Snapshot {
                    sync_millis: started.elapsed().as_millis() as u64,
                    ..snapshot
                });
                let m = crate::metrics::get();
                m.syncs_ok.fetch_add(1, Ordering::Relaxed);
                m.last_sync_millis
                    .store(snapshot.sync_millis, Ordering::Relaxed);
                // Just synced: fresh for its whole interval.
                self.serve(&snapshot, Some(Duration::ZERO)).await;
                tracing::info!(
                    devices = snapshot.devices.len(),
                    total_count = snapshot.total_count,
                    duplicates = snapshot.duplicates,
                    requests = snapshot.requests,
                    millis = snapshot.sync_millis,
                    "sync finished"
                );
                self.saved(self.store.save(snapshot.clone(), lease.fence()).await);
                Ok(snapshot)
            }
            Err(e) => Err(Arc::new(e)),
        };
        // Given back before the slot is freed: the next holder may start at once.
        lease.give_back().await;
        result
    }

    /// The outcome of saving a synced snapshot: a failure is counted, logged and shown (status
    /// bar, `/readyz`, `/metrics`) until a save succeeds.
    fn saved(&self, outcome: Result<(), String>) {
        let m = crate::metrics::get();
        let failure = match outcome {
            Ok(()) => None,
            Err(e) => {
                m.snapshot_save_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "could not save the snapshot: its changes are not recorded");
                Some(SaveFailure {
                    detail: e,
                    at: unix_now(),
                })
            }
        };
        self.lock_state().save_failure = failure;
    }

    /// A sync that failed: counted, logged, remembered briefly, shown in the status bar.
    async fn record_failure(&self, e: &Arc<SyncError>) {
        crate::metrics::get()
            .syncs_failed
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "sync failed");
        self.failures.insert((), e.clone()).await;
        self.lock_state().last_error = Some(ErrorInfo {
            failure: e.failure(),
            detail: e.detail(),
            request_id: e.request_id().map(str::to_string),
            at: unix_now(),
        });
    }

    async fn fetch(&self, manual: bool) -> Result<Snapshot, SyncError> {
        let ceiling = if manual {
            self.settings.daily_limit
        } else {
            self.settings
                .daily_limit
                .saturating_sub(self.settings.reserve)
        };
        let used = self.budget.used();
        let estimate = sync_cost(self.known_devices());
        if used + estimate > ceiling {
            let retry_in_secs = self.budget.seconds_until_room(estimate, ceiling);
            return Err(SyncError::Quota {
                needed: estimate,
                used,
                ceiling,
                retry_in_secs,
            });
        }
        self.progress.reset();
        let fetcher = Fetcher {
            client: &self.client,
            budget: self.budget.as_ref(),
            pages: &self.pages,
            config: &self.settings.fetch,
            progress: &self.progress,
            ceiling,
        };
        let fetched = fetcher.fetch_all().await.map_err(|e| match e {
            SyncError::Quota { needed, used, .. } => SyncError::Quota {
                needed,
                used,
                ceiling,
                retry_in_secs: self.budget.seconds_until_room(needed, ceiling),
            },
            other => other,
        })?;
        Ok(Snapshot {
            format: FORMAT,
            source: self.source.clone(),
            synced_at: unix_now(),
            sync_millis: 0,
            total_count: fetched.total_count,
            received: fetched.received,
            duplicates: fetched.duplicates,
            requests: self.progress.requests.load(Ordering::Relaxed),
            complete: fetched.complete,
            expected: Some(fetched.expected),
            repair_requests: fetched.repair_requests,
            devices: Arc::new(fetched.devices),
        })
    }

    /// Requests sent in the last 24 h.
    pub fn requests_24h(&self) -> u64 {
        self.budget.used()
    }

    /// Saves the ledger (at shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.budget.save().await {
            tracing::warn!(error = %e, "could not save the request ledger");
        }
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The state the status bar shows.
    pub fn status(&self) -> SyncStatus {
        let now = unix_now();
        let state = self.lock_state();
        let snap = state.last_good.clone();
        let devices = snap.as_ref().map(|s| s.devices.len()).unwrap_or(0);
        let (interval, reason) = self.interval(devices);
        let fresh = self.fresh.contains_key(&());
        let last_error = state.last_error.clone();
        let save_failure = state.save_failure.clone();
        drop(state);
        SyncStatus {
            demo: self.demo,
            running: self.progress_running(),
            pages_done: self.progress.pages_done.load(Ordering::Relaxed),
            pages_total: self.progress.pages_total.load(Ordering::Relaxed),
            seconds_left: self
                .progress_running()
                .then(|| {
                    self.progress
                        .seconds_left(crate::clock::unix_now_ms().max(0) as u64)
                })
                .flatten(),
            synced_at: snap.as_ref().map(|s| s.synced_at),
            age_secs: snap.as_ref().map(|s| (now - s.synced_at).max(0)),
            fresh,
            devices,
            total_count: snap.as_ref().and_then(|s| s.total_count),
            complete: snap.as_ref().is_none_or(|s| s.complete),
            expected: snap.as_ref().and_then(|s| s.expected),
            duplicates: snap.as_ref().map(|s| s.duplicates).unwrap_or(0),
            requests_24h: self.requests_24h(),
            daily_limit: self.settings.daily_limit,
            reserve: self.settings.reserve,
            interval_secs: interval.as_secs(),
            interval_reason: reason,
            last_error,
            manual_refresh_blocked: self.manual_refresh_blocked(),
            last_changes: None,
            shared_state_lost: false,
            save_failure,
        }
    }
}
