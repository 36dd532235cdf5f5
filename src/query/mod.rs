//! The query model: what view of the device list the user asked for, as it lives in the URL
//! (the contract in SPEC.md), and (in `apply`) the one function that answers it from a snapshot.
//! The grid and the export both use it, so they cannot disagree.
//!
//! Parsing never fails: an unknown or malformed value is dropped with a notice the page shows.

use crate::model::Field;
use serde::{Deserialize, Serialize};
use std::fmt;

#[cfg(feature = "ssr")]
pub mod apply;

pub const PAGE_SIZES: [u32; 5] = [10, 25, 50, 100, 200];
pub const DEFAULT_PER_PAGE: u32 = 50;
/// Longest free-text search kept (characters).
pub const MAX_Q_CHARS: usize = 100;
/// Most values kept per filter.
pub const MAX_VALUES: usize = 200;
/// The filter value that selects devices without the field (e.g. the merchant's own devices,
/// which have no `sub_mchid`).
pub const NONE_VALUE: &str = "-";

/// The six filters, in the order the page shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Filter {
    SubMchid,
    Category,
    Class,
    Os,
    Status,
    Scene,
}

impl Filter {
    pub const ALL: [Filter; 6] = [
        Filter::SubMchid,
        Filter::Category,
        Filter::Class,
        Filter::Os,
        Filter::Status,
        Filter::Scene,
    ];

    /// The URL parameter.
    pub fn param(self) -> &'static str {
        match self {
            Filter::SubMchid => "sub_mchid",
            Filter::Category => "category",
            Filter::Class => "class",
            Filter::Os => "os",
            Filter::Status => "status",
            Filter::Scene => "scene",
        }
    }

    /// The device field the filter compares (the code, for coded fields).
    pub fn field(self) -> Field {
        match self {
            Filter::SubMchid => Field::SubMchid,
            Filter::Category => Field::DeviceCategoryCode,
            Filter::Class => Field::DeviceClassCode,
            Filter::Os => Field::OperatingSystem,
            Filter::Status => Field::ActivationStatus,
            Filter::Scene => Field::AppSceneCode,
        }
    }

    fn index(self) -> usize {
        Filter::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    /// Whether `value` may be a value of this filter.
    pub fn accepts(self, value: &str) -> bool {
        if value == NONE_VALUE {
            return true;
        }
        let ok_len = !value.is_empty() && value.len() <= 32;
        match self {
            Filter::SubMchid | Filter::Category | Filter::Class | Filter::Scene => {
                ok_len && value.bytes().all(|b| b.is_ascii_digit())
            }
            Filter::Os => {
                ok_len
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            Filter::Status => value == "ACTIVATED" || value == "INACTIVATED",
        }
    }
}

/// Grouping of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupBy {
    Category,
    Class,
    Os,
    SubMerchant,
}

impl GroupBy {
    pub const ALL: [GroupBy; 4] = [
        GroupBy::Category,
        GroupBy::Class,
        GroupBy::Os,
        GroupBy::SubMerchant,
    ];

    pub fn param(self) -> &'static str {
        match self {
            GroupBy::Category => "category",
            GroupBy::Class => "class",
            GroupBy::Os => "os",
            GroupBy::SubMerchant => "sub_merchant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        GroupBy::ALL.into_iter().find(|g| g.param() == s)
    }

