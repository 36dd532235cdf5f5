//! One full sync (docs/sync.md). A pass reads the list page by page: page 0 first (its
//! `total_count` says how many pages follow), then the rest several at a time (so latency does
//! not cut throughput), until a page is shorter than the limit, the reported total is reached
//! or `links.next` says there is no more. Without `total_count`, pages are asked for a window at
//! a time until a short one.
//!
//! A pass is complete when the distinct devices it read are as many as the list held when its
//! last page was read, nothing was read twice, and the size did not change while it ran. A list
//! that changed during the pass (devices removed shift later ones into pages already read, and
//! are missed; devices added shift them the other way, and are read twice) is read again, up
//! to `repair_passes` more times; a list that never settles is kept, marked incomplete.
//!
//! Every request goes through the request budget (rate limiter and quota ledger) in the client;
//! before each, the sync checks that it stays within the share of the daily quota it may use.
//! `SYSTEM_ERROR`, timeouts and transport errors retry the same page with exponential backoff
//! and jitter; `FREQUENCY_LIMITED` also slows the limiter down; anything else stops the sync.
//! Pages read by a failed sync are reused from a short-lived cache by the next attempt.

use super::budget::RequestBudget;
use super::error::SyncError;
use crate::device_list::{DeviceList, DeviceListBuilder};
use crate::model::{DevicePage, Links};
use crate::wechatpay::client::WxPayClient;
use crate::wechatpay::error::ApiCode;
use futures::{StreamExt, TryStreamExt};
use rand::Rng;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const PAGE_SIZE: u64 = 100;

/// What a [`PageObserver`] calls: the page's offset and the page.
pub type ObservePage = dyn Fn(u64, &DevicePage) + Send + Sync;

/// Called with each page as it arrives (a seam for tests and progress observers).
#[derive(Clone)]
pub struct PageObserver(pub Arc<ObservePage>);

impl std::fmt::Debug for PageObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageObserver")
    }
}

#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Pages in flight at once.
    pub concurrency: usize,
    /// Attempts per page before the sync fails.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Passes over the whole list after the first, when the first does not add up.
    pub repair_passes: u32,
    pub observer: Option<PageObserver>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            // As many as the limiter lets out in one window: with 150 ms latency, fewer in
            // flight would spread each window's 20 requests over several round trips.
            concurrency: 20,
            max_attempts: 6,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            repair_passes: 2,
            observer: None,
        }
    }
}

/// Counters a sync updates as it goes (read by the status bar and the metrics).
#[derive(Debug, Default)]
pub struct Progress {
    pub pages_done: AtomicU64,
    pub pages_total: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    /// When the sync started (Unix ms; 0: none yet), for the time left.
    pub started_ms: AtomicU64,
}

impl Progress {
    /// Seconds left at the pace so far (pages done per second since the start); `None` before
    /// the first page or once every page planned is done.
    pub fn seconds_left(&self, now_ms: u64) -> Option<u64> {
        let done = self.pages_done.load(Ordering::Relaxed);
        let total = self.pages_total.load(Ordering::Relaxed);
        let started = self.started_ms.load(Ordering::Relaxed);
        if done == 0 || total <= done || started == 0 || now_ms <= started {
            return None;
        }
        let per_page_ms = (now_ms - started) as f64 / done as f64;
        Some(((total - done) as f64 * per_page_ms / 1000.0).ceil() as u64)
    }

    pub fn reset(&self) {
        for c in [
            &self.pages_done,
            &self.pages_total,
            &self.requests,
            &self.retries,
            &self.rate_limited,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.started_ms
            .store(crate::clock::unix_now_ms().max(0) as u64, Ordering::Relaxed);
    }
}

/// A page as a sync keeps it: what paging needs, and its devices interned (a page of
/// `Device`s takes some 550 bytes a device; this, ~150).
#[derive(Debug)]
pub struct Page {
    pub offset: Option<u64>,
    pub total_count: Option<u64>,
    pub links: Option<Links>,
    pub devices: DeviceList,
}

impl From<&DevicePage> for Page {
    fn from(p: &DevicePage) -> Self {
        Page {
            offset: p.offset,
            total_count: p.total_count,
            links: p.links.clone(),
            devices: p.data.iter().collect(),
        }
    }
}

/// Pages fetched recently, by offset, so a sync retried after a failure does not fetch them again.
pub type PageCache = moka::future::Cache<u64, Arc<Page>>;

pub fn page_cache(ttl: Duration) -> PageCache {
    moka::future::Cache::builder()
        .max_capacity(5_000)
        .time_to_live(ttl)
        .build()
}

/// What a sync brings back.
#[derive(Debug)]
pub struct Fetched {
    pub devices: DeviceList,
    /// `total_count` as the first page of the pass kept reported it.
    pub total_count: Option<u64>,
    pub received: usize,
    pub duplicates: usize,
    /// The list's size when the pass kept ended (the last page's offset and length).
    pub expected: u64,
    /// Whether the devices kept are as many as that size (see the module's comment).
    pub complete: bool,
    /// Requests spent on passes after the first.
    pub repair_requests: u64,
}

/// Everything one sync needs.
pub struct Fetcher<'a> {
    pub client: &'a WxPayClient,
    pub budget: &'a dyn RequestBudget,
    pub pages: &'a PageCache,
    pub config: &'a FetchConfig,
    pub progress: &'a Progress,
    /// The most requests the last 24 h may hold after any request of this sync (the daily
    /// limit, less the reserve for an automatic sync).
    pub ceiling: u64,
}

