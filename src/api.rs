//! The server functions the browser calls, and the types they return. Their bodies run on the
//! server only; the browser gets a typed stub that calls them over HTTP.

use crate::model::Device;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Page sizes the grid offers.
pub const PAGE_SIZES: [u32; 5] = [10, 25, 50, 100, 200];
pub const DEFAULT_PER_PAGE: u32 = 50;

/// One page of the device grid, with what the page needs to describe itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceTable {
    pub rows: Vec<Device>,
    /// Devices in the whole view (all pages).
    pub total: usize,
    /// 1-based page actually shown (clamped to the last page).
    pub page: u32,
    pub per_page: u32,
    /// True when the data comes from the built-in simulator.
    pub demo: bool,
}

impl DeviceTable {
    pub fn page_count(&self) -> u32 {
        (self.total.div_ceil(self.per_page.max(1) as usize)).max(1) as u32
    }

    /// 1-based index of the first row shown and of the last (0, 0 when empty).
    pub fn row_range(&self) -> (usize, usize) {
        if self.rows.is_empty() {
            return (0, 0);
        }
        let first = (self.page as usize - 1) * self.per_page as usize + 1;
        (first, first + self.rows.len() - 1)
    }
}

/// One page of the merchant's devices.
#[server]
pub async fn load_devices(page: u32, per_page: u32) -> Result<DeviceTable, ServerFnError> {
    let state = use_context::<crate::server::AppState>()
        .ok_or_else(|| ServerFnError::new("the server is not set up (no application state)"))?;
    state
        .device_table(page, per_page)
        .await
        .map_err(|e| ServerFnError::new(format!("{e} ({})", e.advice())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(total: usize, page: u32, per_page: u32, rows: usize) -> DeviceTable {
        DeviceTable {
            rows: vec![Device::default(); rows],
            total,
            page,
            per_page,
            demo: true,
        }
    }

    #[test]
    fn page_count_and_row_range() {
        assert_eq!(table(0, 1, 50, 0).page_count(), 1);
        assert_eq!(table(0, 1, 50, 0).row_range(), (0, 0));
        assert_eq!(table(100, 2, 50, 50).row_range(), (51, 100));
        assert_eq!(table(101, 3, 50, 1).page_count(), 3);
        assert_eq!(table(101, 3, 50, 1).row_range(), (101, 101));
    }
}

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
