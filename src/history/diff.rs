//! What changed between two snapshots (docs/history.md): devices `added`, `removed`, and one
//! `changed` event per changed field, old value to new. Devices are matched by `device_sn`;
//! devices without one are matched by their whole content (so a change to such a device reads
//! as one removed and one added). A snapshot that is not complete records no `removed` events:
//! a device it lacks may simply have been missed.

use crate::device_list::{DeviceList, DeviceListBuilder, DeviceRef};
use crate::model::{Device, Field};
use std::collections::HashMap;

pub use crate::changes::ChangeKind;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// For `changed`: the field, its value before and after (`None`: absent).
    pub field: Option<Field>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// The device as it is now (as it was, for `removed`).
    pub device: Device,
}

/// How a device is recognised from one snapshot to the next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    Serial(&'a str),
    Content(DeviceRef<'a>),
}

fn key(d: DeviceRef<'_>) -> Key<'_> {
    match d.serial() {
        Some(sn) => Key::Serial(sn),
        None => Key::Content(d),
    }
}

/// The events that turn `before` into `after`. `complete`: whether `after` is a complete
/// snapshot (else no `removed` events). Order: removed, then added and changed, each in the
/// order of the snapshot they come from.
pub fn diff(before: &DeviceList, after: &DeviceList, complete: bool) -> Vec<Change> {
    // Devices of `before` by key; devices without a serial may repeat, so keep a count.
    let mut old: HashMap<Key, (usize, DeviceRef)> = HashMap::with_capacity(before.len());
    for d in before.iter() {
        old.entry(key(d)).or_insert((0, d)).0 += 1;
    }
    let mut changes = Vec::new();
    let mut added = Vec::new();
    for d in after.iter() {
        match old.get_mut(&key(d)) {
            Some((n, was)) if *n > 0 => {
                *n -= 1;
                // Equal value ids would need the same list; compare the texts.
                let (a, b) = (was.fields(), d.fields());
                if a == b {
                    continue;
                }
                let device = d.to_device();
                for f in Field::ALL {
                    let (a, b) = (a[f.index()], b[f.index()]);
                    if a != b {
                        changes.push(Change {
                            kind: ChangeKind::Changed,
                            field: Some(f),
                            old_value: a.map(str::to_string),
                            new_value: b.map(str::to_string),
                            device: device.clone(),
                        });
                    }
                }
            }
            _ => added.push(Change {
                kind: ChangeKind::Added,
                field: None,
                old_value: None,
                new_value: None,
                device: d.to_device(),
            }),
        }
    }
    let mut out = Vec::with_capacity(changes.len() + added.len());
    if complete {
        // What is left of `before`, in its order.
        for d in before.iter() {
            if let Some((n, _)) = old.get_mut(&key(d)) {
                if *n > 0 {
                    *n -= 1;
                    out.push(Change {
                        kind: ChangeKind::Removed,
                        field: None,
                        old_value: None,
                        new_value: None,
                        device: d.to_device(),
                    });
                }
            }
        }
    }
    out.extend(added);
    out.extend(changes);
    out
}

/// `before` with `changes` applied: `diff(a, b, true)` applied to `a` holds the devices of `b`
/// (the property tests check it; order aside). One pass over `before`: removed devices left
/// out, changed ones rewritten, added ones at the end.
pub fn apply(before: &DeviceList, changes: &[Change]) -> DeviceList {
    let mut removed: HashMap<[Option<&str>; 16], usize> = HashMap::new();
    // Per serial, as sent: the fields to set, in order.
    let mut changed: HashMap<Option<&str>, Vec<(Field, Option<&str>)>> = HashMap::new();
    for c in changes {
        match (c.kind, c.field) {
            (ChangeKind::Removed, _) => *removed.entry(c.device.fields()).or_default() += 1,
            (ChangeKind::Changed, Some(f)) => changed
                .entry(c.device.device_sn.as_deref())
                .or_default()
                .push((f, c.new_value.as_deref())),
            _ => {}
        }
    }
    let mut out = DeviceListBuilder::with_capacity(before.len());
    for d in before.iter() {
        if let Some(n) = removed.get_mut(&d.fields()).filter(|n| **n > 0) {
            *n -= 1;
            continue;
        }
        // The first device with the serial takes the changes.
        match changed.remove(&d.get(Field::DeviceSn)) {
            Some(sets) => {
                let mut device = d.to_device();
                for (f, v) in sets {
                    set(&mut device, f, v.map(str::to_string));
                }
                out.push(&device);
            }
            None => out.push_ref(d),
        }
    }
    for c in changes.iter().filter(|c| c.kind == ChangeKind::Added) {
        out.push(&c.device);
    }
    out.build()
}

fn set(d: &mut Device, f: Field, v: Option<String>) {
    let slot = match f {
        Field::DeviceSn => &mut d.device_sn,
        Field::CameraSn => &mut d.camera_sn,
        Field::DeviceCategoryCode => &mut d.device_category_code,
        Field::DeviceCategory => &mut d.device_category,
        Field::DeviceClassCode => &mut d.device_class_code,
        Field::DeviceClass => &mut d.device_class,
        Field::DeviceModel => &mut d.device_model,
        Field::AppSceneCode => &mut d.app_scene_code,
        Field::AppScene => &mut d.app_scene,
        Field::OperatingSystem => &mut d.operating_system,
        Field::ActivationStatus => &mut d.activation_status,
        Field::ActivationTime => &mut d.activation_time,
        Field::Mchid => &mut d.mchid,
        Field::MerchantShortname => &mut d.merchant_shortname,
        Field::SubMchid => &mut d.sub_mchid,
        Field::SubMerchantShortname => &mut d.sub_merchant_shortname,
    };
    *slot = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(sn: Option<&str>, model: &str) -> Device {
        Device {
            device_sn: sn.map(str::to_string),
            device_model: Some(model.into()),
            ..Default::default()
        }
    }

    #[test]
    fn added_removed_and_one_event_per_changed_field() {
        let before = vec![dev(Some("A"), "m1"), dev(Some("B"), "m1"), dev(None, "x")];
        let mut b2 = dev(Some("B"), "m2");
        b2.sub_mchid = Some("1900000002".into());
        let after = vec![b2.clone(), dev(Some("C"), "m1"), dev(None, "x")];
        let d = diff(&before.into(), &after.clone().into(), true);
        let summary: Vec<(ChangeKind, Option<&str>, Option<Field>)> = d
            .iter()
            .map(|c| (c.kind, c.device.device_sn.as_deref(), c.field))
            .collect();
        assert_eq!(
            summary,
            [
                (ChangeKind::Removed, Some("A"), None),
                (ChangeKind::Added, Some("C"), None),
                (ChangeKind::Changed, Some("B"), Some(Field::DeviceModel)),
                (ChangeKind::Changed, Some("B"), Some(Field::SubMchid)),
            ]
        );
        let model = &d[2];
        assert_eq!(
            (model.old_value.as_deref(), model.new_value.as_deref()),
            (Some("m1"), Some("m2"))
        );
        assert_eq!(d[3].old_value, None, "absent before");
        assert!(
            diff(&after.clone().into(), &after.into(), true).is_empty(),
            "the same list: nothing"
        );
    }

    #[test]
    fn devices_without_a_serial_are_matched_by_content() {
        let before = vec![dev(None, "x"), dev(None, "x"), dev(Some(" "), "y")];
        let after = vec![dev(None, "x"), dev(Some(" "), "z")];
        let d = diff(&before.into(), &after.into(), true);
        let kinds: Vec<ChangeKind> = d.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ChangeKind::Removed, ChangeKind::Removed, ChangeKind::Added],
            "one of two identical ones gone, and the changed one reads as removed + added"
        );
    }

    #[test]
    fn an_incomplete_snapshot_records_no_removals() {
        let before = vec![dev(Some("A"), "m"), dev(Some("B"), "m")];
        let after = vec![dev(Some("B"), "m2"), dev(Some("C"), "m")];
        let d = diff(&before.into(), &after.into(), false);
        assert!(d.iter().all(|c| c.kind != ChangeKind::Removed));
        assert_eq!(d.len(), 2, "{d:?}");
    }
}