/// One reading of the whole list.
struct Pass {
    pages: Vec<Arc<Page>>,
    /// `total_count` on page 0.
    first_total: Option<u64>,
}

/// What a pass read, counted.
struct Tally {
    /// Devices kept (each once).
    kept: usize,
    received: usize,
    duplicates: usize,
    /// Per device read, in order: kept or not.
    keep: Vec<bool>,
}

impl Pass {
    /// The list's size when the last page was read: the total an empty last page reports, or
    /// where the last page with devices ends.
    fn end(&self) -> u64 {
        if let Some(t) = self
            .pages
            .last()
            .filter(|p| p.devices.is_empty())
            .and_then(|p| p.total_count)
        {
            return t;
        }
        self.pages
            .iter()
            .rev()
            .find(|p| !p.devices.is_empty())
            .map(|p| p.offset.unwrap_or(0) + p.devices.len() as u64)
            .unwrap_or(0)
    }

    /// Which devices read to keep: each once (devices without a serial are all kept), in
    /// the order read.
    fn tally(&self) -> Tally {
        let received: usize = self.pages.iter().map(|p| p.devices.len()).sum();
        let mut seen = HashSet::with_capacity(received);
        let keep: Vec<bool> = self
            .pages
            .iter()
            .flat_map(|p| p.devices.iter())
            .map(|d| d.serial().is_none_or(|sn| seen.insert(sn)))
            .collect();
        let kept = keep.iter().filter(|k| **k).count();
        Tally {
            kept,
            duplicates: received - kept,
            received,
            keep,
        }
    }

    /// The devices kept, as one list. Each page is dropped once its devices are in (the
    /// sync's page cache is emptied first), so the list and the pages are never both whole.
    fn into_devices(self, keep: &[bool]) -> DeviceList {
        let mut devices = DeviceListBuilder::for_lists(self.pages.iter().map(|p| &p.devices));
        let mut keep = keep.iter();
        for page in self.pages {
            for d in page.devices.iter() {
                if keep.next().copied().unwrap_or(true) {
                    devices.push_ref(d);
                }
            }
        }
        devices.build()
    }

    /// Whether this pass read exactly the list as it was at its end (module comment).
    fn adds_up(&self, devices: usize, duplicates: usize) -> bool {
        let end = self.end();
        duplicates == 0
            && devices as u64 == end
            && self.first_total.is_none_or(|t| t == end)
            // Every page but the last is full: a short page in the middle means the list
            // shrank under the pass.
            && self.pages[..self.pages.len().saturating_sub(1)]
                .iter()
                .all(|p| p.devices.len() as u64 == PAGE_SIZE)
    }
}

