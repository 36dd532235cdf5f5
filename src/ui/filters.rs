//! The filters: a searchable sub-merchant picker and checkbox lists with counts for the other
//! filters, and the active filters as removable chips. Every choice is a link to the view with
//! that choice toggled, so the URL always holds the view (and back/forward restore it).

use crate::api::{find_sub_merchants, DeviceView};
use crate::format::thousands;
use crate::i18n::use_lang;
use crate::query::{DeviceQuery, FacetValue, Filter};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

#[component]
pub fn FilterPanel(v: DeviceView, query: DeviceQuery, open: RwSignal<bool>) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let sections = Filter::ALL
        .into_iter()
        .map(|f| {
            let values = v.facet(f).map(|fa| fa.values.clone()).unwrap_or_default();
            let more = v.facet(f).map(|fa| fa.more).unwrap_or(0);
            let picker = (f == Filter::SubMchid).then(|| view! { <SubMerchantSearch query=query.clone() /> });
            let open = f != Filter::Scene || !query.values(f).is_empty();
            view! {
                <details class="border-b border-slate-100 dark:border-slate-800 py-2" open=open data-testid=format!("facet-{}", f.param())>
                    <summary class="cursor-pointer select-none text-sm font-semibold text-slate-700 dark:text-slate-200">
                        {lang.filter_label(f)}
                        {(!query.values(f).is_empty()).then(|| view! {
                            <span class="ml-2 rounded bg-emerald-100 dark:bg-emerald-900 px-1.5 text-xs text-emerald-800 dark:text-emerald-200">{query.values(f).len()}</span>
                        })}
                    </summary>
                    {picker}
                    <FacetList filter=f values query=query.clone() />
                    {(more > 0).then(|| view! {
                        <p class="mt-1 text-xs text-slate-500 dark:text-slate-400">{lang.more_values(&thousands(more))}</p>
                    })}
                </details>
            }
        })
        .collect_view();
    view! {
        <aside
            id="filters"
            class="w-full shrink-0 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 px-3 py-1 lg:w-72 lg:block"
            class:hidden=move || !open.get()
            aria-label=t.filters
        >
            {sections}
        </aside>
    }
}

#[component]
fn FacetList(filter: Filter, values: Vec<FacetValue>, query: DeviceQuery) -> impl IntoView {
    view! {
        <ul class="mt-1 max-h-72 space-y-0.5 overflow-y-auto pr-1">
            {values
                .into_iter()
                .map(|fv| view! { <FacetOption filter fv query=query.clone() /> })
                .collect_view()}
        </ul>
    }
}

#[component]
fn FacetOption(filter: Filter, fv: FacetValue, query: DeviceQuery) -> impl IntoView {
    let selected = query.is_selected(filter, &fv.value);
    let href = query.toggled(filter, &fv.value).href();
    let title = match filter {
        Filter::Category | Filter::Class | Filter::Scene | Filter::SubMchid if fv.value != "-" => {
            format!("{} ({})", fv.label, fv.value)
        }
        _ => fv.label.clone(),
    };
    let secondary =
        (filter == Filter::SubMchid && fv.value != "-" && fv.label != fv.value).then(|| {
            view! { <span class="facet-id">{fv.value.clone()}</span> }
        });
    view! {
        <li>
            <a
                href=href
                data-noscroll
                role="checkbox"
                aria-checked=selected.to_string()
                on:keydown=toggle_on_space
                data-value=fv.value.clone()
                title=title
                class="facet-option"
                class:text-slate-400=fv.count == 0 && !selected
            >
                <span
                    aria-hidden="true"
                    class="facet-box"
                    class=("facet-box-on", selected)
                >
                    {if selected { "✓" } else { "" }}
                </span>
                <span class="min-w-0 flex-1">
                    <span class="facet-label">{fv.label.clone()}</span>
                    {secondary}
                </span>
                <span class="count">{thousands(fv.count)}</span>
            </a>
        </li>
    }
}

/// A checkbox toggles with Space; these checkboxes are links, which only follow Enter.
fn toggle_on_space(ev: leptos::ev::KeyboardEvent) {
    use leptos::wasm_bindgen::JsCast;
    if ev.key() == " " {
        ev.prevent_default();
        if let Some(el) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlElement>().ok())
        {
            el.click();
        }
    }
}

