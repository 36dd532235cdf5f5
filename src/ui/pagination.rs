//! Paging: real links (they work before hydration), and the page size.

use crate::api::DeviceView;
use crate::format::thousands;
use crate::i18n::use_lang;
use crate::query::DeviceQuery;
use leptos::prelude::*;

#[component]
pub fn Pagination(v: DeviceView, query: DeviceQuery) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let page = v.page;
    let pages = v.page_count();
    let link = |p: u32| query.with_page(p).href();
    view! {
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
}

#[component]
pub fn PageLink(href: String, enabled: bool, label: &'static str) -> impl IntoView {
    if enabled {
        view! {
            <a class="rounded border border-slate-300 dark:border-slate-600 bg-white dark:bg-slate-900 px-3 py-1 hover:bg-slate-100 dark:hover:bg-slate-800" href=href>
                {label}
            </a>
        }
        .into_any()
    } else {
        view! {
            <span class="rounded border border-slate-200 dark:border-slate-700 px-3 py-1 text-slate-400" aria-disabled="true">
                {label}
            </span>
        }
        .into_any()
    }
}
