//! The device grid: readable labels (codes on hover), sortable headers, and, when grouped, a
//! header row per group with its count across all pages, collapsible.

use crate::api::DeviceView;
use crate::codes::Table;
use crate::format::thousands;
use crate::i18n::use_lang;
use crate::model::{Device, Field};
use crate::query::{DeviceQuery, GroupCount, SortDir};
use crate::ui::prefs::use_prefs;
use leptos::prelude::*;
use std::collections::HashSet;

/// The grid's columns, each keyed by the field it sorts by (also its key for hiding it); its
/// heading is `Lang::column_label`.
pub const COLUMNS: [Field; 10] = [
    Field::DeviceSn,
    Field::DeviceCategoryCode,
    Field::DeviceClassCode,
    Field::DeviceModel,
    Field::OperatingSystem,
    Field::AppSceneCode,
    Field::ActivationStatus,
    Field::ActivationTime,
    Field::SubMchid,
    Field::CameraSn,
];

#[component]
pub fn DeviceGrid(
    v: DeviceView,
    query: DeviceQuery,
    collapsed: RwSignal<HashSet<String>>,
) -> impl IntoView {
    let prefs = use_prefs();
    let lang = use_lang();
    let t = lang.texts();
    let headers = COLUMNS
        .into_iter()
        .map(|field| {
            let label = lang.column_label(field);
            let sort = match (query.sort, query.dir) {
                (Some(s), SortDir::Asc) if s == field => "ascending",
                (Some(s), SortDir::Desc) if s == field => "descending",
                _ => "none",
            };
            let arrow = match sort {
                "ascending" => "▲",
                "descending" => "▼",
                _ => "",
            };
            let key = field.name();
            view! {
                <th scope="col" aria-sort=sort class="whitespace-nowrap px-3 py-2" class:hidden=move || prefs.with(|p| p.is_hidden(key)) data-column=key>
                    <a
                        href=query.sorted_next(field).href()
                        data-noscroll
                        class="inline-flex items-center gap-1 hover:text-slate-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600"
                        title=format!("{}{label}", t.sort_by)
                    >
                        {label}
                        <span aria-hidden="true" class="text-[10px]">{arrow}</span>
                    </a>
                </th>
            }
        })
        .collect_view();

    let grouped = !v.page_groups.is_empty();
    let mut body: Vec<AnyView> = Vec::with_capacity(v.rows.len() + v.page_groups.len());
    let mut last_group = None;
    for (i, device) in v.rows.iter().enumerate() {
        let group = grouped.then(|| v.page_groups[v.row_groups[i] as usize].clone());
        if let Some(g) = &group {
            if last_group != Some(v.row_groups[i]) {
                last_group = Some(v.row_groups[i]);
                body.push(view! { <GroupHeader g=g.clone() collapsed /> }.into_any());
            }
        }
        let hidden_value = group.map(|g| g.value);
        let hidden = move || {
            hidden_value
                .as_ref()
                .is_some_and(|g| collapsed.with(|c| c.contains(g)))
        };
        body.push(view! { <DeviceRow device=device.clone() hidden /> }.into_any());
    }

    view! {
        <div class="max-h-[75vh] overflow-auto rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 shadow-sm">
            <table
                class="min-w-full text-left text-sm [&_td]:px-3"
                class=(["[&_td]:py-0.5", "text-xs"], move || prefs.with(|p| p.compact))
                class=("[&_td]:py-1.5", move || !prefs.with(|p| p.compact))
                data-testid="device-table"
                data-density=move || if prefs.with(|p| p.compact) { "compact" } else { "comfortable" }
            >
                <thead class="sticky top-0 z-10 bg-slate-100 dark:bg-slate-800 text-xs uppercase tracking-wide text-slate-600 dark:text-slate-300 shadow-sm">
                    <tr>{headers}</tr>
                </thead>
                <tbody class="divide-y divide-slate-100 dark:divide-slate-800">{body}</tbody>
            </table>
        </div>
    }
}

