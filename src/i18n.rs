//! Interface languages: Chinese and English. The server chooses (the `wxd_lang` cookie, else the
//! browser's Accept-Language, else Chinese) and writes it into `<html lang>`; the browser reads it
//! back from there, so hydration sees the same text. Switching sets the cookie and reloads, so the
//! server renders the new language: no flash. Every string is a field of `Texts`, so a missing
//! translation does not compile. Names from the API are shown as the API gives them.

use leptos::prelude::*;

pub const COOKIE: &str = "wxd_lang";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::Zh)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first supported language of an Accept-Language header, by preference weight.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut tags: Vec<(f32, &str)> = header
            .split(',')
            .map(|part| {
                let mut it = part.split(';');
                let tag = it.next().unwrap_or("").trim();
                let q = it
                    .find_map(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                    })
                    .unwrap_or(1.0);
                (q, tag)
            })
            .collect();
        tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        tags.iter().find_map(|(_, t)| Lang::parse(t))
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    pub fn rows(self, first: &str, last: &str, total: &str) -> String {
        match self {
            Lang::Zh => format!("第 {first}–{last} 行，共 {total} 行"),
            Lang::En => format!("Rows {first}–{last} of {total}"),
        }
    }

    pub fn filtered_from(self, all: &str) -> String {
        match self {
            Lang::Zh => format!("（筛选自 {all} 台）"),
            Lang::En => format!(" (filtered from {all})"),
        }
    }

    pub fn page_of(self, page: &str, pages: &str) -> String {
        match self {
            Lang::Zh => format!("第 {page} / {pages} 页"),
            Lang::En => format!("Page {page} of {pages}"),
        }
    }

    pub fn devices(self, n: &str, one: bool) -> String {
        match self {
            Lang::Zh => format!("{n} 台设备"),
            Lang::En => format!("{n} device{}", if one { "" } else { "s" }),
        }
    }

    pub fn rows_count(self, n: &str, one: bool) -> String {
        match self {
            Lang::Zh => format!("{n} 行"),
            Lang::En => format!("{n} row{}", if one { "" } else { "s" }),
        }
    }

    pub fn more_values(self, n: &str) -> String {
        match self {
            Lang::Zh => format!("另有 {n} 项：请在上方搜索"),
            Lang::En => format!("and {n} more: search above"),
        }
    }

    pub fn ago(self, secs: i64) -> String {
        match (self, secs) {
            (Lang::Zh, s) if s < 60 => "刚刚".into(),
            (Lang::Zh, s) if s < 3600 => format!("{} 分钟前", s / 60),
            (Lang::Zh, s) if s < 86_400 => format!("{} 小时 {} 分钟前", s / 3600, s % 3600 / 60),
            (Lang::Zh, s) => format!("{} 天前", s / 86_400),
            (Lang::En, s) if s < 60 => "just now".into(),
            (Lang::En, s) if s < 3600 => format!("{} min ago", s / 60),
            (Lang::En, s) if s < 86_400 => format!("{} h {} min ago", s / 3600, s % 3600 / 60),
            (Lang::En, s) => format!("{} days ago", s / 86_400),
        }
    }

    pub fn data_as_of(self, time: &str, ago: &str) -> String {
        match self {
            Lang::Zh => format!("数据时间 {time}（{ago}）"),
            Lang::En => format!("data as of {time} ({ago})"),
        }
    }

    pub fn syncing(self, done: u64, total: u64) -> String {
        match self {
            Lang::Zh => format!("同步中 {done} / {total} 页"),
            Lang::En => format!("syncing {done} / {total} pages"),
        }
    }

    pub fn quota(self, used: &str, limit: &str, minutes: u64) -> String {
        match self {
            Lang::Zh => format!("24 小时内请求 {used} / {limit} · 每 {minutes} 分钟刷新"),
            Lang::En => format!("{used} / {limit} requests in 24 h · refresh every {minutes} min"),
        }
    }

    /// The snapshot did not add up (docs/sync.md): how many devices, of how many.
    pub fn incomplete(self, devices: &str, expected: &str, same_count: bool) -> String {
        match (self, same_count) {
            (Lang::Zh, false) => format!(
                "列表在同步期间不断变化：显示 {devices} 台，微信支付报告共 {expected} 台。下次同步会重新读取。"
            ),
            (Lang::Zh, true) => format!(
                "列表在同步期间不断变化：显示的 {devices} 台中可能有已变更的设备。下次同步会重新读取。"
            ),
            (Lang::En, false) => format!(
                "The list kept changing during the sync: showing {devices} of {expected} devices. The next sync reads it again."
            ),
            (Lang::En, true) => format!(
                "The list kept changing during the sync: some of these {devices} devices may be out of date. The next sync reads it again."
            ),
        }
    }

    pub fn chart_title(self, by: &str) -> String {
        match self {
            Lang::Zh => format!("按{by}统计设备"),
            Lang::En => format!("Devices by {}", by.to_lowercase()),
        }
    }

    pub fn chart_rest(self, bars: usize, rest: &str) -> String {
        match self {
            Lang::Zh => format!("（前 {bars} 项；其他值共 {rest} 台）"),
            Lang::En => format!("(top {bars}; {rest} more in other values)"),
        }
    }
}

