//! The view layer: what the grid, the sub-merchant search and both exports ask of a snapshot,
//! with one policy for all of them (docs/architecture.md): the same size limit for the view's
//! address, the same wait for a first sync, the same notices for parameters that were ignored,
//! the same errors. `DeviceView` is what the browser receives: one page and the counts that
//! describe the whole view, never the list.

use crate::model::Device;
use crate::query::{Facet, Filter, GroupBy, GroupCount};
use crate::status::SyncStatus;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One page of the grid: the visible rows and the counts that describe the whole view.
/// The browser never receives more than this page of the list. Its lists are shared (`Arc`):
/// a page's components each hold the view, and a clone must not copy 50 rows and six facets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceView {
    pub rows: Arc<Vec<Device>>,
    /// For a grouped view, each row's group: an index into `page_groups`.
    pub row_groups: Vec<u32>,
    /// The groups present on this page, each with its count across all pages.
    pub page_groups: Arc<Vec<GroupCount>>,
    /// Groups in the whole view.
    pub group_count: usize,
    /// Devices in the view (all pages).
    pub total: usize,
    /// Devices in the snapshot.
    pub unfiltered: usize,
    /// The page shown (clamped to the last page) and its size.
    pub page: u32,
    pub per_page: u32,
    pub facets: Arc<Vec<Facet>>,
    /// Parameters that were ignored, as sentences.
    pub notices: Vec<String>,
    pub status: SyncStatus,
    /// Sign-in is required (the page offers "Sign out").
    pub auth_enabled: bool,
    /// The summary chart: the view's devices counted by `chart_by`, most first.
    pub chart: Arc<Vec<GroupCount>>,
    pub chart_by: GroupBy,
    /// Shown while the first sync runs: the devices fetched so far (not the whole list).
    #[serde(default)]
    pub partial: Option<Partial>,
}

/// A view of the devices a first sync has fetched so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// Devices fetched so far.
    pub fetched: usize,
    /// The list's size as its first page reported it.
    pub of: Option<u64>,
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

/// The longest query string a view takes (the grid, the search and the exports alike).
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