    /// The filter over the same field.
    pub fn filter(self) -> Filter {
        match self {
            GroupBy::Category => Filter::Category,
            GroupBy::Class => Filter::Class,
            GroupBy::Os => Filter::Os,
            GroupBy::SubMerchant => Filter::SubMchid,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortDir {
    #[default]
    Asc,
    Desc,
}

/// One view of the device list. `Default` is the whole list, unsorted (the API's order), page 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceQuery {
    /// Selected values per filter, in `Filter::ALL` order; empty means no filter.
    pub filters: [Vec<String>; 6],
    pub q: String,
    pub group: Option<GroupBy>,
    pub sort: Option<Field>,
    pub dir: SortDir,
    pub page: u32,
    pub per_page: u32,
}

impl Default for DeviceQuery {
    fn default() -> Self {
        DeviceQuery {
            filters: Default::default(),
            q: String::new(),
            group: None,
            sort: None,
            dir: SortDir::Asc,
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// A parameter that was ignored, and why (`i18n` puts it into words).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub param: String,
    pub value: String,
    pub reason: NoticeReason,
}

/// Why a parameter was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeReason {
    BadValue,
    TooManyValues,
    SearchShortened,
    BadGroup,
    BadSort,
    BadDir,
    BadPage,
    BadPageSize,
    UnknownParam,
}

/// In English, for logs and the export's response header.
impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: String = self.value.chars().take(40).collect();
        let why = match self.reason {
            NoticeReason::BadValue => "not a valid value for this filter",
            NoticeReason::TooManyValues => "too many values",
            NoticeReason::SearchShortened => "search text shortened to 100 characters",
            NoticeReason::BadGroup => "group by category, class, os or sub_merchant",
            NoticeReason::BadSort => "not a device field",
            NoticeReason::BadDir => "asc or desc",
            NoticeReason::BadPage => "not a page number",
            NoticeReason::BadPageSize => "page size is 10, 25, 50, 100 or 200",
            NoticeReason::UnknownParam => "unknown parameter",
        };
        write!(f, "Ignored {}={:?}: {why}", self.param, value)
    }
}

impl DeviceQuery {
    /// Parses a query string (`a=1&b=2`, with or without the leading `?`).
    pub fn parse(query: &str) -> (Self, Vec<Notice>) {
        let query = query.strip_prefix('?').unwrap_or(query);
        Self::from_pairs(
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Builds a query from decoded key/value pairs, keeping what is valid.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> (Self, Vec<Notice>) {
        let mut q = DeviceQuery::default();
        let mut notices = Vec::new();
        let mut note = |param: &str, value: &str, reason: NoticeReason| {
            notices.push(Notice {
                param: param.into(),
                value: value.into(),
                reason,
            })
        };
        for (key, value) in pairs {
            let v = value.trim();
            if let Some(filter) = Filter::ALL.into_iter().find(|f| f.param() == key) {
                if v.is_empty() {
                    continue;
                }
                let list = &mut q.filters[filter.index()];
                if !filter.accepts(v) {
                    note(&key, v, NoticeReason::BadValue);
                } else if list.len() >= MAX_VALUES {
                    note(&key, v, NoticeReason::TooManyValues);
                } else if !list.iter().any(|x| x == v) {
                    list.push(v.to_string());
                }
                continue;
            }
            match key.as_str() {
                "q" => {
                    if v.chars().count() > MAX_Q_CHARS {
                        note("q", v, NoticeReason::SearchShortened);
                    }
                    q.q = v.chars().take(MAX_Q_CHARS).collect();
                }
                "group" if v.is_empty() => q.group = None,
                "group" => match GroupBy::parse(v) {
                    Some(g) => q.group = Some(g),
                    None => note("group", v, NoticeReason::BadGroup),
                },
                "sort" if v.is_empty() => q.sort = None,
                "sort" => match Field::parse(v) {
                    Some(f) => q.sort = Some(f),
                    None => note("sort", v, NoticeReason::BadSort),
                },
                "dir" => match v {
                    "asc" | "" => q.dir = SortDir::Asc,
                    "desc" => q.dir = SortDir::Desc,
                    _ => note("dir", v, NoticeReason::BadDir),
                },
                "page" => match v.parse::<u32>() {
                    Ok(p) if p >= 1 => q.page = p,
                    _ => note("page", v, NoticeReason::BadPage),
                },
                "per_page" => match v.parse::<u32>() {
                    Ok(n) if PAGE_SIZES.contains(&n) => q.per_page = n,
                    _ => note("per_page", v, NoticeReason::BadPageSize),
                },
                _ => note(&key, v, NoticeReason::UnknownParam),
            }
        }
        (q, notices)
    }

    pub fn values(&self, filter: Filter) -> &[String] {
        &self.filters[filter.index()]
    }

    pub fn is_selected(&self, filter: Filter, value: &str) -> bool {
        self.values(filter).iter().any(|v| v == value)
    }

    /// Whether any filter or search narrows the list.
    pub fn is_filtered(&self) -> bool {
        !self.q.is_empty() || self.filters.iter().any(|f| !f.is_empty())
    }

    /// The query string, canonical (defaults left out), without `?`.
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for filter in Filter::ALL {
            for v in self.values(filter) {
                out.append_pair(filter.param(), v);
            }
        }
        if !self.q.is_empty() {
            out.append_pair("q", &self.q);
        }
        if let Some(g) = self.group {
            out.append_pair("group", g.param());
        }
        if let Some(s) = self.sort {
            out.append_pair("sort", s.name());
            if self.dir == SortDir::Desc {
                out.append_pair("dir", "desc");
            }
        }
        if self.page != 1 {
            out.append_pair("page", &self.page.to_string());
        }
        if self.per_page != DEFAULT_PER_PAGE {
            out.append_pair("per_page", &self.per_page.to_string());
        }
        out.finish()
    }

    /// `?query` for links, or `?` alone for the default view.
    pub fn href(&self) -> String {
        format!("?{}", self.to_query_string())
    }

    // Builder-style changes. Every change of what is shown returns to page 1.

    pub fn with_page(&self, page: u32) -> Self {
        DeviceQuery {
            page: page.max(1),
            ..self.clone()
        }
    }

    pub fn with_per_page(&self, per_page: u32) -> Self {
        DeviceQuery {
            per_page,
            page: 1,
            ..self.clone()
        }
    }

    /// Adds the value if absent, removes it if present.
    pub fn toggled(&self, filter: Filter, value: &str) -> Self {
        let mut q = self.with_page(1);
        let list = &mut q.filters[filter.index()];
        match list.iter().position(|v| v == value) {
            Some(i) => {
                list.remove(i);
            }
            None => list.push(value.to_string()),
        }
        q
    }

    pub fn with_values(&self, filter: Filter, values: Vec<String>) -> Self {
        let mut q = self.with_page(1);
        q.filters[filter.index()] = values;
        q
    }

    pub fn with_q(&self, text: &str) -> Self {
        DeviceQuery {
            q: text.trim().chars().take(MAX_Q_CHARS).collect(),
            ..self.with_page(1)
        }
    }

    pub fn with_group(&self, group: Option<GroupBy>) -> Self {
        DeviceQuery {
            group,
            ..self.with_page(1)
        }
    }

    /// Sorting by a field: ascending first, then descending, then the API's order.
    pub fn sorted_next(&self, field: Field) -> Self {
        let (sort, dir) = match (self.sort, self.dir) {
            (Some(s), SortDir::Asc) if s == field => (Some(field), SortDir::Desc),
            (Some(s), SortDir::Desc) if s == field => (None, SortDir::Asc),
            _ => (Some(field), SortDir::Asc),
        };
        DeviceQuery {
            sort,
            dir,
            ..self.with_page(1)
        }
    }

    /// Everything but paging, grouping and sorting cleared.
    pub fn cleared(&self) -> Self {
        DeviceQuery {
            per_page: self.per_page,
            group: self.group,
            sort: self.sort,
            dir: self.dir,
            ..Default::default()
        }
    }
}

/// One value of a filter with the number of devices it would show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetValue {
    /// The filter value (`-` for devices without the field).
    pub value: String,
    pub label: String,
    pub count: usize,
}

/// A filter's values, each counted as if that filter were cleared (as faceted search does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facet {
    pub filter: Filter,
    /// Most frequent first; selected values always included.
    pub values: Vec<FacetValue>,
    /// Values left out of `values` (sub-merchants can be thousands: search them instead).
    pub more: usize,
}