/// Every string of the interface, in one language.
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Texts {
    pub title: &'static str,
    pub subtitle: &'static str,
    pub loading: &'static str,
    pub loading_first: &'static str,
    pub no_devices: &'static str,
    pub no_devices_detail: &'static str,
    pub no_match: &'static str,
    pub clear_filters: &'static str,
    pub load_failed: &'static str,
    pub reload: &'static str,
    pub search: &'static str,
    pub search_placeholder: &'static str,
    pub group_by: &'static str,
    pub no_grouping: &'static str,
    pub rows_per_page: &'static str,
    pub filters: &'static str,
    pub hide_filters: &'static str,
    pub display: &'static str,
    pub columns: &'static str,
    pub compact: &'static str,
    pub theme: &'static str,
    pub theme_system: &'static str,
    pub theme_light: &'static str,
    pub theme_dark: &'static str,
    pub language: &'static str,
    /// Sub-merchant, category, class, OS, activation, app scene (the order of `Filter::ALL`).
    pub filter_names: [&'static str; 6],
    /// Category, class, OS, sub-merchant (the order of `GroupBy::ALL`).
    pub group_names: [&'static str; 4],
    pub find_sub: &'static str,
    pub no_sub: &'static str,
    pub search_chip: &'static str,
    pub remove_filter: &'static str,
    pub clear_all: &'static str,
    pub merchants_own: &'static str,
    pub not_set: &'static str,
    pub activated: &'static str,
    pub inactive: &'static str,
    /// The grid's columns, in the order of `device_table::COLUMNS`.
    pub column_names: [&'static str; 10],
    pub sort_by: &'static str,
    pub first: &'static str,
    pub prev: &'static str,
    pub next: &'static str,
    pub last: &'static str,
    pub export: &'static str,
    pub export_view: &'static str,
    pub export_csv: &'static str,
    pub export_xlsx: &'static str,
    pub demo: &'static str,
    pub no_data_yet: &'static str,
    pub refresh: &'static str,
    pub refresh_title: &'static str,
    pub sign_out: &'static str,
    pub sync_failed_kept: &'static str,
    pub sync_failed_empty: &'static str,
    pub what_to_do: &'static str,
    pub stale: &'static str,
    pub filter_to: &'static str,
}

pub const ZH: Texts = Texts {
    title: "智能设备",
    subtitle: "微信支付",
    loading: "加载中…",
    loading_first: "正在加载设备…首次同步需要几秒钟。",
    no_devices: "暂无任何设备。",
    no_devices_detail: "微信支付未列出该商户的智能设备。",
    no_match: "没有符合筛选条件的设备。",
    clear_filters: "清除筛选",
    load_failed: "设备列表加载失败。",
    reload: "请刷新页面重试。",
    search: "搜索",
    search_placeholder: "设备序列号、摄像头序列号、型号、商户简称…",
    group_by: "分组",
    no_grouping: "不分组",
    rows_per_page: "每页行数",
    filters: "筛选",
    hide_filters: "收起筛选",
    display: "显示 ▾",
    columns: "列",
    compact: "紧凑行",
    theme: "主题",
    theme_system: "跟随系统",
    theme_light: "浅色",
    theme_dark: "深色",
    language: "语言",
    filter_names: [
        "子商户",
        "设备品类",
        "设备类型",
        "操作系统",
        "激活状态",
        "刷脸应用模式",
    ],
    group_names: ["设备品类", "设备类型", "操作系统", "子商户"],
    find_sub: "查找子商户：商户号或简称",
    no_sub: "没有匹配的子商户。",
    search_chip: "搜索",
    remove_filter: "移除筛选",
    clear_all: "全部清除",
    merchants_own: "商户自有设备",
    not_set: "（未设置）",
    activated: "已激活",
    inactive: "未激活",
    column_names: [
        "设备序列号",
        "设备品类",
        "设备类型",
        "设备型号",
        "操作系统",
        "刷脸应用模式",
        "激活状态",
        "激活时间",
        "子商户",
        "摄像头序列号",
    ],
    sort_by: "排序：",
    first: "« 首页",
    prev: "‹ 上一页",
    next: "下一页 ›",
    last: "末页 »",
    export: "导出 ▾",
    export_view: "当前视图（全部页）：",
    export_csv: "CSV（UTF-8，Excel/WPS）· ",
    export_xlsx: "Excel 工作簿（.xlsx）· ",
    demo: "演示：模拟数据",
    no_data_yet: "暂无数据",
    refresh: "立即刷新",
    refresh_title: "立即从微信支付拉取完整列表",
    sign_out: "退出登录",
    sync_failed_kept: "上次同步失败；表格显示最近一次成功的数据。",
    sync_failed_empty: "同步失败；暂无可显示的数据。",
    what_to_do: "处理建议：",
    stale: "数据已过期；下次刷新需等待请求配额。",
    filter_to: "筛选为",
};

pub const EN: Texts = Texts {
    title: "Smart devices",
    subtitle: "WeChat Pay",
    loading: "Loading…",
    loading_first: "Loading devices… the first sync takes a few seconds.",
    no_devices: "No devices at all.",
    no_devices_detail: "WeChat Pay lists no smart device for this merchant.",
    no_match: "No device matches these filters.",
    clear_filters: "Clear filters",
    load_failed: "The device list could not be loaded.",
    reload: "Reload the page to try again.",
    search: "Search",
    search_placeholder: "Device SN, camera SN, model, merchant name…",
    group_by: "Group by",
    no_grouping: "No grouping",
    rows_per_page: "Rows per page",
    filters: "Filters",
    hide_filters: "Hide filters",
    display: "Display ▾",
    columns: "Columns",
    compact: "Compact rows",
    theme: "Theme",
    theme_system: "Follow the system",
    theme_light: "Light",
    theme_dark: "Dark",
    language: "Language",
    filter_names: [
        "Sub-merchant",
        "Category",
        "Class",
        "Operating system",
        "Activation",
        "App scene",
    ],
    group_names: ["Category", "Class", "Operating system", "Sub-merchant"],
    find_sub: "Find sub-merchant: id or name",
    no_sub: "No sub-merchant matches.",
    search_chip: "Search",
    remove_filter: "Remove filter",
    clear_all: "Clear all",
    merchants_own: "Merchant's own devices",
    not_set: "(not set)",
    activated: "Activated",
    inactive: "Inactive",
    column_names: [
        "Device SN",
        "Category",
        "Class",
        "Model",
        "OS",
        "App scene",
        "Status",
        "Activated",
        "Sub-merchant",
        "Camera SN",
    ],
    sort_by: "Sort by ",
    first: "« First",
    prev: "‹ Prev",
    next: "Next ›",
    last: "Last »",
    export: "Export ▾",
    export_view: "The current view, all pages: ",
    export_csv: "CSV (UTF-8, Excel/WPS) · ",
    export_xlsx: "Excel workbook (.xlsx) · ",
    demo: "Demo: simulated data",
    no_data_yet: "no data yet",
    refresh: "Refresh now",
    refresh_title: "Fetch the whole list from WeChat Pay now",
    sign_out: "Sign out",
    sync_failed_kept: "The last sync failed; the grid shows the last good data.",
    sync_failed_empty: "The sync failed; there is no data to show yet.",
    what_to_do: "What to do: ",
    stale: "This data is past its refresh time; the next refresh waits for the request quota.",
    filter_to: "Filter to",
};

/// The language of this request (server: cookie, then Accept-Language) or of this page
/// (browser: `<html lang>`, as the server rendered it).
pub fn detect() -> Lang {
    #[cfg(feature = "ssr")]
    {
        let accept_language = || {
            use_context::<axum::http::request::Parts>().and_then(|p| {
                let h = p
                    .headers
                    .get(axum::http::header::ACCEPT_LANGUAGE)?
                    .to_str()
                    .ok()?;
                Lang::from_accept_language(h)
            })
        };
        crate::cookies::get(COOKIE)
            .and_then(|v| Lang::parse(&v))
            .or_else(accept_language)
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        leptos::web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|e| e.get_attribute("lang"))
            .and_then(|l| Lang::parse(&l))
            .unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Lang::default()
    }
}

/// Remembers the language and reloads the page in it (browser only).
pub fn switch_to(lang: Lang) {
    crate::cookies::set(COOKIE, lang.code());
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    if let Some(w) = leptos::web_sys::window() {
        let _ = w.location().reload();
    }
}

pub fn provide() -> Lang {
    let lang = detect();
    provide_context(lang);
    lang
}

pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("fr-FR,en;q=0.5,zh;q=0.7"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("fr, de"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn ages_read_naturally_in_both_languages() {
        assert_eq!(Lang::En.ago(5), "just now");
        assert_eq!(Lang::En.ago(125), "2 min ago");
        assert_eq!(Lang::En.ago(3_900), "1 h 5 min ago");
        assert_eq!(Lang::En.ago(200_000), "2 days ago");
        assert_eq!(Lang::Zh.ago(125), "2 分钟前");
        assert_eq!(Lang::Zh.ago(200_000), "2 天前");
    }

    #[test]
    fn both_languages_say_the_same_things() {
        assert_eq!(
            Lang::En.rows("51", "100", "12,345"),
            "Rows 51–100 of 12,345"
        );
        assert_eq!(
            Lang::Zh.rows("51", "100", "12,345"),
            "第 51–100 行，共 12,345 行"
        );
    }

    /// Every string of `texts`, by field name (arrays as `name[i]`).
    fn strings(texts: &Texts) -> Vec<(String, String)> {
        let serde_json::Value::Object(fields) = serde_json::to_value(texts).unwrap() else {
            panic!("Texts serialises as an object");
        };
        let mut out = Vec::new();
        for (name, value) in fields {
            match value {
                serde_json::Value::String(s) => out.push((name, s)),
                serde_json::Value::Array(items) => {
                    for (i, item) in items.into_iter().enumerate() {
                        out.push((format!("{name}[{i}]"), item.as_str().unwrap().to_string()));
                    }
                }
                other => panic!("{name}: {other}"),
            }
        }
        out
    }

    /// Chinese characters, or the full-width punctuation Chinese text is written with.
    fn has_cjk(s: &str) -> bool {
        s.chars().any(|c| {
            ('\u{4e00}'..='\u{9fff}').contains(&c)
                || ('\u{3000}'..='\u{303f}').contains(&c)
                || ('\u{ff00}'..='\u{ffef}').contains(&c)
        })
    }

    #[test]
    fn every_string_is_translated() {
        let (zh, en) = (strings(&ZH), strings(&EN));
        assert!(zh.len() > 60, "{} strings", zh.len());
        assert_eq!(
            zh.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            en.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        for ((key, z), (_, e)) in zh.iter().zip(&en) {
            assert!(
                !z.trim().is_empty() && !e.trim().is_empty(),
                "{key} is empty"
            );
            assert!(
                has_cjk(z),
                "{key}: the Chinese text {z:?} has no Chinese in it"
            );
            assert!(
                !has_cjk(e),
                "{key}: the English text {e:?} has Chinese in it"
            );
        }
    }
}
