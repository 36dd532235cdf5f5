//! Several replicas as one, through Redis (`REDIS_URL`; docs/replicas.md). Built so far: the
//! shared request budget, one rate limiter and one daily ledger for every replica (`budget`),
//! and one sync at a time (`lease`). The shared snapshot and shared sessions come next; until
//! then the dashboard does not read `REDIS_URL`.

pub mod budget;
pub mod lease;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

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
