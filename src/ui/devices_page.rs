//! The main page: the view lives in the URL; the server answers it with one page of the grid
//! and the counts. Loading keeps the old rows visible; errors say what to do.

use crate::api::{current_sync_status, load_view, DeviceView, SyncStatus};
use crate::format::thousands;
use crate::i18n::{use_lang, Lang};
use crate::query::DeviceQuery;
use crate::ui::chart::SummaryChart;
use crate::ui::device_grid::DeviceGrid;
use crate::ui::export_menu::ExportMenu;
use crate::ui::filters::{ActiveFilters, FilterPanel};
use crate::ui::nav::{NavLinks, Page};
use crate::ui::pagination::Pagination;
use crate::ui::status::{StatusBanner, StatusBar};
use crate::ui::toolbar::Toolbar;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_location;
use std::collections::HashSet;
use std::time::Duration;

#[component]
pub fn DevicesPage() -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let location = use_location();
    let search = location.search;
    let query = Memo::new(move |_| DeviceQuery::parse(&search.get()).0);
    let view_res = Resource::new(move || search.get(), load_view);
    let (pending, set_pending) = signal(false);
    // Collapsed groups, by value; kept while paging.
    let collapsed = RwSignal::new(HashSet::<String>::new());
    // On narrow screens the filters are a drawer, closed until asked for.
    let filters_open = RwSignal::new(false);

    // Set only in the browser, once hydrated: end-to-end tests wait for it before clicking.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    // The sync status, polled in the browser: every second while a sync runs, else every 10 s.
    // When a new snapshot lands, the grid is fetched again.
    let live = RwSignal::new(None::<SyncStatus>);
    Effect::new(move |_| {
        let ticks = StoredValue::new(0u32);
        let busy = StoredValue::new(false);
        let seen = StoredValue::new(None::<Option<i64>>);
        set_interval(
            move || {
                let t = ticks.get_value();
                ticks.set_value(t.wrapping_add(1));
                let running = live.with_untracked(|s| s.as_ref().is_some_and(|s| s.running));
                if busy.get_value() || !(running || t.is_multiple_of(10)) {
                    return;
                }
                busy.set_value(true);
                spawn_local(async move {
                    if let Ok(status) = current_sync_status().await {
                        let shown = seen.get_value().unwrap_or_else(|| {
                            view_res
                                .get_untracked()
                                .and_then(|v| v.ok())
                                .and_then(|v| v.status.synced_at)
                        });
                        // A first sync's partial view grows every few seconds, and turns into
                        // the full view when the snapshot lands.
                        let partial = view_res
                            .get_untracked()
                            .and_then(|v| v.ok())
                            .is_some_and(|v| v.partial.is_some());
                        if status.synced_at != shown || (partial && t.is_multiple_of(3)) {
                            view_res.refetch();
                        }
                        seen.set_value(Some(status.synced_at));
                        live.set(Some(status));
                    }
                    busy.set_value(false);
                });
            },
            Duration::from_secs(1),
        );
    });

    view! {
        <div class="min-h-screen" data-hydrated=move || hydrated.get().to_string()>
            <header class="border-b border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900">
                <div class="mx-auto flex max-w-screen-2xl flex-wrap items-center gap-3 px-4 py-3">
                    <img src="/favicon.svg" alt="" class="h-7 w-7" />
                    <h1 class="text-lg font-semibold">
                        {t.title}
                        " "
                        <span class="font-normal text-slate-500 dark:text-slate-400">{t.subtitle}</span>
                    </h1>
                    <NavLinks current=Page::Devices />
                    <div class="ml-auto flex items-center gap-3 text-sm">
                        <span
                            class="text-slate-500 dark:text-slate-400"
                            aria-live="polite"
                            data-testid="busy"
                            class:invisible=move || !pending.get()
                        >
                            {t.loading}
                        </span>
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                view_res.await.ok().map(|v| view! { <StatusBar initial=v.status live auth=v.auth_enabled /> })
                            })}
                        </Transition>
                    </div>
                </div>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        view_res.await.ok().map(|v| view! { <StatusBanner initial=v.status live /> })
                    })}
                </Transition>
            </header>
            <main class="mx-auto max-w-screen-2xl px-4 py-4">
                <Toolbar query filters_open />
                <Transition
                    fallback=move || view! { <p class="p-6 text-slate-500 dark:text-slate-400">{t.loading_first}</p> }
                    set_pending
                >
                    <ErrorBoundary fallback=move |errors| view! { <LoadError errors lang /> }>
                        {move || Suspend::new(async move {
                            view_res.await.map(|v| view! { <Content v query collapsed filters_open /> })
                        })}
                    </ErrorBoundary>
                </Transition>
            </main>
        </div>
    }
}

