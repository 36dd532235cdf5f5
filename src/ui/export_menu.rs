//! The Export menu: downloads the current view (every page) as CSV or Excel.

use crate::query::DeviceQuery;
use crate::ui::format::thousands;
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
    let count = format!(
        "{} row{}",
        thousands(rows),
        if rows == 1 { "" } else { "s" }
    );
    view! {
        <details class="relative" data-testid="export-menu">
            <summary class="cursor-pointer list-none rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1 text-sm hover:bg-slate-100 dark:hover:bg-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600">
                "Export ▾"
            </summary>
            <div class="absolute right-0 z-20 mt-1 w-64 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-2 text-sm shadow-lg">
                <p class="px-2 pb-1 text-xs text-slate-500 dark:text-slate-400">{format!("The current view, all pages: {count}")}</p>
                <a class="block rounded px-2 py-1.5 hover:bg-slate-100 dark:hover:bg-slate-800" href=format!("/export.csv{suffix}") download data-testid="export-csv">
                    "CSV (UTF-8, Excel/WPS) · " {count.clone()}
                </a>
                <a class="block rounded px-2 py-1.5 hover:bg-slate-100 dark:hover:bg-slate-800" href=format!("/export.xlsx{suffix}") download data-testid="export-xlsx">
                    "Excel workbook (.xlsx) · " {count.clone()}
                </a>
            </div>
        </details>
    }
}
