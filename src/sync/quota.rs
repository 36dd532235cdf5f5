//! The request ledger: requests sent per merchant, in per-minute buckets over a rolling 24 h
//! (rule 20000731's window is 86,400 s; its alignment is undocumented, so a bucket counts until its
//! whole minute has left the window). Saved atomically (in the database), so the count survives a
//! restart.

use crate::db::{Database, Sql};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Requests per merchant per rolling 24 h (rule 20000731).
pub const DAILY_LIMIT: u64 = 50_000;
const DAY: i64 = 86_400;

#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    version: u32,
    source: String,
    /// (minute since the epoch, requests sent in it)
    buckets: Vec<(i64, u64)>,
}

/// (minute since the epoch, requests sent in it).
pub type Buckets = Vec<(i64, u64)>;

#[derive(Debug)]
pub struct QuotaLedger {
    buckets: BTreeMap<i64, u64>,
    dirty: bool,
}

impl QuotaLedger {
    /// An empty ledger.
    pub fn in_memory() -> Self {
        QuotaLedger {
            buckets: BTreeMap::new(),
            dirty: false,
        }
    }

    /// A ledger holding what was saved.
    pub fn from_buckets(buckets: Buckets) -> Self {
        QuotaLedger {
            buckets: buckets.into_iter().collect(),
            dirty: false,
        }
    }

    /// Counts `n` requests sent at `now` (Unix seconds).
    pub fn record(&mut self, now: i64, n: u64) {
        *self.buckets.entry(now.div_euclid(60)).or_default() += n;
        self.dirty = true;
    }

    /// Requests counted in the 24 h before `now`, conservatively.
    pub fn used(&self, now: i64) -> u64 {
        let oldest_minute = (now - DAY).div_euclid(60);
        self.buckets.range(oldest_minute..).map(|(_, n)| n).sum()
    }

    /// Seconds from `now` until `needed` more requests fit under `ceiling`, if ever within a day.
    pub fn seconds_until_room(&self, now: i64, needed: u64, ceiling: u64) -> Option<i64> {
        let mut used = self.used(now);
        if used + needed <= ceiling {
            return Some(0);
        }
        let oldest_minute = (now - DAY).div_euclid(60);
        for (minute, n) in self.buckets.range(oldest_minute..) {
            used -= n;
            if used + needed <= ceiling {
                // This bucket leaves the window when its whole minute is a day old.
                return Some(((minute + 1) * 60 + DAY - now).max(0));
            }
        }
        None
    }

    /// What to save, if anything changed since the last call: the buckets still inside the
    /// window (older ones are dropped).
    pub fn to_save(&mut self, now: i64) -> Option<Buckets> {
        if !self.dirty {
            return None;
        }
        let oldest_minute = (now - DAY).div_euclid(60);
        self.buckets.retain(|m, _| *m >= oldest_minute);
        self.dirty = false;
        Some(self.buckets.iter().map(|(m, n)| (*m, *n)).collect())
    }

    /// Marks the ledger unsaved again (a save failed).
    pub fn unsaved(&mut self) {
        self.dirty = true;
    }
}

/// Where the ledger is kept, so the count survives a restart: the database
/// (`history::store::HistoryStore`), a JSON file in `DATA_DIR`, or nowhere.
pub trait LedgerStore: Send + Sync {
    /// The saved buckets (none if nothing usable is saved).
    fn load(&self) -> BoxFuture<'_, Buckets>;
    /// Replaces the saved buckets, atomically.
    fn save(&self, buckets: Buckets) -> BoxFuture<'_, Result<(), String>>;
}

/// Keeps nothing.
pub struct NoLedger;

impl LedgerStore for NoLedger {
    fn load(&self) -> BoxFuture<'_, Buckets> {
        Box::pin(async { Vec::new() })
    }

    fn save(&self, _: Buckets) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A JSON file (written atomically, 0600) holding one source's ledger: how the ledger was kept
/// before the database, still read once to import it.
pub struct FileLedger {
    pub path: PathBuf,
    pub source: String,
}

impl FileLedger {
    /// The buckets in the file. Missing: none. Corrupt or foreign: none, with a warning.
    pub fn read(&self) -> Buckets {
        let path = &self.path;
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<LedgerFile>(&bytes) {
                Ok(f) if f.version == 1 && f.source == self.source => f.buckets,
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "ignoring a request ledger of another merchant or version");
                    Vec::new()
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt request ledger");
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the request ledger");
                Vec::new()
            }
        }
    }

    pub fn write(&self, buckets: Buckets) -> std::io::Result<()> {
        let file = LedgerFile {
            version: 1,
            source: self.source.clone(),
            buckets,
        };
        super::snapshot::write_atomically(&self.path, &serde_json::to_vec(&file)?)
    }
}

impl LedgerStore for FileLedger {
    fn load(&self) -> BoxFuture<'_, Buckets> {
        Box::pin(async move { self.read() })
    }

    fn save(&self, buckets: Buckets) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.write(buckets).map_err(|e| e.to_string()) })
    }
}

/// The ledger in the database's `ledger` table (one row per minute), replaced in one
/// transaction. A first start imports the ledger file of before, once.
pub struct DbLedger {
    db: Database,
    source: String,
    legacy_file: Option<FileLedger>,
}

impl DbLedger {
    pub fn new(db: Database, source: &str) -> Self {
        DbLedger {
            db,
            source: source.to_string(),
            legacy_file: None,
        }
    }

