//! The main page: header, the device grid with its loading and error states, and paging.

use crate::api::{load_devices, DeviceTable, DEFAULT_PER_PAGE};
use crate::ui::device_table::DeviceGrid;
use crate::ui::format::thousands;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn DevicesPage() -> impl IntoView {
    let query = use_query_map();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.trim().parse::<u32>().ok())
            .unwrap_or(1)
    };
    let per_page = move || {
        query
            .read()
            .get("per_page")
            .and_then(|p| p.trim().parse::<u32>().ok())
            .unwrap_or(DEFAULT_PER_PAGE)
    };
    let table = Resource::new(move || (page(), per_page()), |(p, n)| load_devices(p, n));
    let (pending, set_pending) = signal(false);

    // Set only in the browser, once hydrated: end-to-end tests wait for it before clicking.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <div class="min-h-screen" data-hydrated=move || hydrated.get().to_string()>
            <header class="border-b border-slate-200 bg-white">
                <div class="mx-auto flex max-w-screen-2xl items-center gap-3 px-4 py-3">
                    <img src="/favicon.svg" alt="" class="h-7 w-7" />
                    <h1 class="text-lg font-semibold">
                        "智能设备 "
                        <span class="font-normal text-slate-500">"WeChat Pay devices"</span>
                    </h1>
                    <span
                        class="ml-auto text-sm text-slate-500"
                        aria-live="polite"
                        class:invisible=move || !pending.get()
                    >
                        "Loading…"
                    </span>
                </div>
            </header>
            <main class="mx-auto max-w-screen-2xl px-4 py-4">
                <Transition
                    fallback=|| view! { <p class="p-6 text-slate-500">"Loading devices…"</p> }
                    set_pending
                >
                    <ErrorBoundary fallback=|errors| {
                        view! { <LoadError errors /> }
                    }>
                        {move || Suspend::new(async move {
                            table.await.map(|t| view! { <TableSection table=t /> })
                        })}
                    </ErrorBoundary>
                </Transition>
            </main>
        </div>
    }
}

#[component]
fn TableSection(table: DeviceTable) -> impl IntoView {
    let (first, last) = table.row_range();
    let summary = if table.total == 0 {
        "No devices".to_string()
    } else {
        format!(
            "Rows {}–{} of {}",
            thousands(first),
            thousands(last),
            thousands(table.total)
        )
    };
    let demo = table.demo.then(|| {
        view! {
            <span class="rounded bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-900">
                "Demo: simulated data"
            </span>
        }
    });
    let page = table.page;
    let pages = table.page_count();
    let per_page = table.per_page;
    let href = move |p: u32| format!("?page={p}&per_page={per_page}");
    view! {
        <div class="mb-3 flex items-center gap-3">
            <p class="text-sm text-slate-600" data-testid="row-summary">
                {summary}
            </p>
            {demo}
        </div>
        <DeviceGrid rows=table.rows />
        <nav class="mt-3 flex items-center gap-2 text-sm" aria-label="Pagination">
            <PageLink href=href(1) enabled={page > 1} label="« First" />
            <PageLink href=href(page.saturating_sub(1).max(1)) enabled={page > 1} label="‹ Prev" />
            <span class="px-2 text-slate-600">{format!("Page {page} of {pages}")}</span>
            <PageLink href=href(page + 1) enabled={page < pages} label="Next ›" />
            <PageLink href=href(pages) enabled={page < pages} label="Last »" />
        </nav>
    }
}

#[component]
fn PageLink(href: String, enabled: bool, label: &'static str) -> impl IntoView {
    if enabled {
        view! {
            <a
                class="rounded border border-slate-300 bg-white px-3 py-1 hover:bg-slate-100"
                href=href
            >
                {label}
            </a>
        }
        .into_any()
    } else {
        view! {
            <span class="rounded border border-slate-200 px-3 py-1 text-slate-400" aria-disabled="true">
                {label}
            </span>
        }
        .into_any()
    }
}

#[component]
fn LoadError(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div role="alert" class="rounded border border-red-300 bg-red-50 p-4 text-red-900">
            <p class="font-semibold">"The device list could not be loaded."</p>
            <ul class="mt-1 list-disc pl-5 text-sm">
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|(_, e)| view! { <li>{e.to_string()}</li> })
                        .collect_view()
                }}
            </ul>
            <p class="mt-2 text-sm">"Reload the page to try again."</p>
        </div>
    }
}
