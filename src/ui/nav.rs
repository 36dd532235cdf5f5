//! The header every page shares: the logo, the title, and the links between the pages.

use crate::i18n::use_lang;
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Devices,
    Changes,
    Device,
}

/// Links to the devices and to the changes; the current page is marked.
#[component]
pub fn NavLinks(current: Page) -> impl IntoView {
    let t = use_lang().texts();
    let link = |href: &'static str, label: &'static str, here: bool, id: &'static str| {
        view! {
            <a
                href=href
                data-testid=id
                aria-current=here.then_some("page")
                class="rounded px-2 py-1 text-sm hover:bg-slate-100 dark:hover:bg-slate-800"
                class:font-semibold=here
                class:text-emerald-700=here
                class:dark:text-emerald-400=here
            >
                {label}
            </a>
        }
    };
    view! {
        <nav class="flex items-center gap-1" aria-label="Pages">
            {link("/", t.nav_devices, current == Page::Devices, "nav-devices")}
            {link("/changes", t.nav_changes, current == Page::Changes, "nav-changes")}
        </nav>
    }
}

/// The header of the pages other than the grid (which has its own, with the status bar).
#[component]
pub fn SimpleHeader(current: Page) -> impl IntoView {
    let t = use_lang().texts();
    view! {
        <header class="border-b border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900">
            <div class="mx-auto flex max-w-screen-2xl flex-wrap items-center gap-3 px-4 py-3">
                <img src="/favicon.svg" alt="" class="h-7 w-7" />
                <p class="text-lg font-semibold">
                    {t.title}
                    " "
                    <span class="font-normal text-slate-500 dark:text-slate-400">{t.subtitle}</span>
                </p>
                <NavLinks current />
            </div>
        </header>
    }
}
