//! Sign-outs and failed sign-ins shared by every replica (docs/replicas.md). Sessions are signed
//! with `DASHBOARD_SESSION_KEY`, so any replica accepts a session another made; what a replica
//! cannot know by itself is that a session was signed out elsewhere, or how many passwords a
//! client has already tried on the others. Both live here, in Redis:
//!
//! - **Sign-outs**: `wxpay:dashboard:revoked:<signature>` set until the session would have
//!   expired anyway.
//! - **Failed sign-ins**: per client, a sorted set of attempt times over the window (the same
//!   sliding log as the request budget, time from Redis `TIME`), counted *before* the password
//!   is checked so parallel guesses spread over replicas cannot pass the limit.
//!
//! - **The session key**, when `DASHBOARD_SESSION_KEY` is not set: the first replica to start
//!   stores a random one (`SET NX` under `wxpay:<merchant>:session-key`) and every replica signs
//!   with what Redis holds; each puts its own back every few seconds should Redis lose it, and
//!   adopts a different one it finds there (keeping the one before for the sessions it signed).
//!
//! When Redis cannot be reached, `auth` falls back to this replica's own lists (and counts the
//! error in `/metrics`): a sign-out still holds here, sign-ins are still limited per replica.

use redis::aio::ConnectionManager;
use std::time::Duration;

/// KEYS: the client's attempt log. ARGV: window µs, limit, a unique member.
/// Returns the member when the attempt may go ahead, false when the limit is reached.
const BEGIN_ATTEMPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return false
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) / 1000))
return ARGV[3]
"#;

/// The dashboard's shared sign-outs and sign-in attempts.
#[derive(Clone)]
pub struct RedisSessions {
    conn: ConnectionManager,
    prefix: String,
    begin: redis::Script,
    /// Where the session key of this merchant's dashboard is kept.
    key_name: String,
}

impl RedisSessions {
    /// Keys under `wxpay:dashboard:` (the dashboard's users, whatever merchant it shows); the
    /// session key under `wxpay:<merchant>:session-key` (one merchant's dashboard does not
    /// accept another's sessions even when they share a Redis).
    pub fn new(conn: ConnectionManager, merchant: &str) -> Self {
        RedisSessions {
            conn,
            prefix: "wxpay:dashboard".into(),
            begin: redis::Script::new(BEGIN_ATTEMPT),
            key_name: format!("wxpay:{merchant}:session-key"),
        }
    }

    /// The session key every replica signs with: `proposal` if Redis holds none yet (it is
    /// stored), else the one Redis holds.
    pub async fn session_key(&self, proposal: &str) -> Result<String, String> {
        let mut conn = self.conn.clone();
        let _: Option<String> = redis::cmd("SET")
            .arg(&self.key_name)
            .arg(proposal)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(super::failed("sessions"))?;
        let held: Option<String> = redis::cmd("GET")
            .arg(&self.key_name)
            .query_async(&mut conn)
            .await
            .map_err(super::failed("sessions"))?;
        // Deleted between the two commands: ours is as good as any.
        Ok(held.unwrap_or_else(|| proposal.to_string()))
    }

    fn revoked_key(&self, signature: &str) -> String {
        format!("{}:revoked:{signature}", self.prefix)
    }

    /// Records that the session with `signature` is signed out, for `remaining` (its life left).
    pub async fn revoke(&self, signature: &str, remaining: Duration) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.revoked_key(signature))
            .arg(1)
            .arg("PX")
            .arg(remaining.as_millis().max(1) as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(super::failed("sessions"))
    }

    /// Whether a replica signed the session with `signature` out.
    pub async fn is_revoked(&self, signature: &str) -> Result<bool, String> {
        let mut conn = self.conn.clone();
        redis::cmd("EXISTS")
            .arg(self.revoked_key(signature))
            .query_async::<bool>(&mut conn)
            .await
            .map_err(super::failed("sessions"))
    }

    /// Counts an attempt by `client`: `Some(id)` (give it to [`RedisSessions::succeeded`] if the
    /// password was right), `None` when `limit` attempts were made in the last `window`.
    pub async fn begin_attempt(
        &self,
        client: &str,
        limit: usize,
        window: Duration,
    ) -> Result<Option<String>, String> {
        let mut conn = self.conn.clone();
        let member = format!("{}-{}", std::process::id(), rand::random::<u64>());
        self.begin
            .key(format!("{}:logins:{client}", self.prefix))
            .arg(window.as_micros() as u64)
            .arg(limit)
            .arg(member)
            .invoke_async::<Option<String>>(&mut conn)
            .await
            .map_err(super::failed("logins"))
    }

    /// The attempt `id` by `client` had the right password: it does not count.
    pub async fn succeeded(&self, client: &str, id: &str) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(format!("{}:logins:{client}", self.prefix))
            .arg(id)
            .query_async::<()>(&mut conn)
            .await
            .map_err(super::failed("logins"))
    }
}
