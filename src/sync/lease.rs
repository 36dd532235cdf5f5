//! Who may run a sync now: one of the sync service's seams (docs/architecture.md). In one
//! process the service's in-flight slot already makes syncs single, so the embedded lease always
//! grants; several replicas put a shared lease here (held while the sync runs, with a fencing
//! token that later writes carry, so a holder that lost its lease cannot overwrite a newer one).

use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};

/// What gives a shared lease back.
pub trait Release: Send {
    /// Gives the lease back (if it is still this holder's), and resolves when that is done.
    fn give_back(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Held for a sync's duration; [`LeaseToken::give_back`] gives the lease back (dropping it
/// does too, in the background).
pub struct LeaseToken {
    /// Grows with every grant: a write from a lower token is stale.
    pub fencing: u64,
    /// Whether other processes share the lease (then writes carry `fencing`; one process has
    /// nothing to fence against).
    pub shared: bool,
    /// What gives the lease back (nothing for the embedded lease).
    pub release: Option<Box<dyn Release>>,
    /// Turns `true` if the lease was lost while held (it could not be renewed in time).
    pub lost: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Drop for LeaseToken {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            // Not given back explicitly (a panic, a cancelled task): in the background, if a
            // runtime is still there; otherwise the lease expires by itself.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(release.give_back());
            }
        }
    }
}

impl LeaseToken {
    /// Gives the lease back now, and waits until that is done.
    pub async fn give_back(mut self) {
        if let Some(release) = self.release.take() {
            release.give_back().await;
        }
    }

    /// The fencing token to write with, if writes need one.
    pub fn fence(&self) -> Option<u64> {
        self.shared.then_some(self.fencing)
    }

    /// Resolves when the lease is lost; never for a lease that cannot be lost.
    pub async fn lost(&mut self) {
        match &mut self.lost {
            Some(rx) => {
                if rx.wait_for(|lost| *lost).await.is_err() {
                    // The renewer is gone without saying: treat the lease as lost.
                }
            }
            None => std::future::pending().await,
        }
    }
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
                shared: false,
                release: None,
                lost: None,
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
