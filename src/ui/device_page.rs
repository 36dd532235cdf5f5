//! A device's page (`/devices/<sn>`): its 16 fields with their labels, as in the current list
//! (or a note that it is not in the list now), and its timeline: first seen, each change, its
//! removal.

use crate::api::{load_device, DeviceHistory};
use crate::changes::{ChangeKind, ChangesQuery};
use crate::format::ChinaTime;
use crate::i18n::use_lang;
use crate::model::Field;
use crate::ui::changes_page::{change_text, KindBadge};
use crate::ui::devices_page::LoadError;
use crate::ui::nav::{Page, SimpleHeader};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn DevicePage() -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let params = use_params_map();
    let sn = move || params.with(|p| p.get("sn").unwrap_or_default());
    let res = Resource::new(sn, load_device);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Title text=move || format!("{} {} · {}", t.device_title, sn(), t.title) />
        <div class="min-h-screen" data-hydrated=move || hydrated.get().to_string()>
            <SimpleHeader current=Page::Device />
            <main class="mx-auto max-w-screen-lg px-4 py-4">
                <Transition fallback=move || view! { <p class="p-6 text-slate-500 dark:text-slate-400">{t.loading}</p> }>
                    <ErrorBoundary fallback=move |errors| view! { <LoadError errors lang /> }>
                        {move || Suspend::new(async move { res.await.map(|d| view! { <Content d /> }) })}
                    </ErrorBoundary>
                </Transition>
            </main>
        </div>
    }
}

#[component]
fn Content(d: DeviceHistory) -> impl IntoView {
    let lang = use_lang();
    let t = lang.texts();
    let known = d.device.is_some() || !d.events.is_empty();
    let fields = d.device.clone().map(|dev| {
        view! {
            <dl class="grid grid-cols-1 gap-x-6 gap-y-1 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-4 text-sm sm:grid-cols-2" data-testid="device-fields">
                {Field::ALL.into_iter().map(|f| {
                    let value = f.of(&dev).map(str::to_string);
                    view! {
                        <div class="flex gap-2 border-b border-slate-100 dark:border-slate-800 py-1" data-field=f.name()>
                            <dt class="w-40 shrink-0 text-slate-500 dark:text-slate-400">{lang.field_label(f)}</dt>
                            <dd class="min-w-0 whitespace-pre-line break-words">{value.unwrap_or_else(|| "—".into())}</dd>
                        </div>
                    }
                }).collect_view()}
            </dl>
        }
    });
    let missing = d.device.is_none().then(|| {
        view! {
            <p role="status" class="rounded border border-amber-300 dark:border-amber-700 bg-amber-50 dark:bg-amber-950 px-3 py-2 text-sm text-amber-900 dark:text-amber-200" data-testid="device-missing">
                {if known { t.not_in_list } else { t.no_record }}
            </p>
        }
    });
    // A device with no `added` event was in the list when the history began.
    let first_seen = (d.device.is_some() || !d.events.is_empty())
        && !d.events.iter().any(|e| e.kind == ChangeKind::Added);
    let start = d.history_since_ms.filter(|_| first_seen).map(|ms| {
        view! {
            <li class="flex flex-wrap items-baseline gap-2" data-testid="timeline-start">
                <span class="tabular-nums text-xs text-slate-500 dark:text-slate-400">{ChinaTime::from_unix(ms / 1000).full()}</span>
                <span>{t.first_seen_at_start}</span>
            </li>
        }
    });
    let all_changes = ChangesQuery {
        q: d.device_sn.clone(),
        ..ChangesQuery::new()
    }
    .href();
    view! {
        <h1 class="mb-3 flex flex-wrap items-baseline gap-2 text-xl font-semibold">
            {t.device_title}
            <span class="font-mono text-base" data-testid="device-sn">{d.device_sn.clone()}</span>
        </h1>
        <div class="flex flex-col gap-4">
            {missing}
            {fields}
            <section class="rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-4">
                <h2 class="mb-2 flex items-baseline gap-3 font-medium">
                    {t.timeline}
                    <a class="text-sm font-normal text-emerald-700 dark:text-emerald-400 underline" href=all_changes>{t.nav_changes}</a>
                </h2>
                <ol class="flex flex-col gap-2 text-sm" data-testid="timeline">
                    {start}
                    {d.events.iter().map(|e| {
                        let field = e.field.map(|f| lang.field_label(f)).unwrap_or_default();
                        view! {
                            <li class="flex flex-wrap items-baseline gap-2" data-testid="timeline-event" data-kind=e.kind.name()>
                                <span class="tabular-nums text-xs text-slate-500 dark:text-slate-400">{ChinaTime::from_unix(e.at_ms / 1000).full()}</span>
                                <KindBadge kind=e.kind />
                                <span class="font-medium">{field}</span>
                                <span class="whitespace-pre-line">{change_text(e, lang)}</span>
                            </li>
                        }
                    }).collect_view()}
                </ol>
            </section>
        </div>
    }
}
