//! The Changes page (`/changes`): what changed in the merchant's list, sync by sync. The view
//! lives in the URL like the grid's (`ChangesQuery`); the filters are links and a plain GET form,
//! so they work before hydration; the chart shows each day's findings; the events are paged, and
//! the exports take the same filters.

use crate::api::{load_changes, ChangesView};
use crate::changes::{device_href, ChangeEvent, ChangeKind, ChangesQuery, DAY_CHOICES};
use crate::format::{thousands, ChinaTime};
use crate::i18n::{use_lang, Lang};
use crate::model::Field;
use crate::ui::devices_page::LoadError;
use crate::ui::nav::{Page, SimpleHeader};
use crate::ui::pagination::PageLink;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

#[component]
pub fn ChangesPage() -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let search = use_location().search;
    let view_res = Resource::new(move || search.get(), load_changes);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Title text=format!("{} · {}", t.changes_title, t.title) />
        <div class="min-h-screen" data-hydrated=move || hydrated.get().to_string()>
            <SimpleHeader current=Page::Changes />
            <main class="mx-auto max-w-screen-2xl px-4 py-4">
                <h1 class="mb-3 text-xl font-semibold">{t.changes_title}</h1>
                <Transition fallback=move || view! { <p class="p-6 text-slate-500 dark:text-slate-400">{t.loading}</p> }>
                    <ErrorBoundary fallback=move |errors| view! { <LoadError errors lang /> }>
                        {move || Suspend::new(async move {
                            view_res.await.map(|v| view! { <Content v /> })
                        })}
                    </ErrorBoundary>
                </Transition>
            </main>
        </div>
    }
}

#[component]
fn Content(v: ChangesView) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let q = v.query.clone();
    let since = v.since_ms.map(|ms| {
        view! {
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-300" data-testid="history-since">
                {lang.history_since(&ChinaTime::from_unix(ms / 1000).date(), v.retention_days)}
            </p>
        }
    });
    let pages = (v.total.div_ceil(q.per_page.max(1) as u64)).max(1) as u32;
    let page = q.page.min(pages);
    let body = if v.total == 0 {
        let text = if v.since_ms.is_none() || (!q.is_filtered() && v.recent_syncs.len() <= 1) {
            t.no_history_yet
        } else {
            t.no_changes
        };
        view! {
            <div class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-8 text-center" data-testid="changes-empty">
                <p>{text}</p>
                {q.is_filtered().then(|| view! {
                    <p class="mt-2 text-sm">
                        <a class="text-emerald-700 dark:text-emerald-400 underline" href=q.cleared().href()>{t.clear_filters}</a>
                    </p>
                })}
            </div>
        }
        .into_any()
    } else {
        let link = |p: u32| q.with_page(p).href();
        view! {
            <EventTable events=v.events.clone() />
            <nav class="mt-3 flex flex-wrap items-center gap-2 text-sm" aria-label="Pagination">
                <PageLink href=link(1) enabled={page > 1} label=t.first />
                <PageLink href=link(page.saturating_sub(1).max(1)) enabled={page > 1} label=t.prev />
                <span class="px-2 text-slate-600 dark:text-slate-300" data-testid="page-of">
                    {lang.page_of(&thousands(page as usize), &thousands(pages as usize))}
                </span>
                <PageLink href=link(page + 1) enabled={page < pages} label=t.next />
                <PageLink href=link(pages) enabled={page < pages} label=t.last />
            </nav>
        }
        .into_any()
    };
    let exports = q.filters_only().to_query_string();
    view! {
        {since}
        <div class="mb-4 grid gap-4 lg:grid-cols-3">
            <DayChart v=v.clone() />
            <RecentSyncs v=v.clone() />
        </div>
        <Filters q=q.clone() />
        <div class="mb-2 flex flex-wrap items-center gap-3">
            <p class="text-sm text-slate-600 dark:text-slate-300" data-testid="changes-total">
                {lang.events_count(&thousands(v.total as usize), v.total == 1)}
            </p>
            <div class="ml-auto flex gap-2 text-sm">
                <a class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1 hover:bg-slate-100 dark:hover:bg-slate-800" href=format!("/changes.csv?{exports}") download data-testid="changes-csv" rel="external">
                    {t.export_csv}
                </a>
                <a class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1 hover:bg-slate-100 dark:hover:bg-slate-800" href=format!("/changes.xlsx?{exports}") download data-testid="changes-xlsx" rel="external">
                    {t.export_xlsx}
                </a>
            </div>
        </div>
        {body}
    }
}

