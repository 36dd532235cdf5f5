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

/// What Redis holds is read as untrusted input (a bad value must not crash-loop every replica,
/// which load from Redis first at start): at most this many chunks (1 GiB compressed) ...
pub const MAX_CHUNKS: usize = 1024;
/// ... inflating to at most this much JSON (a million devices are ~400 MB) ...
pub const MAX_JSON_BYTES: u64 = 1536 << 20;
/// ... holding at most this many devices (twice the largest list measured: BENCHMARKS.md).
pub const MAX_DEVICES: usize = 2_000_000;

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
    /// Whose snapshot this is (`Snapshot::source`): one of another merchant is refused.
    source: String,
    /// The last version refused, and why (it is not read again; shown in `/readyz`).
    rejected: Arc<std::sync::Mutex<Option<(u64, String)>>>,
    /// The most JSON a version may inflate to ([`MAX_JSON_BYTES`]).
    max_json: u64,
    /// The last version this process published or loaded.
    held: Arc<AtomicU64>,
    /// The current version at the last look (0: none).
    seen: Arc<AtomicU64>,
    /// Whether the last look at the pointer reached Redis.
    reachable: Arc<AtomicBool>,
}

impl SharedSnapshot {
    /// `merchant`: the key prefix's name of `source`.
    pub fn new(conn: ConnectionManager, merchant: &str, source: &str) -> Self {
        SharedSnapshot {
            conn,
            prefix: format!("wxpay:{merchant}:snapshot"),
            source: source.to_string(),
            rejected: Default::default(),
            max_json: MAX_JSON_BYTES,
            held: Arc::new(AtomicU64::new(0)),
            seen: Arc::new(AtomicU64::new(0)),
            reachable: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Accepts versions that inflate to at most `bytes` of JSON (instead of
    /// [`MAX_JSON_BYTES`]).
    pub fn with_max_json(mut self, bytes: u64) -> Self {
        self.max_json = bytes;
        self
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
        if packed.len() > MAX_CHUNKS * CHUNK {
            return Err(format!(
                "not published: the snapshot takes {} bytes compressed, more than the {} the \
                 replicas accept",
                packed.len(),
                MAX_CHUNKS * CHUNK
            ));
        }
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
        self.seen.store(version, Ordering::SeqCst);
        if let Some((v, n)) = parse_pointer(&previous) {
            self.expire(v, n, OLD_VERSION_TTL_MS).await;
        }
        Ok(version)
    }

    /// Lets a version's chunks go after `ms`.
    async fn expire(&self, version: u64, chunks: usize, ms: u64) {
        let mut conn = self.conn.clone();
        // The count comes from Redis (the previous pointer): bounded like a read.
        for i in 0..chunks.min(MAX_CHUNKS) {
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
        let current = pointer
            .map_err(super::failed("snapshot"))?
            .as_deref()
            .and_then(parse_pointer);
        self.seen
            .store(current.map_or(0, |(v, _)| v), Ordering::SeqCst);
        Ok(current)
    }

    /// Whether Redis answered the last look at the pointer (the follower looks every 2 s).
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    /// Reads a version. What Redis holds is checked as untrusted input: the number and size
    /// of its chunks, the size of the JSON they inflate to, the number of devices, the format
    /// and whose snapshot it is ([`Fetched::Refused`] says which, and is not retried).
    pub async fn fetch(&self, version: u64, chunks: usize) -> Result<Snapshot, Fetched> {
        if chunks == 0 || chunks > MAX_CHUNKS {
            return Err(Fetched::Refused(format!(
                "version {version} says it has {chunks} chunks (1 to {MAX_CHUNKS} allowed)"
            )));
        }
        let mut conn = self.conn.clone();
        let mut packed = Vec::new();
        for i in 0..chunks {
            let chunk: Option<Vec<u8>> = redis::cmd("GET")
                .arg(format!("{}:{version}:{i}", self.prefix))
                .query_async(&mut conn)
                .await
                .map_err(|e| Fetched::Unreadable(super::failed("snapshot")(e)))?;
            let chunk =
                chunk.ok_or_else(|| Fetched::Unreadable(format!("version {version} is gone")))?;
            if chunk.len() > CHUNK {
                return Err(Fetched::Refused(format!(
                    "version {version}'s chunk {i} holds {} bytes (at most {CHUNK})",
                    chunk.len()
                )));
            }
            packed.extend(chunk);
        }
        let (source, max_json) = (self.source.clone(), self.max_json);
        let checked = tokio::task::spawn_blocking(move || {
            let inflated =
                std::io::Read::take(flate2::read::DeflateDecoder::new(&packed[..]), max_json + 1);
            let mut reader = CountingReader {
                inner: std::io::BufReader::with_capacity(1 << 16, inflated),
                read: 0,
            };
            let parsed = serde_json::from_reader::<_, Snapshot>(&mut reader);
            if reader.read > max_json {
                return Err(format!(
                    "version {version} inflates to more than {max_json} bytes"
                ));
            }
            let s = parsed.map_err(|e| format!("version {version} is not a snapshot: {e}"))?;
            if s.format != FORMAT {
                return Err(format!(
                    "version {version} is a snapshot of format {}",
                    s.format
                ));
            }
            if s.source != source {
                return Err(format!(
                    "version {version} is the snapshot of {:?}, not of this merchant",
                    s.source
                ));
            }
            if s.devices.len() > MAX_DEVICES {
                return Err(format!(
                    "version {version} holds {} devices (at most {MAX_DEVICES})",
                    s.devices.len()
                ));
            }
            Ok(s)
        })
        .await
        .map_err(|e| Fetched::Refused(e.to_string()))?;
        checked.map_err(Fetched::Refused)
    }

    /// A version was refused: counted, logged once, kept for `/readyz` (and not read again).
    fn refuse(&self, version: u64, why: String) {
        crate::metrics::get()
            .shared_snapshots_refused
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(version, error = %why, "refused the shared snapshot in Redis; serving the one held");
        *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, why));
    }

    fn refused(&self, version: u64) -> bool {
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(v, _)| *v == version)
    }

    /// Why the current shared version was refused, while it is current.
    pub fn refusal(&self) -> Option<String> {
        let current = self.seen.load(Ordering::SeqCst);
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(v, _)| *v == current)
            .map(|(_, why)| why.clone())
    }

