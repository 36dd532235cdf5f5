//! Above the grid: the filters toggle (phones), the search box, grouping, the display menu and
//! page size. They depend only on the URL, so typing is never interrupted by new data arriving.

use crate::i18n::use_lang;
use crate::query::{DeviceQuery, GroupBy, PAGE_SIZES};
use crate::ui::display_menu::DisplayMenu;
use crate::ui::go_to;
use crate::ui::search_box::SearchBox;
use leptos::prelude::*;

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