/// The filters: time range and kind as links, field, sub-merchant and text in a GET form that
/// carries the rest of the view along.
#[component]
fn Filters(q: ChangesQuery) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let href = |q: ChangesQuery| q.href();
    let chip = |label: String, on: bool, href: String, id: String| {
        view! {
            <a
                href=href
                data-testid=id
                aria-pressed=on.to_string()
                class="rounded-full border px-3 py-0.5 text-sm"
                class=(["border-emerald-600", "bg-emerald-50", "text-emerald-800", "dark:bg-emerald-950", "dark:text-emerald-200"], on)
                class=(["border-slate-300", "dark:border-slate-600", "hover:bg-slate-100", "dark:hover:bg-slate-800"], !on)
            >
                {label}
            </a>
        }
    };
    let ranges = std::iter::once((None, t.all_time.to_string()))
        .chain(DAY_CHOICES.iter().map(|d| (Some(*d), lang.last_days(*d))))
        .map(|(d, label)| {
            chip(
                label,
                q.days == d && q.since.is_none() && q.until.is_none(),
                href(q.with_days(d)),
                format!("range-{}", d.map_or("all".to_string(), |d| d.to_string())),
            )
        })
        .collect_view();
    let kinds = ChangeKind::ALL
        .into_iter()
        .map(|k| {
            chip(
                lang.kind_label(k).to_string(),
                q.kinds.contains(&k),
                href(q.toggled_kind(k)),
                format!("kind-{}", k.name()),
            )
        })
        .collect_view();
    let field = q.fields.first().copied();
    // What the form does not show travels in hidden fields.
    let mut hidden: Vec<(&'static str, String)> = Vec::new();
    if let Some(d) = q.days {
        hidden.push(("days", d.to_string()));
    }
    for (k, v) in [("since", &q.since), ("until", &q.until)] {
        if let Some(v) = v {
            hidden.push((k, v.clone()));
        }
    }
    for k in &q.kinds {
        hidden.push(("kind", k.name().to_string()));
    }
    if q.per_page != crate::changes::DEFAULT_PER_PAGE {
        hidden.push(("per_page", q.per_page.to_string()));
    }
    view! {
        <section class="mb-4 flex flex-col gap-3 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-3" data-testid="changes-filters">
            <div class="flex flex-wrap items-center gap-2">
                <span class="w-24 text-sm font-medium">{t.time_range}</span>
                {ranges}
            </div>
            <div class="flex flex-wrap items-center gap-2">
                <span class="w-24 text-sm font-medium">{t.kinds}</span>
                {kinds}
            </div>
            <form method="get" action="/changes" class="flex flex-wrap items-center gap-2" data-testid="changes-form">
                {hidden.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v /> }).collect_view()}
                <label class="sr-only" for="changes-field">{t.col_field}</label>
                <select id="changes-field" name="field" class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1 text-sm" data-testid="changes-field">
                    <option value="" selected=field.is_none()>{t.all_fields}</option>
                    {Field::ALL.into_iter().map(|f| view! {
                        <option value=f.name() selected=field == Some(f)>{lang.field_label(f)}</option>
                    }).collect_view()}
                </select>
                <label class="sr-only" for="changes-sub">{t.sub_mchid_placeholder}</label>
                <input id="changes-sub" name="sub_mchid" type="text" inputmode="numeric" maxlength="64"
                    class="w-40 rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1 text-sm"
                    placeholder=t.sub_mchid_placeholder value=q.sub_mchids.first().cloned().unwrap_or_default() data-testid="changes-sub" />
                <label class="sr-only" for="changes-q">{t.search}</label>
                <input id="changes-q" name="q" type="search" maxlength="100"
                    class="w-64 rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1 text-sm"
                    placeholder=t.changes_search_placeholder value=q.q.clone() data-testid="changes-q" />
                <button type="submit" class="rounded bg-emerald-700 px-3 py-1 text-sm font-medium text-white hover:bg-emerald-800" data-testid="changes-apply">
                    {t.apply}
                </button>
                {q.is_filtered().then(|| view! {
                    <a class="text-sm text-emerald-700 dark:text-emerald-400 underline" href=q.cleared().href() data-testid="changes-clear">{t.clear_all}</a>
                })}
            </form>
        </section>
    }
}

