//! The snapshot: the whole device list as of one sync, with what the sync found. The last good
//! one is written to the data directory (atomically) and loaded at start, so a restarted
//! dashboard serves data at once.

use crate::device_list::DeviceList;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// Which data this is (merchant and endpoint, or the demo's parameters).
    pub source: String,
    /// Unix seconds when the sync finished.
    pub synced_at: i64,
    pub sync_millis: u64,
    /// `total_count` as the API reported it on the first page.
    pub total_count: Option<u64>,
    /// Devices received, before removing duplicates.
    pub received: usize,
    /// Devices received twice (offset paging shifts when the list changes during a sync).
    pub duplicates: usize,
    /// Requests the sync sent (retries included).
    pub requests: u64,
    /// Whether the devices held are as many as the list held at the end of the sync
    /// (docs/sync.md); `false`: kept anyway, and shown as "N of M devices".
    #[serde(default = "yes")]
    pub complete: bool,
    /// The list's size as the API reported it at the end of the sync.
    #[serde(default)]
    pub expected: Option<u64>,
    /// Requests spent reading the list again because it changed during the sync.
    #[serde(default)]
    pub repair_requests: u64,
    /// Interned (src/device_list.rs); saved as a list of devices.
    pub devices: Arc<DeviceList>,
}

fn yes() -> bool {
    true
}

impl Snapshot {
    /// The difference between what the API said it had and what we hold, if any.
    pub fn difference(&self) -> Option<i64> {
        self.total_count
            .map(|t| self.devices.len() as i64 - t as i64)
            .filter(|d| *d != 0)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// crash leaves either the old file or the new one; the directory is synced after the rename,
/// so the new name survives a power cut. The file is readable by its owner only (0600): it
/// holds the merchant's device list.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // A leftover from a crash keeps its old mode: start afresh.
    let _ = std::fs::remove_file(&tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
    Ok(())
}

/// Where the last good snapshot is kept, so a restart serves it at once: one of the sync
/// service's seams (docs/architecture.md). The database (which records the change history in
/// the same step: `history::store`), a file in `DATA_DIR`, or nothing.
pub trait SnapshotStore: Send + Sync {
    /// The saved snapshot of this store's data, if there is a usable one.
    fn load(&self) -> BoxFuture<'_, Option<Snapshot>>;
    /// Replaces the saved snapshot, atomically. `fence`: the sync lease's fencing token when
    /// several processes share the store; a store refuses a token lower than one it has seen
    /// (a holder that lost its lease). The error says what failed.
    fn save(
        &self,
        snapshot: Arc<Snapshot>,
        fence: Option<u64>,
    ) -> BoxFuture<'_, Result<(), String>>;
    /// Whether another process saved a snapshot this one has not loaded yet (several replicas:
    /// a sync that just ended elsewhere, on its way here). A sync is not started then.
    fn behind(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
    /// The highest fencing token that has written here (0 if none, or the store keeps none):
    /// a shared lease never grants a lower one, even after Redis lost its counter.
    fn highest_fence(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async { Ok(0) })
    }
}

/// A file (written atomically, 0600), holding the snapshot of one source.
pub struct FileStore {
    pub path: std::path::PathBuf,
    pub source: String,
}

impl SnapshotStore for FileStore {
    fn load(&self) -> BoxFuture<'_, Option<Snapshot>> {
        let (path, source) = (self.path.clone(), self.source.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || load(&path, &source))
                .await
                .ok()
                .flatten()
        })
    }

    fn save(&self, snapshot: Arc<Snapshot>, _: Option<u64>) -> BoxFuture<'_, Result<(), String>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || save(&path, &snapshot))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        })
    }
}

/// Keeps nothing (no data directory).
pub struct NoStore;

impl SnapshotStore for NoStore {
    fn load(&self) -> BoxFuture<'_, Option<Snapshot>> {
        Box::pin(async { None })
    }

    fn save(&self, _: Arc<Snapshot>, _: Option<u64>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A snapshot (or any part of one) as stored in the database: JSON, gzip-compressed as it is
/// written. A million devices are ~400 MB of JSON; written whole into memory first, they made
/// the process' peak; compressed on the fly they are ~10 % of that and never whole.
pub fn pack(value: &impl Serialize) -> Result<Vec<u8>, String> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    serde_json::to_writer(&mut z, value).map_err(|e| e.to_string())?;
    z.finish().map_err(|e| e.to_string())
}

/// Reads what [`pack`] wrote, or plain JSON (as stored before), never holding the JSON whole.
pub fn unpack<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let reader =
            std::io::BufReader::with_capacity(1 << 16, flate2::read::GzDecoder::new(bytes));
        serde_json::from_reader(reader).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

pub fn save(path: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    write_atomically(path, &serde_json::to_vec(snapshot)?)
}

/// Loads the snapshot of `source`. Missing: `None`. Corrupt or foreign: `None` with a warning.
pub fn load(path: &Path, source: &str) -> Option<Snapshot> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the saved snapshot");
            return None;
        }
    };
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.format == FORMAT && s.source == source => Some(s),
        Ok(s) => {
            tracing::warn!(path = %path.display(), found = %s.source, "ignoring a saved snapshot of other data");
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt saved snapshot");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(source: &str) -> Snapshot {
        Snapshot {
            format: FORMAT,
            source: source.into(),
            synced_at: 1_800_000_000,
            sync_millis: 1234,
            total_count: Some(3),
            received: 3,
            duplicates: 1,
            requests: 1,
            complete: true,
            expected: Some(3),
            repair_requests: 0,
            devices: Arc::new(DeviceList::from(vec![
                crate::model::Device {
                    device_sn: Some("A".into()),
                    ..Default::default()
                };
                2
            ])),
        }
    }

    #[test]
    fn packed_snapshots_are_gzip_and_read_back_as_plain_json_is() {
        let s = snap("a");
        let packed = pack(&s).unwrap();
        assert!(packed.starts_with(&[0x1f, 0x8b]), "gzip");
        let back: Snapshot = unpack(&packed).unwrap();
        assert_eq!(back.devices, s.devices);
        // What the database held before: plain JSON.
        let plain: Snapshot = unpack(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(plain.devices, s.devices);
        assert!(
            unpack::<Snapshot>(&packed[..packed.len() / 2]).is_err(),
            "cut short"
        );
        assert!(unpack::<Snapshot>(b"\x1f\x8bnot gzip").is_err());
    }

    #[test]
    fn round_trips_and_rejects_foreign_corrupt_or_missing_files() {
        let dir = std::env::temp_dir().join(format!("wxpay-snap-{}", std::process::id()));
        let path = dir.join("snapshot.json");
        assert!(load(&path, "a").is_none());
        save(&path, &snap("a")).unwrap();
        let back = load(&path, "a").unwrap();
        assert_eq!(back.devices.len(), 2);
        assert_eq!(back.difference(), Some(-1));
        assert!(load(&path, "b").is_none());
        std::fs::write(&path, b"\x00garbage").unwrap();
        assert!(load(&path, "a").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
