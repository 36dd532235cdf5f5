//! The change history as screens and files see it (docs/history.md): the kinds of event, one
//! event, one sync's summary, and the Changes page's URL contract (`/changes`, `/changes.csv`
//! and `/changes.xlsx` read the same parameters). Shared by the server and the browser.

use crate::model::Field;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Added, ChangeKind::Removed, ChangeKind::Changed];

    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One stored event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub id: i64,
    /// When the sync that found it finished (epoch ms).
    pub at_ms: i64,
    pub kind: ChangeKind,
    pub device_sn: String,
    /// For `changed`: the field and its values (`None`: the field was absent).
    pub field: Option<Field>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// The device's sub-merchant after the event (before it, for `removed`).
    pub sub_mchid: String,
    pub sub_merchant_shortname: String,
}

/// One finished sync and what it found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub id: i64,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub requests: u64,
    pub devices: u64,
    pub complete: bool,
    /// The first sync: nothing to compare with.
    pub baseline: bool,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

impl SyncSummary {
    pub fn events(&self) -> u64 {
        self.added + self.removed + self.changed
    }
}

/// Changes found on one day (China time), for the chart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// `2026-11-29`.
    pub day: String,
    pub syncs: u32,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

/// What the Changes page shows for its URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesView {
    pub query: ChangesQuery,
    /// One page of events, newest first.
    pub events: Vec<ChangeEvent>,
    /// Events matching the filters, in all.
    pub total: u64,
    /// The chart: one entry per day of the range, oldest first.
    pub days: Vec<DayCounts>,
    /// The most recent syncs (newest first), with what each found.
    pub recent_syncs: Vec<SyncSummary>,
    /// When the history starts (the first sync kept), if any.
    pub since_ms: Option<i64>,
    pub retention_days: u32,
    pub auth_enabled: bool,
}

/// What a device's page shows: its fields now (or when last seen) and its timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHistory {
    pub device_sn: String,
    /// The device in the current snapshot; `None` if it is not in the list now.
    pub device: Option<crate::model::Device>,
    /// Its events, oldest first.
    pub events: Vec<ChangeEvent>,
    /// When the history starts: a device with no `added` event was there from then on.
    pub history_since_ms: Option<i64>,
    /// When the snapshot shown was synced (Unix seconds).
    pub synced_at: Option<i64>,
    pub auth_enabled: bool,
}

/// The address of a device's page (`/devices/<sn>`, the serial percent-encoded).
pub fn device_href(device_sn: &str) -> String {
    let encoded: String = device_sn
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/devices/{encoded}")
}

pub const PAGE_SIZES: [u32; 4] = [25, 50, 100, 200];
pub const DEFAULT_PER_PAGE: u32 = 50;
/// The time ranges the page offers, in days (the URL accepts any from 1 to 3,660).
pub const DAY_CHOICES: [u32; 4] = [1, 7, 30, 365];
const MAX_VALUES: usize = 200;
const MAX_Q_CHARS: usize = 100;

/// Which events to show: the Changes page's URL, and the exports'. Filters are optional and
/// repeatable (values of one parameter are alternatives; parameters narrow each other).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesQuery {
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// The last N days (besides `since`/`until`).
    pub days: Option<u32>,
    pub kinds: Vec<ChangeKind>,
    pub fields: Vec<Field>,
    pub sub_mchids: Vec<String>,
    /// Text in the serial, the values or the sub-merchant (case-insensitive).
    pub q: String,
    /// One device's events (its timeline).
    pub device_sn: Option<String>,
    pub page: u32,
    pub per_page: u32,
}