#[cfg(feature = "ssr")]
pub mod history;
#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use crate::error::AppError;
    use crate::history::store::HistoryStore;
    use crate::i18n::Lang;
    use crate::query::apply::{self, QueryOutput, SnapshotIndex};
    use crate::query::{DeviceQuery, FacetValue, Notice};
    use crate::sync::error::SyncError;
    use crate::sync::service::SyncService;
    use crate::sync::snapshot::Snapshot;
    use std::time::Duration;
    use tokio::sync::Mutex;

    /// How long an export waits for the first sync before it is told how far along it is.
    pub const FIRST_SYNC_WAIT: Duration = Duration::from_secs(30);
    /// How long the grid waits for the first sync before it shows the devices fetched so far.
    pub const FIRST_PAGE_WAIT: Duration = Duration::from_millis(100);

    /// What a view does while there is no snapshot yet.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FirstSync {
        /// Wait for it (up to [`FIRST_SYNC_WAIT`]): an export is the whole list or nothing.
        Wait,
        /// Show what it has fetched so far, marked partial (after [`FIRST_PAGE_WAIT`]).
        Partial,
    }

    /// A snapshot and the query index built over it.
    #[derive(Clone)]
    pub struct Indexed {
        pub snapshot: Arc<Snapshot>,
        pub index: Arc<SnapshotIndex>,
        /// A first sync's devices so far.
        pub partial: bool,
        /// Grows with every snapshot indexed: the views kept are of one generation.
        generation: u64,
    }

    /// State shared by every request: the sync service, and the query index of its current
    /// snapshot (built once per snapshot).
    #[derive(Clone)]
    pub struct AppState {
        pub sync: Arc<SyncService>,
        /// Whether sign-in is required (the page then offers "Sign out").
        pub auth_enabled: bool,
        /// The change history (none in tests that do not need it).
        pub history: Option<Arc<HistoryStore>>,
        /// With several replicas: the shared snapshot (and whether Redis answers).
        pub replica: Option<crate::replicas::snapshot::SharedSnapshot>,
        index: Arc<Mutex<Option<Indexed>>>,
        /// A partial list's index is being built in the background.
        indexing: Arc<std::sync::atomic::AtomicBool>,
        /// Grid views answered lately, for the snapshot indexed now (emptied when it changes):
        /// the same view asked again costs no query.
        views: moka::sync::Cache<(u64, Lang, String), Arc<DeviceView>>,
        /// How many exports may be written at once, and how big an XLSX may be.
        pub exports: ExportLimits,
    }

    /// Limits on exports, per process: XLSX files built at once (CPU and a temporary file
    /// each), CSV downloads streamed at once (a batch of rows each), how long an export waits
    /// for a slot before it is refused (503 with `Retry-After`), and the rows an XLSX may hold.
    #[derive(Clone)]
    pub struct ExportLimits {
        pub files: Arc<tokio::sync::Semaphore>,
        pub streams: Arc<tokio::sync::Semaphore>,
        pub wait: Duration,
        pub xlsx_rows: u64,
    }

    /// XLSX files built at once.
    pub const XLSX_BUILDS: usize = 2;
    /// CSV downloads streamed at once.
    pub const CSV_STREAMS: usize = 8;
    /// How long an export waits for a slot.
    pub const EXPORT_WAIT: Duration = Duration::from_secs(15);
    /// Rows an XLSX holds at most (Excel's limit is 1,048,576 rows, the header one).
    pub const XLSX_MAX_ROWS: u64 = 1_048_575;

    impl Default for ExportLimits {
        fn default() -> Self {
            ExportLimits {
                files: Arc::new(tokio::sync::Semaphore::new(XLSX_BUILDS)),
                streams: Arc::new(tokio::sync::Semaphore::new(CSV_STREAMS)),
                wait: EXPORT_WAIT,
                xlsx_rows: XLSX_MAX_ROWS,
            }
        }
    }

    /// Grid views kept, at most (each about 50 KB: a page of rows, facets, the chart).
    pub const VIEWS_KEPT: u64 = 128;

    /// A query run over the current snapshot.
    pub struct QueryRun {
        pub snapshot: Arc<Snapshot>,
        pub index: Arc<SnapshotIndex>,
        pub query: DeviceQuery,
        /// Parameters that were ignored, and why.
        pub notices: Vec<Notice>,
        pub output: QueryOutput,
        /// The snapshot is a first sync's devices so far.
        pub partial: bool,
    }

    impl AppState {
        pub fn new(sync: Arc<SyncService>) -> Self {
            AppState {
                sync,
                auth_enabled: false,
                history: None,
                replica: None,
                index: Arc::new(Mutex::new(None)),
                indexing: Default::default(),
                views: moka::sync::Cache::new(VIEWS_KEPT),
                exports: ExportLimits::default(),
            }
        }

        /// Other limits on exports (tests).
        pub fn with_export_limits(self, exports: ExportLimits) -> Self {
            AppState { exports, ..self }
        }

        pub fn with_replica(self, shared: crate::replicas::snapshot::SharedSnapshot) -> Self {
            AppState {
                replica: Some(shared),
                ..self
            }
        }

        pub fn with_history(self, history: Arc<HistoryStore>) -> Self {
            AppState {
                history: Some(history),
                ..self
            }
        }

        pub fn with_auth(self, enabled: bool) -> Self {
            AppState {
                auth_enabled: enabled,
                ..self
            }
        }

        /// The status bar's state: the sync's, with what the last sync changed.
        pub fn status(&self) -> crate::status::SyncStatus {
            let mut status = self.sync.status();
            status.last_changes = self
                .history
                .as_ref()
                .and_then(|h| h.last_sync())
                .filter(|s| !s.baseline)
                .map(|s| crate::status::LastChanges {
                    added: s.added,
                    removed: s.removed,
                    changed: s.changed,
                    at: s.finished_ms.div_euclid(1000),
                });
            status.shared_state_lost = self.replica.as_ref().is_some_and(|r| !r.reachable());
            status
        }

        /// The current snapshot and its index (and whether it is a first sync's devices so
        /// far). On a cold start, waits for the first sync as `first` says. Errors are worded
        /// in `lang`.
        pub async fn current(&self, lang: Lang, first: FirstSync) -> Result<Indexed, AppError> {
            let wait = match first {
                FirstSync::Wait => FIRST_SYNC_WAIT,
                // Only a sync about to end is worth waiting for.
                FirstSync::Partial if self.sync.first_sync_well_under_way() => Duration::ZERO,
                FirstSync::Partial => FIRST_PAGE_WAIT,
            };
            let (snapshot, partial) = match tokio::time::timeout(wait, self.sync.snapshot()).await {
                Ok(Ok(view)) => (view.snapshot, false),
                Ok(Err(e)) => return Err(unavailable(&e, lang)),
                Err(_) if first == FirstSync::Partial => (self.sync.partial().await, true),
                Err(_) => {
                    let s = self.sync.status();
                    return Err(AppError::Unavailable {
                        message: lang.first_sync_running(s.pages_done, s.pages_total),
                        advice: lang.texts().try_again_soon.into(),
                        request_id: None,
                    });
                }
            };
            let mut cached = self.index.lock().await;
            let generation = match cached.as_ref() {
                Some(c) if Arc::ptr_eq(&c.snapshot, &snapshot) => return Ok(c.clone()),
                // More devices of a first sync: indexed in the background, while views are
                // answered from the devices indexed last (a view never waits for an index of
                // a partial list).
                Some(c) if partial && c.partial => {
                    self.index_in_background(snapshot);
                    return Ok(c.clone());
                }
                Some(c) => c.generation + 1,
                None => 1,
            };
            let indexed = Indexed {
                index: build_index(&snapshot).await?,
                snapshot,
                partial,
                generation,
            };
            *cached = Some(indexed.clone());
            // Views of the snapshot before are of no use now.
            self.views.invalidate_all();
            Ok(indexed)
        }

        /// Indexes a first sync's partial list without holding up views; one at a time.
        fn index_in_background(&self, snapshot: Arc<Snapshot>) {
            use std::sync::atomic::Ordering::SeqCst;
            if self.indexing.swap(true, SeqCst) {
                return;
            }
            let (cache, indexing) = (self.index.clone(), self.indexing.clone());
            tokio::spawn(async move {
                if let Ok(index) = build_index(&snapshot).await {
                    let mut cached = cache.lock().await;
                    // Unless the complete list got there first.
                    if let Some(c) = cached.as_mut().filter(|c| c.partial) {
                        *c = Indexed {
                            snapshot,
                            index,
                            partial: true,
                            generation: c.generation + 1,
                        };
                    }
                }
                indexing.store(false, SeqCst);
            });
        }

        /// Parses a view's query string and runs it over the current snapshot: the one way
        /// every screen and file gets its rows.
        pub async fn run_query(
            &self,
            query_string: &str,
            lang: Lang,
            first: FirstSync,
        ) -> Result<QueryRun, AppError> {
            let (query, notices) = parse(query_string, lang)?;
            let indexed = self.current(lang, first).await?;
            run_on(indexed, query, notices).await
        }

        /// The grid's view of a query string: from the views kept for the current snapshot, or
        /// computed (and kept, unless it is a first sync's partial list). The status is always
        /// the current one.
        pub async fn view(&self, query_string: &str) -> Result<DeviceView, AppError> {
            let lang = crate::i18n::detect();
            let (query, notices) = parse(query_string, lang)?;
            // The snapshot indexed now (a new one empties the views kept).
            let now = self.current(lang, FirstSync::Partial).await?;
            let key = (now.generation, lang, query_string.to_string());
            if !now.partial {
                if let Some(kept) = self.views.get(&key) {
                    let mut view = (*kept).clone();
                    view.status = self.status();
                    return Ok(view);
                }
            }
            let run = run_on(now, query, notices).await?;
            let mut view = build_view(
                &run.index,
                &run.output,
                &run.query,
                &run.notices,
                run.snapshot.devices.len(),
                self.status(),
            );
            view.auth_enabled = self.auth_enabled;
            view.partial = run.partial.then(|| Partial {
                fetched: run.snapshot.devices.len(),
                of: run.snapshot.total_count,
            });
            localize(&mut view, &run.notices, lang);
            // Kept under the generation it was computed over.
            if !run.partial {
                self.views.insert(key, Arc::new(view.clone()));
            }
            Ok(view)
        }

        /// Sub-merchants matching `text` (id prefix or name), counted within the view's other
        /// filters.
        pub async fn find_sub_merchants(
            &self,
            query_string: &str,
            text: &str,
        ) -> Result<Vec<FacetValue>, AppError> {
            let lang = crate::i18n::detect();
            if text.chars().count() > crate::query::MAX_Q_CHARS {
                return Err(AppError::BadRequest(lang.texts().search_too_long.into()));
            }
            let (query, _) = parse(query_string, lang)?;
            let index = self.current(lang, FirstSync::Partial).await?.index;
            let text = text.to_string();
            tokio::task::spawn_blocking(move || {
                apply::search_sub_merchants(&index, &query, &text, 50)
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))
        }
    }

    /// Runs a parsed query over an indexed snapshot, off the async threads.
    async fn run_on(
        indexed: Indexed,
        query: DeviceQuery,
        notices: Vec<Notice>,
    ) -> Result<QueryRun, AppError> {
        let Indexed {
            snapshot,
            index,
            partial,
            ..
        } = indexed;
        let (idx, q) = (index.clone(), query.clone());
        let output = tokio::task::spawn_blocking(move || apply::run(&idx, &q))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(QueryRun {
            snapshot,
            index,
            query,
            notices,
            output,
            partial,
        })
    }

    /// The query index of a snapshot, built off the async threads.
    async fn build_index(snapshot: &Arc<Snapshot>) -> Result<Arc<SnapshotIndex>, AppError> {
        let devices = snapshot.devices.clone();
        tokio::task::spawn_blocking(move || SnapshotIndex::build(devices))
            .await
            .map(Arc::new)
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// A view's query string, within the size limit.
    fn parse(query_string: &str, lang: Lang) -> Result<(DeviceQuery, Vec<Notice>), AppError> {
        if query_string.len() > MAX_QUERY_BYTES {
            return Err(AppError::BadRequest(
                lang.address_too_long(MAX_QUERY_BYTES / 1024),
            ));
        }
        Ok(DeviceQuery::parse(query_string))
    }

    /// A sync that left nothing to show, in `lang`.
    fn unavailable(e: &SyncError, lang: Lang) -> AppError {
        let failure = e.failure();
        AppError::Unavailable {
            message: format!(
                "{} {} {}",
                lang.texts().no_data_yet_sentence,
                lang.failure(&failure),
                e.detail()
            ),
            advice: lang.failure_advice(&failure),
            request_id: e.request_id().map(str::to_string),
        }
    }

    /// The labels the query model makes itself (not names from the API), in the page's language.
    fn localize(view: &mut DeviceView, notices: &[Notice], lang: Lang) {
        use crate::query::{Filter, NONE_VALUE};
        let t = lang.texts();
        view.notices = notices.iter().map(|n| lang.notice(n)).collect();
        let table = |filter: Filter| match filter {
            Filter::Category => Some(crate::codes::Table::Category),
            Filter::Class => Some(crate::codes::Table::Class),
            Filter::Scene => Some(crate::codes::Table::Scene),
            _ => None,
        };
        let label = |filter: Filter, value: &str, current: &mut String| {
            *current = match (filter, value) {
                (Filter::SubMchid, NONE_VALUE) => t.merchants_own.into(),
                (_, NONE_VALUE) => t.not_set.into(),
                (Filter::Status, "ACTIVATED") => t.activated.into(),
                (Filter::Status, "INACTIVATED") => t.inactive.into(),
                // English means English: the table's label, the API's own name beside it.
                (f, code) if lang == Lang::En && table(f).is_some() => {
                    let en = table(f).map(|t| t.label_en(code)).unwrap_or_default();
                    format!("{en} ({current})")
                }
                _ => return,
            };
        };
        for facet in Arc::make_mut(&mut view.facets) {
            for v in &mut facet.values {
                label(facet.filter, &v.value, &mut v.label);
            }
        }
        // The chart counts by the grouping when there is one, so page groups share its filter.
        let by = view.chart_by.filter();
        let groups = Arc::make_mut(&mut view.page_groups);
        for g in Arc::make_mut(&mut view.chart).iter_mut().chain(groups) {
            label(by, &g.value, &mut g.label);
        }
    }

    /// The page of a query's output that the browser receives.
    pub fn build_view(
        index: &SnapshotIndex,
        out: &QueryOutput,
        query: &DeviceQuery,
        notices: &[Notice],
        unfiltered: usize,
        status: SyncStatus,
    ) -> DeviceView {
        let (page, range) = out.page_range(query.page, query.per_page);
        let chart_by = query.group.unwrap_or(crate::query::GroupBy::Category);
        let devices = index.devices();
        let rows = out.order[range.clone()]
            .iter()
            .map(|i| devices.get(*i as usize).to_device())
            .collect();
        let mut page_groups: Vec<GroupCount> = Vec::new();
        let mut row_groups = Vec::new();
        if !out.groups.is_empty() {
            let mut last = None;
            for g in &out.row_groups[range] {
                if last != Some(*g) {
                    page_groups.push(out.groups[*g as usize].clone());
                    last = Some(*g);
                }
                row_groups.push((page_groups.len() - 1) as u32);
            }
        }
        DeviceView {
            rows: Arc::new(rows),
            row_groups,
            page_groups: Arc::new(page_groups),
            group_count: out.groups.len(),
            total: out.total(),
            unfiltered,
            page,
            per_page: query.per_page,
            facets: Arc::new(out.facets.clone()),
            notices: notices.iter().map(ToString::to_string).collect(),
            status,
            auth_enabled: false,
            chart: Arc::new(apply::counts_by(index, &out.order, chart_by.filter())),
            chart_by,
            partial: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Device;

    fn view(total: usize, page: u32, per_page: u32, rows: usize) -> DeviceView {
        DeviceView {
            rows: vec![Device::default(); rows].into(),
            row_groups: vec![],
            page_groups: vec![].into(),
            group_count: 0,
            total,
            unfiltered: total,
            page,
            per_page,
            facets: vec![].into(),
            notices: vec![],
            status: SyncStatus::default(),
            auth_enabled: false,
            chart: vec![].into(),
            chart_by: GroupBy::Category,
            partial: None,
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