#[component]
fn GroupHeader(g: GroupCount, collapsed: RwSignal<HashSet<String>>) -> impl IntoView {
    let value = g.value.clone();
    let value2 = g.value.clone();
    let is_collapsed = Signal::derive(move || collapsed.with(|c| c.contains(&value)));
    let toggle = move |_| {
        collapsed.update(|c| {
            if !c.remove(&value2) {
                c.insert(value2.clone());
            }
        })
    };
    view! {
        <tr class="bg-slate-50 dark:bg-slate-950" data-testid="group-header" data-group=g.value.clone() data-count=g.count.to_string()>
            <th scope="rowgroup" colspan="10" class="px-3 py-1.5 text-left">
                <button
                    type="button"
                    class="inline-flex items-center gap-2 text-sm font-semibold text-slate-800 dark:text-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-600"
                    aria-expanded=move || (!is_collapsed.get()).to_string()
                    on:click=toggle
                >
                    <span aria-hidden="true" class="inline-block w-3">{move || if is_collapsed.get() { "▸" } else { "▾" }}</span>
                    <span class="whitespace-pre-line">{g.label.clone()}</span>
                    <span class="font-normal text-slate-500 dark:text-slate-400">
                        {use_lang().devices(&thousands(g.count), g.count == 1)}
                    </span>
                </button>
            </th>
        </tr>
    }
}

/// A coded value, in the page's language: on the Chinese page the API's own name (the English
/// label and the code on hover); on the English page the English label (the API's name and
/// the code on hover).
fn coded(table: Table, code: Option<&str>, name: Option<&str>) -> impl IntoView {
    let native = table.display_name(code, name);
    let english = code
        .filter(|c| !c.trim().is_empty())
        .map(|c| table.label_en(c));
    let (shown, other) = match use_lang() {
        crate::i18n::Lang::Zh => (native, english),
        crate::i18n::Lang::En => (english.or(native.clone()), native),
    };
    let title = code.map(|c| format!("{} · {}", other.unwrap_or_default(), c.trim()));
    view! { <span title=title>{shown.unwrap_or_else(|| "—".into())}</span> }
}

#[component]
fn DeviceRow(device: Device, hidden: impl Fn() -> bool + Send + Sync + 'static) -> impl IntoView {
    let d = device;
    let t = use_lang().texts();
    let prefs = use_prefs();
    let hid = move |key: &'static str| move || prefs.with(|p| p.is_hidden(key));
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let active = d.activation_status.as_deref() == Some("ACTIVATED");
    let status = match d.activation_status.as_deref() {
        Some("ACTIVATED") => t.activated.to_string(),
        Some("INACTIVATED") => t.inactive.to_string(),
        Some(other) => other.to_string(),
        None => "—".to_string(),
    };
    let sub_name = d.sub_merchant_shortname.clone().unwrap_or_else(|| {
        if d.sub_mchid.is_some() {
            "—".into()
        } else {
            t.merchants_own.into()
        }
    });
    view! {
        <tr class="grid-row" data-testid="device-row" class:hidden=hidden>
            <td class:hidden=hid("device_sn") class="whitespace-nowrap font-mono text-xs">
                {match d.device_sn.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    Some(sn) => view! {
                        <a class="sn-link" href=crate::changes::device_href(sn) data-testid="device-link">{sn.to_string()}</a>
                    }.into_any(),
                    None => dash(&d.device_sn).into_any(),
                }}
            </td>
            <td class:hidden=hid("device_category_code") class="whitespace-nowrap">
                {coded(Table::Category, d.device_category_code.as_deref(), d.device_category.as_deref())}
            </td>
            <td class:hidden=hid("device_class_code") class="whitespace-nowrap">
                {coded(Table::Class, d.device_class_code.as_deref(), d.device_class.as_deref())}
            </td>
            <td class:hidden=hid("device_model") class="whitespace-pre-line">{dash(&d.device_model)}</td>
            <td class:hidden=hid("operating_system")>{dash(&d.operating_system)}</td>
            <td class:hidden=hid("app_scene_code") class="whitespace-nowrap">
                {coded(Table::Scene, d.app_scene_code.as_deref(), d.app_scene.as_deref())}
            </td>
            <td class:hidden=hid("activation_status")>
                <span class=if active { "pill-on" } else { "pill-off" }>{status}</span>
            </td>
            <td class:hidden=hid("activation_time") class="cell-time">{dash(&d.activation_time)}</td>
            <td class:hidden=hid("sub_mchid")>
                <div class="whitespace-pre-line" data-testid="sub-name">{sub_name}</div>
                <div class="sub-id" data-testid="sub-mchid">{d.sub_mchid.clone().unwrap_or_default()}</div>
            </td>
            <td class:hidden=hid("camera_sn") class="cell-mono">{dash(&d.camera_sn)}</td>
        </tr>
    }
}