    /// Reads `version`, refusing (and remembering) a bad one.
    async fn read(&self, version: u64, chunks: usize) -> Option<Snapshot> {
        if self.refused(version) {
            return None;
        }
        match self.fetch(version, chunks).await {
            Ok(s) => {
                self.rejected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                Some(s)
            }
            Err(Fetched::Refused(why)) => {
                self.refuse(version, why);
                None
            }
            Err(Fetched::Unreadable(e)) => {
                tracing::warn!(error = %e, "could not read the shared snapshot");
                None
            }
        }
    }
}

/// Why a shared version was not read.
#[derive(Debug)]
pub enum Fetched {
    /// Redis could not be asked, or the version is gone: worth trying again.
    Unreadable(String),
    /// What Redis holds is not a snapshot this replica may serve.
    Refused(String),
}

impl std::fmt::Display for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetched::Unreadable(e) | Fetched::Refused(e) => f.write_str(e),
        }
    }
}

/// Counts the bytes read through it (the JSON inflated so far).
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
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
                if let Some(s) = self.shared.read(v, n).await {
                    self.shared.held.store(v, Ordering::SeqCst);
                    return Some(s);
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

    fn highest_fence(&self) -> BoxFuture<'_, Result<u64, String>> {
        self.database.highest_fence()
    }

    /// The current version is one this process has not loaded, and it can be read.
    fn behind(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Ok(Some((v, _))) = self.shared.current().await else {
                return false;
            };
            if v == self.shared.held.load(Ordering::SeqCst) || self.shared.refused(v) {
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
                if let Some(snapshot) = shared.read(v, n).await {
                    sync.install(Arc::new(snapshot)).await;
                    shared.held.store(v, Ordering::SeqCst);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the shared snapshot's version"),
        }
        let _ = tokio::time::timeout(POLL, rx.recv()).await;
    }
}
