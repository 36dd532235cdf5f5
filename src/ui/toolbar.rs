//! Above the grid: the search box (debounced), grouping and page size. They depend only on the
//! URL, so typing is never interrupted by new data arriving.

use crate::query::{DeviceQuery, GroupBy, PAGE_SIZES};
use crate::ui::go_to;
use leptos::prelude::*;
use std::time::Duration;

#[component]
pub fn Toolbar(query: Memo<DeviceQuery>) -> impl IntoView {
    view! {
        <div class="mb-4 flex flex-wrap items-end gap-3">
            <SearchBox query />
            <label class="flex flex-col text-xs text-slate-600">
                "Group by"
                <select
                    class="mt-1 rounded border border-slate-300 bg-white px-2 py-1.5 text-sm text-slate-900"
                    data-testid="group-select"
                    on:change=move |ev| {
                        let g = GroupBy::parse(&event_target_value(&ev));
                        go_to(&query.get_untracked().with_group(g), false);
                    }
                >
                    <option value="" selected=move || query.get().group.is_none()>"No grouping"</option>
                    {GroupBy::ALL
                        .into_iter()
                        .map(|g| {
                            view! {
                                <option value=g.param() selected=move || query.get().group == Some(g)>
                                    {g.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="flex flex-col text-xs text-slate-600">
                "Rows per page"
                <select
                    class="mt-1 rounded border border-slate-300 bg-white px-2 py-1.5 text-sm text-slate-900"
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
}

/// Free-text search over device SN, camera SN, model and both short names. The URL follows the
/// text 300 ms after the last keystroke, replacing the history entry.
#[component]
fn SearchBox(query: Memo<DeviceQuery>) -> impl IntoView {
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
        <label class="flex min-w-64 flex-1 flex-col text-xs text-slate-600">
            "Search"
            <input
                type="search"
                class="mt-1 rounded border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-900"
                placeholder="Device SN, camera SN, model, merchant name…"
                maxlength="100"
                data-testid="search"
                prop:value=value
                on:input=on_input
            />
        </label>
    }
}
