//! Who may run a sync now: one of the sync service's seams (docs/architecture.md). In one
//! process the service's in-flight slot already makes syncs single, so the embedded lease always
//! grants; several replicas put a shared lease here (held while the sync runs, with a fencing
//! token that later writes carry, so a holder that lost its lease cannot overwrite a newer one).

use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};

/// Held for a sync's duration; dropping it gives the lease back.
pub struct LeaseToken {
    /// Grows with every grant: a write from a lower token is stale.
    pub fencing: u64,
    /// What gives the lease back when dropped (nothing for the embedded lease).
    pub release: Option<Box<dyn Send>>,
}

pub trait SyncLease: Send + Sync {
    /// A token to run a sync, or `None` when another holder runs one.
    fn acquire(&self) -> BoxFuture<'_, Option<LeaseToken>>;
}

/// One process: always granted, with increasing fencing tokens.
#[derive(Default)]
pub struct LocalLease {
    grants: AtomicU64,
}

impl SyncLease for LocalLease {
    fn acquire(&self) -> BoxFuture<'_, Option<LeaseToken>> {
        let fencing = self.grants.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            Some(LeaseToken {
                fencing,
                release: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_lease_grants_with_growing_fencing_tokens() {
        let lease = LocalLease::default();
        let a = lease.acquire().await.unwrap();
        let b = lease.acquire().await.unwrap();
        assert!(b.fencing > a.fencing);
    }
}