/// Searches all sub-merchants (there can be thousands) by id prefix or name.
#[component]
fn SubMerchantSearch(query: DeviceQuery) -> impl IntoView {
    let t = use_lang().texts();
    let results = RwSignal::new(None::<Result<Vec<FacetValue>, String>>);
    let latest = RwSignal::new(String::new());
    let qs = query.to_query_string();
    let on_input = move |ev| {
        let text = event_target_value(&ev);
        latest.set(text.clone());
        let qs = qs.clone();
        set_timeout(
            move || {
                if latest.get_untracked() != text {
                    return;
                }
                if text.trim().is_empty() {
                    results.set(None);
                    return;
                }
                spawn_local(async move {
                    let found = find_sub_merchants(qs, text.clone())
                        .await
                        .map_err(|e| e.to_string());
                    if latest.get_untracked() == text {
                        results.set(Some(found));
                    }
                });
            },
            Duration::from_millis(250),
        );
    };
    let q2 = query.clone();
    view! {
        <input
            type="search"
            class="mt-2 w-full rounded border border-slate-300 dark:border-slate-600 px-2 py-1 text-sm"
            placeholder=t.find_sub
            aria-label=t.find_sub
            maxlength="100"
            data-testid="sub-merchant-search"
            on:input=on_input
        />
        {move || match results.get() {
            None => ().into_any(),
            Some(Err(e)) => view! { <p class="mt-1 text-xs text-red-700 dark:text-red-400">{e}</p> }.into_any(),
            Some(Ok(list)) if list.is_empty() => {
                view! { <p class="mt-1 text-xs text-slate-500 dark:text-slate-400">{t.no_sub}</p> }.into_any()
            }
            Some(Ok(list)) => view! {
                <div class="mt-1 rounded border border-emerald-200 dark:border-emerald-800 bg-emerald-50/40 p-1" data-testid="sub-merchant-results">
                    <FacetList filter=Filter::SubMchid values=list query=q2.clone() />
                </div>
            }
            .into_any(),
        }}
    }
}

/// The active filters as chips; each removes itself. "Clear all" keeps grouping and sorting.
#[component]
pub fn ActiveFilters(v: DeviceView, query: DeviceQuery) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    if !query.is_filtered() {
        return ().into_any();
    }
    let label_of = |f: Filter, value: &str| -> String {
        v.facet(f)
            .and_then(|fa| fa.values.iter().find(|fv| fv.value == value))
            .map(|fv| fv.label.clone())
            .unwrap_or_else(|| value.to_string())
    };
    let mut chips: Vec<(String, String)> = Vec::new();
    for f in Filter::ALL {
        for value in query.values(f) {
            let name = label_of(f, value);
            let text = if f == Filter::SubMchid && value != "-" && name != *value {
                format!("{}: {name} ({value})", lang.filter_label(f))
            } else {
                format!("{}: {name}", lang.filter_label(f))
            };
            chips.push((text, query.toggled(f, value).href()));
        }
    }
    if !query.q.is_empty() {
        chips.push((
            format!("{}: “{}”", t.search_chip, query.q),
            query.with_q("").href(),
        ));
    }
    view! {
        <div class="mb-2 flex flex-wrap items-center gap-2" data-testid="chips">
            {chips
                .into_iter()
                .map(|(text, href)| {
                    view! {
                        <a
                            href=href
                            data-noscroll
                            class="inline-flex items-center gap-1 rounded-full border border-emerald-300 dark:border-emerald-700 bg-emerald-50 dark:bg-emerald-950 px-2.5 py-0.5 text-xs text-emerald-900 dark:text-emerald-200 hover:bg-emerald-100 dark:hover:bg-emerald-900"
                            aria-label=format!("{} {text}", t.remove_filter)
                        >
                            <span class="max-w-64 truncate">{text.clone()}</span>
                            <span aria-hidden="true">"×"</span>
                        </a>
                    }
                })
                .collect_view()}
            <a href=query.cleared().href() data-noscroll class="text-xs text-slate-600 dark:text-slate-300 underline" data-testid="clear-all">
                {t.clear_all}
            </a>
        </div>
    }
    .into_any()
}
