//! The request budget shared by every replica (docs/replicas.md): at most 20 requests in any
//! second and the merchant's daily quota, for all replicas together, decided in Redis.
//!
//! - **Rate: a sliding-window log.** A sorted set holds the grant times of the last window; a
//!   grant is allowed while fewer than 20 are in it. Fixed windows (INCR per second) let 40
//!   through across a boundary, GCRA with a burst of 19 lets 39: a log is the only way to keep
//!   "at most 20 in any second" and still let 20 go together. The window is 1.1 s, the margin
//!   for network jitter the single-process limiter keeps too.
//! - **Time from Redis** (`TIME`), never a replica's clock: replicas' clocks may disagree.
//! - **Quota in the same step.** Per-minute counts over the last 86,400 s in a hash, checked and
//!   counted in the same script, so two replicas can never both take the last request.
//! - **Slowing down together.** A `FREQUENCY_LIMITED` answer sets a pause every replica's
//!   grants wait for.
//!
//! `used()` and `seconds_until_room()` answer from a copy of the ledger, refreshed from Redis
//! on every grant and by `refresh()`; the script itself is what refuses past the quota.

use crate::clock::unix_now;
use crate::sync::budget::RequestBudget;
use crate::sync::quota::QuotaLedger;
use crate::wechatpay::client::{Admitted, RequestGate};
use crate::wechatpay::error::WxPayError;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Grants in any window.
pub const RATE: u32 = 20;
/// The window, with the margin for jitter.
pub const WINDOW: Duration = Duration::from_millis(1_100);
/// How long one `FREQUENCY_LIMITED` answer pauses every replica.
pub const BACK_OFF: Duration = Duration::from_millis(1_100);

/// KEYS: rate log (zset), quota (hash minute → count), pause (string).
/// ARGV: window µs, rate, daily limit, a unique member.
/// Returns {1, used after} granted; {0, µs to wait} not yet; {-1, used} quota spent.
const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local daily = tonumber(ARGV[3])
local pause = redis.call('PTTL', KEYS[3])
if pause > 0 then
  return {0, pause * 1000}
end
local oldest_minute = math.floor((tonumber(t[1]) - 86400) / 60)
local used = 0
local buckets = redis.call('HGETALL', KEYS[2])
for i = 1, #buckets, 2 do
  if tonumber(buckets[i]) < oldest_minute then
    redis.call('HDEL', KEYS[2], buckets[i])
  else
    used = used + tonumber(buckets[i + 1])
  end
end
if used >= daily then
  return {-1, used}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= rate then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(first[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
redis.call('HINCRBY', KEYS[2], math.floor(tonumber(t[1]) / 60), 1)
redis.call('PEXPIRE', KEYS[2], 90000000)
return {1, used + 1}
"#;

/// The budget of one merchant, shared through Redis.
pub struct RedisBudget {
    conn: ConnectionManager,
    script: redis::Script,
    keys: [String; 3],
    daily_limit: u64,
    /// A copy of the shared ledger, for `used()` and `seconds_until_room()`.
    mirror: Mutex<QuotaLedger>,
    /// Makes each grant's member unique across replicas.
    node: String,
    counter: AtomicU64,
}

impl RedisBudget {
    /// The budget of `merchant` (its keys are `wxpay:<merchant>:…`).
    pub fn new(conn: ConnectionManager, merchant: &str, daily_limit: u64) -> Self {
        let prefix = format!("wxpay:{merchant}");
        RedisBudget {
            conn,
            script: redis::Script::new(ADMIT),
            keys: [
                format!("{prefix}:rate"),
                format!("{prefix}:quota"),
                format!("{prefix}:pause"),
            ],
            daily_limit,
            mirror: Mutex::new(QuotaLedger::in_memory()),
            node: format!("{}-{}", std::process::id(), rand::random::<u64>()),
            counter: AtomicU64::new(0),
        }
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, QuotaLedger> {
        self.mirror.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies the shared ledger (every replica's requests) into `used()`'s view.
    pub async fn refresh(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let buckets: Vec<(i64, u64)> = redis::cmd("HGETALL")
            .arg(&self.keys[1])
            .query_async(&mut conn)
            .await
            .map_err(super::failed("budget"))?;
        *self.mirror() = QuotaLedger::from_buckets(buckets);
        Ok(())
    }

    /// Waits for a grant, or refuses: the quota is spent, or Redis cannot be asked (then
    /// nothing is sent: a replica that cannot see the budget must not spend it).
    pub async fn grant(&self, request: &str) -> Result<(), WxPayError> {
        self.grant_counting(request).await.map(|_| ())
    }

    /// As [`RedisBudget::grant`], saying how many times Redis was asked (1: granted at once).
    pub async fn grant_counting(&self, request: &str) -> Result<u32, WxPayError> {
        let mut conn = self.conn.clone();
        let mut asked = 0;
        let started = std::time::Instant::now();
        loop {
            asked += 1;
            let member = format!(
                "{}-{}",
                self.node,
                self.counter.fetch_add(1, Ordering::Relaxed)
            );
            let answer: (i64, i64) = self
                .script
                .key(&self.keys[0])
                .key(&self.keys[1])
                .key(&self.keys[2])
                .arg(WINDOW.as_micros() as u64)
                .arg(RATE)
                .arg(self.daily_limit)
                .arg(member)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| {
                    crate::metrics::get().redis_error("budget");
                    WxPayError::Transport {
                        request: request.to_string(),
                        reason: format!(
                            "not sent: the shared request budget in Redis cannot be reached ({e})"
                        ),
                    }
                })?;
            match answer {
                (1, _) => {
                    if asked > 1 {
                        crate::metrics::get().limiter_waited(started.elapsed());
                    }
                    self.mirror().record(unix_now(), 1);
                    return Ok(asked);
                }
                (-1, used) => {
                    return Err(WxPayError::QuotaExhausted {
                        request: request.to_string(),
                        used: used.max(0) as u64,
                        limit: self.daily_limit,
                    })
                }
                (_, wait_us) => {
                    tokio::time::sleep(Duration::from_micros(wait_us.clamp(100, 2_000_000) as u64))
                        .await
                }
            }
        }
    }
}

impl RequestGate for RedisBudget {
    fn admit<'a>(&'a self, request: &'a str) -> BoxFuture<'a, Result<Admitted, WxPayError>> {
        Box::pin(async move {
            self.grant(request).await?;
            Ok(Box::new(()) as Admitted)
        })
    }
}

impl RequestBudget for RedisBudget {
    fn used(&self) -> u64 {
        self.mirror().used(unix_now())
    }

    fn seconds_until_room(&self, needed: u64, ceiling: u64) -> Option<i64> {
        self.mirror()
            .seconds_until_room(unix_now(), needed, ceiling)
    }

    /// The ledger lives in Redis: nothing to save, but the copy is brought up to date.
    fn save(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.refresh())
    }

    /// Pauses every replica's grants for a window.
    fn back_off(&self) {
        let mut conn = self.conn.clone();
        let key = self.keys[2].clone();
        tokio::spawn(async move {
            let set: Result<(), _> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("PX")
                .arg(BACK_OFF.as_millis() as u64)
                .query_async(&mut conn)
                .await;
            if let Err(e) = set {
                crate::metrics::get().redis_error("budget");
                tracing::warn!(error = %e, "could not tell the other replicas to slow down");
            }
        });
    }
}
