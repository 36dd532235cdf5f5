//! The display menu: columns shown, compact rows, theme and language, remembered by this
//! browser (cookies, so the server renders them from the first byte).

use crate::i18n::{switch_to, use_lang, Lang};
use crate::ui::device_grid::COLUMNS;
use crate::ui::prefs::{use_prefs, Theme};
use leptos::prelude::*;

/// Columns shown, row density and theme: remembered by this browser.
#[component]
pub fn DisplayMenu() -> impl IntoView {
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
