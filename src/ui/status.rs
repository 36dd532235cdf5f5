//! The status line: how old the data is, the quota used, and whether a sync runs or failed.

use crate::api::SyncStatus;
use crate::ui::format::{ago, thousands};
use leptos::prelude::*;

#[component]
pub fn StatusLine(status: SyncStatus, #[prop(optional)] auth: bool) -> impl IntoView {
    let s = status;
    let age = s
        .age_secs
        .map(|a| format!("data as of {}", ago(a)))
        .unwrap_or_else(|| "no data yet".into());
    let quota = format!(
        "{} / {} requests in 24 h",
        thousands(s.requests_24h as usize),
        thousands(s.daily_limit as usize)
    );
    let interval = format!("refresh every {} min", s.interval_secs.div_ceil(60));
    let demo = s.demo.then(|| {
        view! {
            <span class="rounded bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-900" data-testid="demo-badge">
                "Demo: simulated data"
            </span>
        }
    });
    let stale = (!s.fresh && s.synced_at.is_some()).then(|| {
        view! { <span class="rounded bg-slate-200 px-2 py-0.5 text-xs text-slate-800">"stale"</span> }
    });
    let error = s.last_error.clone().map(|e| {
        let rid = e.request_id.map(|r| format!(" Request-ID {r}.")).unwrap_or_default();
        view! {
            <span class="rounded bg-red-100 px-2 py-0.5 text-xs text-red-900" title=format!("{} {}{}", e.message, e.advice, rid)>
                "last sync failed"
            </span>
        }
    });
    view! {
        <span class="flex flex-wrap items-center gap-2 text-slate-600" data-testid="status">
            {demo}
            <span title=s.interval_reason.clone()>{age}</span>
            {stale}
            {error}
            <span class="hidden md:inline" title=s.interval_reason>{quota}" · "{interval}</span>
            {auth.then(|| view! {
                <form method="post" action="/logout">
                    <button type="submit" class="rounded border border-slate-300 bg-white px-2 py-0.5 text-xs hover:bg-slate-100" data-testid="sign-out">
                        "Sign out"
                    </button>
                </form>
            })}
        </span>
    }
}
