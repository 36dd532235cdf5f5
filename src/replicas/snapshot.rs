//! One snapshot for every replica (docs/replicas.md). The lease holder's sync stores the
//! finished snapshot in Redis, compressed and split into chunks (a big value would block Redis's
//! one thread), under a new version; flips the `current` pointer if its fencing token is not
//! older than the last one that flipped it; and publishes the version. Every replica follows:
//! on the message, and by reading the pointer every few seconds (pub/sub loses messages while a
//! subscriber reconnects), it loads a version it does not hold into its sync service.

use crate::sync::service::SyncService;
use crate::sync::snapshot::{Snapshot, SnapshotStore, FORMAT};
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;
/// How long a version's chunks are kept after it stops being current (a replica may be
/// reading it).
const OLD_VERSION_TTL_MS: u64 = 300_000;
/// How often a replica reads the pointer, besides the messages.
pub const POLL: Duration = Duration::from_secs(2);

/// KEYS: current, fence, channel. ARGV: "version:chunks", fencing token, version.
/// Returns the previous current ("" if none), or false if the token is stale.
const FLIP: &str = r#"
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) < fence then
  return false
end
local previous = redis.call('GET', KEYS[1]) or ''
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[3])
return previous
"#;

/// The shared snapshot of one merchant.
#[derive(Clone)]
pub struct SharedSnapshot {
    conn: ConnectionManager,
    prefix: String,
    /// The last version this process published or loaded.
    held: Arc<AtomicU64>,
    /// Whether the last look at the pointer reached Redis.
    reachable: Arc<AtomicBool>,
}

