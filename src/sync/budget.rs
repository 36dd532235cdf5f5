//! The request budget: the one rate limiter and the one quota ledger that every request to
//! WeChat Pay passes through, page requests, retries, follow-ups and certificate downloads alike
//! (docs/sync.md). The client calls it before it sends anything ([`RequestGate`]); the sync asks
//! it how much of the day is left before it starts and before each page.

use super::limiter::{Permit, RateLimiter};
use super::quota::{LedgerStore, QuotaLedger};
use crate::clock::unix_now;
use crate::wechatpay::client::{Admitted, RequestGate};
use crate::wechatpay::error::WxPayError;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

/// The budget as the sync sees it: one of the sync service's seams (docs/architecture.md).
/// Today [`LocalBudget`], in this process; several replicas share one (the same rate and quota
/// for all of them).
pub trait RequestBudget: RequestGate {
    /// Requests sent in the last 24 h.
    fn used(&self) -> u64;
    /// Seconds until `needed` more requests fit under `ceiling`, if within a day.
    fn seconds_until_room(&self, needed: u64, ceiling: u64) -> Option<i64>;
    /// Keeps the count where it survives a restart.
    fn save(&self) -> BoxFuture<'_, Result<(), String>>;
    /// A `FREQUENCY_LIMITED` answer: slow down.
    fn back_off(&self);
}

/// The rate limiter and the quota ledger of this process.
pub struct LocalBudget {
    limiter: RateLimiter,
    ledger: Mutex<QuotaLedger>,
    store: Arc<dyn LedgerStore>,
    /// One save at a time, so an older count never overwrites a newer one.
    saving: tokio::sync::Mutex<()>,
    daily_limit: u64,
}

impl LocalBudget {
    /// `ledger`: the count so far (as loaded from `store`, where it is saved).
    pub fn new(
        limiter: RateLimiter,
        ledger: QuotaLedger,
        store: Arc<dyn LedgerStore>,
        daily_limit: u64,
    ) -> Self {
        LocalBudget {
            limiter,
            ledger: Mutex::new(ledger),
            store,
            saving: tokio::sync::Mutex::new(()),
            daily_limit,
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, QuotaLedger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn daily_limit(&self) -> u64 {
        self.daily_limit
    }

    /// Waits for the rate limiter, then counts the request; refuses (sends nothing) once the
    /// day's quota is spent. The permit is held until the answer comes back.
    pub async fn admit(&self, request: &str) -> Result<Permit, WxPayError> {
        {
            let used = self.used();
            if used >= self.daily_limit {
                return Err(WxPayError::QuotaExhausted {
                    request: request.to_string(),
                    used,
                    limit: self.daily_limit,
                });
            }
        }
        let permit = self.limiter.acquire().await;
        self.ledger().record(unix_now(), 1);
        Ok(permit)
    }
}

impl RequestBudget for LocalBudget {
    fn used(&self) -> u64 {
        self.ledger().used(unix_now())
    }

    fn seconds_until_room(&self, needed: u64, ceiling: u64) -> Option<i64> {
        self.ledger()
            .seconds_until_room(unix_now(), needed, ceiling)
    }

    /// Writes the ledger to its store, if it changed.
    fn save(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let _one = self.saving.lock().await;
            let Some(buckets) = self.ledger().to_save(unix_now()) else {
                return Ok(());
            };
            let saved = self.store.save(buckets).await;
            if saved.is_err() {
                self.ledger().unsaved();
            }
            saved
        })
    }

    fn back_off(&self) {
        self.limiter.back_off()
    }
}

impl RequestGate for LocalBudget {
    fn admit<'a>(&'a self, request: &'a str) -> BoxFuture<'a, Result<Admitted, WxPayError>> {
        Box::pin(async move {
            let permit = LocalBudget::admit(self, request).await?;
            Ok(Box::new(permit) as Admitted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::quota::NoLedger;
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn counts_each_admitted_request_and_refuses_past_the_limit() {
        let b = LocalBudget::new(
            RateLimiter::new(100, Duration::from_secs(1)),
            QuotaLedger::in_memory(),
            Arc::new(NoLedger),
            3,
        );
        for _ in 0..3 {
            drop(b.admit("GET /x").await.unwrap());
        }
        assert_eq!(b.used(), 3);
        let e = b.admit("GET /x").await.unwrap_err();
        assert!(
            matches!(
                e,
                WxPayError::QuotaExhausted {
                    used: 3,
                    limit: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(b.used(), 3, "a refused request is not counted");
    }
}