    /// Imports this file once, if the database has never held a ledger for this source.
    pub fn with_legacy_file(mut self, path: PathBuf) -> Self {
        self.legacy_file = Some(FileLedger {
            path,
            source: self.source.clone(),
        });
        self
    }

    async fn read(&self) -> Result<Buckets, sqlx::Error> {
        let rows = Sql::new("SELECT minute, requests FROM ledger WHERE source = ")
            .bind(self.source.clone())
            .push(" ORDER BY minute")
            .query()
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                use sqlx::Row;
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<i64, _>(1)?.max(0) as u64,
                ))
            })
            .collect()
    }

    async fn write(&self, buckets: &[(i64, u64)]) -> Result<(), sqlx::Error> {
        let mut tx = self.db.pool().begin().await?;
        Sql::new("DELETE FROM ledger WHERE source = ")
            .bind(self.source.clone())
            .query()
            .execute(&mut *tx)
            .await?;
        // A day holds at most 1,440 minutes: 3 values each, in statements of 300 rows.
        for chunk in buckets.chunks(300) {
            let mut sql = Sql::new("INSERT INTO ledger (source, minute, requests) VALUES ");
            for (i, (minute, n)) in chunk.iter().enumerate() {
                sql = sql
                    .push(if i == 0 { "(" } else { ", (" })
                    .bind(self.source.clone())
                    .push(", ")
                    .bind(*minute)
                    .push(", ")
                    .bind(*n as i64)
                    .push(")");
            }
            sql.query().execute(&mut *tx).await?;
        }
        let key = format!("ledger_kept:{}", self.source);
        Sql::new("INSERT INTO meta (key, value) VALUES (")
            .bind(key)
            .push(", '1') ON CONFLICT (key) DO NOTHING")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

impl LedgerStore for DbLedger {
    fn load(&self) -> BoxFuture<'_, Buckets> {
        Box::pin(async move {
            let kept = self.db.meta(&format!("ledger_kept:{}", self.source)).await;
            match (kept, &self.legacy_file) {
                // Never saved here yet: the file of before, if there is one.
                (Ok(None), Some(file)) => {
                    let buckets = file.read();
                    if !buckets.is_empty() {
                        match self.write(&buckets).await {
                            Ok(()) => {
                                tracing::info!(file = %file.path.display(), "imported the request ledger into the database")
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "could not import the request ledger")
                            }
                        }
                    }
                    buckets
                }
                (Ok(_), _) => self.read().await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read the request ledger");
                    Vec::new()
                }),
                (Err(e), _) => {
                    tracing::warn!(error = %e, "could not read the request ledger");
                    Vec::new()
                }
            }
        })
    }

    fn save(&self, buckets: Buckets) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.write(&buckets)
                .await
                .map_err(|e| format!("the database could not save the request ledger: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    #[test]
    fn counts_a_rolling_day_conservatively() {
        let mut l = QuotaLedger::in_memory();
        l.record(T0, 100);
        l.record(T0 + 30, 5);
        l.record(T0 + 3_600, 10);
        assert_eq!(l.used(T0 + 3_600), 115);
        // A request a day minus a second ago still counts; one a day and a minute ago does not.
        assert_eq!(l.used(T0 + DAY - 1), 115);
        assert_eq!(l.used(T0 + DAY + 120), 10);
        assert_eq!(l.used(T0 + 3_600 + DAY + 120), 0);
    }

    #[test]
    fn says_when_room_comes_back() {
        let mut l = QuotaLedger::in_memory();
        l.record(T0, 40_000);
        l.record(T0 + 600, 9_000);
        assert_eq!(l.seconds_until_room(T0 + 700, 1_000, 50_000), Some(0));
        let wait = l.seconds_until_room(T0 + 700, 2_000, 50_000).unwrap();
        // The 40,000 leave the window a day after their minute ends.
        assert!(wait > DAY - 700 && wait <= DAY - 700 + 60, "{wait}");
        assert_eq!(l.seconds_until_room(T0, 60_000, 50_000), None);
    }

    #[test]
    fn saves_what_changed_and_drops_what_left_the_window() {
        let mut l = QuotaLedger::in_memory();
        assert_eq!(l.to_save(T0), None, "nothing to save");
        l.record(T0, 7);
        l.record(T0 + DAY + 3_600, 2);
        assert_eq!(
            l.to_save(T0 + DAY + 3_600),
            Some(vec![((T0 + DAY + 3_600).div_euclid(60), 2)])
        );
        assert_eq!(l.to_save(T0 + DAY + 3_600), None, "saved already");
        l.unsaved();
        assert!(l.to_save(T0 + DAY + 3_600).is_some());
    }

    #[test]
    fn files_survive_a_restart_and_foreign_or_corrupt_ones_are_ignored() {
        let dir = std::env::temp_dir().join(format!("wxpay-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.json");
        let file = |source: &str| FileLedger {
            path: path.clone(),
            source: source.into(),
        };
        let mut l = QuotaLedger::from_buckets(file("merchant-a").read());
        l.record(T0, 123);
        file("merchant-a").write(l.to_save(T0).unwrap()).unwrap();
        assert_eq!(
            QuotaLedger::from_buckets(file("merchant-a").read()).used(T0 + 10),
            123
        );
        assert!(file("merchant-b").read().is_empty(), "foreign");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(file("merchant-a").read().is_empty(), "corrupt");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