#[component]
fn Content(
    v: DeviceView,
    query: Memo<DeviceQuery>,
    collapsed: RwSignal<HashSet<String>>,
    filters_open: RwSignal<bool>,
) -> impl IntoView {
    let q = query.get_untracked();
    let (first, last) = v.row_range();
    let lang = use_lang();
    let summary = if v.total == 0 {
        String::new()
    } else if v.total == v.unfiltered {
        lang.rows(&thousands(first), &thousands(last), &thousands(v.total))
    } else {
        lang.rows(&thousands(first), &thousands(last), &thousands(v.total))
            + &lang.filtered_from(&thousands(v.unfiltered))
    };
    let partial = v.partial.map(|p| {
        let text = lang.partial_view(
            &thousands(p.fetched),
            p.of.map(|n| thousands(n as usize)).as_deref(),
            v.status.seconds_left,
        );
        view! {
            <div role="status" class="mb-3 rounded border border-sky-300 dark:border-sky-700 bg-sky-50 dark:bg-sky-950 px-3 py-2 text-sm text-sky-900 dark:text-sky-200" data-testid="partial">
                {text}
            </div>
        }
    });
    let notices = (!v.notices.is_empty()).then(|| {
        view! {
            <div role="status" class="mb-3 rounded border border-amber-300 dark:border-amber-700 bg-amber-50 dark:bg-amber-950 px-3 py-2 text-sm text-amber-900 dark:text-amber-200" data-testid="notices">
                <ul>{v.notices.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
            </div>
        }
    });
    let body = if v.total == 0 {
        view! { <EmptyState v=v.clone() q=q.clone() /> }.into_any()
    } else {
        view! {
            <SummaryChart v=v.clone() query=q.clone() />
            <DeviceGrid v=v.clone() query=q.clone() collapsed />
            <Pagination v=v.clone() query=q.clone() />
        }
        .into_any()
    };
    view! {
        <div class="flex flex-col gap-4 lg:flex-row">
            <FilterPanel v=v.clone() query=q.clone() open=filters_open />
            <section class="min-w-0 flex-1">
                {partial}
                {notices}
                <ActiveFilters v=v.clone() query=q.clone() />
                <div class="mb-2 flex items-center gap-3">
                    <p class="text-sm text-slate-600 dark:text-slate-300" data-testid="row-summary">{summary}</p>
                    <div class="ml-auto">
                        {match (v.partial.is_some(), v.total > 0) {
                            (true, _) => Some(view! {
                                <span class="text-sm text-slate-500 dark:text-slate-400" data-testid="export-later">{lang.texts().export_after_first_sync}</span>
                            }.into_any()),
                            (false, true) => Some(view! { <ExportMenu query=q.clone() rows=v.total /> }.into_any()),
                            (false, false) => None,
                        }}
                    </div>
                </div>
                {body}
            </section>
        </div>
    }
}

#[component]
fn EmptyState(v: DeviceView, q: DeviceQuery) -> impl IntoView {
    let t = use_lang().texts();
    if v.partial.is_some() && v.unfiltered == 0 {
        // The first sync has not brought its first page yet.
        view! {
            <div class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-8 text-center" data-testid="empty">
                <p class="font-medium">{t.loading_first}</p>
            </div>
        }
        .into_any()
    } else if v.unfiltered == 0 {
        view! {
            <div class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-8 text-center" data-testid="empty">
                <p class="font-medium">{t.no_devices}</p>
                <p class="mt-1 text-sm text-slate-600 dark:text-slate-300">
                    {t.no_devices_detail}
                </p>
            </div>
        }
        .into_any()
    } else {
        view! {
            <div class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-8 text-center" data-testid="empty">
                <p class="font-medium">{t.no_match}</p>
                <p class="mt-2 text-sm">
                    <a class="text-emerald-700 dark:text-emerald-400 underline" href=q.cleared().href() data-noscroll>
                        {t.clear_filters}
                    </a>
                </p>
            </div>
        }
        .into_any()
    }
}

/// A view that could not be loaded: what went wrong, and what to do.
#[component]
pub fn LoadError(errors: ArcRwSignal<Errors>, lang: Lang) -> impl IntoView {
    let t = lang.texts();
    view! {
        <div role="alert" class="rounded border border-red-300 dark:border-red-800 bg-red-50 dark:bg-red-950 p-4 text-red-900 dark:text-red-200" data-testid="load-error">
            <p class="font-semibold">{t.load_failed}</p>
            <ul class="mt-1 list-disc pl-5 text-sm">
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|(_, e)| view! { <li>{e.to_string()}</li> })
                        .collect_view()
                }}
            </ul>
            <p class="mt-2 text-sm">{t.reload}</p>
        </div>
    }
}
