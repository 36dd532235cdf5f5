//! The summary chart: the view's devices by the current grouping (category when not grouped),
//! as inline SVG bars. Each bar links to the view filtered to that value.

use crate::api::DeviceView;
use crate::format::thousands;
use crate::i18n::use_lang;
use crate::query::DeviceQuery;

use leptos::prelude::*;

/// Bars shown; the rest are summed in the caption.
const BARS: usize = 12;
const ROW: usize = 22;

#[component]
pub fn SummaryChart(v: DeviceView, query: DeviceQuery) -> impl IntoView {
    if v.chart.is_empty() {
        return ().into_any();
    }
    let lang = use_lang();
    let t = lang.texts();
    let filter = v.chart_by.filter();
    let by = lang.group_label(v.chart_by);
    let title = lang.chart_title(by);
    let max = v.chart.iter().map(|g| g.count).max().unwrap_or(1).max(1);
    let shown = v.chart.len().min(BARS);
    let rest: usize = v.chart.iter().skip(BARS).map(|g| g.count).sum();
    let height = shown * ROW;
    let bars = v
        .chart
        .iter()
        .take(BARS)
        .enumerate()
        .map(|(i, g)| {
            let y = i * ROW;
            let width = (g.count as f64 / max as f64 * 100.0).max(0.5);
            let href = query.with_values(filter, vec![g.value.clone()]).href();
            let label = g.label.replace('\n', " ");
            let name = format!("{label}: {}", lang.devices(&thousands(g.count), g.count == 1));
            view! {
                <a href=href data-noscroll aria-label=format!("{} {name}", t.filter_to) data-testid="chart-bar" data-value=g.value.clone() data-count=g.count.to_string()>
                    <title>{name.clone()}</title>
                    // The whole row is the target, not just the bar.
                    <rect x="0" y=y.to_string() width="100%" height=ROW.to_string() fill="transparent" class="hover:fill-slate-100 dark:hover:fill-slate-800"></rect>
                    <text x="0" y=(y + 15).to_string() class="fill-slate-700 dark:fill-slate-200 text-[11px]">{short_label(&label)}</text>
                    <rect x="34%" y=(y + 4).to_string() width=format!("{:.1}%", width * 0.52) height="14" rx="2" class="fill-emerald-600 hover:fill-emerald-700"></rect>
                    <text x="100%" y=(y + 15).to_string() text-anchor="end" class="fill-slate-600 dark:fill-slate-300 text-[11px] tabular-nums">{thousands(g.count)}</text>
                </a>
            }
        })
        .collect_view();
    view! {
        <figure class="mb-4 rounded-lg border border-slate-200 dark:border-slate-700 bg-white dark:bg-slate-900 p-3" data-testid="summary-chart">
            <figcaption class="mb-2 text-sm font-semibold text-slate-700 dark:text-slate-200">
                {title.clone()}
                {(rest > 0).then(|| view! {
                    <span class="ml-2 font-normal text-slate-500 dark:text-slate-400">{lang.chart_rest(BARS, &thousands(rest))}</span>
                })}
            </figcaption>
            <svg width="100%" height=height.to_string() role="group" aria-label=title>
                {bars}
            </svg>
        </figure>
    }
    .into_any()
}

/// A bar's label within the room beside the bar: about 20 narrow characters (a Chinese
/// character counts as two). A translated label drops the original name in parentheses first
/// (it stays in the tooltip).
fn short_label(label: &str) -> String {
    const ROOM: usize = 20;
    let width = |s: &str| -> usize { s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum() };
    let label = match label.split_once(" (") {
        Some((first, _)) if width(label) > ROOM => first,
        _ => label,
    };
    if width(label) <= ROOM {
        return label.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in label.chars() {
        let w = if c.is_ascii() { 1 } else { 2 };
        if used + w > ROOM - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::short_label;

    #[test]
    fn labels_fit_beside_the_bar() {
        assert_eq!(short_label("Frog (青蛙设备)"), "Frog (青蛙设备)");
        assert_eq!(
            short_label("Desktop checkout (桌面收银设备)"),
            "Desktop checkout"
        );
        assert_eq!(
            short_label("Industry checkout hardware (行业收银硬件)"),
            "Industry checkout h…"
        );
        assert_eq!(short_label("桌面收银设备"), "桌面收银设备");
        assert_eq!(
            short_label("桌面双屏刷脸设备和更多字"),
            "桌面双屏刷脸设备和…"
        );
    }
}
