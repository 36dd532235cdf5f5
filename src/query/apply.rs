//! Answering a `DeviceQuery` from a snapshot: filter, facet counts, group counts, sort, page.
//! Pure functions over a `SnapshotIndex`, which is built once per snapshot: each filter's column
//! is interned to small integers, so a query over 100,000 devices is one pass of integer tests
//! and one integer sort.

use super::{DeviceQuery, Facet, FacetValue, Filter, GroupBy, GroupCount, SortDir, NONE_VALUE};
use crate::codes::Table;
use crate::device_list::{DeviceList, DeviceRef};
use crate::model::Field;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// How many values a facet lists (selected values come on top of these).
pub const FACET_LIMIT: usize = 30;

/// One filter's column: a value id per device, and each id's value and label.
struct Column {
    ids: Vec<u32>,
    /// Filter value per id (`-` for absent).
    values: Vec<String>,
    labels: Vec<String>,
}

impl Column {
    fn build(devices: &DeviceList, filter: Filter) -> Column {
        let field = filter.field();
        // The column's id of each of the list's value ids (`u32::MAX`: not met yet). Values
        // that differ only by spaces around them are one filter value.
        let mut by_list_id = vec![u32::MAX; devices.value_ids()];
        let mut by_value: HashMap<&str, u32> = HashMap::new();
        let mut values: Vec<String> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        let ids = (0..devices.len())
            .map(|i| {
                let list_id = devices.value_id(i, field);
                let known = by_list_id[list_id as usize];
                if known != u32::MAX {
                    return known;
                }
                let v = devices
                    .value_of(list_id)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .unwrap_or(NONE_VALUE);
                let id = *by_value.entry(v).or_insert_with(|| {
                    values.push(v.to_string());
                    labels.push(label(filter, v, devices.get(i)));
                    (values.len() - 1) as u32
                });
                by_list_id[list_id as usize] = id;
                id
            })
            .collect();
        Column {
            ids,
            values,
            labels,
        }
    }

    fn id_of(&self, value: &str) -> Option<u32> {
        self.values
            .iter()
            .position(|v| v == value)
            .map(|i| i as u32)
    }
}

/// The label shown for a filter value, from the first device that has it.
fn label(filter: Filter, value: &str, d: DeviceRef) -> String {
    if value == NONE_VALUE {
        return match filter {
            Filter::SubMchid => "Merchant's own devices".into(),
            _ => "(not set)".into(),
        };
    }
    match filter {
        Filter::SubMchid => match d.get(Field::SubMerchantShortname) {
            Some(name) if !name.trim().is_empty() => name.to_string(),
            _ => value.to_string(),
        },
        Filter::Category => Table::Category
            .display_name(Some(value), d.get(Field::DeviceCategory))
            .unwrap_or_default(),
        Filter::Class => Table::Class
            .display_name(Some(value), d.get(Field::DeviceClass))
            .unwrap_or_default(),
        Filter::Scene => Table::Scene
            .display_name(Some(value), d.get(Field::AppScene))
            .unwrap_or_default(),
        Filter::Os => value.to_string(),
        Filter::Status => match value {
            "ACTIVATED" => "Activated".into(),
            "INACTIVATED" => "Inactive".into(),
            other => other.into(),
        },
    }
}

/// The sort order of field values, a total order (docs/query.md, "Sort order"): values made of
/// digits only come first, in numeric order at any length (`99` < `100` <
/// `18446744073709551616`; equal numbers such as `099` and `99` by their text, side by side);
/// every other value follows, by its text. Only identical texts compare equal, so equal values
/// always sit together and any sort by this order is consistent.
pub fn compare_values(a: &str, b: &str) -> Ordering {
    fn number(s: &str) -> Option<&str> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.trim_start_matches('0'))
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x
            .len()
            .cmp(&y.len())
            .then_with(|| x.cmp(y))
            .then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The fields the search box looks in (docs/query.md, "Search").
pub const SEARCHED: [Field; 5] = [
    Field::DeviceSn,
    Field::CameraSn,
    Field::DeviceModel,
    Field::MerchantShortname,
    Field::SubMerchantShortname,
];

