//! The status bar: how old the data is, a live progress bar while a sync runs, the quota used
//! and the refresh interval in force (and why), a banner when the data is stale or the last sync
//! failed, the demo badge, and "Refresh now" (disabled, with the reason, when not allowed).

use crate::api::{refresh_now, SyncStatus};
use crate::format::{thousands, ChinaTime};
use crate::i18n::use_lang;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn StatusBar(
    initial: SyncStatus,
    live: RwSignal<Option<SyncStatus>>,
    #[prop(optional)] auth: bool,
) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let status = Signal::derive(move || live.get().unwrap_or_else(|| initial.clone()));
    let refresh_error = RwSignal::new(None::<String>);
    let on_refresh = move |_| {
        spawn_local(async move {
            match refresh_now().await {
                Ok(()) => {
                    refresh_error.set(None);
                    // Show "running" at once; the poller takes over from here.
                    live.update(|s| {
                        if let Some(s) = s {
                            s.running = true;
                            s.pages_done = 0;
                            s.pages_total = 0;
                            s.manual_refresh_blocked = Some(crate::status::RefreshBlocked::Running);
                        }
                    });
                }
                Err(e) => refresh_error.set(Some(e.to_string())),
            }
        })
    };
    view! {
        <div class="flex flex-wrap items-center gap-2 text-sm text-slate-600 dark:text-slate-300" data-testid="status">
            {move || status.get().demo.then(|| view! {
                <span class="rounded bg-amber-100 dark:bg-amber-900 px-2 py-0.5 text-xs font-medium text-amber-900 dark:text-amber-200" data-testid="demo-badge">
                    {t.demo}
                </span>
            })}
            <span
                data-testid="data-as-of"
                data-synced-at=move || status.get().synced_at.map(|t| t.to_string()).unwrap_or_default()
                title=move || lang.interval_reason(&status.get().interval_reason)
            >
                {move || {
                    let s = status.get();
                    match (s.synced_at, s.age_secs) {
                        (Some(at), Some(age)) => lang.data_as_of(&ChinaTime::from_unix(at).clock(), &lang.ago(age)),
                        // The grid shows the devices fetched so far meanwhile.
                        _ if s.running => t.first_sync.into(),
                        _ => t.no_data_yet.into(),
                    }
                }}
            </span>
            {move || {
                let s = status.get();
                s.running.then(|| {
                    view! {
                        <span class="flex items-center gap-2" data-testid="sync-progress">
                            <progress
                                class="h-2 w-32 overflow-hidden rounded [&::-webkit-progress-bar]:bg-slate-200 [&::-webkit-progress-value]:bg-emerald-600 [&::-moz-progress-bar]:bg-emerald-600"
                                aria-label="Sync progress"
                                max=s.pages_total.max(1).to_string()
                                value=s.pages_done.to_string()
                            ></progress>
                            <span class="tabular-nums text-xs">{lang.syncing(s.pages_done, s.pages_total)}</span>
                        </span>
                    }
                })
            }}
            {move || status.get().last_changes.map(|c| view! {
                <a
                    href=crate::changes::ChangesQuery {
                        since: Some(ChinaTime::from_unix(c.at).rfc3339()),
                        ..crate::changes::ChangesQuery::new()
                    }
                    .href()
                    class="tabular-nums text-emerald-700 dark:text-emerald-400 hover:underline"
                    title=t.last_sync_changes
                    data-testid="last-changes"
                >
                    {lang.change_counts(c.added, c.removed, c.changed)}
                </a>
            })}
            <span class="hidden tabular-nums lg:inline" title=move || lang.interval_reason(&status.get().interval_reason) data-testid="quota">
                {move || {
                    let s = status.get();
                    lang.quota(
                        &thousands(s.requests_24h as usize),
                        &thousands(s.daily_limit as usize),
                        s.interval_secs.div_ceil(60),
                    )
                }}
            </span>
            <button
                type="button"
                class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-0.5 text-xs hover:bg-slate-100 dark:hover:bg-slate-800 disabled:cursor-not-allowed disabled:opacity-60 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600"
                data-testid="refresh"
                disabled=move || status.get().manual_refresh_blocked.is_some()
                title=move || {
                    status
                        .get()
                        .manual_refresh_blocked
                        .map(|b| lang.refresh_blocked(&b))
                        .unwrap_or_else(|| t.refresh_title.into())
                }
                on:click=on_refresh
            >
                {t.refresh}
            </button>
            {move || refresh_error.get().map(|e| view! { <span class="text-xs text-red-700 dark:text-red-400">{e}</span> })}
            {auth.then(|| view! {
                <form method="post" action="/logout">
                    <button type="submit" class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-0.5 text-xs hover:bg-slate-100 dark:hover:bg-slate-800" data-testid="sign-out">
                        {t.sign_out}
                    </button>
                </form>
            })}
        </div>
    }
}

