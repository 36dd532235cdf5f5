//! Where the history is kept (docs/history.md): the database's `syncs` and `events`, and the last
//! snapshot beside them. [`HistoryStore`] is the sync service's snapshot store: saving a
//! snapshot compares it with the list as the history knows it and writes the snapshot, the sync's
//! record and its events in one transaction, so a crash never leaves one without the others.

use super::diff::{apply, diff, Change};
use crate::changes::{ChangeEvent, ChangeKind, ChangesQuery, SyncSummary};
use crate::db::{Database, Sql};
use crate::device_list::DeviceList;
use crate::model::Field;
use crate::sync::snapshot::{pack, unpack, Snapshot, SnapshotStore, FORMAT};
use futures::future::BoxFuture;
use futures::Stream;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::sync::{Arc, Mutex};

/// Events written per statement (11 values each: well under both backends' limits).
const INSERT_BATCH: usize = 500;
/// Events read per query when streaming an export.
pub const EXPORT_BATCH: usize = 2_000;
const DAY_MS: i64 = 86_400_000;

/// How many times a save is tried again when another process recorded a sync between this
/// one's reading of the baseline and its write (replicas).
const RECORD_ATTEMPTS: usize = 3;

/// The list as the history knows it: the last complete snapshot, with what incomplete syncs
/// since then added and changed (they remove nothing); `None` before the first sync. `sync`
/// names the recorded sync it is the result of (`meta.history_sync`, absent in databases of
/// before and before the first sync): a copy in memory is used only while the database still
/// names that sync, so a replica whose last sync was recorded by another process reads the list
/// from the database, not from what it remembers (docs/history.md, "What each sync is compared
/// with").
#[derive(Clone)]
struct Known {
    sync: Option<i64>,
    devices: Option<Arc<DeviceList>>,
}

pub struct HistoryStore {
    db: Database,
    source: String,
    retention_days: u32,
    /// The baseline as last read or written by this process (`None`: not read yet). Held
    /// while a snapshot is saved, so saves of one process never interleave.
    baseline: tokio::sync::Mutex<Option<Known>>,
    last: Mutex<Option<SyncSummary>>,
    /// A snapshot file of the days before the database, imported once if the database has none.
    legacy_file: Option<std::path::PathBuf>,
}

fn db_error(what: &str, e: sqlx::Error) -> String {
    format!("the database could not {what}: {e}")
}

impl HistoryStore {
    pub fn new(db: Database, source: &str, retention_days: u32) -> Self {
        HistoryStore {
            db,
            source: source.to_string(),
            retention_days: retention_days.max(1),
            baseline: tokio::sync::Mutex::new(None),
            last: Mutex::new(None),
            legacy_file: None,
        }
    }

