//! One full sync: page 0 gives `total_count`; the other pages are fetched several at a time
//! (so latency does not cut throughput) under the rate limiter; `SYSTEM_ERROR`, timeouts and
//! transport errors retry the same page with exponential backoff and jitter; `FREQUENCY_LIMITED`
//! backs the limiter off; anything else stops the sync. Pages already fetched by a failed sync are
//! reused from a short-lived cache. Devices are de-duplicated by `device_sn`.

use super::error::SyncError;
use super::limiter::RateLimiter;
use crate::model::{Device, DevicePage};
use crate::wechatpay::client::WxPayClient;
use crate::wechatpay::error::{ApiCode, WxPayError};
use futures::{StreamExt, TryStreamExt};
use rand::Rng;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const PAGE_SIZE: u64 = 100;

#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Pages in flight at once.
    pub concurrency: usize,
    /// Attempts per page before the sync fails.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
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
}

impl Progress {
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
    }
}

/// Pages fetched recently, by offset, so a sync retried after a failure does not fetch them again.
pub type PageCache = moka::future::Cache<u64, Arc<DevicePage>>;

pub fn page_cache(ttl: Duration) -> PageCache {
    moka::future::Cache::builder()
        .max_capacity(5_000)
        .time_to_live(ttl)
        .build()
}

/// What a sync brings back.
#[derive(Debug)]
pub struct Fetched {
    pub devices: Vec<Device>,
    pub total_count: Option<u64>,
    pub received: usize,
    pub duplicates: usize,
}

/// Everything one sync needs.
pub struct Fetcher<'a> {
    pub client: &'a WxPayClient,
    pub limiter: &'a RateLimiter,
    pub pages: &'a PageCache,
    pub config: &'a FetchConfig,
    pub progress: &'a Progress,
    /// Called once per request sent (the quota ledger).
    pub on_request: &'a (dyn Fn() + Send + Sync),
    /// Requests this sync may send; a list that needs more is refused after its first page.
    pub budget: u64,
}

impl Fetcher<'_> {
    /// Fetches the whole list.
    pub async fn fetch_all(&self) -> Result<Fetched, SyncError> {
        let first = self.page(0).await?;
        let total_count = first.total_count;
        let pages_total = match total_count {
            Some(t) => t.div_ceil(PAGE_SIZE).max(1),
            None => 1,
        };
        let sent = self.progress.requests.load(Ordering::Relaxed);
        if pages_total > self.budget.max(sent) {
            return Err(SyncError::Quota {
                needed: pages_total,
                used: 0,
                ceiling: self.budget,
                retry_in_secs: None,
            });
        }
        self.progress
            .pages_total
            .store(pages_total, Ordering::Relaxed);
        let mut pages: Vec<Arc<DevicePage>> = vec![first];
        if total_count.is_some() && pages_total > 1 {
            let rest: Vec<Arc<DevicePage>> = futures::stream::iter(1..pages_total)
                .map(|i| self.page(i * PAGE_SIZE))
                .buffered(self.config.concurrency.max(1))
                .try_collect()
                .await?;
            pages.extend(rest);
        }
        // Without total_count, or if the list grew during the sync: follow `links.next` until an
        // empty page or the last page.
        let mut offset = pages_total * PAGE_SIZE;
        while let Some(last) = pages.last() {
            let more = !last.data.is_empty() && last.links.as_ref().is_some_and(|l| l.has_next());
            if !more {
                break;
            }
            self.progress.pages_total.fetch_add(1, Ordering::Relaxed);
            pages.push(self.page(offset).await?);
            offset += PAGE_SIZE;
        }

        let received: usize = pages.iter().map(|p| p.data.len()).sum();
        let mut seen = HashSet::with_capacity(received);
        let mut devices = Vec::with_capacity(received);
        for page in &pages {
            for d in &page.data {
                // A device without a serial cannot be a duplicate we can recognise: keep it.
                if d.device_sn
                    .as_ref()
                    .is_none_or(|sn| seen.insert(sn.clone()))
                {
                    devices.push(d.clone());
                }
            }
        }
        let duplicates = received - devices.len();
        Ok(Fetched {
            devices,
            total_count,
            received,
            duplicates,
        })
    }

    /// One page, from the cache or from the API with retries.
    async fn page(&self, offset: u64) -> Result<Arc<DevicePage>, WxPayError> {
        if let Some(p) = self.pages.get(&offset).await {
            self.progress.pages_done.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            (self.on_request)();
            self.progress.requests.fetch_add(1, Ordering::Relaxed);
            let error = match self.client.list_devices(offset, PAGE_SIZE).await {
                Ok(page) => {
                    let page = Arc::new(page);
                    self.pages.insert(offset, page.clone()).await;
                    self.progress.pages_done.fetch_add(1, Ordering::Relaxed);
                    return Ok(page);
                }
                Err(e) => e,
            };
            if error.code() == Some(&ApiCode::FrequencyLimited) {
                self.progress.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.limiter.back_off().await;
            }
            attempt += 1;
            if !error.is_retryable() || attempt >= self.config.max_attempts {
                return Err(error);
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
}