/// The searched fields' values, lower-cased, each distinct value once, one after another
/// (separated by `\u{1}`, so a match never spans two values).
struct SearchText {
    text: String,
    /// Where each value starts in `text`, and its id in the device list.
    starts: Vec<u32>,
    ids: Vec<u32>,
}

impl SearchText {
    fn build(devices: &DeviceList) -> SearchText {
        let used = devices.used_ids(&SEARCHED);
        let mut out = SearchText {
            text: String::new(),
            starts: Vec::new(),
            ids: Vec::new(),
        };
        // Id 0 is "absent": nothing to find there.
        for id in (1..used.len() as u32).filter(|id| used[*id as usize]) {
            out.starts.push(out.text.len() as u32);
            out.ids.push(id);
            out.text
                .push_str(&devices.value_of(id).unwrap_or_default().to_lowercase());
            out.text.push('\u{1}');
        }
        out.text.shrink_to_fit();
        out
    }

    /// Per device-list value id: whether the value contains `needle` (lower-cased already).
    fn hits(&self, needle: &str, value_ids: usize) -> Vec<bool> {
        let mut hit = vec![false; value_ids];
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let text = self.text.as_bytes();
        let (mut at, mut k) = (0usize, 0usize);
        while let Some(found) = finder.find(&text[at..]) {
            let pos = (at + found) as u32;
            // The value holding the match (matches come in order: walk forward).
            while k + 1 < self.starts.len() && self.starts[k + 1] <= pos {
                k += 1;
            }
            hit[self.ids[k] as usize] = true;
            // On to the next value: one match is enough.
            match self.starts.get(k + 1) {
                Some(next) => at = *next as usize,
                None => break,
            }
        }
        hit
    }
}

/// The order of one field's values.
struct Ranks {
    /// Per device, its value's rank (equal values, equal ranks; absent or blank: `u32::MAX`).
    ranks: Vec<u32>,
    /// How many distinct ranks there are (all below this).
    distinct: u32,
}

/// Everything a query needs from one snapshot, built once.
pub struct SnapshotIndex {
    devices: Arc<DeviceList>,
    columns: Vec<Column>,
    /// Per field: the rank of each device's value, built on the first sort by it.
    ranks: Vec<OnceLock<Ranks>>,
    /// Built on the first search.
    search: OnceLock<SearchText>,
}

impl SnapshotIndex {
    pub fn build(devices: Arc<DeviceList>) -> Self {
        let columns = Filter::ALL
            .iter()
            .map(|f| Column::build(&devices, *f))
            .collect();
        SnapshotIndex {
            devices,
            columns,
            ranks: Field::ALL.iter().map(|_| OnceLock::new()).collect(),
            search: OnceLock::new(),
        }
    }

    pub fn devices(&self) -> &DeviceList {
        &self.devices
    }

    /// Bytes held on the heap by the index (not the list), as built so far.
    pub fn heap_bytes(&self) -> usize {
        let columns: usize = self
            .columns
            .iter()
            .map(|c| {
                c.ids.capacity() * 4
                    + c.values
                        .iter()
                        .chain(&c.labels)
                        .map(String::capacity)
                        .sum::<usize>()
            })
            .sum();
        let ranks: usize = self
            .ranks
            .iter()
            .filter_map(OnceLock::get)
            .map(|r| r.ranks.capacity() * 4)
            .sum();
        let search = self
            .search
            .get()
            .map(|s| s.text.capacity() + (s.starts.capacity() + s.ids.capacity()) * 4)
            .unwrap_or(0);
        columns + ranks + search
    }

    fn column(&self, filter: Filter) -> &Column {
        &self.columns[filter as usize]
    }

