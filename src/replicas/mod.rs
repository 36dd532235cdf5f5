//! Several replicas as one, through Redis (`REDIS_URL`; docs/replicas.md): one request budget
//! for all (`budget`), one sync at a time (`lease`), one snapshot (`snapshot`), and the
//! dashboard's sign-outs and sign-in limits (`sessions`).

pub mod budget;
pub mod lease;
pub mod sessions;
pub mod snapshot;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// What a replica's sync service shares with the others: the budget, the lease, and the
/// snapshot store (the shared `database`, fenced, then Redis). Returns the shared snapshot too,
/// for [`snapshot::follow`].
pub fn persistence(
    conn: &ConnectionManager,
    source: &str,
    daily_limit: u64,
    database: std::sync::Arc<dyn crate::sync::snapshot::SnapshotStore>,
    lease_ttl: Duration,
) -> (crate::sync::service::Persistence, snapshot::SharedSnapshot) {
    use std::sync::Arc;
    let merchant = merchant_key(source);
    let shared = snapshot::SharedSnapshot::new(conn.clone(), &merchant, source);
    let state = crate::sync::service::Persistence {
        snapshots: Arc::new(snapshot::ReplicatedStore {
            database: database.clone(),
            shared: shared.clone(),
        }),
        ledger: crate::sync::quota::QuotaLedger::in_memory(),
        ledger_store: Arc::new(crate::sync::quota::NoLedger),
        shared_budget: Some(Arc::new(budget::RedisBudget::new(
            conn.clone(),
            &merchant,
            daily_limit,
        ))),
        shared_lease: Some(Arc::new(
            lease::RedisLease::new(conn.clone(), &merchant, lease_ttl).with_floor(database),
        )),
    };
    (state, shared)
}

/// `source` as it names this merchant's keys in Redis (`wxpay:<merchant>:…`).
pub fn merchant_key(source: &str) -> String {
    source
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A connection manager for `url` (it reconnects by itself); the error is one line naming
/// `REDIS_URL`, without its password.
pub async fn connect(url: &str) -> Result<ConnectionManager, String> {
    let fail = |e: redis::RedisError| {
        format!(
            "REDIS_URL={}: cannot reach Redis ({e}); set REDIS_URL to a redis:// server that can be \
             reached, or unset it to run one process on its own",
            crate::db::redact(url)
        )
    };
    let client = redis::Client::open(url).map_err(fail)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(fail)
}

/// Turns a Redis error into a message naming what it was for, counted in `/metrics`
/// (`wxpay_redis_errors_total{op}`).
fn failed(op: &'static str) -> impl Fn(redis::RedisError) -> String {
    move |e| {
        crate::metrics::get().redis_error(op);
        format!("Redis ({op}): {e}")
    }
}