    /// Imports this snapshot file (the format before the database) once, if the database holds
    /// no snapshot yet. The file is left where it is.
    pub fn with_legacy_file(mut self, path: std::path::PathBuf) -> Self {
        self.legacy_file = Some(path);
        self
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Checks that the database holds this source's history (or none yet), and claims it. A
    /// database of another merchant is refused; in `demo` mode, another demo's history is
    /// thrown away instead (it is simulated), but a real merchant's never is.
    pub async fn claim(&self, demo: bool) -> Result<(), String> {
        let held = self
            .db
            .meta("source")
            .await
            .map_err(|e| db_error("be read", e))?;
        match held {
            Some(s) if s == self.source => return self.fill_search_text().await,
            Some(s) if !demo || !s.starts_with("demo:") => {
                return Err(format!(
                    "DATABASE_URL: this database holds the history of {s}, not of {}; give each \
                     merchant its own database",
                    self.source
                ))
            }
            Some(_) => {
                Sql::new("DELETE FROM meta WHERE key = ")
                    .bind(RECORDED_SYNC.to_string())
                    .query()
                    .execute(self.db.pool())
                    .await
                    .map_err(|e| db_error("be cleared", e))?;
                for table in ["events", "syncs", "snapshots"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                        .execute(self.db.pool())
                        .await
                        .map_err(|e| db_error("be cleared", e))?;
                }
            }
            None => {}
        }
        self.db
            .set_meta("source", &self.source)
            .await
            .map_err(|e| db_error("be written", e))?;
        self.fill_search_text().await
    }

    /// Events written before the search text was kept get it (once: at the first start after
    /// the upgrade), 500 to a statement.
    async fn fill_search_text(&self) -> Result<(), String> {
        let mut filled = 0usize;
        loop {
            let rows = Sql::new(
                "SELECT id, device_sn, sub_mchid, sub_merchant_shortname, old_value, new_value \
                 FROM events WHERE search IS NULL ORDER BY id LIMIT ",
            )
            .bind(INSERT_BATCH as i64)
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
            if rows.is_empty() {
                break;
            }
            if filled == 0 {
                tracing::info!("filling in the search text of the events from before this version");
            }
            let mut case = Sql::new("UPDATE events SET search = CASE id");
            let mut ids = Vec::with_capacity(rows.len());
            for row in &rows {
                let get = |i: usize| -> Result<String, String> {
                    row.try_get::<Option<String>, _>(i)
                        .map(Option::unwrap_or_default)
                        .map_err(|e| db_error("be read", e))
                };
                let id: i64 = row.try_get(0).map_err(|e| db_error("be read", e))?;
                let text = search_text([&get(1)?, &get(2)?, &get(3)?, &get(4)?, &get(5)?]);
                case = case.push(" WHEN ").bind(id).push(" THEN ").bind(text);
                ids.push(id);
            }
            filled += ids.len();
            case.push(" END WHERE id IN ")
                .bind_list(ids)
                .query()
                .execute(self.db.pool())
                .await
                .map_err(|e| db_error("be written", e))?;
        }
        if filled > 0 {
            tracing::info!(events = filled, "search text filled in");
        }
        Ok(())
    }

    /// The last sync recorded, if any.
    pub fn last_sync(&self) -> Option<SyncSummary> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn load_snapshot(&self) -> Result<Option<Snapshot>, String> {
        // Read before the rows: if a sync is recorded in between, the name is older than the
        // list and the next save reads the list again (never the other way round).
        let sync = self.recorded_sync().await?;
        let rows = Sql::new("SELECT role, body FROM snapshots WHERE source = ")
            .bind(self.source.clone())
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        let mut served = None;
        let mut baseline = None;
        for row in rows {
            let role: String = row.try_get(0).map_err(|e| db_error("be read", e))?;
            let body: Vec<u8> = row.try_get(1).map_err(|e| db_error("be read", e))?;
            match role.as_str() {
                "served" => served = Some(body),
                "baseline" => baseline = Some(body),
                _ => {}
            }
        }
        let (snapshot, baseline) = tokio::task::spawn_blocking(move || {
            let snapshot = served.and_then(|b| match unpack::<Snapshot>(&b) {
                Ok(s) if s.format == FORMAT => Some(s),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a corrupt snapshot in the database");
                    None
                }
            });
            let baseline = baseline.and_then(|b| unpack::<DeviceList>(&b).ok());
            (snapshot, baseline)
        })
        .await
        .map_err(|e| e.to_string())?;
        let Some(snapshot) = snapshot.filter(|s| s.source == self.source) else {
            return Ok(None);
        };
        *self.baseline.lock().await = Some(Known {
            sync,
            devices: Some(
                baseline
                    .map(Arc::new)
                    .unwrap_or_else(|| snapshot.devices.clone()),
            ),
        });
        Ok(Some(snapshot))
    }