/// Below the header: why the data on screen may not be current.
#[component]
pub fn StatusBanner(initial: SyncStatus, live: RwSignal<Option<SyncStatus>>) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let status = Signal::derive(move || live.get().unwrap_or_else(|| initial.clone()));
    move || {
        let s = status.get();
        if s.shared_state_lost {
            Some(view! {
                <div role="status" class="border-b border-amber-200 dark:border-amber-800 bg-amber-50 dark:bg-amber-950 px-4 py-2 text-sm text-amber-900 dark:text-amber-200" data-testid="shared-state-lost">
                    {t.shared_state_lost}
                </div>
            }
            .into_any())
        } else if let Some(f) = s.save_failure.clone() {
            Some(view! {
                <div role="alert" class="border-b border-amber-200 dark:border-amber-800 bg-amber-50 dark:bg-amber-950 px-4 py-2 text-sm text-amber-900 dark:text-amber-200" data-testid="save-failed">
                    {t.save_failed}<span class="font-mono text-xs">{f.detail}</span>
                </div>
            }
            .into_any())
        } else if let Some(e) = s.last_error.clone() {
            let rid = e.request_id.clone().map(|r| format!("Request-ID: {r}"));
            let shown = if s.synced_at.is_some() {
                t.sync_failed_kept
            } else {
                t.sync_failed_empty
            };
            Some(view! {
                <div role="alert" class="border-b border-red-200 dark:border-red-800 bg-red-50 dark:bg-red-950 px-4 py-2 text-sm text-red-900 dark:text-red-200" data-testid="sync-error">
                    <p class="font-medium">{shown}</p>
                    <p class="mt-0.5">{lang.failure(&e.failure)}</p>
                    <p class="mt-0.5 font-mono text-xs">{e.detail}</p>
                    <p class="mt-0.5">{t.what_to_do}{lang.failure_advice(&e.failure)}</p>
                    {rid.map(|r| view! { <p class="mt-0.5 font-mono text-xs">{r}</p> })}
                </div>
            }
            .into_any())
        } else if !s.complete && s.synced_at.is_some() {
            let expected = s.expected.unwrap_or(s.devices as u64) as usize;
            Some(view! {
                <div role="status" class="border-b border-amber-200 dark:border-amber-800 bg-amber-50 dark:bg-amber-950 px-4 py-2 text-sm text-amber-900 dark:text-amber-200" data-testid="incomplete">
                    {lang.incomplete(
                        &crate::format::thousands(s.devices),
                        &crate::format::thousands(expected),
                        s.devices == expected,
                    )}
                </div>
            }
            .into_any())
        } else if !s.fresh && s.synced_at.is_some() && !s.running {
            Some(view! {
                <div role="status" class="border-b border-amber-200 dark:border-amber-800 bg-amber-50 dark:bg-amber-950 px-4 py-2 text-sm text-amber-900 dark:text-amber-200" data-testid="stale">
                    {format!("{} ({})", t.stale, lang.interval_reason(&s.interval_reason))}
                </div>
            }
            .into_any())
        } else {
            None
        }
    }
}
