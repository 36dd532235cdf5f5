//! The server functions the browser calls, and the types they return. Their bodies run on the
//! server only; the browser gets a typed stub that calls them over HTTP, at a fixed path
//! (`/api/<name>`: the endpoints are named, so their URLs do not change between builds).

use crate::model::Device;
use crate::query::{Facet, FacetValue, Filter, GroupBy, GroupCount};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// One page of the grid: the visible rows and the counts that describe the whole view.
/// The browser never receives more than this page of the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceView {
    pub rows: Vec<Device>,
    /// For a grouped view, each row's group: an index into `page_groups`.
    pub row_groups: Vec<u32>,
    /// The groups present on this page, each with its count across all pages.
    pub page_groups: Vec<GroupCount>,
    /// Groups in the whole view.
    pub group_count: usize,
    /// Devices in the view (all pages).
    pub total: usize,
    /// Devices in the snapshot.
    pub unfiltered: usize,
    /// The page shown (clamped to the last page) and its size.
    pub page: u32,
    pub per_page: u32,
    pub facets: Vec<Facet>,
    /// Parameters that were ignored, as sentences.
    pub notices: Vec<String>,
    pub status: SyncStatus,
    /// Sign-in is required (the page offers "Sign out").
    pub auth_enabled: bool,
    /// The summary chart: the view's devices counted by `chart_by`, most first.
    pub chart: Vec<GroupCount>,
    pub chart_by: GroupBy,
}

impl DeviceView {
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

    pub fn facet(&self, filter: Filter) -> Option<&Facet> {
        self.facets.iter().find(|f| f.filter == filter)
    }
}

/// The longest query string a server function takes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// An error with an HTTP status: 400 for bad arguments, 503 while no data can be served.
#[cfg(feature = "ssr")]
fn failed(status: axum::http::StatusCode, message: impl Into<String>) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(message.into())
}

#[cfg(feature = "ssr")]
fn state() -> Result<crate::server::AppState, ServerFnError> {
    use_context::<crate::server::AppState>()
        .ok_or_else(|| ServerFnError::new("the server is not set up (no application state)"))
}

/// The grid's view for a query string (the page URL's, without `?`).
#[server(input = Json, endpoint = "load_view")]
pub async fn load_view(query: String) -> Result<DeviceView, ServerFnError> {
    use axum::http::StatusCode;
    if query.len() > MAX_QUERY_BYTES {
        return Err(failed(
            StatusCode::BAD_REQUEST,
            "the view's address is too long",
        ));
    }
    state()?
        .view(&query)
        .await
        .map_err(|e| failed(StatusCode::SERVICE_UNAVAILABLE, e))
}

/// Sub-merchants matching `text` (id prefix or name), counted within the view's other filters.
#[server(input = Json, endpoint = "find_sub_merchants")]
pub async fn find_sub_merchants(
    query: String,
    text: String,
) -> Result<Vec<FacetValue>, ServerFnError> {
    if query.len() > MAX_QUERY_BYTES || text.chars().count() > crate::query::MAX_Q_CHARS {
        return Err(failed(
            axum::http::StatusCode::BAD_REQUEST,
            "search text too long",
        ));
    }
    state()?
        .find_sub_merchants(&query, &text)
        .await
        .map_err(ServerFnError::new)
}

/// The sync engine's state, for the status bar.
#[server(endpoint = "current_sync_status")]
pub async fn current_sync_status() -> Result<SyncStatus, ServerFnError> {
    Ok(state()?.sync.status())
}

/// Starts a refresh now, if allowed (once a minute, within the quota).
#[server(endpoint = "refresh_now")]
pub async fn refresh_now() -> Result<(), ServerFnError> {
    state()?
        .sync
        .refresh_now()
        .await
        .map_err(ServerFnError::new)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn view(total: usize, page: u32, per_page: u32, rows: usize) -> DeviceView {
        DeviceView {
            rows: vec![Device::default(); rows],
            row_groups: vec![],
            page_groups: vec![],
            group_count: 0,
            total,
            unfiltered: total,
            page,
            per_page,
            facets: vec![],
            notices: vec![],
            status: SyncStatus::default(),
            auth_enabled: false,
            chart: vec![],
            chart_by: GroupBy::Category,
        }
    }

    #[test]
    fn page_count_and_row_range() {
        assert_eq!(view(0, 1, 50, 0).page_count(), 1);
        assert_eq!(view(0, 1, 50, 0).row_range(), (0, 0));
        assert_eq!(view(100, 2, 50, 50).row_range(), (51, 100));
        assert_eq!(view(101, 3, 50, 1).page_count(), 3);
        assert_eq!(view(101, 3, 50, 1).row_range(), (101, 101));
    }
}