impl Fetcher<'_> {
    /// Fetches the whole list, repairing a pass that does not add up.
    pub async fn fetch_all(&self) -> Result<Fetched, SyncError> {
        let mut pass = self.pass(true).await?;
        let first_pass_requests = self.progress.requests.load(Ordering::Relaxed);
        let mut attempt = 0;
        loop {
            let tally = pass.tally();
            let complete = pass.adds_up(tally.kept, tally.duplicates);
            if complete || attempt >= self.config.repair_passes {
                if !complete {
                    tracing::warn!(
                        devices = tally.kept,
                        expected = pass.end(),
                        passes = attempt + 1,
                        "the list kept changing during the sync: kept the last pass, marked incomplete"
                    );
                }
                let (expected, total_count) = (pass.end(), pass.first_total);
                // This pass is the sync's result: its pages are of no use to a retry now.
                self.pages.invalidate_all();
                self.pages.run_pending_tasks().await;
                return Ok(Fetched {
                    expected,
                    total_count,
                    received: tally.received,
                    duplicates: tally.duplicates,
                    complete,
                    devices: pass.into_devices(&tally.keep),
                    repair_requests: self.progress.requests.load(Ordering::Relaxed)
                        - first_pass_requests,
                });
            }
            attempt += 1;
            tracing::info!(
                devices = tally.kept,
                duplicates = tally.duplicates,
                expected = pass.end(),
                first_total = pass.first_total,
                attempt,
                "the list changed during the sync: reading it again"
            );
            pass = self.pass(false).await?;
        }
    }

    /// One pass over the list. `cached`: pages a failed sync read recently may be reused.
    async fn pass(&self, cached: bool) -> Result<Pass, SyncError> {
        let first = self.page(0, cached).await?;
        let first_total = first.total_count;
        let mut pages = vec![first];
        if let Some(total) = first_total {
            let count = total.div_ceil(PAGE_SIZE).max(1);
            self.add_to_plan(count);
            // Refuse a list this sync cannot afford before asking for the rest of it.
            let left = self.ceiling.saturating_sub(self.budget.used());
            if count - 1 > left {
                return Err(SyncError::Quota {
                    needed: count,
                    used: self.budget.used(),
                    ceiling: self.ceiling,
                    retry_in_secs: None,
                });
            }
            if pages[0].devices.len() as u64 == PAGE_SIZE && count > 1 {
                let rest: Vec<Arc<Page>> = futures::stream::iter(1..count)
                    .map(|i| self.page(i * PAGE_SIZE, cached))
                    .buffered(self.config.concurrency.max(1))
                    .try_collect()
                    .await?;
                pages.extend(rest);
            }
        } else {
            self.add_to_plan(1);
            // No size given: pages a window at a time until a short one, the window doubling
            // from one page up to `concurrency` (a short list wastes few requests past its
            // end, a long one soon goes at full speed).
            let mut window = 1u64;
            while pages
                .last()
                .is_some_and(|p| p.devices.len() as u64 == PAGE_SIZE)
            {
                let next = pages.len() as u64;
                self.add_to_plan(window);
                let batch: Vec<Arc<Page>> = futures::stream::iter(next..next + window)
                    .map(|i| self.page(i * PAGE_SIZE, cached))
                    .buffered(window as usize)
                    .try_collect()
                    .await?;
                let short = batch
                    .iter()
                    .position(|p| (p.devices.len() as u64) < PAGE_SIZE)
                    .map(|i| i + 1)
                    .unwrap_or(batch.len());
                pages.extend(batch.into_iter().take(short));
                window = (window * 2).min(self.config.concurrency.max(1) as u64);
            }
        }
        // The list may have grown past the pages planned: follow it until it ends. A full last
        // page ends the list only when the answer says so (`links.next` empty, or the total
        // reached); otherwise ask for the next one.
        while let Some(last) = pages.last() {
            let len = last.devices.len() as u64;
            let end = last.offset.unwrap_or(0) + len;
            let says_last = match (&last.links, first_total) {
                (Some(links), _) if links.next.is_some() => !links.has_next(),
                (_, Some(total)) => end >= total,
                _ => false,
            };
            if len < PAGE_SIZE || says_last {
                break;
            }
            self.add_to_plan(1);
            pages.push(self.page(end, false).await?);
        }
        Ok(Pass { pages, first_total })
    }

    fn add_to_plan(&self, pages: u64) {
        self.progress
            .pages_total
            .fetch_add(pages, Ordering::Relaxed);
    }

    /// One page, from the cache or from the API with retries, within this sync's quota.
    async fn page(&self, offset: u64, cached: bool) -> Result<Arc<Page>, SyncError> {
        if cached {
            if let Some(p) = self.pages.get(&offset).await {
                self.progress.pages_done.fetch_add(1, Ordering::Relaxed);
                return Ok(p);
            }
        }
        let mut attempt = 0;
        loop {
            let used = self.budget.used();
            if used >= self.ceiling {
                return Err(SyncError::Quota {
                    needed: 1,
                    used,
                    ceiling: self.ceiling,
                    retry_in_secs: None,
                });
            }
            self.progress.requests.fetch_add(1, Ordering::Relaxed);
            let error = match self.client.list_devices(offset, PAGE_SIZE).await {
                Ok(mut page) => {
                    // The client checked that an offset given is the one asked for.
                    page.offset = Some(offset);
                    if let Some(observe) = &self.config.observer {
                        (observe.0)(offset, &page);
                    }
                    let page = Arc::new(Page::from(&page));
                    self.pages.insert(offset, page.clone()).await;
                    self.progress.pages_done.fetch_add(1, Ordering::Relaxed);
                    return Ok(page);
                }
                Err(e) => e,
            };
            if error.code() == Some(&ApiCode::FrequencyLimited) {
                self.progress.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.budget.back_off();
            }
            attempt += 1;
            if !error.is_retryable() || attempt >= self.config.max_attempts {
                return Err(error.into());
            }
            self.progress.retries.fetch_add(1, Ordering::Relaxed);
            crate::metrics::get()
                .retries
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(offset, attempt, error = %error, "retrying page");
            tokio::time::sleep(backoff(self.config, attempt)).await;
        }
    }
}