impl SharedSnapshot {
    pub fn new(conn: ConnectionManager, merchant: &str) -> Self {
        SharedSnapshot {
            conn,
            prefix: format!("wxpay:{merchant}:snapshot"),
            held: Arc::new(AtomicU64::new(0)),
            reachable: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The channel versions are announced on.
    pub fn channel(&self) -> String {
        format!("{}:published", self.prefix)
    }

    /// Stores `snapshot` as a new version and makes it current, unless a holder with a higher
    /// fencing token already did. Returns the version.
    pub async fn publish(&self, snapshot: Arc<Snapshot>, fence: u64) -> Result<u64, String> {
        let redis_err = super::failed("snapshot");
        // Compressed as it is written: the JSON is never whole in memory (~400 MB at a
        // million devices).
        let packed = tokio::task::spawn_blocking(move || {
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            serde_json::to_writer(&mut z, &*snapshot).map_err(|e| e.to_string())?;
            z.finish().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let mut conn = self.conn.clone();
        let version: u64 = redis::cmd("INCR")
            .arg(format!("{}:version", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(&redis_err)?;
        let chunks: Vec<&[u8]> = packed.chunks(CHUNK).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let _: () = redis::cmd("SET")
                .arg(format!("{}:{version}:{i}", self.prefix))
                .arg(*chunk)
                .query_async(&mut conn)
                .await
                .map_err(&redis_err)?;
        }
        let previous: Option<String> = redis::Script::new(FLIP)
            .key(format!("{}:current", self.prefix))
            .key(format!("{}:fence", self.prefix))
            .key(self.channel())
            .arg(format!("{version}:{}", chunks.len()))
            .arg(fence)
            .arg(version)
            .invoke_async(&mut conn)
            .await
            .map_err(&redis_err)?;
        let Some(previous) = previous else {
            self.expire(version, chunks.len(), 0).await;
            return Err(format!(
                "not published: this sync's lease (fencing token {fence}) is older than the one that published last"
            ));
        };
        self.held.store(version, Ordering::SeqCst);
        if let Some((v, n)) = parse_pointer(&previous) {
            self.expire(v, n, OLD_VERSION_TTL_MS).await;
        }
        Ok(version)
    }

    /// Lets a version's chunks go after `ms`.
    async fn expire(&self, version: u64, chunks: usize, ms: u64) {
        let mut conn = self.conn.clone();
        for i in 0..chunks {
            let _: Result<(), _> = redis::cmd("PEXPIRE")
                .arg(format!("{}:{version}:{i}", self.prefix))
                .arg(ms.max(1))
                .query_async(&mut conn)
                .await;
        }
    }

    /// The current version and its number of chunks.
    pub async fn current(&self) -> Result<Option<(u64, usize)>, String> {
        let mut conn = self.conn.clone();
        let pointer: Result<Option<String>, _> = redis::cmd("GET")
            .arg(format!("{}:current", self.prefix))
            .query_async(&mut conn)
            .await;
        let was = self.reachable.swap(pointer.is_ok(), Ordering::SeqCst);
        match (was, pointer.is_ok()) {
            (true, false) => tracing::warn!(
                "Redis cannot be reached: serving the last snapshot, sending nothing to WeChat Pay until it is back"
            ),
            (false, true) => tracing::info!("Redis reached again: syncing with the other replicas"),
            _ => {}
        }
        Ok(pointer
            .map_err(super::failed("snapshot"))?
            .as_deref()
            .and_then(parse_pointer))
    }

    /// Whether Redis answered the last look at the pointer (the follower looks every 2 s).
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    /// Reads a version.
    pub async fn fetch(&self, version: u64, chunks: usize) -> Result<Snapshot, String> {
        let mut conn = self.conn.clone();
        let mut packed = Vec::new();
        for i in 0..chunks {
            let chunk: Option<Vec<u8>> = redis::cmd("GET")
                .arg(format!("{}:{version}:{i}", self.prefix))
                .query_async(&mut conn)
                .await
                .map_err(super::failed("snapshot"))?;
            packed.extend(chunk.ok_or_else(|| format!("version {version} is gone"))?);
        }
        tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::with_capacity(
                1 << 16,
                flate2::read::DeflateDecoder::new(&packed[..]),
            );
            let s: Snapshot = serde_json::from_reader(reader).map_err(|e| e.to_string())?;
            if s.format != FORMAT {
                return Err(format!("a snapshot of format {}", s.format));
            }
            Ok(s)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

fn parse_pointer(p: &str) -> Option<(u64, usize)> {
    let (v, n) = p.split_once(':')?;
    Some((v.parse().ok()?, n.parse().ok()?))
}

/// The snapshot store of a replica: the database (fenced; it records the history), then the
/// shared snapshot in Redis. Loading prefers Redis's current version.
pub struct ReplicatedStore {
    pub database: Arc<dyn SnapshotStore>,
    pub shared: SharedSnapshot,
}

impl SnapshotStore for ReplicatedStore {
    fn load(&self) -> BoxFuture<'_, Option<Snapshot>> {
        Box::pin(async move {
            if let Ok(Some((v, n))) = self.shared.current().await {
                match self.shared.fetch(v, n).await {
                    Ok(s) => {
                        self.shared.held.store(v, Ordering::SeqCst);
                        return Some(s);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read the shared snapshot"),
                }
            }
            self.database.load().await
        })
    }

    fn save(
        &self,
        snapshot: Arc<Snapshot>,
        fence: Option<u64>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.database.save(snapshot.clone(), fence).await?;
            self.shared
                .publish(snapshot, fence.unwrap_or(0))
                .await
                .map(|_| ())
        })
    }

    /// The current version is one this process has not loaded, and it can be read.
    fn behind(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Ok(Some((v, _))) = self.shared.current().await else {
                return false;
            };
            if v == self.shared.held.load(Ordering::SeqCst) {
                return false;
            }
            let mut conn = self.shared.conn.clone();
            redis::cmd("EXISTS")
                .arg(format!("{}:{v}:0", self.shared.prefix))
                .query_async::<bool>(&mut conn)
                .await
                .unwrap_or(false)
        })
    }
}

/// Keeps `sync` on the current shared version: on each announcement, and every [`POLL`].
/// Runs until the process ends.
pub async fn follow(shared: SharedSnapshot, sync: Arc<SyncService>, redis_url: String) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    // Announcements: a subscription of its own, re-made when it drops.
    let channel = shared.channel();
    tokio::spawn(async move {
        loop {
            if let Ok(client) = redis::Client::open(redis_url.as_str()) {
                if let Ok(mut pubsub) = client.get_async_pubsub().await {
                    if pubsub.subscribe(&channel).await.is_ok() {
                        use futures::StreamExt;
                        let mut messages = pubsub.on_message();
                        while messages.next().await.is_some() {
                            let _ = tx.try_send(());
                        }
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    });
    loop {
        match shared.current().await {
            // Not published or loaded here yet.
            Ok(Some((v, n))) if v != shared.held.load(Ordering::SeqCst) => {
                match shared.fetch(v, n).await {
                    Ok(snapshot) => {
                        sync.install(Arc::new(snapshot)).await;
                        shared.held.store(v, Ordering::SeqCst);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read the shared snapshot"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the shared snapshot's version"),
        }
        let _ = tokio::time::timeout(POLL, rx.recv()).await;
    }
}
