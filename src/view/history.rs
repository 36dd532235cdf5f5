//! What the change history's screens and files ask of the database: the Changes page's view of
//! its URL (a page of events, the chart, the recent syncs) and a device's timeline. The same
//! policy as the grid: the query string's size limit, errors in the reader's language.

use super::{AppState, MAX_QUERY_BYTES};
use crate::changes::{ChangesQuery, ChangesView, DayCounts, DeviceHistory, SyncSummary};
use crate::error::AppError;
use crate::format::ChinaTime;
use crate::history::store::HistoryStore;
use crate::i18n::Lang;
use std::sync::Arc;

/// Days the chart shows when the URL does not choose a range.
pub const CHART_DAYS: u32 = 30;
/// The most days the chart shows.
pub const MAX_CHART_DAYS: u32 = 92;
/// Recent syncs listed beside the chart.
pub const RECENT_SYNCS: usize = 10;
const DAY_MS: i64 = 86_400_000;

impl AppState {
    /// The history, or why there is none.
    pub fn history(&self, lang: Lang) -> Result<Arc<HistoryStore>, AppError> {
        self.history.clone().ok_or_else(|| AppError::Unavailable {
            message: lang.texts().history_off.into(),
            advice: lang.texts().history_off_advice.into(),
            request_id: None,
        })
    }

    /// Parses the Changes page's query string (the exports' too), within the size limit.
    pub fn changes_query(&self, query_string: &str, lang: Lang) -> Result<ChangesQuery, AppError> {
        if query_string.len() > MAX_QUERY_BYTES {
            return Err(AppError::BadRequest(
                lang.address_too_long(MAX_QUERY_BYTES / 1024),
            ));
        }
        let query = ChangesQuery::parse(query_string)
            .map_err(|e| AppError::BadRequest(format!("{}: {e}", lang.texts().bad_address)))?;
        for t in query.since.iter().chain(&query.until) {
            crate::history::store::parse_time(t)
                .map_err(|e| AppError::BadRequest(format!("{}: {e}", lang.texts().bad_address)))?;
        }
        Ok(query)
    }

    /// The Changes page for a query string.
    pub async fn changes_view(
        &self,
        query_string: &str,
        lang: Lang,
    ) -> Result<ChangesView, AppError> {
        let query = self.changes_query(query_string, lang)?;
        let history = self.history(lang)?;
        let now_ms = crate::clock::unix_now() * 1000;
        let failed = |e: String| {
            tracing::error!(error = %e, "the change history could not be read");
            AppError::Internal(lang.texts().history_read_failed.into())
        };
        let (events, total) = history.events(&query, now_ms).await.map_err(failed)?;
        let chart_days = query.days.unwrap_or(CHART_DAYS).clamp(1, MAX_CHART_DAYS);
        // Whole days, in China time, ending today.
        let today_start = {
            let cst = crate::clock::unix_now() + 8 * 3600;
            (cst - cst.rem_euclid(86_400) - 8 * 3600) * 1000
        };
        let chart_from = today_start - (chart_days as i64 - 1) * DAY_MS;
        let syncs = history.syncs(Some(chart_from)).await.map_err(failed)?;
        let days = chart(&syncs, chart_from, chart_days);
        let recent_syncs = history.recent_syncs(RECENT_SYNCS).await.map_err(failed)?;
        let since_ms = history.syncs_since().await.map_err(failed)?;
        Ok(ChangesView {
            query,
            events,
            total,
            days,
            recent_syncs,
            since_ms,
            retention_days: history.retention_days(),
            auth_enabled: self.auth_enabled,
        })
    }

    /// A device's page: its fields in the current snapshot, and its timeline.
    pub async fn device_history(
        &self,
        device_sn: &str,
        lang: Lang,
    ) -> Result<DeviceHistory, AppError> {
        let sn = device_sn.trim();
        if sn.is_empty() || sn.len() > 128 {
            return Err(AppError::BadRequest(lang.texts().bad_address.into()));
        }
        let history = self.history(lang)?;
        let failed = |e: String| {
            tracing::error!(error = %e, "the change history could not be read");
            AppError::Internal(lang.texts().history_read_failed.into())
        };
        let events = history.timeline(sn).await.map_err(failed)?;
        let since = history.syncs_since().await.map_err(failed)?;
        // The current snapshot if there is one; the timeline is shown without it.
        let snapshot = self.sync.last_good();
        let device = snapshot.as_ref().and_then(|s| {
            s.devices
                .iter()
                .find(|d| d.serial() == Some(sn))
                .map(|d| d.to_device())
        });
        Ok(DeviceHistory {
            device_sn: sn.to_string(),
            device,
            events,
            history_since_ms: since,
            synced_at: snapshot.map(|s| s.synced_at),
            auth_enabled: self.auth_enabled,
        })
    }
}

/// Per-day sums of the syncs' findings over `days` days from `from_ms` (a day's start).
pub fn chart(syncs: &[SyncSummary], from_ms: i64, days: u32) -> Vec<DayCounts> {
    let mut out: Vec<DayCounts> = (0..days)
        .map(|i| DayCounts {
            day: ChinaTime::from_unix((from_ms + i as i64 * DAY_MS) / 1000).date(),
            ..Default::default()
        })
        .collect();
    for s in syncs {
        if s.finished_ms < from_ms {
            continue;
        }
        let i = ((s.finished_ms - from_ms) / DAY_MS) as usize;
        if let Some(d) = out.get_mut(i) {
            d.syncs += 1;
            d.added += s.added;
            d.removed += s.removed;
            d.changed += s.changed;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_one_bar_per_china_day() {
        // 2026-11-28 00:00 in China is 2026-11-27 16:00 UTC.
        let from = 1_795_795_200_000;
        let sync = |at: i64, added| SyncSummary {
            finished_ms: at,
            added,
            ..Default::default()
        };
        let days = chart(
            &[
                sync(from - 1, 100),
                sync(from, 1),
                sync(from + DAY_MS - 1, 2),
                sync(from + DAY_MS, 4),
                sync(from + 3 * DAY_MS, 8),
            ],
            from,
            3,
        );
        assert_eq!(
            days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>(),
            ["2026-11-28", "2026-11-29", "2026-11-30"]
        );
        assert_eq!(days.iter().map(|d| d.added).collect::<Vec<_>>(), [3, 4, 0]);
        assert_eq!(days.iter().map(|d| d.syncs).collect::<Vec<_>>(), [2, 1, 0]);
    }
}
