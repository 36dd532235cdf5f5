//! Operations endpoints: `/healthz` (the process is up), `/readyz` (a snapshot is available, and
//! how old it is), `/metrics` (Prometheus text format).

use crate::clock::unix_now;
use crate::view::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub fn routes(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(readyz))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

/// 200 once a snapshot can be served, else 503. When a password is set, callers without a
/// session learn only that (the details describe the merchant's data).
async fn readyz(
    State(state): State<AppState>,
    signed_in: Option<axum::Extension<crate::auth::SignedIn>>,
) -> Response {
    let anonymous = state.auth_enabled && !signed_in.is_some_and(|s| s.0 .0);
    let ready = state.sync.last_good();
    if anonymous {
        let code = if ready.is_some() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return (code, Json(serde_json::json!({ "ready": ready.is_some() }))).into_response();
    }
    match ready {
        Some(s) => {
            let save_failure = state.sync.status().save_failure;
            Json(serde_json::json!({
            "ready": true,
            "devices": s.devices.len(),
            "complete": s.complete,
            "expected_devices": s.expected,
            "synced_at": s.synced_at,
            "snapshot_age_secs": (unix_now() - s.synced_at).max(0),
            // Several replicas: without Redis this one serves its last snapshot and syncs not.
            "redis": state.replica.as_ref().map(|r| if r.reachable() { "reachable" } else { "unreachable" }),
            // Several replicas: the shared snapshot in Redis was refused (this one serves its own).
            "shared_snapshot_refused": state.replica.as_ref().and_then(|r| r.refusal()),
            // Served, but not saved: the history misses it and other replicas do not get it.
            "saved": save_failure.is_none(),
            "save_error": save_failure.map(|f| f.detail),
            }))
            .into_response()
        }
        None => {
            let status = state.sync.status();
            let reason = match status.last_error {
                Some(e) => format!("no snapshot yet: {}", e.detail),
                None => format!(
                    "the first sync is running ({} of {} pages)",
                    status.pages_done, status.pages_total
                ),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "ready": false, "reason": reason })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let s = state.sync.status();
    let gauges = [
        (
            "wxpay_snapshot_devices",
            "Devices in the snapshot served.",
            s.devices as f64,
        ),
        (
            "wxpay_snapshot_age_seconds",
            "Age of the snapshot served (-1: none yet).",
            s.age_secs.map(|a| a as f64).unwrap_or(-1.0),
        ),
        (
            "wxpay_quota_used_24h",
            "Requests counted against the daily quota in the last 24 h.",
            s.requests_24h as f64,
        ),
        (
            "wxpay_quota_daily_limit",
            "The daily request quota.",
            s.daily_limit as f64,
        ),
        (
            "wxpay_refresh_interval_seconds",
            "The automatic refresh interval in force.",
            s.interval_secs as f64,
        ),
        (
            "wxpay_sync_running",
            "1 while a sync runs.",
            if s.running { 1.0 } else { 0.0 },
        ),
        (
            "wxpay_snapshot_save_failing",
            "1 while the last synced snapshot could not be saved (not in the history, not shared).",
            if s.save_failure.is_some() { 1.0 } else { 0.0 },
        ),
        (
            "wxpay_snapshot_complete",
            "1 when the snapshot holds as many devices as the list had at the end of its sync.",
            if s.complete { 1.0 } else { 0.0 },
        ),
        (
            "wxpay_snapshot_expected_devices",
            "The list's size at the end of the last sync, as WeChat Pay reported it (-1: unknown).",
            s.expected.map(|e| e as f64).unwrap_or(-1.0),
        ),
    ];
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::get().render(&gauges),
    )
        .into_response()
}
