//! Above the grid: the search box (debounced), grouping and page size. They depend only on the
//! URL, so typing is never interrupted by new data arriving.

use crate::i18n::{switch_to, use_lang, Lang};
use crate::query::{DeviceQuery, GroupBy, PAGE_SIZES};
use crate::ui::device_table::COLUMNS;
use crate::ui::go_to;
use crate::ui::prefs::{use_prefs, Theme};
use leptos::prelude::*;
use std::time::Duration;

#[component]
pub fn Toolbar(query: Memo<DeviceQuery>, filters_open: RwSignal<bool>) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    view! {
        <div class="mb-4 flex flex-wrap items-end gap-3">
            <button
                type="button"
                class="self-end rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1.5 text-sm lg:hidden focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600"
                aria-controls="filters"
                aria-expanded=move || filters_open.get().to_string()
                data-testid="filters-toggle"
                on:click=move |_| filters_open.update(|o| *o = !*o)
            >
                {move || if filters_open.get() { t.hide_filters } else { t.filters }}
            </button>
            <SearchBox query />
            <label class="flex flex-col text-xs text-slate-600 dark:text-slate-300">
                {t.group_by}
                <select
                    class="mt-1 rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1.5 text-sm text-slate-900 dark:text-slate-100"
                    data-testid="group-select"
                    on:change=move |ev| {
                        let g = GroupBy::parse(&event_target_value(&ev));
                        go_to(&query.get_untracked().with_group(g), false);
                    }
                >
                    <option value="" selected=move || query.get().group.is_none()>{t.no_grouping}</option>
                    {GroupBy::ALL
                        .into_iter()
                        .map(|g| {
                            view! {
                                <option value=g.param() selected=move || query.get().group == Some(g)>
                                    {lang.group_label(g)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <DisplayMenu />
            <label class="flex flex-col text-xs text-slate-600 dark:text-slate-300">
                {t.rows_per_page}
                <select
                    class="mt-1 rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1.5 text-sm text-slate-900 dark:text-slate-100"
                    data-testid="per-page-select"
                    on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).parse::<u32>() {
                            go_to(&query.get_untracked().with_per_page(n), false);
                        }
                    }
                >
                    {PAGE_SIZES
                        .into_iter()
                        .map(|n| {
                            view! {
                                <option value=n.to_string() selected=move || query.get().per_page == n>
                                    {n.to_string()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
        </div>
    }
    .into_any()
}

/// Free-text search over device SN, camera SN, model and both short names. The URL follows the
/// text 300 ms after the last keystroke, replacing the history entry.
#[component]
fn SearchBox(query: Memo<DeviceQuery>) -> impl IntoView {
    let t = use_lang().texts();
    let typed = RwSignal::new(None::<String>);
    let value = move || typed.get().unwrap_or_else(|| query.get().q);
    // When the URL changes from elsewhere (a chip removed, back button), show its text.
    Effect::new(move |_| {
        let q = query.get().q;
        if typed.get_untracked().as_deref() == Some(q.as_str()) {
            typed.set(None);
        }
    });
    let on_input = move |ev| {
        let text = event_target_value(&ev);
        typed.set(Some(text.clone()));
        set_timeout(
            move || {
                if typed.get_untracked().as_deref() == Some(text.as_str()) {
                    go_to(&query.get_untracked().with_q(&text), true);
                }
            },
            Duration::from_millis(300),
        );
    };
    view! {
        <label class="flex min-w-64 flex-1 flex-col text-xs text-slate-600 dark:text-slate-300">
            {t.search}
            <input
                type="search"
                class="mt-1 rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1.5 text-sm text-slate-900 dark:text-slate-100"
                placeholder=t.search_placeholder
                maxlength="100"
                data-testid="search"
                prop:value=value
                on:input=on_input
            />
        </label>
    }
}

/// Columns shown, row density and theme: remembered by this browser.
#[component]
fn DisplayMenu() -> impl IntoView {
    let prefs = use_prefs();
    let lang = use_lang();
    let t = lang.texts();
    let columns = COLUMNS
        .into_iter()
        .map(|field| {
            let key = field.name();
            let label = lang.column_label(field);
            view! {
                <label class="flex items-center gap-2 rounded px-2 py-1 hover:bg-slate-100 dark:hover:bg-slate-800">
                    <input
                        type="checkbox"
                        class="h-4 w-4 accent-emerald-600"
                        data-column=key
                        prop:checked=move || !prefs.with(|p| p.is_hidden(key))
                        on:change=move |ev| {
                            let show = event_target_checked(&ev);
                            prefs.update(|p| {
                                p.hidden.retain(|h| h != key);
                                if !show {
                                    p.hidden.push(key.to_string());
                                }
                            });
                        }
                    />
                    {label}
                </label>
            }
        })
        .collect_view();
    let theme_option = |t: Theme, label: &'static str| {
        view! { <option value=t.key() selected=move || prefs.with(|p| p.theme == t)>{label}</option> }
    };
    view! {
        <details class="relative self-end" data-testid="display-menu">
            <summary class="cursor-pointer list-none rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1.5 text-sm hover:bg-slate-100 dark:hover:bg-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600">
                {t.display}
            </summary>
            <div class="absolute right-0 z-30 mt-1 w-64 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-2 text-sm shadow-lg">
                <fieldset>
                    <legend class="px-2 pb-1 text-xs font-semibold text-slate-600 dark:text-slate-300">{t.columns}</legend>
                    {columns}
                </fieldset>
                <label class="mt-2 flex items-center gap-2 rounded px-2 py-1 hover:bg-slate-100 dark:hover:bg-slate-800">
                    <input
                        type="checkbox"
                        class="h-4 w-4 accent-emerald-600"
                        data-testid="compact"
                        prop:checked=move || prefs.with(|p| p.compact)
                        on:change=move |ev| {
                            let compact = event_target_checked(&ev);
                            prefs.update(|p| p.compact = compact);
                        }
                    />
                    {t.compact}
                </label>
                <label class="mt-1 flex items-center justify-between gap-2 px-2 py-1">
                    {t.theme}
                    <select
                        class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1 text-sm"
                        data-testid="theme"
                        on:change=move |ev| {
                            let t = Theme::parse(&event_target_value(&ev));
                            prefs.update(|p| p.theme = t);
                        }
                    >
                        {theme_option(Theme::System, t.theme_system)}
                        {theme_option(Theme::Light, t.theme_light)}
                        {theme_option(Theme::Dark, t.theme_dark)}
                    </select>
                </label>
                <label class="mt-1 flex items-center justify-between gap-2 px-2 py-1">
                    {t.language}
                    <select
                        class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-2 py-1 text-sm"
                        data-testid="language"
                        on:change=move |ev| {
                            if let Some(l) = Lang::parse(&event_target_value(&ev)) {
                                switch_to(l);
                            }
                        }
                    >
                        <option value="zh-CN" selected=lang == Lang::Zh>"中文"</option>
                        <option value="en" selected=lang == Lang::En>"English"</option>
                    </select>
                </label>
            </div>
        </details>
    }
}