    /// Ranks by value: the distinct values are sorted (not the devices), then each device
    /// takes its value's rank.
    fn ranks(&self, field: Field) -> &Ranks {
        self.ranks[field.index()].get_or_init(|| {
            let d = &self.devices;
            let used = d.used_ids(&[field]);
            let text = |id: u32| d.value_of(id).unwrap_or_default();
            let mut ids: Vec<u32> = (1..used.len() as u32)
                .filter(|id| used[*id as usize] && !text(*id).trim().is_empty())
                .collect();
            // Distinct ids hold distinct texts, and only identical texts compare equal.
            ids.sort_unstable_by(|a, b| compare_values(text(*a), text(*b)));
            let mut rank_of = vec![u32::MAX; used.len()];
            for (rank, id) in ids.iter().enumerate() {
                rank_of[*id as usize] = rank as u32;
            }
            Ranks {
                ranks: (0..d.len())
                    .map(|i| rank_of[d.value_id(i, field) as usize])
                    .collect(),
                distinct: ids.len() as u32,
            }
        })
    }

    /// Per device, whether one of its searched fields contains `needle` (lower-cased).
    fn matches(&self, needle: &str) -> Vec<bool> {
        let d = &self.devices;
        let hit = self
            .search
            .get_or_init(|| SearchText::build(d))
            .hits(needle, d.value_ids());
        (0..d.len())
            .map(|i| SEARCHED.iter().any(|f| hit[d.value_id(i, *f) as usize]))
            .collect()
    }
}

/// The answer to a query: every matching device in display order, and the counts.
#[derive(Debug)]
pub struct QueryOutput {
    /// Indexes into the snapshot's devices, in display order (grouped, then sorted).
    pub order: Vec<u32>,
    pub facets: Vec<Facet>,
    /// Groups in display order with their counts (empty when not grouped).
    pub groups: Vec<GroupCount>,
    /// Per row of `order`, the index of its group in `groups` (empty when not grouped).
    pub row_groups: Vec<u32>,
}

impl QueryOutput {
    pub fn total(&self) -> usize {
        self.order.len()
    }

    /// The page actually shown (clamped to 1..=last) and its range in `order`.
    pub fn page_range(&self, page: u32, per_page: u32) -> (u32, std::ops::Range<usize>) {
        let per = per_page.max(1) as usize;
        let pages = self.order.len().div_ceil(per).max(1);
        let page = (page.max(1) as usize).min(pages);
        let start = (page - 1) * per;
        (page as u32, start..(start + per).min(self.order.len()))
    }
}

