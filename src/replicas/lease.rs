//! One sync at a time across replicas (docs/replicas.md): a lease in Redis (`SET NX PX`),
//! renewed while the sync runs and given back by a compare-and-delete script, with a fencing
//! token from `INCR` that the sync's writes carry (a holder that lost its lease cannot overwrite
//! a newer holder's snapshot or history: `history::store` refuses a lower token).
//!
//! The lease only avoids duplicate work: the shared budget (`budget`) is what keeps the
//! requests within the limits, whoever sends them.

use crate::sync::lease::{LeaseToken, Release, SyncLease};
use crate::sync::snapshot::SnapshotStore;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a lease lasts without renewal: a holder that dies frees it after this.
pub const TTL: Duration = Duration::from_secs(15);

/// `PEXPIRE` the lease if it is still ours.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// The next fencing token, never below `floor` + 1 (ARGV[1]: the highest token the database
/// has seen). Redis that restarted empty starts `INCR` at 1 again, which the database would
/// refuse as older than what it holds: the counter is raised first.
const NEXT_FENCE: &str = r#"
local floor = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < floor then
  redis.call('SET', KEYS[1], floor)
end
return redis.call('INCR', KEYS[1])
"#;

/// `DEL` the lease if it is still ours.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

pub struct RedisLease {
    conn: ConnectionManager,
    lease_key: String,
    fence_key: String,
    ttl: Duration,
    /// Where the fenced writes go: tokens are drawn above the highest it has seen.
    floor: Option<Arc<dyn SnapshotStore>>,
}

impl RedisLease {
    /// The sync lease of `merchant` (keys `wxpay:<merchant>:lease` and `:fence`).
    pub fn new(conn: ConnectionManager, merchant: &str, ttl: Duration) -> Self {
        RedisLease {
            conn,
            lease_key: format!("wxpay:{merchant}:lease"),
            fence_key: format!("wxpay:{merchant}:fence"),
            ttl: ttl.max(Duration::from_millis(300)),
            floor: None,
        }
    }

    /// Draws fencing tokens above the highest one `store` has seen written, so tokens never go
    /// backwards from the store's point of view, even when Redis lost its data.
    pub fn with_floor(mut self, store: Arc<dyn SnapshotStore>) -> Self {
        self.floor = Some(store);
        self
    }

    async fn try_acquire(&self) -> redis::RedisResult<Option<LeaseToken>> {
        let mut conn = self.conn.clone();
        let holder = format!("{}-{}", std::process::id(), rand::random::<u64>());
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.lease_key)
            .arg(&holder)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        if set.is_none() {
            return Ok(None);
        }
        let floor = match &self.floor {
            Some(store) => match store.highest_fence().await {
                Ok(f) => f,
                Err(e) => {
                    // The write will be refused if the token is stale, and say so.
                    tracing::warn!(error = %e, "cannot read the highest fencing token written; drawing one from Redis alone");
                    0
                }
            },
            None => 0,
        };
        let fencing: u64 = redis::Script::new(NEXT_FENCE)
            .key(&self.fence_key)
            .arg(floor)
            .invoke_async(&mut conn)
            .await?;
        let m = crate::metrics::get();
        m.lease_held.store(1, Ordering::Relaxed);
        m.lease_fence.store(fencing, Ordering::Relaxed);
        let (lost_tx, lost_rx) = tokio::sync::watch::channel(false);
        let renewer = tokio::spawn(renew(
            conn.clone(),
            self.lease_key.clone(),
            holder.clone(),
            self.ttl,
            lost_tx,
        ));
        Ok(Some(LeaseToken {
            fencing,
            shared: true,
            release: Some(Box::new(GiveBack {
                conn,
                key: self.lease_key.clone(),
                holder,
                renewer,
            })),
            lost: Some(lost_rx),
        }))
    }
}

/// Renews the lease every third of its life; says it is lost when it is no longer ours, or
/// when no renewal succeeded before it would have expired.
async fn renew(
    mut conn: ConnectionManager,
    key: String,
    holder: String,
    ttl: Duration,
    lost: tokio::sync::watch::Sender<bool>,
) {
    let script = redis::Script::new(RENEW);
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let answer: redis::RedisResult<i64> = script
            .key(&key)
            .arg(&holder)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await;
        match answer {
            Ok(1) => renewed = Instant::now(),
            Ok(_) => {
                tracing::warn!("the sync lease was taken over: stopping this sync");
                crate::metrics::get().lease_held.store(0, Ordering::Relaxed);
                let _ = lost.send(true);
                return;
            }
            Err(e) if renewed.elapsed() + ttl / 3 >= ttl => {
                crate::metrics::get().redis_error("lease");
                crate::metrics::get().lease_held.store(0, Ordering::Relaxed);
                tracing::warn!(error = %e, "the sync lease could not be renewed in time: stopping this sync");
                let _ = lost.send(true);
                return;
            }
            Err(e) => {
                crate::metrics::get().redis_error("lease");
                tracing::warn!(error = %e, "could not renew the sync lease; trying again")
            }
        }
    }
}

/// Gives the lease back (the sync ended), if it is still ours.
struct GiveBack {
    conn: ConnectionManager,
    key: String,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl Release for GiveBack {
    fn give_back(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.renewer.abort();
        crate::metrics::get().lease_held.store(0, Ordering::Relaxed);
        let GiveBack {
            mut conn,
            key,
            holder,
            ..
        } = *self;
        Box::pin(async move {
            let done: redis::RedisResult<i64> = redis::Script::new(RELEASE)
                .key(&key)
                .arg(&holder)
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = done {
                crate::metrics::get().redis_error("lease");
                // It expires by itself within the TTL.
                tracing::warn!(error = %e, "could not give the sync lease back");
            }
        })
    }
}

impl SyncLease for RedisLease {
    fn acquire(&self) -> BoxFuture<'_, Option<LeaseToken>> {
        Box::pin(async move {
            match self.try_acquire().await {
                Ok(token) => token,
                Err(e) => {
                    crate::metrics::get().redis_error("lease");
                    // Without Redis no one can know who syncs: do not. (Asked every second
                    // while due: the follower warns once when Redis goes away.)
                    tracing::debug!(error = %e, "cannot reach Redis for the sync lease: not syncing");
                    None
                }
            }
        })
    }
}