    /// The recorded sync the database's baseline is the result of (`meta.history_sync`).
    async fn recorded_sync(&self) -> Result<Option<i64>, String> {
        let value = self
            .db
            .meta(RECORDED_SYNC)
            .await
            .map_err(|e| db_error("be read", e))?;
        value
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("the database's {RECORDED_SYNC} is not a number: {v:?}"))
            })
            .transpose()
    }

    /// The list as the database knows it: its `baseline` row, else its served snapshot's
    /// devices; `None` when it has neither (no sync recorded yet).
    async fn stored_baseline(&self) -> Result<Option<Arc<DeviceList>>, String> {
        let rows = Sql::new("SELECT role, body FROM snapshots WHERE source = ")
            .bind(self.source.clone())
            .push(" AND role IN ('served', 'baseline')")
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        let mut served = None;
        let mut baseline = None;
        for row in rows {
            let role: String = row.try_get(0).map_err(|e| db_error("be read", e))?;
            let body: Vec<u8> = row.try_get(1).map_err(|e| db_error("be read", e))?;
            match role.as_str() {
                "baseline" => baseline = Some(body),
                _ => served = Some(body),
            }
        }
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || match (baseline, served) {
            (Some(b), _) => unpack::<DeviceList>(&b).map(|d| Some(Arc::new(d))),
            (None, Some(s)) => {
                let s = unpack::<Snapshot>(&s)?;
                if s.source != source {
                    return Err(format!("the database's snapshot is of {}", s.source));
                }
                Ok(Some(s.devices))
            }
            (None, None) => Ok(None),
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the database's baseline could not be read: {e}"))
    }

    async fn load_last_sync(&self) -> Result<(), String> {
        let row = Sql::new(SYNC_COLUMNS)
            .push(" FROM syncs ORDER BY id DESC LIMIT 1")
            .query()
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            row.map(|r| sync_from_row(&r)).transpose()?;
        Ok(())
    }

    /// The snapshot file of before, imported into the database once.
    async fn import_legacy(&self) -> Option<Snapshot> {
        let path = self.legacy_file.clone()?;
        if self
            .db
            .meta("imported_snapshot")
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return None;
        }
        let source = self.source.clone();
        let file = path.clone();
        let snapshot =
            tokio::task::spawn_blocking(move || crate::sync::snapshot::load(&file, &source))
                .await
                .ok()
                .flatten()?;
        let snapshot = Arc::new(snapshot);
        let body = pack(&*snapshot).ok()?;
        let mut tx = self.db.pool().begin().await.ok()?;
        put_snapshot(
            &mut tx,
            &self.source,
            "served",
            snapshot.synced_at * 1000,
            body,
        )
        .await
        .ok()?;
        Sql::new("INSERT INTO meta (key, value) VALUES ('imported_snapshot', ")
            .bind(path.display().to_string())
            .push(")")
            .query()
            .execute(&mut *tx)
            .await
            .ok()?;
        tx.commit().await.ok()?;
        tracing::info!(file = %path.display(), devices = snapshot.devices.len(), "imported the saved snapshot into the database");
        *self.baseline.lock().await = Some(Known {
            sync: None,
            devices: Some(snapshot.devices.clone()),
        });
        Some(Arc::unwrap_or_clone(snapshot))
    }

    /// Saves `snapshot` and records what changed since the last one (the first is the baseline).
    pub async fn record(&self, snapshot: Arc<Snapshot>) -> Result<SyncSummary, String> {
        self.record_fenced(snapshot, None).await
    }

    /// As [`HistoryStore::record`], by the holder of the sync lease's fencing token `fence`
    /// (several processes): refused, writing nothing, if a higher token has written already.
    pub async fn record_fenced(
        &self,
        snapshot: Arc<Snapshot>,
        fence: Option<u64>,
    ) -> Result<SyncSummary, String> {
        let mut known = self.baseline.lock().await;
        for _ in 0..RECORD_ATTEMPTS {
            // The list to compare with: what the database names as the last recorded sync's
            // result. This process's copy serves only while it is that one.
            let recorded = self.recorded_sync().await?;
            let before = match known.as_ref() {
                Some(k) if k.sync == recorded => k.devices.clone(),
                _ => self.stored_baseline().await?,
            };
            let Some((summary, next)) = self
                .write_sync(snapshot.clone(), before, recorded, fence)
                .await?
            else {
                // Another process recorded a sync since `recorded` was read: compare with its
                // result instead.
                tracing::info!("another replica recorded a sync meanwhile: comparing again");
                continue;
            };
            *known = Some(Known {
                sync: Some(summary.id),
                devices: Some(next),
            });
            drop(known);
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary.clone());
            if let Err(e) = self.prune(summary.finished_ms).await {
                tracing::warn!(error = %e, "could not prune old history");
            }
            tracing::info!(
                added = summary.added,
                removed = summary.removed,
                changed = summary.changed,
                baseline = summary.baseline,
                "history recorded"
            );
            return Ok(summary);
        }
        Err(format!(
            "not saved: other replicas recorded syncs while this one was saving ({RECORD_ATTEMPTS} \
             attempts)"
        ))
    }

    /// Compares `snapshot` with `before` (the list as of recorded sync `recorded`) and writes the
    /// snapshot, the sync's record and its events in one transaction, if the database still
    /// names `recorded` as the last sync (else `None`: nothing written). Returns the sync's
    /// summary and the list as the history knows it now.
    async fn write_sync(
        &self,
        snapshot: Arc<Snapshot>,
        before: Option<Arc<DeviceList>>,
        recorded: Option<i64>,
        fence: Option<u64>,
    ) -> Result<Option<(SyncSummary, Arc<DeviceList>)>, String> {
        let is_baseline = before.is_none();
        let snap = snapshot.clone();
        let (changes, next, body, next_body) = tokio::task::spawn_blocking(move || {
            let (changes, next) = match &before {
                None => (Vec::new(), snap.devices.clone()),
                Some(b) => {
                    let changes = diff(b, &snap.devices, snap.complete);
                    let next = if snap.complete {
                        snap.devices.clone()
                    } else {
                        Arc::new(apply(b, &changes))
                    };
                    (changes, next)
                }
            };
            let body = pack(&*snap)?;
            let next_body = if snap.complete {
                None
            } else {
                Some(pack(&*next)?)
            };
            Ok::<_, String>((changes, next, body, next_body))
        })
        .await
        .map_err(|e| e.to_string())??;

        let finished_ms = snapshot.synced_at * 1000;
        let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count() as u64;
        let mut summary = SyncSummary {
            id: 0,
            started_ms: finished_ms - snapshot.sync_millis as i64,
            finished_ms,
            requests: snapshot.requests,
            devices: snapshot.devices.len() as u64,
            complete: snapshot.complete,
            baseline: is_baseline,
            added: count(ChangeKind::Added),
            removed: count(ChangeKind::Removed),
            changed: count(ChangeKind::Changed),
        };
        enum Outcome {
            Written(i64),
            StaleFence,
            Overtaken,
        }
        let write = async {
            let mut tx = self.db.pool().begin().await?;
            if let Some(fence) = fence {
                if !take_fence(&mut tx, fence as i64).await? {
                    return Ok(Outcome::StaleFence);
                }
            }
            let id = insert_sync(&mut tx, &summary).await?;
            // Compare-and-set: the database must still name the sync `before` is the result
            // of (on PostgreSQL the row stays locked until commit, so two writers cannot both
            // pass).
            if !advance_recorded_sync(&mut tx, recorded, id).await? {
                return Ok(Outcome::Overtaken);
            }
            put_snapshot(&mut tx, &self.source, "served", finished_ms, body).await?;
            match next_body {
                Some(b) => put_snapshot(&mut tx, &self.source, "baseline", finished_ms, b).await?,
                None => {
                    Sql::new("DELETE FROM snapshots WHERE role = 'baseline' AND source = ")
                        .bind(self.source.clone())
                        .query()
                        .execute(&mut *tx)
                        .await?;
                }
            }
            insert_events(&mut tx, id, finished_ms, &changes).await?;
            tx.commit().await?;
            Ok::<Outcome, sqlx::Error>(Outcome::Written(id))
        };
        match write.await.map_err(|e| db_error("save the sync", e))? {
            Outcome::Written(id) => {
                summary.id = id;
                Ok(Some((summary, next)))
            }
            Outcome::StaleFence => Err(format!(
                "not saved: this sync's lease (fencing token {}) is not newer than one that has \
                 written already",
                fence.unwrap_or_default()
            )),
            Outcome::Overtaken => Ok(None),
        }
    }

    /// Deletes events and syncs older than the retention period (`HISTORY_DAYS`).
    pub async fn prune(&self, now_ms: i64) -> Result<u64, String> {
        let cutoff = now_ms - self.retention_days as i64 * DAY_MS;
        let events = Sql::new("DELETE FROM events WHERE at < ")
            .bind(cutoff)
            .query()
            .execute(self.db.pool())
            .await
            .map_err(|e| db_error("prune events", e))?
            .rows_affected();
        Sql::new("DELETE FROM syncs WHERE finished_at < ")
            .bind(cutoff)
            .query()
            .execute(self.db.pool())
            .await
            .map_err(|e| db_error("prune syncs", e))?;
        Ok(events)
    }

    /// One page of events, newest first (within one sync, in the order found: removed, added,
    /// changed field by field), and how many match in all.
    pub async fn events(
        &self,
        query: &ChangesQuery,
        now_ms: i64,
    ) -> Result<(Vec<ChangeEvent>, u64), String> {
        let total: i64 = where_clause(Sql::new("SELECT COUNT(*) FROM events"), query, now_ms)?
            .query_scalar()
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        let per_page = query.per_page.max(1) as i64;
        let offset = (query.page.max(1) as i64 - 1) * per_page;
        let rows = where_clause(Sql::new(EVENT_COLUMNS).push(" FROM events"), query, now_ms)?
            .push(" ORDER BY at DESC, id LIMIT ")
            .bind(per_page)
            .push(" OFFSET ")
            .bind(offset)
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok((events, total.max(0) as u64))
    }

    /// Every matching event, newest first, in batches (keyset paging: memory stays flat however
    /// many there are). The query is checked before the stream is returned.
    pub fn export(
        self: &Arc<Self>,
        query: &ChangesQuery,
        now_ms: i64,
    ) -> Result<impl Stream<Item = Result<Vec<ChangeEvent>, String>> + Send + 'static, String> {
        where_clause(Sql::new(""), query, now_ms)?;
        let me = self.clone();
        let query = query.clone();
        Ok(futures::stream::try_unfold(
            (None::<(i64, i64)>, false),
            move |(after, done)| {
                let me = me.clone();
                let query = query.clone();
                async move {
                    if done {
                        return Ok(None);
                    }
                    let mut sql =
                        where_clause(Sql::new(EVENT_COLUMNS).push(" FROM events"), &query, now_ms)?;
                    if let Some((at, id)) = after {
                        sql = sql
                            .push(" AND (at < ")
                            .bind(at)
                            .push(" OR (at = ")
                            .bind(at)
                            .push(" AND id > ")
                            .bind(id)
                            .push("))");
                    }
                    let rows = sql
                        .push(" ORDER BY at DESC, id LIMIT ")
                        .bind(EXPORT_BATCH as i64)
                        .query()
                        .fetch_all(me.db.pool())
                        .await
                        .map_err(|e| db_error("be read", e))?;
                    let batch: Vec<ChangeEvent> =
                        rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
                    if batch.is_empty() {
                        return Ok(None);
                    }
                    let last = batch.last().map(|e| (e.at_ms, e.id));
                    let done = batch.len() < EXPORT_BATCH;
                    Ok(Some((batch, (last, done))))
                }
            },
        ))
    }

    /// The syncs that finished since `since_ms` (all of them without), oldest first.
    pub async fn syncs(&self, since_ms: Option<i64>) -> Result<Vec<SyncSummary>, String> {
        let mut sql = Sql::new(SYNC_COLUMNS).push(" FROM syncs");
        if let Some(t) = since_ms {
            sql = sql.push(" WHERE finished_at >= ").bind(t);
        }
        let rows = sql
            .push(" ORDER BY finished_at, id")
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        rows.iter().map(sync_from_row).collect()
    }

    /// The last `n` syncs, newest first.
    pub async fn recent_syncs(&self, n: usize) -> Result<Vec<SyncSummary>, String> {
        let rows = Sql::new(SYNC_COLUMNS)
            .push(" FROM syncs ORDER BY id DESC LIMIT ")
            .bind(n as i64)
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        rows.iter().map(sync_from_row).collect()
    }

    /// A device's events, oldest first (its timeline).
    pub async fn timeline(&self, device_sn: &str) -> Result<Vec<ChangeEvent>, String> {
        let rows = Sql::new(EVENT_COLUMNS)
            .push(" FROM events WHERE device_sn = ")
            .bind(device_sn.to_string())
            .push(" ORDER BY at, id")
            .query()
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))?;
        rows.iter().map(event_from_row).collect()
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// When the history kept starts (the oldest sync kept), if there is any.
    pub async fn syncs_since(&self) -> Result<Option<i64>, String> {
        Sql::new("SELECT MIN(finished_at) FROM syncs")
            .query_scalar::<Option<i64>>()
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| db_error("be read", e))
    }
}