/// Runs `query` over the index. Paging is left to the caller (`page_range`).
pub fn run(index: &SnapshotIndex, query: &DeviceQuery) -> QueryOutput {
    let n = index.devices.len();
    // Per filter: which value ids are selected (None: no filter).
    let selected: Vec<Option<Vec<bool>>> = Filter::ALL
        .iter()
        .map(|f| {
            let values = query.values(*f);
            if values.is_empty() {
                return None;
            }
            let col = index.column(*f);
            let mut sel = vec![false; col.values.len()];
            for v in values {
                if let Some(id) = col.id_of(v) {
                    sel[id as usize] = true;
                }
            }
            Some(sel)
        })
        .collect();
    let needle = query.q.trim().to_lowercase();
    let found = (!needle.is_empty()).then(|| index.matches(&needle));

    let all_filters: u8 = (1 << Filter::ALL.len()) - 1;
    let mut facet_counts: Vec<Vec<usize>> = index
        .columns
        .iter()
        .map(|c| vec![0; c.values.len()])
        .collect();
    let mut matched: Vec<u32> = Vec::with_capacity(n);
    for i in 0..n {
        if found.as_ref().is_some_and(|f| !f[i]) {
            continue;
        }
        let mut passed: u8 = 0;
        for (k, sel) in selected.iter().enumerate() {
            let ok = match sel {
                None => true,
                Some(sel) => sel[index.columns[k].ids[i] as usize],
            };
            passed |= (ok as u8) << k;
        }
        if passed == all_filters {
            matched.push(i as u32);
        }
        // Counted for facet k if it passes every filter but k.
        for (k, counts) in facet_counts.iter_mut().enumerate() {
            if passed | (1 << k) == all_filters {
                counts[index.columns[k].ids[i] as usize] += 1;
            }
        }
    }

    let facets = Filter::ALL
        .iter()
        .map(|f| facet(index.column(*f), &facet_counts[*f as usize], *f, query))
        .collect();

    // Order: by group, then by the sort field, then the API's order.
    let group_col = query.group.map(|g| index.column(g.filter()));
    let group_rank: Vec<u32> = match group_col {
        Some(col) => {
            let mut ids: Vec<u32> = (0..col.values.len() as u32).collect();
            ids.sort_by(|a, b| group_order(&col.values[*a as usize], &col.values[*b as usize]));
            let mut rank = vec![0u32; ids.len()];
            for (r, id) in ids.iter().enumerate() {
                rank[*id as usize] = r as u32;
            }
            rank
        }
        None => Vec::new(),
    };
    let sort_ranks = query.sort.map(|field| index.ranks(field));
    if group_col.is_some() || sort_ranks.is_some() {
        // Each row's key: its group's rank, then its value's rank (absent values last in both
        // directions), then its place in the API's order (so equal keys keep that order), packed
        // into one integer so a plain unstable sort of integers does it.
        let groups = group_rank.len().max(1) as u64;
        let values = sort_ranks.map(|r| r.distinct as u64 + 1).unwrap_or(1);
        let value_key = |i: u32| -> u64 {
            match sort_ranks {
                None => 0,
                Some(r) => match (r.ranks[i as usize], query.dir) {
                    (u32::MAX, _) => r.distinct as u64,
                    (v, SortDir::Asc) => v as u64,
                    (v, SortDir::Desc) => (r.distinct - 1 - v) as u64,
                },
            }
        };
        let group_key = |i: u32| -> u64 {
            group_col
                .map(|c| group_rank[c.ids[i as usize] as usize] as u64)
                .unwrap_or(0)
        };
        sort_rows(&mut matched, n, groups, values, group_key, value_key);
    }

    let (groups, row_groups) = match (query.group, group_col) {
        (Some(g), Some(col)) => {
            let mut groups: Vec<GroupCount> = Vec::new();
            let mut row_groups = Vec::with_capacity(matched.len());
            let mut last: Option<u32> = None;
            for i in &matched {
                let id = col.ids[*i as usize];
                if last != Some(id) {
                    groups.push(GroupCount {
                        value: col.values[id as usize].clone(),
                        label: group_label(g, col, id),
                        count: 0,
                    });
                    last = Some(id);
                }
                let gi = groups.len() - 1;
                groups[gi].count += 1;
                row_groups.push(gi as u32);
            }
            (groups, row_groups)
        }
        _ => (Vec::new(), Vec::new()),
    };
    QueryOutput {
        order: matched,
        facets,
        groups,
        row_groups,
    }
}

/// Orders `rows` (indexes below `n`) by group key (below `groups`), then value key (below
/// `values`), then index. The three fit one `u64` unless the list is huge (then a slower
/// sort of tuples does the same).
fn sort_rows(
    rows: &mut [u32],
    n: usize,
    groups: u64,
    values: u64,
    group_key: impl Fn(u32) -> u64,
    value_key: impl Fn(u32) -> u64,
) {
    let bits = |n: u64| 64 - n.saturating_sub(1).leading_zeros();
    let (row_bits, value_bits) = (bits(n as u64), bits(values));
    if row_bits + value_bits + bits(groups) > 64 {
        rows.sort_by_cached_key(|i| (group_key(*i), value_key(*i), *i));
        return;
    }
    let mut keys: Vec<u64> = rows
        .iter()
        .map(|i| {
            // A shift by 64 (no bits left for the group) is of a key that is 0.
            group_key(*i)
                .checked_shl(value_bits + row_bits)
                .unwrap_or(0)
                | (value_key(*i) << row_bits)
                | *i as u64
        })
        .collect();
    keys.sort_unstable();
    let row_mask = (1u64 << row_bits) - 1;
    for (row, k) in rows.iter_mut().zip(keys) {
        *row = (k & row_mask) as u32;
    }
}

fn group_label(g: GroupBy, col: &Column, id: u32) -> String {
    let value = &col.values[id as usize];
    let label = &col.labels[id as usize];
    match g {
        GroupBy::SubMerchant if value != NONE_VALUE && label != value => {
            format!("{label} ({value})")
        }
        _ => label.clone(),
    }
}