impl ChangesQuery {
    pub fn new() -> Self {
        ChangesQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            ..Default::default()
        }
    }

    /// Parses a query string (with or without `?`). A value that cannot be used is an error
    /// naming it: a download must not quietly widen to more than was asked for.
    pub fn parse(query: &str) -> Result<Self, String> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut q = ChangesQuery::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let v = value.trim();
            let bad = |why: &str| format!("{key}={v:?}: {why}");
            let too_many = |n: usize| {
                if n >= MAX_VALUES {
                    Err(bad("too many values"))
                } else {
                    Ok(())
                }
            };
            match &*key {
                _ if v.is_empty() => {}
                "since" => q.since = Some(check_time(v).map_err(|e| bad(&e))?),
                "until" => q.until = Some(check_time(v).map_err(|e| bad(&e))?),
                "days" => match v.parse::<u32>() {
                    Ok(d) if (1..=3_660).contains(&d) => q.days = Some(d),
                    _ => return Err(bad("a number of days from 1 to 3660")),
                },
                "kind" => {
                    let k = ChangeKind::parse(v).ok_or_else(|| bad("added, removed or changed"))?;
                    if !q.kinds.contains(&k) {
                        q.kinds.push(k);
                    }
                }
                "field" => {
                    let f = Field::parse(v).ok_or_else(|| bad("not a device field"))?;
                    too_many(q.fields.len())?;
                    if !q.fields.contains(&f) {
                        q.fields.push(f);
                    }
                }
                "sub_mchid" => {
                    too_many(q.sub_mchids.len())?;
                    if v.len() > 64 {
                        return Err(bad("too long"));
                    }
                    if !q.sub_mchids.iter().any(|s| s == v) {
                        q.sub_mchids.push(v.to_string());
                    }
                }
                "q" => q.q = v.chars().take(MAX_Q_CHARS).collect(),
                "device_sn" if v.len() <= 128 => q.device_sn = Some(v.to_string()),
                "device_sn" => return Err(bad("too long")),
                "page" => match v.parse::<u32>() {
                    Ok(p) if p >= 1 => q.page = p,
                    _ => return Err(bad("not a page number")),
                },
                "per_page" => match v.parse::<u32>() {
                    Ok(n) if PAGE_SIZES.contains(&n) => q.per_page = n,
                    _ => return Err(bad("25, 50, 100 or 200")),
                },
                _ => return Err(bad("unknown parameter")),
            }
        }
        Ok(q)
    }

    /// The canonical query string, without `?` (defaults left out).
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &self.since {
            out.append_pair("since", s);
        }
        if let Some(u) = &self.until {
            out.append_pair("until", u);
        }
        if let Some(d) = self.days {
            out.append_pair("days", &d.to_string());
        }
        for k in &self.kinds {
            out.append_pair("kind", k.name());
        }
        for f in &self.fields {
            out.append_pair("field", f.name());
        }
        for s in &self.sub_mchids {
            out.append_pair("sub_mchid", s);
        }
        if !self.q.is_empty() {
            out.append_pair("q", &self.q);
        }
        if let Some(sn) = &self.device_sn {
            out.append_pair("device_sn", sn);
        }
        if self.page != 1 {
            out.append_pair("page", &self.page.to_string());
        }
        if self.per_page != DEFAULT_PER_PAGE {
            out.append_pair("per_page", &self.per_page.to_string());
        }
        out.finish()
    }

    /// The Changes page's address for this view.
    pub fn href(&self) -> String {
        let q = self.to_query_string();
        if q.is_empty() {
            "/changes".into()
        } else {
            format!("/changes?{q}")
        }
    }

    /// The same filters without paging (for the exports).
    pub fn filters_only(&self) -> Self {
        ChangesQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            ..self.clone()
        }
    }

    pub fn is_filtered(&self) -> bool {
        self.since.is_some()
            || self.until.is_some()
            || self.days.is_some()
            || !self.kinds.is_empty()
            || !self.fields.is_empty()
            || !self.sub_mchids.is_empty()
            || !self.q.is_empty()
    }

    pub fn with_page(&self, page: u32) -> Self {
        ChangesQuery {
            page: page.max(1),
            ..self.clone()
        }
    }

    pub fn with_days(&self, days: Option<u32>) -> Self {
        ChangesQuery {
            days,
            page: 1,
            ..self.clone()
        }
    }

    pub fn toggled_kind(&self, kind: ChangeKind) -> Self {
        let mut q = self.with_page(1);
        if let Some(i) = q.kinds.iter().position(|k| *k == kind) {
            q.kinds.remove(i);
        } else {
            q.kinds.push(kind);
        }
        q
    }

    pub fn with_field(&self, field: Option<Field>) -> Self {
        ChangesQuery {
            fields: field.into_iter().collect(),
            page: 1,
            ..self.clone()
        }
    }

    pub fn with_sub_mchid(&self, sub_mchid: &str) -> Self {
        let s = sub_mchid.trim();
        ChangesQuery {
            sub_mchids: if s.is_empty() {
                vec![]
            } else {
                vec![s.to_string()]
            },
            page: 1,
            ..self.clone()
        }
    }

    pub fn with_q(&self, text: &str) -> Self {
        ChangesQuery {
            q: text.trim().chars().take(MAX_Q_CHARS).collect(),
            page: 1,
            ..self.clone()
        }
    }

    pub fn cleared(&self) -> Self {
        ChangesQuery {
            per_page: self.per_page,
            ..ChangesQuery::new()
        }
    }
}