/// Exponential backoff with full jitter in its upper half: base·2^(attempt-1), capped, times
/// a random factor in 0.5..1.0.
pub fn backoff(config: &FetchConfig, attempt: u32) -> Duration {
    let exp = config
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(config.backoff_max);
    capped.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Device;

    #[test]
    fn time_left_is_the_pace_so_far() {
        let p = Progress::default();
        assert_eq!(p.seconds_left(10_000), None, "not started");
        p.started_ms.store(10_000, Ordering::Relaxed);
        p.pages_total.store(100, Ordering::Relaxed);
        assert_eq!(p.seconds_left(11_000), None, "no page yet");
        p.pages_done.store(20, Ordering::Relaxed);
        // 20 pages in 2 s: 80 more take 8 s.
        assert_eq!(p.seconds_left(12_000), Some(8));
        p.pages_done.store(100, Ordering::Relaxed);
        assert_eq!(p.seconds_left(15_000), None, "done");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let c = FetchConfig::default();
        for attempt in 1..=10 {
            let d = backoff(&c, attempt);
            let nominal = (c.backoff_base * 2u32.pow(attempt - 1)).min(c.backoff_max);
            assert!(
                d >= nominal / 2 && d <= nominal,
                "attempt {attempt}: {d:?} vs {nominal:?}"
            );
        }
        let many: HashSet<u128> = (0..20).map(|_| backoff(&c, 3).as_nanos()).collect();
        assert!(many.len() > 1, "jitter varies");
    }

    fn page(offset: u64, sns: &[&str], total: Option<u64>) -> Arc<Page> {
        Arc::new(Page::from(&DevicePage {
            data: sns
                .iter()
                .map(|s| Device {
                    device_sn: (!s.is_empty()).then(|| s.to_string()),
                    ..Default::default()
                })
                .collect(),
            offset: Some(offset),
            limit: Some(PAGE_SIZE),
            total_count: total,
            links: None,
        }))
    }

    #[test]
    fn a_pass_adds_up_only_when_count_size_and_pages_agree() {
        let full: Vec<String> = (0..100).map(|i| format!("A{i}")).collect();
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let pass = |pages: Vec<Arc<Page>>, total| Pass {
            pages,
            first_total: total,
        };
        let ok = pass(
            vec![page(0, &full, Some(102)), page(100, &["B", "C"], None)],
            Some(102),
        );
        let t = ok.tally();
        let (d, dup) = (t.kept, t.duplicates);
        assert!(ok.adds_up(d, dup));
        // The size changed between the first page and the last.
        let grew = pass(
            vec![page(0, &full, Some(101)), page(100, &["B", "C"], None)],
            Some(101),
        );
        let t = grew.tally();
        let (d, dup) = (t.kept, t.duplicates);
        assert!(!grew.adds_up(d, dup));
        // A device read twice.
        let twice = pass(
            vec![page(0, &full, Some(102)), page(100, &["A99", "C"], None)],
            Some(102),
        );
        let t = twice.tally();
        let (d, dup) = (t.kept, t.duplicates);
        assert_eq!(dup, 1);
        assert!(!twice.adds_up(d, dup));
        // Devices without a serial are each a device.
        let blank = pass(vec![page(0, &["", "", "X"], Some(3))], Some(3));
        let t = blank.tally();
        let (d, dup) = (t.kept, t.duplicates);
        assert_eq!((d, dup), (3, 0));
        assert!(blank.adds_up(d, dup));
        // A short page in the middle.
        let short = pass(vec![page(0, &["A"], None), page(100, &["B"], None)], None);
        let t = short.tally();
        let (d, dup) = (t.kept, t.duplicates);
        assert!(!short.adds_up(d, dup));
    }
}