/// Groups in value order: numbers numerically, absent values last.
fn group_order(a: &str, b: &str) -> Ordering {
    match (a == NONE_VALUE, b == NONE_VALUE) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => compare_values(a, b),
    }
}

fn facet(col: &Column, counts: &[usize], filter: Filter, query: &DeviceQuery) -> Facet {
    let mut ids: Vec<usize> = (0..col.values.len()).filter(|id| counts[*id] > 0).collect();
    ids.sort_by(|a, b| {
        counts[*b]
            .cmp(&counts[*a])
            .then_with(|| group_order(&col.values[*a], &col.values[*b]))
    });
    let total = ids.len();
    let mut values: Vec<FacetValue> = ids
        .iter()
        .take(FACET_LIMIT)
        .map(|id| FacetValue {
            value: col.values[*id].clone(),
            label: col.labels[*id].clone(),
            count: counts[*id],
        })
        .collect();
    // Selected values stay visible (even with a zero count), so they can be unselected.
    for v in query.values(filter) {
        if !values.iter().any(|fv| &fv.value == v) {
            let (label, count) = match col.id_of(v) {
                Some(id) => (col.labels[id as usize].clone(), counts[id as usize]),
                None => (v.clone(), 0),
            };
            values.push(FacetValue {
                value: v.clone(),
                label,
                count,
            });
        }
    }
    let shown = values.iter().filter(|v| v.count > 0).count();
    Facet {
        filter,
        values,
        more: total.saturating_sub(shown),
    }
}

/// Devices of `order` counted by the values of `filter`, most first (the summary chart).
pub fn counts_by(index: &SnapshotIndex, order: &[u32], filter: Filter) -> Vec<GroupCount> {
    let col = index.column(filter);
    let mut counts = vec![0usize; col.values.len()];
    for i in order {
        counts[col.ids[*i as usize] as usize] += 1;
    }
    let mut out: Vec<GroupCount> = (0..col.values.len())
        .filter(|id| counts[*id] > 0)
        .map(|id| GroupCount {
            value: col.values[id].clone(),
            label: col.labels[id].clone(),
            count: counts[id],
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| group_order(&a.value, &b.value))
    });
    out
}

