//! The Export menu: downloads the current view (every page) as CSV or Excel.

use crate::format::thousands;
use crate::i18n::use_lang;
use crate::query::DeviceQuery;
use leptos::prelude::*;

#[component]
pub fn ExportMenu(query: DeviceQuery, rows: usize) -> impl IntoView {
    // Paging does not change what is exported.
    let qs = DeviceQuery { page: 1, ..query }.to_query_string();
    let suffix = if qs.is_empty() {
        String::new()
    } else {
        format!("?{qs}")
    };
    let lang = use_lang();
    let t = lang.texts();
    let count = lang.rows_count(&thousands(rows), rows == 1);
    view! {
        <details class="relative" data-testid="export-menu">
            <summary class="cursor-pointer list-none rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1 text-sm hover:bg-slate-100 dark:hover:bg-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600">
                {t.export}
            </summary>
            <div class="absolute right-0 z-20 mt-1 w-64 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-2 text-sm shadow-lg">
                <p class="px-2 pb-1 text-xs text-slate-500 dark:text-slate-400">{format!("{}{count}", t.export_view)}</p>
                <a class="block rounded px-2 py-1.5 hover:bg-slate-100 dark:hover:bg-slate-800" href=format!("/export.csv{suffix}") download data-testid="export-csv">
                    {t.export_csv} {count.clone()}
                </a>
                <a class="block rounded px-2 py-1.5 hover:bg-slate-100 dark:hover:bg-slate-800" href=format!("/export.xlsx{suffix}") download data-testid="export-xlsx">
                    {t.export_xlsx} {count.clone()}
                </a>
            </div>
        </details>
    }
}