/// Each day's findings as stacked bars (added, removed, changed), days on the x axis. SVG
/// geometry, not inline styles: the page's CSP allows none.
#[component]
fn DayChart(v: ChangesView) -> impl IntoView {
    const HEIGHT: f64 = 100.0;
    let lang = use_lang();
    let t = lang.texts();
    let max = v
        .days
        .iter()
        .map(|d| d.added + d.removed + d.changed)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = v.days.len().max(1);
    let slot = 100.0 / n as f64;
    let first = v.days.first().map(|d| d.day.clone()).unwrap_or_default();
    let last = v.days.last().map(|d| d.day.clone()).unwrap_or_default();
    let bars = v
        .days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = format!("{:.3}%", i as f64 * slot + slot * 0.1);
            let w = format!("{:.3}%", slot * 0.8);
            // From the bottom up: added, removed, changed.
            let mut top = HEIGHT;
            let mut part = |count: u64, class: &'static str| {
                let h = count as f64 / max * HEIGHT;
                top -= h;
                (count > 0).then(|| {
                    view! { <rect x=x.clone() y=format!("{top:.2}") width=w.clone() height=format!("{h:.2}") class=class></rect> }
                })
            };
            let parts = (
                part(d.added, "fill-emerald-500"),
                part(d.removed, "fill-rose-500"),
                part(d.changed, "fill-amber-400"),
            );
            let title = format!(
                "{} · {}",
                d.day,
                lang.change_counts(d.added, d.removed, d.changed)
            );
            view! {
                <g data-testid="chart-day" data-day=d.day.clone()
                    data-added=d.added.to_string() data-removed=d.removed.to_string() data-changed=d.changed.to_string()>
                    <title>{title}</title>
                    <rect x=format!("{:.3}%", i as f64 * slot) y="0" width=format!("{slot:.3}%") height=HEIGHT.to_string() fill="transparent" class="hover:fill-slate-100 dark:hover:fill-slate-800"></rect>
                    {parts}
                </g>
            }
        })
        .collect_view();
    let legend = |class: &'static str, label: &'static str| {
        view! {
            <span class="flex items-center gap-1">
                <svg width="12" height="8" aria-hidden="true"><rect width="12" height="8" class=class></rect></svg>
                {label}
            </span>
        }
    };
    view! {
        <figure class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-3 lg:col-span-2" data-testid="changes-chart">
            <figcaption class="mb-2 flex flex-wrap items-center gap-3 text-sm font-medium">
                {t.chart_changes_title}
                <span class="ml-auto flex gap-3 text-xs font-normal text-slate-600 dark:text-slate-300">
                    {legend("fill-emerald-500", t.kind_added)}
                    {legend("fill-rose-500", t.kind_removed)}
                    {legend("fill-amber-400", t.kind_changed)}
                </span>
            </figcaption>
            <svg width="100%" height=HEIGHT.to_string() role="img" aria-label=t.chart_changes_title>
                {bars}
            </svg>
            <div class="mt-1 flex justify-between text-xs text-slate-500 dark:text-slate-400">
                <span>{first}</span>
                <span>{last}</span>
            </div>
        </figure>
    }
}

