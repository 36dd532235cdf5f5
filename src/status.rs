//! What the sync engine tells the page about itself: the status bar's facts and the last error.
//! Shared by the server (which fills it) and the browser (which shows it).

use serde::{Deserialize, Serialize};

/// A failed sync as the page shows it: what went wrong (a kind `i18n` puts into words, with
/// what to do), the technical detail (the request and WeChat Pay's own answer, no prose), and
/// the `Request-ID` to quote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub failure: Failure,
    pub detail: String,
    pub request_id: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// What went wrong with a sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// WeChat Pay answered with this error code.
    Api { code: String },
    /// WeChat Pay could not be reached.
    Unreachable,
    /// WeChat Pay did not answer in time.
    Timeout,
    /// An answer that could not be trusted, and why.
    Untrusted(Untrusted),
    /// An answer not in the documented form.
    Malformed,
    /// A redirect (not followed).
    Redirected,
    /// The sync would pass the day's request quota.
    Quota {
        needed: u64,
        used: u64,
        ceiling: u64,
        retry_in_secs: Option<i64>,
    },
    /// A bug or a crash.
    Internal,
}

/// Why an answer's signature was not accepted, as far as the merchant can act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Untrusted {
    /// Its time is 5 minutes or more from the server's clock.
    Clock,
    /// Its `Wechatpay-*` headers are missing (a proxy may strip them).
    HeadersMissing,
    /// Signed by a key that is not configured (or a certificate that expired).
    UnknownKey,
    /// The signature does not match (altered in transit, or the wrong public key).
    BadSignature,
}

/// Why the refresh interval is what it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntervalReason {
    /// The configured time a snapshot stays fresh.
    #[default]
    CacheLifetime,
    /// Stretched so that automatic syncs fit the daily quota.
    Quota {
        devices: usize,
        cost: u64,
        per_day: u64,
        reserve: u64,
    },
}

/// Why "Refresh now" cannot run at the moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshBlocked {
    /// A sync runs.
    Running,
    /// Once a minute: this many seconds to wait.
    TooSoon { wait_secs: u64 },
    /// The daily quota has no room for a whole sync.
    Quota { used: u64, limit: u64 },
}

/// The sync engine's state, for the status bar.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Running on the built-in simulator.
    pub demo: bool,
    pub running: bool,
    pub pages_done: u64,
    pub pages_total: u64,
    /// While a sync runs: seconds left at its pace so far.
    #[serde(default)]
    pub seconds_left: Option<u64>,
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
    pub interval_reason: IntervalReason,
    pub last_error: Option<ErrorInfo>,
    /// Why "refresh now" is not allowed at the moment, if it is not.
    pub manual_refresh_blocked: Option<RefreshBlocked>,
    /// What the last sync found compared with the one before; `None` without a history or
    /// after the baseline.
    #[serde(default)]
    pub last_changes: Option<LastChanges>,
    /// Several replicas: Redis cannot be reached, so this replica serves its last snapshot and
    /// sends nothing upstream until it is back.
    #[serde(default)]
    pub shared_state_lost: bool,
    /// The last sync was served but could not be saved (the database refused it or could not
    /// be reached): its changes are not in the history, and other replicas do not get it.
    /// Cleared by the next save that succeeds.
    #[serde(default)]
    pub save_failure: Option<SaveFailure>,
}

/// A snapshot that could not be saved: why (the store's own words), and when (Unix seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveFailure {
    pub detail: String,
    pub at: i64,
}

/// What the last sync found, for the status bar's link to those changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastChanges {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// When that sync finished (Unix seconds): its events carry this time.
    pub at: i64,
}
