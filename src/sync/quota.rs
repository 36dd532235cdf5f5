//! The request ledger: requests sent per merchant, in per-minute buckets over a rolling 24 h
//! (rule 20000731's window is 86,400 s; its alignment is undocumented, so a bucket counts until its
//! whole minute has left the window). Saved atomically in the data directory, so the count
//! survives a restart.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

#[derive(Debug)]
pub struct QuotaLedger {
    source: String,
    buckets: BTreeMap<i64, u64>,
    path: Option<PathBuf>,
    dirty: bool,
}

impl QuotaLedger {
    /// An empty ledger that is never saved.
    pub fn in_memory(source: &str) -> Self {
        QuotaLedger {
            source: source.into(),
            buckets: BTreeMap::new(),
            path: None,
            dirty: false,
        }
    }

    /// Loads the ledger of `source` from `path`, or starts empty. A corrupt or foreign file is
    /// ignored with a warning (and replaced on the next save).
    pub fn load(path: &Path, source: &str) -> Self {
        let mut ledger = QuotaLedger {
            path: Some(path.to_path_buf()),
            ..Self::in_memory(source)
        };
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<LedgerFile>(&bytes) {
                Ok(f) if f.version == 1 && f.source == source => {
                    ledger.buckets = f.buckets.into_iter().collect()
                }
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "ignoring a request ledger of another merchant or version")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt request ledger")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the request ledger")
            }
        }
        ledger
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

    /// Writes the ledger if it changed: to a temporary file, then renamed over the old one.
    pub fn save(&mut self, now: i64) -> std::io::Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let oldest_minute = (now - DAY).div_euclid(60);
        self.buckets.retain(|m, _| *m >= oldest_minute);
        let file = LedgerFile {
            version: 1,
            source: self.source.clone(),
            buckets: self.buckets.iter().map(|(m, n)| (*m, *n)).collect(),
        };
        super::snapshot::write_atomically(&path, &serde_json::to_vec(&file)?)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    #[test]
    fn counts_a_rolling_day_conservatively() {
        let mut l = QuotaLedger::in_memory("m");
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
        let mut l = QuotaLedger::in_memory("m");
        l.record(T0, 40_000);
        l.record(T0 + 600, 9_000);
        assert_eq!(l.seconds_until_room(T0 + 700, 1_000, 50_000), Some(0));
        let wait = l.seconds_until_room(T0 + 700, 2_000, 50_000).unwrap();
        // The 40,000 leave the window a day after their minute ends.
        assert!(wait > DAY - 700 && wait <= DAY - 700 + 60, "{wait}");
        assert_eq!(l.seconds_until_room(T0, 60_000, 50_000), None);
    }

    #[test]
    fn survives_a_restart_and_ignores_foreign_or_corrupt_files() {
        let dir = std::env::temp_dir().join(format!("wxpay-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.json");
        let mut l = QuotaLedger::load(&path, "merchant-a");
        l.record(T0, 123);
        l.save(T0).unwrap();
        assert_eq!(QuotaLedger::load(&path, "merchant-a").used(T0 + 10), 123);
        assert_eq!(
            QuotaLedger::load(&path, "merchant-b").used(T0 + 10),
            0,
            "foreign"
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(
            QuotaLedger::load(&path, "merchant-a").used(T0),
            0,
            "corrupt"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