#[component]
fn RecentSyncs(v: ChangesView) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    view! {
        <section class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-3" data-testid="recent-syncs">
            <h2 class="mb-2 text-sm font-medium">{t.recent_syncs}</h2>
            <ul class="flex flex-col gap-1 text-xs">
                {v.recent_syncs.iter().map(|s| {
                    let when = ChinaTime::from_unix(s.finished_ms / 1000).full();
                    let what = if s.baseline {
                        t.baseline.to_string()
                    } else {
                        lang.change_counts(s.added, s.removed, s.changed)
                    };
                    view! {
                        <li class="flex flex-wrap gap-x-2" data-testid="recent-sync">
                            <span class="tabular-nums text-slate-500 dark:text-slate-400">{when}</span>
                            <span>{what}</span>
                            {(!s.complete).then(|| view! { <span class="text-amber-700 dark:text-amber-300">{t.incomplete_sync}</span> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

/// A kind as a coloured badge.
#[component]
pub fn KindBadge(kind: ChangeKind) -> impl IntoView {
    let lang = use_lang();
    let class = match kind {
        ChangeKind::Added => {
            "bg-emerald-100 text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100"
        }
        ChangeKind::Removed => "bg-rose-100 text-rose-900 dark:bg-rose-900 dark:text-rose-100",
        ChangeKind::Changed => "bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100",
    };
    view! {
        <span class=format!("rounded px-1.5 py-0.5 text-xs font-medium {class}") data-kind=kind.name()>
            {lang.kind_label(kind)}
        </span>
    }
}

/// `old → new` of a changed field (absent values say so).
pub fn change_text(e: &ChangeEvent, lang: Lang) -> String {
    let t = lang.texts();
    let show = |v: &Option<String>| match v.as_deref() {
        None | Some("") => t.absent.to_string(),
        Some(s) => s.to_string(),
    };
    match e.kind {
        ChangeKind::Changed => format!("{} → {}", show(&e.old_value), show(&e.new_value)),
        _ => String::new(),
    }
}

#[component]
fn EventTable(events: Vec<ChangeEvent>) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    view! {
        <div class="overflow-x-auto rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900">
            <table class="min-w-full text-sm" data-testid="changes-table">
                <thead class="bg-slate-100 dark:bg-slate-800 text-left">
                    <tr>
                        <th class="px-3 py-2 font-medium">{t.col_time}</th>
                        <th class="px-3 py-2 font-medium">{t.col_kind}</th>
                        <th class="px-3 py-2 font-medium">{t.col_device}</th>
                        <th class="px-3 py-2 font-medium">{t.col_field}</th>
                        <th class="px-3 py-2 font-medium">{t.col_change}</th>
                        <th class="px-3 py-2 font-medium">{t.col_sub}</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100 dark:divide-slate-800">
                    {events.into_iter().map(|e| {
                        let device = if e.device_sn.is_empty() {
                            view! { <span>"—"</span> }.into_any()
                        } else {
                            view! {
                                <a class="font-mono text-xs text-emerald-700 dark:text-emerald-400 hover:underline" href=device_href(&e.device_sn) data-testid="event-device">
                                    {e.device_sn.clone()}
                                </a>
                            }.into_any()
                        };
                        let sub = if e.sub_mchid.is_empty() {
                            t.merchants_own.to_string()
                        } else if e.sub_merchant_shortname.is_empty() {
                            e.sub_mchid.clone()
                        } else {
                            format!("{} {}", e.sub_mchid, e.sub_merchant_shortname)
                        };
                        view! {
                            <tr data-testid="change-row" data-kind=e.kind.name()>
                                <td class="whitespace-nowrap px-3 py-1.5 tabular-nums text-xs text-slate-600 dark:text-slate-300">
                                    {ChinaTime::from_unix(e.at_ms / 1000).full()}
                                </td>
                                <td class="px-3 py-1.5"><KindBadge kind=e.kind /></td>
                                <td class="whitespace-nowrap px-3 py-1.5">{device}</td>
                                <td class="px-3 py-1.5" data-testid="event-field">{e.field.map(|f| lang.field_label(f)).unwrap_or_default()}</td>
                                <td class="whitespace-pre-line px-3 py-1.5" data-testid="event-change">{change_text(&e, lang)}</td>
                                <td class="px-3 py-1.5 whitespace-pre-line">{sub}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