/// Sub-merchants whose id starts with, or whose name contains, `text` (for the searchable
/// select), counted as facets are. At most `limit`.
pub fn search_sub_merchants(
    index: &SnapshotIndex,
    query: &DeviceQuery,
    text: &str,
    limit: usize,
) -> Vec<FacetValue> {
    let mut q = query.clone();
    q.filters[Filter::SubMchid as usize].clear();
    let out = run(index, &q);
    let col = index.column(Filter::SubMchid);
    let needle = text.trim().to_lowercase();
    let mut counts = vec![0usize; col.values.len()];
    for i in &out.order {
        counts[col.ids[*i as usize] as usize] += 1;
    }
    let mut hits: Vec<FacetValue> = (0..col.values.len())
        .filter(|id| counts[*id] > 0)
        .filter(|id| {
            needle.is_empty()
                || col.values[*id].starts_with(&needle)
                || col.labels[*id].to_lowercase().contains(&needle)
        })
        .map(|id| FacetValue {
            value: col.values[id].clone(),
            label: col.labels[id].clone(),
            count: counts[id],
        })
        .collect();
    hits.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Device;
    use crate::simulator::dataset::{generate, DatasetSpec};

    fn index(n: usize) -> SnapshotIndex {
        SnapshotIndex::build(Arc::new(DeviceList::from(generate(&DatasetSpec {
            devices: n,
            ..Default::default()
        }))))
    }

    fn q(s: &str) -> DeviceQuery {
        let (q, notices) = DeviceQuery::parse(s);
        assert!(notices.is_empty(), "{notices:?}");
        q
    }

    /// The same answer computed the slow, obvious way.
    fn naive(devices: &[Device], query: &DeviceQuery) -> Vec<u32> {
        (0..devices.len() as u32)
            .filter(|i| {
                let d = &devices[*i as usize];
                Filter::ALL.iter().all(|f| {
                    let vals = query.values(*f);
                    let v = d.get(f.field()).unwrap_or(NONE_VALUE);
                    vals.is_empty() || vals.iter().any(|x| x == v)
                }) && (query.q.is_empty()
                    || [
                        &d.device_sn,
                        &d.camera_sn,
                        &d.device_model,
                        &d.merchant_shortname,
                        &d.sub_merchant_shortname,
                    ]
                    .iter()
                    .any(|f| {
                        f.as_deref()
                            .is_some_and(|s| s.to_lowercase().contains(&query.q.to_lowercase()))
                    }))
            })
            .collect()
    }

    #[test]
    fn no_query_is_everything_in_the_api_order() {
        let idx = index(500);
        let out = run(&idx, &DeviceQuery::default());
        assert_eq!(out.order, (0..500).collect::<Vec<u32>>());
        assert!(out.groups.is_empty());
    }

    #[test]
    fn each_filter_alone_and_combined_matches_the_naive_answer() {
        let idx = index(3_000);
        let d = &idx.devices().to_vec();
        let sub = d.iter().find_map(|d| d.sub_mchid.clone()).unwrap();
        for s in [
            format!("sub_mchid={sub}"),
            "sub_mchid=-".into(),
            "category=2".into(),
            "category=2&category=1".into(),
            "class=101".into(),
            "os=LINUX".into(),
            "status=INACTIVATED".into(),
            "scene=3".into(),
            "scene=-".into(),
            "q=hsa1".into(),
            "q=便利店".into(),
            format!("sub_mchid={sub}&category=2&status=ACTIVATED"),
            "os=ANDROID&scene=1&q=pro".into(),
            "class=99999".into(),
        ] {
            let query = q(&s);
            assert_eq!(run(&idx, &query).order, naive(d, &query), "{s}");
        }
        assert!(run(&idx, &q("class=99999")).order.is_empty());
    }

    #[test]
    fn facets_count_as_if_their_own_filter_were_cleared() {
        let idx = index(3_000);
        let query = q("os=LINUX&status=ACTIVATED");
        let out = run(&idx, &query);
        let os = &out.facets[Filter::Os as usize];
        // OS counts ignore the OS filter but keep the status filter.
        let android = os.values.iter().find(|v| v.value == "ANDROID").unwrap();
        assert_eq!(
            android.count,
            naive(&idx.devices().to_vec(), &q("os=ANDROID&status=ACTIVATED")).len()
        );
        let linux = os.values.iter().find(|v| v.value == "LINUX").unwrap();
        assert_eq!(linux.count, out.total());
        // Other facets count within the full filter.
        let status: usize = out.facets[Filter::Category as usize]
            .values
            .iter()
            .map(|v| v.count)
            .sum();
        assert_eq!(status, out.total());
        // Labels come from the API names or the tables.
        let cats = &run(&idx, &DeviceQuery::default()).facets[Filter::Category as usize];
        assert!(cats
            .values
            .iter()
            .any(|v| v.value == "2" && v.label == "桌面收银设备"));
        assert!(cats
            .values
            .iter()
            .any(|v| v.value == "15" && v.label == "未知 (15)"));
    }

    #[test]
    fn selected_values_stay_listed_and_big_facets_say_how_many_more() {
        let idx = index(3_000);
        let out = run(&idx, &q("sub_mchid=1234567890&os=LINUX"));
        let subs = &out.facets[Filter::SubMchid as usize];
        assert!(subs
            .values
            .iter()
            .any(|v| v.value == "1234567890" && v.count == 0));
        assert!(
            subs.more > 0,
            "3,000 devices have more than 30 sub-merchants"
        );
        assert!(subs.values.len() <= FACET_LIMIT + 1);
    }

    #[test]
    fn group_counts_add_up_and_rows_come_in_group_order() {
        let idx = index(3_000);
        for g in ["category", "class", "os", "sub_merchant"] {
            let out = run(&idx, &q(&format!("group={g}&status=ACTIVATED")));
            assert_eq!(
                out.groups.iter().map(|g| g.count).sum::<usize>(),
                out.total(),
                "{g}"
            );
            assert_eq!(out.row_groups.len(), out.total());
            assert!(
                out.row_groups.windows(2).all(|w| w[0] <= w[1]),
                "rows ordered by group: {g}"
            );
            let values: Vec<&str> = out.groups.iter().map(|g| g.value.as_str()).collect();
            let mut sorted = values.clone();
            sorted.sort_by(|a, b| group_order(a, b));
            assert_eq!(values, sorted, "groups in value order");
        }
        let cat = run(&idx, &q("group=category"));
        assert_eq!(cat.groups[0].value, "0");
        assert!(
            cat.groups.iter().position(|g| g.value == "2")
                < cat.groups.iter().position(|g| g.value == "10")
        );
        let subs = run(&idx, &q("group=sub_merchant"));
        assert_eq!(subs.groups.last().unwrap().label, "Merchant's own devices");
    }

    #[test]
    fn sorting_is_stable_numeric_aware_and_puts_absent_values_last() {
        let idx = index(2_000);
        let d = &idx.devices().to_vec();
        for dir in ["asc", "desc"] {
            let out = run(&idx, &q(&format!("sort=activation_time&dir={dir}")));
            let times: Vec<Option<&str>> = out
                .order
                .iter()
                .map(|i| d[*i as usize].activation_time.as_deref())
                .collect();
            let present: Vec<&str> = times.iter().flatten().copied().collect();
            let mut expected = present.clone();
            expected.sort();
            if dir == "desc" {
                expected.reverse();
            }
            assert_eq!(present, expected, "{dir}");
            let first_absent = times.iter().position(Option::is_none).unwrap();
            assert!(
                times[first_absent..].iter().all(Option::is_none),
                "absent last ({dir})"
            );
            // Ties keep the API's order.
            for w in out.order.windows(2) {
                if d[w[0] as usize].activation_time == d[w[1] as usize].activation_time {
                    assert!(w[0] < w[1]);
                }
            }
        }
        let codes = run(&idx, &q("sort=device_class_code"));
        let classes: Vec<u64> = codes
            .order
            .iter()
            .map(|i| {
                d[*i as usize]
                    .device_class_code
                    .as_deref()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            classes.windows(2).all(|w| w[0] <= w[1]),
            "numeric, not text, order"
        );
        // Grouped and sorted: sorted within each group.
        let gs = run(&idx, &q("group=os&sort=device_sn&dir=desc"));
        for w in gs.order.windows(2).zip(gs.row_groups.windows(2)) {
            if w.1[0] == w.1[1] {
                assert!(d[w.0[0] as usize].device_sn >= d[w.0[1] as usize].device_sn);
            }
        }
    }

    #[test]
    fn packed_sort_keys_order_as_the_tuples_do_at_every_width() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (n, groups, values) in [
            (1usize, 1u64, 1u64),
            (2, 1, 2),
            (1_000, 3, 17),
            (5_000, 1, 4_001),
            (4_096, 64, 4_097),
            // 20 + 22 + 23 bits: more than 64, the tuple sort.
            (1 << 20, 1 << 22, 1 << 23),
        ] {
            let g: Vec<u64> = (0..n).map(|_| rng.gen_range(0..groups)).collect();
            let v: Vec<u64> = (0..n).map(|_| rng.gen_range(0..values)).collect();
            let mut rows: Vec<u32> = (0..n as u32).filter(|i| i % 3 != 1).collect();
            let mut want = rows.clone();
            want.sort_by_key(|i| (g[*i as usize], v[*i as usize], *i));
            sort_rows(
                &mut rows,
                n,
                groups,
                values,
                |i| g[i as usize],
                |i| v[i as usize],
            );
            assert_eq!(rows, want, "n {n}, groups {groups}, values {values}");
        }
    }

    #[test]
    fn mixed_digits_and_text_sort_in_one_total_order() {
        let models = [
            Some("5510R"),
            Some("100"),
            None,
            Some("99"),
            Some(""),
            Some("18446744073709551616"),
            Some("099"),
            Some("abc"),
            Some("  "),
            Some("100"),
            Some("0"),
        ];
        let devices: Vec<Device> = models
            .iter()
            .enumerate()
            .map(|(i, m)| Device {
                device_sn: Some(format!("SN{i:02}")),
                device_model: m.map(str::to_string),
                ..Default::default()
            })
            .collect();
        let idx = SnapshotIndex::build(Arc::new(DeviceList::from(devices)));
        let sorted = |dir: &str| -> Vec<Option<String>> {
            run(&idx, &q(&format!("sort=device_model&dir={dir}")))
                .order
                .iter()
                .map(|i| {
                    idx.devices()
                        .value(*i as usize, Field::DeviceModel)
                        .map(str::to_string)
                })
                .collect()
        };
        let s = |v: &[Option<&str>]| -> Vec<Option<String>> {
            v.iter().map(|x| x.map(str::to_string)).collect()
        };
        // Numbers by value at any length (099 beside 99), then text; blanks with the absent.
        assert_eq!(
            sorted("asc"),
            s(&[
                Some("0"),
                Some("099"),
                Some("99"),
                Some("100"),
                Some("100"),
                Some("18446744073709551616"),
                Some("5510R"),
                Some("abc"),
                None,
                Some(""),
                Some("  "),
            ])
        );
        assert_eq!(
            sorted("desc"),
            s(&[
                Some("abc"),
                Some("5510R"),
                Some("18446744073709551616"),
                Some("100"),
                Some("100"),
                Some("99"),
                Some("099"),
                Some("0"),
                None,
                Some(""),
                Some("  "),
            ]),
            "reversed, ties in the API's order, absent still last"
        );
        // The order that was not transitive before: 99 < 100 < 5510R, and 99 < 5510R.
        assert_eq!(compare_values("99", "100"), Ordering::Less);
        assert_eq!(compare_values("100", "5510R"), Ordering::Less);
        assert_eq!(compare_values("99", "5510R"), Ordering::Less);
    }

    #[test]
    fn chart_counts_follow_the_filters() {
        let idx = index(2_000);
        let out = run(&idx, &q("os=LINUX"));
        let by_cat = counts_by(&idx, &out.order, Filter::Category);
        assert_eq!(by_cat.iter().map(|g| g.count).sum::<usize>(), out.total());
        assert!(by_cat.windows(2).all(|w| w[0].count >= w[1].count));
        let grouped = run(&idx, &q("os=LINUX&group=category"));
        for g in &grouped.groups {
            assert_eq!(
                by_cat.iter().find(|c| c.value == g.value).unwrap().count,
                g.count
            );
        }
    }

    #[test]
    fn paging_edges() {
        let idx = index(123);
        let out = run(&idx, &DeviceQuery::default());
        assert_eq!(out.page_range(1, 50), (1, 0..50));
        assert_eq!(out.page_range(3, 50), (3, 100..123), "last partial page");
        assert_eq!(
            out.page_range(9, 50),
            (3, 100..123),
            "past the end: the last page"
        );
        assert_eq!(out.page_range(0, 50), (1, 0..50));
        let empty = run(&idx, &q("class=99999"));
        assert_eq!(empty.page_range(5, 50), (1, 0..0));
    }

    #[test]
    fn sub_merchant_search_finds_by_id_prefix_or_name() {
        let idx = index(3_000);
        let d = &idx.devices().to_vec();
        let some = d
            .iter()
            .find(|d| {
                d.sub_mchid.is_some()
                    && d.sub_merchant_shortname
                        .as_deref()
                        .is_some_and(|n| n.contains("便利店"))
            })
            .unwrap();
        let sub = some.sub_mchid.clone().unwrap();
        let by_id = search_sub_merchants(&idx, &DeviceQuery::default(), &sub[..6], 50);
        assert!(by_id.iter().all(|v| v.value.starts_with(&sub[..6])));
        assert!(by_id.iter().any(|v| v.value == sub));
        let by_name = search_sub_merchants(&idx, &DeviceQuery::default(), "便利店", 500);
        assert!(by_name.iter().any(|v| v.value == sub));
        assert!(by_name.iter().all(|v| v.label.contains("便利店")));
        let n = naive(d, &q(&format!("sub_mchid={sub}"))).len();
        assert_eq!(by_id.iter().find(|v| v.value == sub).unwrap().count, n);
    }
}
