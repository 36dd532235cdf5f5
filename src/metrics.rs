//! Process-wide counters for `/metrics` (Prometheus text format). Counters live here; gauges
//! (snapshot size and age, quota used) are read from the sync service when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Distinct outcome labels kept, at most (then `OTHER`).
pub const MAX_OUTCOMES: usize = 32;

#[derive(Default)]
pub struct Metrics {
    upstream: Mutex<BTreeMap<String, u64>>,
    pub retries: AtomicU64,
    pub syncs_ok: AtomicU64,
    pub syncs_failed: AtomicU64,
    /// Versions of the shared snapshot in Redis refused as unfit (several replicas).
    pub shared_snapshots_refused: AtomicU64,
    /// Synced snapshots that could not be saved (the database refused or was unreachable).
    pub snapshot_save_failures: AtomicU64,
    pub last_sync_millis: AtomicU64,
    pub snapshot_hits: AtomicU64,
    pub snapshot_misses: AtomicU64,
    /// Redis commands that failed, by what they were for (several replicas only).
    redis_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Grants of a request that had to wait for room in the rate limit, and for how long in all.
    pub limiter_waits: AtomicU64,
    pub limiter_wait_micros: AtomicU64,
    /// 1 while this replica holds the shared sync lease; the fencing token it last got.
    pub lease_held: AtomicU64,
    pub lease_fence: AtomicU64,
}

static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::default);

pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Counts one upstream request by outcome: `OK`, an API code, or a failure kind. Codes come
    /// from answers, which anyone in the path could forge: they are cut to 64 characters of
    /// `A-Z0-9_`, and past `MAX_OUTCOMES` distinct ones, new ones count as `OTHER`.
    pub fn upstream(&self, outcome: &str) {
        let label: String = outcome
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut map = self.upstream.lock().unwrap_or_else(|e| e.into_inner());
        let label = if map.contains_key(&label) || map.len() < MAX_OUTCOMES {
            label
        } else {
            "OTHER".to_string()
        };
        *map.entry(label).or_default() += 1;
    }

    pub fn upstream_count(&self, outcome: &str) -> u64 {
        self.upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(outcome)
            .copied()
            .unwrap_or(0)
    }

    /// Counts a failed Redis command; `op` is one of a few fixed names.
    pub fn redis_error(&self, op: &'static str) {
        *self
            .redis_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
    }

    pub fn redis_error_count(&self, op: &str) -> u64 {
        self.redis_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// A grant that waited `waited` for room in the rate limit.
    pub fn limiter_waited(&self, waited: std::time::Duration) {
        self.limiter_waits.fetch_add(1, Ordering::Relaxed);
        self.limiter_wait_micros
            .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition, with the gauges the caller passes.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "wxpay_sync_retries_total",
            "Page requests retried after a retryable failure.",
            self.retries.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_syncs_succeeded_total",
            "Full syncs that produced a snapshot.",
            self.syncs_ok.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_syncs_failed_total",
            "Full syncs that failed (the last snapshot was kept).",
            self.syncs_failed.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_snapshot_save_failures_total",
            "Synced snapshots that could not be saved: their changes are not in the history (a stale fencing token, or the database unreachable).",
            self.snapshot_save_failures.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_shared_snapshots_refused_total",
            "Versions of the shared snapshot in Redis refused as unfit (too big, malformed, another merchant's): the replica kept serving its own.",
            self.shared_snapshots_refused.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_snapshot_cache_hits_total",
            "Views answered from a fresh cached snapshot.",
            self.snapshot_hits.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_snapshot_cache_misses_total",
            "Views that found no fresh snapshot (stale or cold).",
            self.snapshot_misses.load(Ordering::Relaxed),
        );
        counter(
            "wxpay_limiter_waits_total",
            "Requests that waited for room in the 20-per-second limit before being sent.",
            self.limiter_waits.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP wxpay_limiter_wait_seconds_total Time requests spent waiting for room in the rate limit.\n# TYPE wxpay_limiter_wait_seconds_total counter\nwxpay_limiter_wait_seconds_total {}",
            self.limiter_wait_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP wxpay_replica_lease_held 1 while this replica holds the shared sync lease (several replicas).\n# TYPE wxpay_replica_lease_held gauge\nwxpay_replica_lease_held {}\n# HELP wxpay_replica_lease_fence The fencing token of the last sync lease this replica got (0: none).\n# TYPE wxpay_replica_lease_fence gauge\nwxpay_replica_lease_fence {}",
            self.lease_held.load(Ordering::Relaxed),
            self.lease_fence.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP wxpay_redis_errors_total Redis commands that failed, by use (several replicas).\n# TYPE wxpay_redis_errors_total counter");
        for (op, n) in self
            .redis_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "wxpay_redis_errors_total{{op=\"{op}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP wxpay_upstream_requests_total Requests sent to WeChat Pay, by outcome (FREQUENCY_LIMITED counts the 429s).\n# TYPE wxpay_upstream_requests_total counter");
        for (outcome, n) in self
            .upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "wxpay_upstream_requests_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP wxpay_last_sync_duration_seconds Duration of the last successful sync.\n# TYPE wxpay_last_sync_duration_seconds gauge\nwxpay_last_sync_duration_seconds {}",
            self.last_sync_millis.load(Ordering::Relaxed) as f64 / 1000.0
        );
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.upstream("OK");
        m.upstream("OK");
        m.upstream("FREQUENCY_LIMITED");
        m.retries.fetch_add(3, Ordering::Relaxed);
        m.redis_error("lease");
        m.redis_error("lease");
        m.limiter_waited(std::time::Duration::from_millis(250));
        let text = m.render(&[("wxpay_snapshot_devices", "Devices in the snapshot.", 42.0)]);
        assert!(
            text.contains("wxpay_upstream_requests_total{outcome=\"OK\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("wxpay_upstream_requests_total{outcome=\"FREQUENCY_LIMITED\"} 1\n"));
        assert!(
            text.contains("# TYPE wxpay_sync_retries_total counter\nwxpay_sync_retries_total 3\n")
        );
        assert!(text.contains("wxpay_snapshot_devices 42\n"));
        assert!(
            text.contains("wxpay_redis_errors_total{op=\"lease\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("wxpay_limiter_waits_total 1\n"));
        assert!(text.contains("wxpay_limiter_wait_seconds_total 0.25\n"));
        assert!(text.contains("wxpay_replica_lease_held 0\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn codes_from_answers_cannot_break_the_text_or_grow_it_without_bound() {
        let m = Metrics::default();
        m.upstream("EVIL\"} 1\nwxpay_fake 999\n#");
        for i in 0..1_000 {
            m.upstream(&format!("CODE_{i}"));
        }
        let text = m.render(&[]);
        assert!(!text.contains("wxpay_fake 999"), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with("wxpay_upstream_requests_total{"))
            .count();
        assert!(series <= MAX_OUTCOMES + 1, "{series} series");
        assert!(text.contains("outcome=\"OTHER\"}"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(line.matches('"').count() % 2, 0, "{line}");
            assert!(
                line.rsplit(' ').next().unwrap().parse::<f64>().is_ok(),
                "{line}"
            );
        }
    }
}
