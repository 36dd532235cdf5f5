//! The search box: debounced, and its history entries replaced (not one per keystroke).

use crate::i18n::use_lang;
use crate::query::DeviceQuery;
use crate::ui::go_to;
use leptos::prelude::*;
use std::time::Duration;

/// Free-text search over device SN, camera SN, model and both short names. The URL follows the
/// text 300 ms after the last keystroke, replacing the history entry.
#[component]
pub fn SearchBox(query: Memo<DeviceQuery>) -> impl IntoView {
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