/// A light check of RFC 3339's shape (`2026-11-29T08:00:00+08:00`, `…Z`, fractions allowed);
/// the server parses it fully.
fn check_time(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':'
        && (v.ends_with('Z')
            || v.ends_with('z')
            || b[b.len() - 6] == b'+'
            || b[b.len() - 6] == b'-');
    if shape {
        Ok(v.to_string())
    } else {
        Err("a time in RFC 3339 form, like 2026-11-29T08:00:00+08:00".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeatable_filters_and_round_trips() {
        let q = ChangesQuery::parse(
            "?kind=added&kind=changed&kind=added&field=sub_mchid&sub_mchid=1900000001\
             &sub_mchid=1900000002&since=2026-11-01T00:00:00%2B08:00&until=2026-11-30T00:00:00Z&q=POS&page=2&per_page=100",
        )
        .unwrap();
        assert_eq!(q.kinds, vec![ChangeKind::Added, ChangeKind::Changed]);
        assert_eq!(q.fields, vec![Field::SubMchid]);
        assert_eq!(q.sub_mchids, vec!["1900000001", "1900000002"]);
        assert_eq!(q.since.as_deref(), Some("2026-11-01T00:00:00+08:00"));
        assert_eq!((q.page, q.per_page), (2, 100));
        assert_eq!(ChangesQuery::parse(&q.to_query_string()).unwrap(), q);
        assert_eq!(ChangesQuery::parse("").unwrap(), ChangesQuery::new());
        assert_eq!(ChangesQuery::new().to_query_string(), "");
    }

    #[test]
    fn refuses_what_it_cannot_use_naming_it() {
        for (input, named) in [
            ("kind=moved", "kind"),
            ("field=colour", "field"),
            ("since=yesterday", "since"),
            ("until=2026-11-29", "until"),
            ("days=0", "days"),
            ("page=0", "page"),
            ("per_page=7", "per_page"),
            ("limit=5", "limit"),
        ] {
            let e = ChangesQuery::parse(input).unwrap_err();
            assert!(e.starts_with(named), "{input}: {e}");
        }
    }

    #[test]
    fn device_addresses_encode_the_serial() {
        assert_eq!(device_href("HSA1000001Fab"), "/devices/HSA1000001Fab");
        assert_eq!(device_href("a/b c?"), "/devices/a%2Fb%20c%3F");
        assert_eq!(device_href("序"), "/devices/%E5%BA%8F");
    }

    #[test]
    fn builders_return_to_the_first_page() {
        let q = ChangesQuery::new().with_page(3);
        assert_eq!(q.toggled_kind(ChangeKind::Removed).page, 1);
        assert_eq!(
            q.toggled_kind(ChangeKind::Removed)
                .toggled_kind(ChangeKind::Removed)
                .kinds,
            vec![]
        );
        assert_eq!(q.with_days(Some(7)).to_query_string(), "days=7");
        assert_eq!(q.with_days(Some(7)).href(), "/changes?days=7");
        assert_eq!(ChangesQuery::new().href(), "/changes");
        assert_eq!(q.with_sub_mchid("  ").sub_mchids, Vec::<String>::new());
    }
}
