//! The query's answer computed the slow, obvious way, straight from docs/query.md, for tests
//! to compare the engine (`query::apply::run`: interned columns, ranks, packed keys) and
//! everything built on it (the grid, the exports) with.

use wxpay_devices::model::Device;
use wxpay_devices::query::apply::{compare_values, SEARCHED};
use wxpay_devices::query::{DeviceQuery, Filter, SortDir, NONE_VALUE};

/// A device's value for a filter: trimmed, "-" when missing or blank.
fn filter_value(d: &Device, f: Filter) -> &str {
    d.get(f.field())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(NONE_VALUE)
}

/// The rows of the view, in its order (indexes into `devices`, the API's order).
pub fn naive_order<'a>(devices: &'a [Device], q: &DeviceQuery) -> Vec<u32> {
    let needle = q.q.trim().to_lowercase();
    let mut rows: Vec<u32> = (0..devices.len() as u32)
        .filter(|i| {
            let d = &devices[*i as usize];
            let filtered = Filter::ALL.iter().all(|f| {
                let wanted = q.values(*f);
                wanted.is_empty() || wanted.iter().any(|w| w == filter_value(d, *f))
            });
            let found = needle.is_empty()
                || SEARCHED.iter().any(|f| {
                    d.get(*f)
                        .is_some_and(|v| v.to_lowercase().contains(&needle))
                });
            filtered && found
        })
        .collect();
    // A stable sort: ties keep the API's order.
    rows.sort_by(|a, b| {
        let (a, b): (&'a Device, &'a Device) = (&devices[*a as usize], &devices[*b as usize]);
        let by_group = match q.group {
            None => std::cmp::Ordering::Equal,
            Some(g) => {
                let (x, y) = (filter_value(a, g.filter()), filter_value(b, g.filter()));
                // "Not set" last, the rest in the sort order.
                (x == NONE_VALUE)
                    .cmp(&(y == NONE_VALUE))
                    .then_with(|| compare_values(x, y))
            }
        };
        by_group.then_with(|| match q.sort {
            None => std::cmp::Ordering::Equal,
            Some(field) => {
                let value = |d: &'a Device| d.get(field).filter(|v| !v.trim().is_empty());
                match (value(a), value(b)) {
                    (None, None) => std::cmp::Ordering::Equal,
                    // Missing, empty or blank last, in both directions.
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => match q.dir {
                        SortDir::Asc => compare_values(x, y),
                        SortDir::Desc => compare_values(y, x),
                    },
                }
            }
        })
    });
    rows
}
