//! What the sync engine tells the page about itself: the status bar's facts and the last error.
//! Shared by the server (which fills it) and the browser (which shows it).

use serde::{Deserialize, Serialize};

/// An error as the UI shows it: what happened, what to do, and the request to quote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub message: String,
    pub advice: String,
    pub request_id: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// The sync engine's state, for the status bar.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Running on the built-in simulator.
    pub demo: bool,
    pub running: bool,
    pub pages_done: u64,
    pub pages_total: u64,
    /// Unix seconds of the snapshot on screen.
    pub synced_at: Option<i64>,
    pub age_secs: Option<i64>,
    /// False once the snapshot is older than the refresh interval (or the last sync failed).
    pub fresh: bool,
    pub devices: usize,
    pub total_count: Option<u64>,
    /// Whether the snapshot holds as many devices as the list had at the end of its sync.
    pub complete: bool,
    /// The list's size at the end of the sync, as the API reported it.
    pub expected: Option<u64>,
    pub duplicates: usize,
    pub requests_24h: u64,
    pub daily_limit: u64,
    /// Requests kept back for manual refreshes.
    pub reserve: u64,
    pub interval_secs: u64,
    pub interval_reason: String,
    pub last_error: Option<ErrorInfo>,
    /// Why "refresh now" is not allowed at the moment, if it is not.
    pub manual_refresh_blocked: Option<String>,
}