/// One group of a grouped view, with its count across all pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCount {
    pub value: String,
    pub label: String,
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_round_trips() {
        let url = "sub_mchid=A1&sub_mchid=1900000002&category=2&class=101&os=ANDROID&status=ACTIVATED&scene=1&q=text&group=category&sort=device_sn&dir=desc&page=3&per_page=100";
        let (q, notices) = DeviceQuery::parse(url);
        assert_eq!(notices.len(), 1, "A1 is not a sub_mchid: {notices:?}");
        assert_eq!(q.values(Filter::SubMchid), ["1900000002"]);
        assert_eq!(q.values(Filter::Os), ["ANDROID"]);
        assert_eq!(q.group, Some(GroupBy::Category));
        assert_eq!(
            (q.sort, q.dir, q.page, q.per_page),
            (Some(Field::DeviceSn), SortDir::Desc, 3, 100)
        );
        let again = DeviceQuery::parse(&q.to_query_string()).0;
        assert_eq!(again, q);
        assert_eq!(
            q.to_query_string(),
            "sub_mchid=1900000002&category=2&class=101&os=ANDROID&status=ACTIVATED&scene=1&q=text&group=category&sort=device_sn&dir=desc&page=3&per_page=100"
        );
    }

    #[test]
    fn defaults_render_empty_and_text_is_encoded() {
        assert_eq!(DeviceQuery::default().to_query_string(), "");
        assert_eq!(DeviceQuery::default().href(), "?");
        let q = DeviceQuery::default().with_q(" 杭州 & co=1 ");
        let s = q.to_query_string();
        assert_eq!(s, "q=%E6%9D%AD%E5%B7%9E+%26+co%3D1");
        assert_eq!(DeviceQuery::parse(&s).0.q, "杭州 & co=1");
    }

    #[test]
    fn bad_values_are_dropped_with_notices_never_failing() {
        let (q, notices) = DeviceQuery::parse(
            "?category=abc&class=&os=<script>&status=ON&group=colour&sort=password&dir=up&page=0&per_page=7&page=x&foo=bar&per_page=99999999999999",
        );
        assert_eq!(q, DeviceQuery::default());
        let params: Vec<&str> = notices.iter().map(|n| n.param.as_str()).collect();
        assert_eq!(
            params,
            [
                "category", "os", "status", "group", "sort", "dir", "page", "per_page", "page",
                "foo", "per_page"
            ]
        );
        assert!(notices[0]
            .to_string()
            .starts_with("Ignored category=\"abc\""));
        // Garbage of any kind parses.
        for junk in [
            "%",
            "&&&",
            "=",
            "a=%ZZ",
            "\u{0}",
            "q=%F0%9F%98%80",
            "sub_mchid=-",
        ] {
            let _ = DeviceQuery::parse(junk);
        }
        assert_eq!(
            DeviceQuery::parse("sub_mchid=-").0.values(Filter::SubMchid),
            ["-"]
        );
    }

    #[test]
    fn long_text_and_many_values_are_bounded() {
        let long = "x".repeat(500);
        let (q, n) = DeviceQuery::parse(&format!("q={long}"));
        assert_eq!(q.q.chars().count(), MAX_Q_CHARS);
        assert_eq!(n.len(), 1);
        let many: Vec<String> = (0..300).map(|i| format!("class={i}")).collect();
        let (q, n) = DeviceQuery::parse(&many.join("&"));
        assert_eq!(q.values(Filter::Class).len(), MAX_VALUES);
        assert_eq!(n.len(), 100);
        let dup = DeviceQuery::parse("os=LINUX&os=LINUX").0;
        assert_eq!(dup.values(Filter::Os), ["LINUX"]);
    }

    #[test]
    fn changes_return_to_page_one_and_sorting_cycles() {
        let q = DeviceQuery::default().with_page(4);
        assert_eq!(q.toggled(Filter::Os, "LINUX").page, 1);
        assert_eq!(q.with_q("a").page, 1);
        assert_eq!(q.with_group(Some(GroupBy::Os)).page, 1);
        assert_eq!(q.with_per_page(10).page, 1);
        let off = q.toggled(Filter::Os, "LINUX").toggled(Filter::Os, "LINUX");
        assert!(off.values(Filter::Os).is_empty());
        let s1 = q.sorted_next(Field::DeviceModel);
        assert_eq!((s1.sort, s1.dir), (Some(Field::DeviceModel), SortDir::Asc));
        let s2 = s1.sorted_next(Field::DeviceModel);
        assert_eq!(s2.dir, SortDir::Desc);
        let s3 = s2.sorted_next(Field::DeviceModel);
        assert_eq!(s3.sort, None);
        let c = DeviceQuery::parse("os=LINUX&q=x&group=os&per_page=10&page=3")
            .0
            .cleared();
        assert_eq!(c.to_query_string(), "group=os&per_page=10");
        assert!(!c.is_filtered());
    }
}