impl SnapshotStore for HistoryStore {
    fn load(&self) -> BoxFuture<'_, Option<Snapshot>> {
        Box::pin(async move {
            if let Err(e) = self.load_last_sync().await {
                tracing::warn!(error = %e, "could not read the last sync's record");
            }
            match self.load_snapshot().await {
                Ok(Some(s)) => Some(s),
                Ok(None) => self.import_legacy().await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not load the saved snapshot");
                    None
                }
            }
        })
    }

    fn save(
        &self,
        snapshot: Arc<Snapshot>,
        fence: Option<u64>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.record_fenced(snapshot, fence).await.map(|_| ()) })
    }

    fn highest_fence(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let value = self
                .db
                .meta("fence")
                .await
                .map_err(|e| db_error("be read", e))?;
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }
}

/// Takes the fencing token `fence` in the transaction: `false` if the same or a higher one has
/// written (each lease grant writes once; two holders with one token, possible after Redis
/// lost its counter, must not both write). The row is locked by the update on PostgreSQL until
/// the transaction ends, and SQLite has one writer at a time.
async fn take_fence(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    fence: i64,
) -> Result<bool, sqlx::Error> {
    Sql::new("INSERT INTO meta (key, value) VALUES ('fence', '0') ON CONFLICT (key) DO NOTHING")
        .query()
        .execute(&mut **tx)
        .await?;
    let taken = Sql::new("UPDATE meta SET value = ")
        .bind(fence.to_string())
        .push(" WHERE key = 'fence' AND CAST(value AS BIGINT) < ")
        .bind(fence)
        .query()
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(taken == 1)
}

