//! Interface languages: Chinese and English. The server chooses (the `wxd_lang` cookie, else the
//! browser's Accept-Language, else Chinese) and writes it into `<html lang>`; the browser reads it
//! back from there, so hydration sees the same text. Switching sets the cookie and reloads, so the
//! server renders the new language: no flash. Every string is a field of `Texts`, so a missing
//! translation does not compile. Names from the API are shown as the API gives them.

use crate::model::Field;
use crate::query::{Filter, GroupBy, Notice, NoticeReason};
use crate::status::{Failure, IntervalReason, RefreshBlocked, Untrusted};
use leptos::prelude::*;

pub const COOKIE: &str = "wxd_lang";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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

    /// A field's name as a heading (exports: codes and names in columns of their own).
    pub fn field_label(self, f: Field) -> &'static str {
        let (en, zh) = field_words(f);
        self.pick(en, zh)
    }

    /// A grid column's heading. A column shows a coded field's code and name together, under
    /// the name's heading.
    pub fn column_label(self, f: Field) -> &'static str {
        match f {
            Field::DeviceCategoryCode => self.field_label(Field::DeviceCategory),
            Field::DeviceClassCode => self.field_label(Field::DeviceClass),
            Field::AppSceneCode => self.field_label(Field::AppScene),
            Field::SubMchid => self.pick("Sub-merchant", "子商户"),
            other => self.field_label(other),
        }
    }

    pub fn filter_label(self, f: Filter) -> &'static str {
        match f {
            Filter::SubMchid => self.pick("Sub-merchant", "子商户"),
            Filter::Category => self.pick("Category", "设备品类"),
            Filter::Class => self.pick("Class", "设备类型"),
            Filter::Os => self.pick("Operating system", "操作系统"),
            Filter::Status => self.pick("Activation", "激活状态"),
            Filter::Scene => self.pick("App scene", "刷脸应用模式"),
        }
    }

    pub fn group_label(self, g: GroupBy) -> &'static str {
        self.filter_label(g.filter())
    }

    /// What went wrong with a sync, in a sentence.
    pub fn failure(self, f: &Failure) -> String {
        let zh = self == Lang::Zh;
        match f {
            Failure::Api { code } => match (zh, code.as_str()) {
                (true, "SYSTEM_ERROR") => "微信支付系统错误（SYSTEM_ERROR）。".into(),
                (false, "SYSTEM_ERROR") => "WeChat Pay had a system error (SYSTEM_ERROR).".into(),
                (true, "FREQUENCY_LIMITED") => "请求过于频繁，被微信支付限流（FREQUENCY_LIMITED）。".into(),
                (false, "FREQUENCY_LIMITED") => "WeChat Pay limited the request rate (FREQUENCY_LIMITED).".into(),
                (true, "SIGN_ERROR") => "微信支付不接受请求签名（SIGN_ERROR）。".into(),
                (false, "SIGN_ERROR") => "WeChat Pay did not accept the request signature (SIGN_ERROR).".into(),
                (true, c) => format!("微信支付返回错误 {c}。"),
                (false, c) => format!("WeChat Pay answered with error {c}."),
            },
            Failure::Unreachable => self.pick("WeChat Pay could not be reached.", "无法连接微信支付。").into(),
            Failure::Timeout => self.pick("WeChat Pay did not answer in time.", "微信支付未及时应答。").into(),
            Failure::Untrusted(_) => self
                .pick(
                    "An answer from WeChat Pay could not be trusted and was discarded.",
                    "微信支付的应答未通过验签，已丢弃。",
                )
                .into(),
            Failure::Malformed => self
                .pick(
                    "WeChat Pay's answer was not in the documented form.",
                    "微信支付的应答格式不符合文档。",
                )
                .into(),
            Failure::Redirected => self
                .pick(
                    "The request was redirected, and the redirect was not followed.",
                    "请求被重定向，未跟随。",
                )
                .into(),
            Failure::Quota {
                needed,
                used,
                ceiling,
                ..
            } => match self {
                Lang::Zh => format!(
                    "未同步：需要 {needed} 次请求，24 小时内允许的 {ceiling} 次中已用 {used} 次。"
                ),
                Lang::En => format!(
                    "Not synced: it needs {needed} requests, and {used} of the {ceiling} allowed in 24 h are used."
                ),
            },
            Failure::Internal => self
                .pick("An internal error stopped the sync.", "内部错误导致同步中止。")
                .into(),
        }
    }

    /// What to do about a failed sync.
    pub fn failure_advice(self, f: &Failure) -> String {
        match f {
            Failure::Api { code } => match code.as_str() {
                "SYSTEM_ERROR" => self.pick("It is retried later with the same parameters.", "稍后会以相同参数自动重试。"),
                "FREQUENCY_LIMITED" => self.pick("The dashboard slows down and retries; if it persists, another client may be using the same merchant's quota.", "看板会放慢并重试；若持续出现，可能有其他客户端在使用同一商户的配额。"),
                "SIGN_ERROR" => self.pick("Check WECHATPAY_MCHID, WECHATPAY_MERCHANT_SERIAL_NO, the private key file, and that the server clock is right.", "请检查 WECHATPAY_MCHID、WECHATPAY_MERCHANT_SERIAL_NO、私钥文件，以及服务器时钟是否准确。"),
                "PARAM_ERROR" | "INVALID_REQUEST" => self.pick("The request was rejected: please report this with the Request-ID.", "请求被拒绝：请附上 Request-ID 报告此问题。"),
                _ => self.pick("See WeChat Pay's message; retry later or contact WeChat Pay support with the Request-ID.", "请查看微信支付的说明；稍后重试，或凭 Request-ID 联系微信支付。"),
            }
            .into(),
            Failure::Unreachable => self.pick("Check the network, DNS and WECHATPAY_BASE_URL.", "请检查网络、DNS 和 WECHATPAY_BASE_URL。").into(),
            Failure::Timeout => self.pick("It is retried later.", "稍后会自动重试。").into(),
            Failure::Untrusted(why) => match why {
                Untrusted::Clock => self.pick("Check that the server clock is right (NTP).", "请检查服务器时钟是否准确（NTP）。"),
                Untrusted::HeadersMissing => self.pick("A proxy between this server and WeChat Pay may be stripping the Wechatpay-* headers: let them through.", "服务器与微信支付之间的代理可能去掉了 Wechatpay-* 头：请放行。"),
                Untrusted::UnknownKey => self.pick("Check WECHATPAY_PUBLIC_KEY_ID, or set WECHATPAY_APIV3_KEY for platform certificates.", "请检查 WECHATPAY_PUBLIC_KEY_ID，或为平台证书设置 WECHATPAY_APIV3_KEY。"),
                Untrusted::BadSignature => self.pick("The answer may have been altered in transit, or the WeChat Pay public key is the wrong one.", "应答可能在传输中被篡改，或微信支付公钥配置有误。"),
            }
            .into(),
            Failure::Malformed => self.pick("It is retried later.", "稍后会自动重试。").into(),
            Failure::Redirected => self.pick("Check WECHATPAY_BASE_URL (https://api.mch.weixin.qq.com) and any proxy in between.", "请检查 WECHATPAY_BASE_URL（https://api.mch.weixin.qq.com）及中间的代理。").into(),
            Failure::Quota { retry_in_secs: Some(s), .. } => match self {
                Lang::Zh => format!("约 {} 分钟后配额释放；表格保留上一次的数据。", (s + 59) / 60),
                Lang::En => format!("The quota frees up in about {} minutes; the last data stays on screen.", (s + 59) / 60),
            },
            Failure::Quota { .. } => self.pick("The daily request quota is used up for now; the last data stays on screen.", "今日请求配额暂已用完；表格保留上一次的数据。").into(),
            Failure::Internal => self.pick("Reload the page; if it persists, check the server log.", "请刷新页面；若持续出现，请查看服务器日志。").into(),
        }
    }

    /// Why the refresh interval is what it is.
    pub fn interval_reason(self, r: &IntervalReason) -> String {
        match (self, r) {
            (Lang::Zh, IntervalReason::CacheLifetime) => "缓存有效期".into(),
            (Lang::En, IntervalReason::CacheLifetime) => "the cache lifetime".into(),
            (Lang::Zh, IntervalReason::Quota { devices, cost, per_day, reserve }) => format!(
                "同步 {devices} 台设备需要 {cost} 次请求；自动刷新每天最多 {per_day} 次（另留 {reserve} 次给手动刷新）"
            ),
            (Lang::En, IntervalReason::Quota { devices, cost, per_day, reserve }) => format!(
                "a sync of {devices} devices costs {cost} requests; automatic refreshes may use {per_day} a day ({reserve} kept for manual refreshes)"
            ),
        }
    }

    /// Why "Refresh now" cannot run.
    pub fn refresh_blocked(self, b: &RefreshBlocked) -> String {
        match (self, b) {
            (Lang::Zh, RefreshBlocked::Running) => "正在同步".into(),
            (Lang::En, RefreshBlocked::Running) => "a sync is running".into(),
            (Lang::Zh, RefreshBlocked::TooSoon { wait_secs }) => {
                format!("每分钟只能刷新一次：请等待 {wait_secs} 秒")
            }
            (Lang::En, RefreshBlocked::TooSoon { wait_secs }) => {
                format!("refresh allowed once a minute: wait {wait_secs} s")
            }
            (Lang::Zh, RefreshBlocked::Quota { used, limit }) => {
                format!("今日请求配额已用完（24 小时内 {used} / {limit} 次）")
            }
            (Lang::En, RefreshBlocked::Quota { used, limit }) => {
                format!("the daily quota is used up ({used} of {limit} requests in 24 h)")
            }
        }
    }

    pub fn first_sync_running(self, done: u64, total: u64) -> String {
        match self {
            Lang::Zh => format!("首次同步仍在进行（{done} / {total} 页）。"),
            Lang::En => format!("The first sync is still running ({done} of {total} pages)."),
        }
    }

    /// The notice over a first sync's partial view.
    pub fn partial_view(
        self,
        fetched: &str,
        of: Option<&str>,
        seconds_left: Option<u64>,
    ) -> String {
        match self {
            Lang::Zh => {
                let of = of.map(|n| format!("（共约 {n} 台）")).unwrap_or_default();
                let left = seconds_left
                    .map(|s| format!("预计还需约 {s} 秒。"))
                    .unwrap_or_default();
                format!("首次同步进行中：目前显示已获取的 {fetched} 台设备{of}，列表尚不完整。{left}同步完成后本页自动显示完整列表。")
            }
            Lang::En => {
                let of = of.map(|n| format!(" of about {n}")).unwrap_or_default();
                let left = seconds_left
                    .map(|s| format!(" About {s} s left."))
                    .unwrap_or_default();
                format!("First sync in progress: showing the {fetched} devices fetched so far{of}; the list is not complete yet.{left} This view completes by itself when the sync ends.")
            }
        }
    }

    pub fn address_too_long(self, kib: usize) -> String {
        match self {
            Lang::Zh => format!("视图地址过长（超过 {kib} KiB）。"),
            Lang::En => format!("The view's address is too long (more than {kib} KiB)."),
        }
    }

    /// A parameter of the view's address that was ignored, and why.
    pub fn notice(self, n: &Notice) -> String {
        let value: String = n.value.chars().take(40).collect();
        let why = match n.reason {
            NoticeReason::BadValue => {
                self.pick("not a valid value for this filter", "不是此筛选的有效值")
            }
            NoticeReason::TooManyValues => self.pick("too many values", "取值过多"),
            NoticeReason::SearchShortened => self.pick(
                "search text shortened to 100 characters",
                "搜索文字已截断为 100 个字符",
            ),
            NoticeReason::BadGroup => self.pick(
                "group by category, class, os or sub_merchant",
                "分组可选 category、class、os 或 sub_merchant",
            ),
            NoticeReason::BadSort => self.pick("not a device field", "不是设备字段"),
            NoticeReason::BadDir => self.pick("asc or desc", "可选 asc 或 desc"),
            NoticeReason::BadPage => self.pick("not a page number", "不是页码"),
            NoticeReason::BadPageSize => self.pick(
                "page size is 10, 25, 50, 100 or 200",
                "每页行数可选 10、25、50、100 或 200",
            ),
            NoticeReason::UnknownParam => self.pick("unknown parameter", "未知参数"),
        };
        match self {
            Lang::Zh => format!("已忽略 {}={value:?}：{why}", n.param),
            Lang::En => format!("Ignored {}={value:?}: {why}", n.param),
        }
    }

    fn pick(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// An XLSX asked for more rows than a sheet holds.
    /// A device XLSX of more rows than a sheet holds.
    pub fn xlsx_too_many_devices(self, rows: usize) -> String {
        let n = crate::format::thousands(rows);
        match self {
            Lang::Zh => format!("此视图有 {n} 台设备，超过 Excel 工作表的上限（1,048,575 行）：请筛选缩小范围，或导出 CSV。"),
            Lang::En => format!("This view has {n} devices, more than an Excel sheet holds (1,048,575 rows): filter it, or export CSV."),
        }
    }

    /// Every export slot is taken: try again in `secs` seconds.
    pub fn exports_busy(self, secs: u64) -> String {
        match self {
            Lang::Zh => format!("正在生成的导出文件已达上限，请约 {secs} 秒后再试。"),
            Lang::En => format!("As many exports as the server writes at once are being written: try again in about {secs} seconds."),
        }
    }

    pub fn xlsx_too_many(self, rows: u64) -> String {
        let n = crate::format::thousands(rows as usize);
        match self {
            Lang::Zh => format!("所选范围有 {n} 条变更，超过 Excel 工作表的上限（1,048,575 行）：请缩小范围，或导出 CSV。"),
            Lang::En => format!("This selection has {n} changes, more than an Excel sheet holds (1,048,575 rows): narrow it, or export CSV."),
        }
    }

    /// A time range of `n` days, for the range menu.
    pub fn last_days(self, n: u32) -> String {
        match (self, n) {
            (Lang::Zh, 1) => "最近 24 小时".into(),
            (Lang::Zh, n) => format!("最近 {n} 天"),
            (Lang::En, 1) => "Last 24 hours".into(),
            (Lang::En, n) => format!("Last {n} days"),
        }
    }

    /// `+3 −1 ~5` with the words, for the status bar and the sync list.
    pub fn change_counts(self, added: u64, removed: u64, changed: u64) -> String {
        let (a, r, c) = (
            crate::format::thousands(added as usize),
            crate::format::thousands(removed as usize),
            crate::format::thousands(changed as usize),
        );
        match self {
            Lang::Zh => format!("新增 {a} · 移除 {r} · 变更 {c}"),
            Lang::En => format!("+{a} added · −{r} removed · ~{c} changed"),
        }
    }

    /// "History since 2026-11-01 (kept 400 days)".
    pub fn history_since(self, date: &str, days: u32) -> String {
        match self {
            Lang::Zh => format!("记录始于 {date}（保留 {days} 天）"),
            Lang::En => format!("History since {date} (kept {days} days)"),
        }
    }

    /// "12 changes".
    pub fn events_count(self, n: &str, one: bool) -> String {
        match (self, one) {
            (Lang::Zh, _) => format!("{n} 条变更"),
            (Lang::En, true) => format!("{n} change"),
            (Lang::En, false) => format!("{n} changes"),
        }
    }

    pub fn kind_label(self, k: crate::changes::ChangeKind) -> &'static str {
        let t = self.texts();
        match k {
            crate::changes::ChangeKind::Added => t.kind_added,
            crate::changes::ChangeKind::Removed => t.kind_removed,
            crate::changes::ChangeKind::Changed => t.kind_changed,
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

/// (English, Chinese) headings of the 16 fields.
fn field_words(f: Field) -> (&'static str, &'static str) {
    match f {
        Field::DeviceSn => ("Device SN", "设备序列号"),
        Field::CameraSn => ("Camera SN", "摄像头序列号"),
        Field::DeviceCategoryCode => ("Category code", "品类代码"),
        Field::DeviceCategory => ("Category", "设备品类"),
        Field::DeviceClassCode => ("Class code", "类型代码"),
        Field::DeviceClass => ("Class", "设备类型"),
        Field::DeviceModel => ("Model", "设备型号"),
        Field::AppSceneCode => ("App scene code", "模式代码"),
        Field::AppScene => ("App scene", "刷脸应用模式"),
        Field::OperatingSystem => ("OS", "操作系统"),
        Field::ActivationStatus => ("Activation", "激活状态"),
        Field::ActivationTime => ("Activated at", "激活时间"),
        Field::Mchid => ("Merchant id", "商户号"),
        Field::MerchantShortname => ("Merchant", "商户简称"),
        Field::SubMchid => ("Sub-merchant id", "子商户号"),
        Field::SubMerchantShortname => ("Sub-merchant name", "子商户简称"),
    }
}

/// Every string of the interface, in one language.
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Texts {
    pub title: &'static str,
    pub subtitle: &'static str,
    pub loading: &'static str,
    pub loading_first: &'static str,
    pub export_after_first_sync: &'static str,
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
    pub find_sub: &'static str,
    pub no_sub: &'static str,
    pub search_chip: &'static str,
    pub remove_filter: &'static str,
    pub clear_all: &'static str,
    pub merchants_own: &'static str,
    pub not_set: &'static str,
    pub activated: &'static str,
    pub inactive: &'static str,
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
    pub first_sync: &'static str,
    pub refresh: &'static str,
    pub refresh_title: &'static str,
    pub sign_out: &'static str,
    pub sync_failed_kept: &'static str,
    pub sync_failed_empty: &'static str,
    pub what_to_do: &'static str,
    pub stale: &'static str,
    pub filter_to: &'static str,
    pub try_again_soon: &'static str,
    pub search_too_long: &'static str,
    pub no_data_yet_sentence: &'static str,
    pub not_found: &'static str,
    pub not_found_detail: &'static str,
    pub back_to_devices: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub sign_in_title: &'static str,
    pub wrong_password: &'static str,
    pub too_many_attempts: &'static str,
    pub checks_busy: &'static str,
    pub check_under_way: &'static str,
    pub history_off: &'static str,
    pub history_off_advice: &'static str,
    pub bad_address: &'static str,
    pub history_read_failed: &'static str,
    pub nav_devices: &'static str,
    pub nav_changes: &'static str,
    pub changes_title: &'static str,
    pub kind_added: &'static str,
    pub kind_removed: &'static str,
    pub kind_changed: &'static str,
    pub kinds: &'static str,
    pub time_range: &'static str,
    pub all_time: &'static str,
    pub all_fields: &'static str,
    pub sub_mchid_placeholder: &'static str,
    pub changes_search_placeholder: &'static str,
    pub apply: &'static str,
    pub col_time: &'static str,
    pub col_kind: &'static str,
    pub col_device: &'static str,
    pub col_field: &'static str,
    pub col_change: &'static str,
    pub col_sub: &'static str,
    pub no_changes: &'static str,
    pub no_history_yet: &'static str,
    pub chart_changes_title: &'static str,
    pub recent_syncs: &'static str,
    pub baseline: &'static str,
    pub incomplete_sync: &'static str,
    pub absent: &'static str,
    pub device_title: &'static str,
    pub timeline: &'static str,
    pub first_seen_at_start: &'static str,
    pub not_in_list: &'static str,
    pub no_record: &'static str,
    pub device_history_link: &'static str,
    pub last_sync_changes: &'static str,
    pub sheet_changes: &'static str,
    pub shared_state_lost: &'static str,
    /// The last sync is served but was not saved (the detail follows).
    pub save_failed: &'static str,
    /// The XLSX export's sheets and its "View" sheet.
    pub sheet_devices: &'static str,
    pub sheet_view: &'static str,
    pub view_rows: &'static str,
    pub view_synced_at: &'static str,
    pub view_exported_at: &'static str,
    pub view_source: &'static str,
    pub view_source_demo: &'static str,
    pub view_source_api: &'static str,
    pub view_filter: &'static str,
    pub view_all: &'static str,
    pub view_search: &'static str,
    pub view_none: &'static str,
    pub view_grouped_by: &'static str,
    pub view_sorted_by: &'static str,
    pub view_ascending: &'static str,
    pub view_descending: &'static str,
    pub view_api_order: &'static str,
    pub view_address: &'static str,
    pub view_ignored: &'static str,
}

pub const ZH: Texts = Texts {
    title: "智能设备",
    subtitle: "微信支付",
    loading: "加载中…",
    loading_first: "正在加载设备…首次同步需要几秒钟。",
    export_after_first_sync: "首次同步完成后即可导出。",
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
    find_sub: "查找子商户：商户号或简称",
    no_sub: "没有匹配的子商户。",
    search_chip: "搜索",
    remove_filter: "移除筛选",
    clear_all: "全部清除",
    merchants_own: "商户自有设备",
    not_set: "（未设置）",
    activated: "已激活",
    inactive: "未激活",
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
    first_sync: "首次同步中",
    refresh: "立即刷新",
    refresh_title: "立即从微信支付拉取完整列表",
    sign_out: "退出登录",
    sync_failed_kept: "上次同步失败；表格显示最近一次成功的数据。",
    sync_failed_empty: "同步失败；暂无可显示的数据。",
    what_to_do: "处理建议：",
    stale: "数据已过期；下次刷新需等待请求配额。",
    filter_to: "筛选为",
    try_again_soon: "请一分钟后再试。",
    search_too_long: "搜索文字过长。",
    no_data_yet_sentence: "暂无设备数据。",
    not_found: "页面不存在",
    not_found_detail: "没有这个地址的页面。",
    back_to_devices: "返回设备列表",
    password: "密码",
    sign_in: "登录",
    sign_in_title: "登录 · 微信支付智能设备",
    wrong_password: "密码错误。",
    too_many_attempts: "失败次数过多：请 15 分钟后再试。",
    checks_busy: "服务器正忙于校验密码：请稍后再试。",
    check_under_way: "来自您地址的一次登录正在校验中：请稍候再试。",
    history_off: "未保存变更记录。",
    history_off_advice: "变更记录保存在数据库中（DATABASE_URL）；请检查服务器配置。",
    bad_address: "地址中的参数无效",
    history_read_failed: "读取变更记录失败；详情见服务器日志。",
    nav_devices: "设备",
    nav_changes: "变更记录",
    changes_title: "设备变更记录",
    kind_added: "新增",
    kind_removed: "移除",
    kind_changed: "变更",
    kinds: "类型",
    time_range: "时间范围",
    all_time: "全部时间",
    all_fields: "全部字段",
    sub_mchid_placeholder: "子商户号",
    changes_search_placeholder: "序列号、取值或子商户…",
    apply: "应用",
    col_time: "时间",
    col_kind: "类型",
    col_device: "设备",
    col_field: "字段",
    col_change: "变化",
    col_sub: "子商户",
    no_changes: "没有符合条件的变更。",
    no_history_yet: "还没有变更：第一次同步是基线，此后每次同步都会与上一次比较。",
    chart_changes_title: "每日变更（全部设备）",
    recent_syncs: "最近的同步",
    baseline: "基线",
    incomplete_sync: "不完整",
    absent: "（无）",
    device_title: "设备详情",
    timeline: "时间线",
    first_seen_at_start: "变更记录开始时已在列表中",
    not_in_list: "该设备现在不在列表中。",
    no_record: "没有这台设备的记录。",
    device_history_link: "变更历史",
    last_sync_changes: "上次同步的变更",
    sheet_changes: "变更",
    shared_state_lost:
        "无法连接 Redis：本副本继续显示最近一次的数据，在恢复连接前不会向微信支付发送请求。",
    save_failed: "最近一次同步的数据已显示，但未能保存：其变更没有记入变更历史，其他副本也拿不到这份数据。下次同步会再试。原因：",
    sheet_devices: "设备",
    sheet_view: "视图",
    view_rows: "行数",
    view_synced_at: "数据同步时间",
    view_exported_at: "导出时间",
    view_source: "数据来源",
    view_source_demo: "演示：内置微信支付模拟器",
    view_source_api: "微信支付 APIv3 GET /v3/iotmanage/devices",
    view_filter: "筛选：",
    view_all: "全部",
    view_search: "搜索",
    view_none: "（无）",
    view_grouped_by: "分组",
    view_sorted_by: "排序",
    view_ascending: "升序",
    view_descending: "降序",
    view_api_order: "微信支付返回的顺序",
    view_address: "视图地址",
    view_ignored: "已忽略的参数",
};

pub const EN: Texts = Texts {
    title: "Smart devices",
    subtitle: "WeChat Pay",
    loading: "Loading…",
    loading_first: "Loading devices… the first sync takes a few seconds.",
    export_after_first_sync: "Export is available when the first sync completes.",
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
    find_sub: "Find sub-merchant: id or name",
    no_sub: "No sub-merchant matches.",
    search_chip: "Search",
    remove_filter: "Remove filter",
    clear_all: "Clear all",
    merchants_own: "Merchant's own devices",
    not_set: "(not set)",
    activated: "Activated",
    inactive: "Inactive",
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
    first_sync: "first sync",
    refresh: "Refresh now",
    refresh_title: "Fetch the whole list from WeChat Pay now",
    sign_out: "Sign out",
    sync_failed_kept: "The last sync failed; the grid shows the last good data.",
    sync_failed_empty: "The sync failed; there is no data to show yet.",
    what_to_do: "What to do: ",
    stale: "This data is past its refresh time; the next refresh waits for the request quota.",
    filter_to: "Filter to",
    try_again_soon: "Try again in a minute.",
    search_too_long: "The search text is too long.",
    no_data_yet_sentence: "No device data yet.",
    not_found: "Page not found",
    not_found_detail: "There is no page at this address.",
    back_to_devices: "Back to the devices",
    password: "Password",
    sign_in: "Sign in",
    sign_in_title: "Sign in · WeChat Pay devices",
    wrong_password: "Wrong password.",
    too_many_attempts: "Too many failed attempts: wait 15 minutes and try again.",
    checks_busy: "The server is busy checking passwords: try again in a moment.",
    check_under_way: "A sign-in from your address is being checked: try again in a moment.",
    history_off: "No change history is kept.",
    history_off_advice: "The history lives in the database (DATABASE_URL); check the server's settings.",
    bad_address: "A parameter of the address is not valid",
    history_read_failed: "The change history could not be read; see the server log.",
    nav_devices: "Devices",
    nav_changes: "Changes",
    changes_title: "Device changes",
    kind_added: "Added",
    kind_removed: "Removed",
    kind_changed: "Changed",
    kinds: "Kind",
    time_range: "Time range",
    all_time: "All time",
    all_fields: "All fields",
    sub_mchid_placeholder: "Sub-merchant id",
    changes_search_placeholder: "Serial, value or sub-merchant…",
    apply: "Apply",
    col_time: "Time",
    col_kind: "Kind",
    col_device: "Device",
    col_field: "Field",
    col_change: "Change",
    col_sub: "Sub-merchant",
    no_changes: "No changes match these filters.",
    no_history_yet: "No changes yet: the first sync is the baseline; every later sync is compared with the one before.",
    chart_changes_title: "Changes per day (all devices)",
    recent_syncs: "Recent syncs",
    baseline: "baseline",
    incomplete_sync: "incomplete",
    absent: "(none)",
    device_title: "Device",
    timeline: "Timeline",
    first_seen_at_start: "In the list when the history began",
    not_in_list: "This device is not in the list now.",
    no_record: "There is no record of this device.",
    device_history_link: "History",
    last_sync_changes: "Changes in the last sync",
    sheet_changes: "Changes",
    shared_state_lost: "Redis cannot be reached: this replica shows its last data and sends no request to WeChat Pay until Redis is back.",
    save_failed: "The last sync is shown but could not be saved: its changes are not in the history, and other replicas do not have it. The next sync tries again. Why: ",
    sheet_devices: "Devices",
    sheet_view: "View",
    view_rows: "Rows",
    view_synced_at: "Data synced at",
    view_exported_at: "Exported at",
    view_source: "Source",
    view_source_demo: "Demo: built-in WeChat Pay simulator",
    view_source_api: "WeChat Pay APIv3 GET /v3/iotmanage/devices",
    view_filter: "Filter: ",
    view_all: "all",
    view_search: "Search",
    view_none: "(none)",
    view_grouped_by: "Grouped by",
    view_sorted_by: "Sorted by",
    view_ascending: "ascending",
    view_descending: "descending",
    view_api_order: "the API's order",
    view_address: "View address",
    view_ignored: "Ignored parameter",
};

/// The language of a request from its headers (the `wxd_lang` cookie, else Accept-Language,
/// else Chinese), for handlers outside the Leptos context (exports, the login page).
#[cfg(feature = "ssr")]
pub fn from_headers(headers: &axum::http::HeaderMap) -> Lang {
    crate::cookies::in_headers(headers, COOKIE)
        .and_then(|v| Lang::parse(&v))
        .or_else(|| {
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// The language of this request (server: cookie, then Accept-Language) or of this page
/// (browser: `<html lang>`, as the server rendered it).
pub fn detect() -> Lang {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>()
            .map(|p| from_headers(&p.headers))
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
    fn every_field_filter_and_grouping_has_words_in_both_languages() {
        let mut en_seen = std::collections::HashSet::new();
        for f in Field::ALL {
            for lang in [Lang::En, Lang::Zh] {
                assert!(!lang.field_label(f).is_empty() && !lang.column_label(f).is_empty());
            }
            assert!(has_cjk(Lang::Zh.field_label(f)), "{f}");
            assert!(!has_cjk(Lang::En.field_label(f)), "{f}");
            assert!(
                en_seen.insert(Lang::En.field_label(f)),
                "{f}: a heading twice"
            );
        }
        for f in Filter::ALL {
            assert!(has_cjk(Lang::Zh.filter_label(f)) && !has_cjk(Lang::En.filter_label(f)));
        }
        for g in GroupBy::ALL {
            assert!(has_cjk(Lang::Zh.group_label(g)) && !has_cjk(Lang::En.group_label(g)));
        }
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
