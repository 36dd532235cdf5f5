//! The device grid: one row per device, readable labels, codes on hover.

use crate::codes::Table;
use crate::model::Device;
use leptos::prelude::*;

#[component]
pub fn DeviceGrid(rows: Vec<Device>) -> impl IntoView {
    let empty = rows.is_empty();
    view! {
        <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
            <table class="min-w-full text-left text-sm" data-testid="device-table">
                <thead class="sticky top-0 bg-slate-100 text-xs uppercase tracking-wide text-slate-600">
                    <tr>
                        <th scope="col" class="px-3 py-2">"Device SN"</th>
                        <th scope="col" class="px-3 py-2">"Category"</th>
                        <th scope="col" class="px-3 py-2">"Class"</th>
                        <th scope="col" class="px-3 py-2">"Model"</th>
                        <th scope="col" class="px-3 py-2">"OS"</th>
                        <th scope="col" class="px-3 py-2">"Scene"</th>
                        <th scope="col" class="px-3 py-2">"Status"</th>
                        <th scope="col" class="px-3 py-2">"Activated"</th>
                        <th scope="col" class="px-3 py-2">"Sub-merchant"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {empty
                        .then(|| {
                            view! {
                                <tr>
                                    <td colspan="9" class="px-3 py-6 text-center text-slate-500">
                                        "No devices."
                                    </td>
                                </tr>
                            }
                        })}
                    {rows.into_iter().map(|d| view! { <DeviceRow device=d /> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// A coded value: the name shown, the code and English label on hover.
fn coded(table: Table, code: Option<&str>, name: Option<&str>) -> impl IntoView {
    let shown = table.display_name(code, name).unwrap_or_else(|| "—".into());
    let title = code.map(|c| format!("{} · code {}", table.label_en(c), c.trim()));
    view! { <span title=title>{shown}</span> }
}

#[component]
fn DeviceRow(device: Device) -> impl IntoView {
    let d = device;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let active = d.activation_status.as_deref() == Some("ACTIVATED");
    let status = match d.activation_status.as_deref() {
        Some("ACTIVATED") => "Activated".to_string(),
        Some("INACTIVATED") => "Inactive".to_string(),
        Some(other) => other.to_string(),
        None => "—".to_string(),
    };
    view! {
        <tr class="hover:bg-slate-50" data-testid="device-row">
            <td class="whitespace-nowrap px-3 py-1.5 font-mono text-xs" title=d.camera_sn.clone()>
                {dash(&d.device_sn)}
            </td>
            <td class="px-3 py-1.5">
                {coded(Table::Category, d.device_category_code.as_deref(), d.device_category.as_deref())}
            </td>
            <td class="px-3 py-1.5">
                {coded(Table::Class, d.device_class_code.as_deref(), d.device_class.as_deref())}
            </td>
            <td class="px-3 py-1.5">{dash(&d.device_model)}</td>
            <td class="px-3 py-1.5">{dash(&d.operating_system)}</td>
            <td class="px-3 py-1.5">
                {coded(Table::Scene, d.app_scene_code.as_deref(), d.app_scene.as_deref())}
            </td>
            <td class="px-3 py-1.5">
                <span class=if active {
                    "rounded bg-emerald-100 px-1.5 py-0.5 text-xs text-emerald-800"
                } else {
                    "rounded bg-slate-200 px-1.5 py-0.5 text-xs text-slate-700"
                }>{status}</span>
            </td>
            <td class="whitespace-nowrap px-3 py-1.5 text-xs text-slate-600">
                {dash(&d.activation_time)}
            </td>
            <td class="px-3 py-1.5">
                <div class="whitespace-pre-line">
                    {d.sub_merchant_shortname.clone().unwrap_or_else(|| {
                        if d.sub_mchid.is_some() { "—".into() } else { "(merchant's own)".into() }
                    })}
                </div>
                <div class="font-mono text-xs text-slate-500">
                    {d.sub_mchid.clone().unwrap_or_default()}
                </div>
            </td>
        </tr>
    }
}