/// `meta` key: the recorded sync whose result the database's baseline is.
const RECORDED_SYNC: &str = "history_sync";

/// Names sync `id` as the last recorded one, if the database still names `expected`; `false`
/// (nothing changed) if another writer got there first.
async fn advance_recorded_sync(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    expected: Option<i64>,
    id: i64,
) -> Result<bool, sqlx::Error> {
    let sql = match expected {
        None => Sql::new("INSERT INTO meta (key, value) VALUES (")
            .bind(RECORDED_SYNC.to_string())
            .push(", ")
            .bind(id.to_string())
            .push(") ON CONFLICT (key) DO NOTHING"),
        Some(old) => Sql::new("UPDATE meta SET value = ")
            .bind(id.to_string())
            .push(" WHERE key = ")
            .bind(RECORDED_SYNC.to_string())
            .push(" AND value = ")
            .bind(old.to_string()),
    };
    Ok(sql.query().execute(&mut **tx).await?.rows_affected() == 1)
}

async fn put_snapshot(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    source: &str,
    role: &str,
    saved_ms: i64,
    body: Vec<u8>,
) -> Result<(), sqlx::Error> {
    Sql::new("INSERT INTO snapshots (source, role, saved_at, body) VALUES (")
        .bind(source.to_string())
        .push(", ")
        .bind(role.to_string())
        .push(", ")
        .bind(saved_ms)
        .push(", ")
        .bind(body)
        .push(
            ") ON CONFLICT (source, role) DO UPDATE SET saved_at = excluded.saved_at, \
             body = excluded.body",
        )
        .query()
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Writes the record of a sync (its `id` is given by the database, and returned), inside the
/// caller's transaction.
pub async fn insert_sync(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    s: &SyncSummary,
) -> Result<i64, sqlx::Error> {
    Sql::new(
        "INSERT INTO syncs (started_at, finished_at, requests, devices, complete, baseline, \
         added, removed, changed) VALUES ",
    )
    .bind_list([
        s.started_ms,
        s.finished_ms,
        s.requests as i64,
        s.devices as i64,
        s.complete as i64,
        s.baseline as i64,
        s.added as i64,
        s.removed as i64,
        s.changed as i64,
    ])
    .push(" RETURNING id")
    .query_scalar()
    .fetch_one(&mut **tx)
    .await
}

/// Writes `changes` as events of sync `sync_id` found at `at` (epoch ms), 500 to a statement,
/// inside the caller's transaction.
pub async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sync_id: i64,
    at: i64,
    changes: &[Change],
) -> Result<(), sqlx::Error> {
    for batch in changes.chunks(INSERT_BATCH) {
        let mut sql = Sql::new(
            "INSERT INTO events (sync_id, at, kind, device_sn, field, old_value, new_value, \
             sub_mchid, sub_merchant_shortname, search) VALUES ",
        );
        for (i, c) in batch.iter().enumerate() {
            let d = &c.device;
            sql = sql
                .push(if i == 0 { "(" } else { ", (" })
                .bind(sync_id)
                .push(", ")
                .bind(at)
                .push(", ")
                .bind(c.kind.name().to_string())
                .push(", ")
                .bind(d.device_sn.clone().unwrap_or_default())
                .push(", ")
                .bind(c.field.map(Field::name).unwrap_or_default().to_string())
                .push(", ")
                .bind(c.old_value.clone())
                .push(", ")
                .bind(c.new_value.clone())
                .push(", ")
                .bind(d.sub_mchid.clone().unwrap_or_default())
                .push(", ")
                .bind(d.sub_merchant_shortname.clone().unwrap_or_default())
                .push(", ")
                .bind(search_text([
                    d.device_sn.as_deref().unwrap_or_default(),
                    d.sub_mchid.as_deref().unwrap_or_default(),
                    d.sub_merchant_shortname.as_deref().unwrap_or_default(),
                    c.old_value.as_deref().unwrap_or_default(),
                    c.new_value.as_deref().unwrap_or_default(),
                ]))
                .push(")");
        }
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "SELECT id, at, kind, device_sn, field, old_value, new_value, \
                             sub_mchid, sub_merchant_shortname";
const SYNC_COLUMNS: &str = "SELECT id, started_at, finished_at, requests, devices, complete, \
                            baseline, added, removed, changed";

fn event_from_row(r: &AnyRow) -> Result<ChangeEvent, String> {
    let get = |e: sqlx::Error| db_error("be read", e);
    let kind: String = r.try_get(2).map_err(get)?;
    let field: String = r.try_get(4).map_err(get)?;
    Ok(ChangeEvent {
        id: r.try_get(0).map_err(get)?,
        at_ms: r.try_get(1).map_err(get)?,
        kind: ChangeKind::parse(&kind).ok_or_else(|| format!("unknown event kind {kind:?}"))?,
        device_sn: r.try_get(3).map_err(get)?,
        field: Field::parse(&field),
        old_value: r.try_get(5).map_err(get)?,
        new_value: r.try_get(6).map_err(get)?,
        sub_mchid: r.try_get(7).map_err(get)?,
        sub_merchant_shortname: r.try_get(8).map_err(get)?,
    })
}

fn sync_from_row(r: &AnyRow) -> Result<SyncSummary, String> {
    let get =
        |i: usize| -> Result<i64, String> { r.try_get(i).map_err(|e| db_error("be read", e)) };
    Ok(SyncSummary {
        id: get(0)?,
        started_ms: get(1)?,
        finished_ms: get(2)?,
        requests: get(3)?.max(0) as u64,
        devices: get(4)?.max(0) as u64,
        complete: get(5)? != 0,
        baseline: get(6)? != 0,
        added: get(7)?.max(0) as u64,
        removed: get(8)?.max(0) as u64,
        changed: get(9)?.max(0) as u64,
    })
}

/// Epoch milliseconds of an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| format!("{s:?} is not an RFC 3339 time, like 2026-11-29T08:00:00+08:00"))
}

/// What the search looks in for one event: its serial, sub-merchant id and name, old and new
/// value, lower-cased with Unicode's rules (as the searched text is: [`like_pattern`]), joined by
/// U+0001 so a match never spans two of them.
pub fn search_text(values: [&str; 5]) -> String {
    values
        .iter()
        .map(|v| v.to_lowercase().replace(SEARCH_SEPARATOR, ""))
        .collect::<Vec<_>>()
        .join(SEARCH_SEPARATOR)
}

const SEARCH_SEPARATOR: &str = "\u{1}";

/// `LIKE` pattern for text anywhere in [`search_text`], with `%`, `_` and `\` taken literally
/// and control characters dropped (they could only match the separator).
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars().filter(|c| !c.is_control()) {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Appends ` WHERE …` for the query's filters (always a WHERE, so more conditions can follow
/// with AND).
fn where_clause(sql: Sql, q: &ChangesQuery, now_ms: i64) -> Result<Sql, String> {
    let mut sql = sql.push(" WHERE 1 = 1");
    if let Some(s) = &q.since {
        sql = sql.push(" AND at >= ").bind(parse_time(s)?);
    }
    if let Some(u) = &q.until {
        sql = sql.push(" AND at < ").bind(parse_time(u)?);
    }
    if let Some(d) = q.days {
        sql = sql.push(" AND at >= ").bind(now_ms - d as i64 * DAY_MS);
    }
    if !q.kinds.is_empty() {
        sql = sql
            .push(" AND kind IN ")
            .bind_list(q.kinds.iter().map(|k| k.name().to_string()));
    }
    if !q.fields.is_empty() {
        sql = sql
            .push(" AND field IN ")
            .bind_list(q.fields.iter().map(|f| f.name().to_string()));
    }
    if !q.sub_mchids.is_empty() {
        sql = sql
            .push(" AND sub_mchid IN ")
            .bind_list(q.sub_mchids.iter().cloned());
    }
    if let Some(sn) = &q.device_sn {
        sql = sql.push(" AND device_sn = ").bind(sn.clone());
    }
    if !q.q.is_empty() {
        // Both sides lower-cased by us, with Unicode's rules: the same results on both
        // backends (SQLite's LOWER and its LIKE fold ASCII only; PostgreSQL's LIKE folds none).
        sql = sql
            .push(" AND search LIKE ")
            .bind(like_pattern(&q.q))
            .push(" ESCAPE '\\'");
    }
    Ok(sql)
}
