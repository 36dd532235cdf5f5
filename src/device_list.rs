//! The device list as the server holds it: compact and read-only (docs/architecture.md,
//! "The device list in memory"). A list of tens of thousands of devices repeats the same few
//! names, models, codes and sub-merchant ids over and over; a `Device` (16 `Option<String>`)
//! stores each copy again, at some 550 bytes a device. Here every distinct value is stored
//! once, in one string table per list, and a device is 16 value ids (64 bytes), so a
//! 100,000-device list takes about 14 MB instead of 55.
//!
//! Built once ([`DeviceListBuilder`], or `collect()` from devices), then only read: a device
//! is a [`DeviceRef`] (its fields borrowed from the table), or a `Device` again when one leaves
//! the server ([`DeviceRef::to_device`]). It serialises exactly as a list of `Device` does.

use crate::model::{Device, Field};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// Field values, each distinct one stored once. Id 0 is "absent" (`None`); any other id is a
/// value, possibly empty.
#[derive(Clone, Default)]
struct Strings {
    /// Every value's bytes, one after another.
    text: String,
    /// Where value `id` ends in `text` (it starts where value `id - 1` ends); `ends[0] = 0`.
    ends: Vec<u32>,
}

impl Strings {
    fn get(&self, id: u32) -> Option<&str> {
        let id = id as usize;
        if id == 0 {
            return None;
        }
        Some(&self.text[self.ends[id - 1] as usize..self.ends[id] as usize])
    }
}

/// A device list: 16 value ids per device into one table of distinct values.
#[derive(Clone, Default)]
pub struct DeviceList {
    strings: Strings,
    cells: Vec<[u32; 16]>,
}

/// Builds a [`DeviceList`], interning each value as it comes.
pub struct DeviceListBuilder {
    strings: Strings,
    /// Value ids, found by their text's hash.
    ids: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    cells: Vec<[u32; 16]>,
}

impl Default for DeviceListBuilder {
    fn default() -> Self {
        DeviceListBuilder {
            strings: Strings {
                text: String::new(),
                ends: vec![0],
            },
            ids: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            cells: Vec::new(),
        }
    }
}

impl DeviceListBuilder {
    pub fn with_capacity(devices: usize) -> Self {
        let mut b = DeviceListBuilder::default();
        b.cells.reserve_exact(devices);
        b
    }

    /// Room for the devices of `lists` (a sync's pages), so building never grows by doubling
    /// (which holds up to three times the text while it copies).
    pub fn for_lists<'a>(lists: impl Iterator<Item = &'a DeviceList> + Clone) -> Self {
        let mut b = DeviceListBuilder::default();
        b.cells
            .reserve_exact(lists.clone().map(DeviceList::len).sum());
        b.strings
            .text
            .reserve_exact(lists.clone().map(|l| l.strings.text.len()).sum());
        b.strings
            .ends
            .reserve_exact(lists.map(|l| l.strings.ends.len()).sum());
        b
    }

    fn intern(&mut self, value: Option<&str>) -> u32 {
        let Some(value) = value else { return 0 };
        let hash = self.hasher.hash_one(value);
        let strings = &self.strings;
        if let Some(id) = self.ids.find(hash, |id| strings.get(*id) == Some(value)) {
            return *id;
        }
        let id = self.strings.ends.len() as u32;
        self.strings.text.push_str(value);
        let end = u32::try_from(self.strings.text.len())
            .expect("a device list's distinct values fit in 4 GB");
        self.strings.ends.push(end);
        let (strings, hasher) = (&self.strings, &self.hasher);
        self.ids.insert_unique(hash, id, |id| {
            hasher.hash_one(strings.get(*id).unwrap_or_default())
        });
        id
    }

    pub fn push(&mut self, device: &Device) {
        let cells = Field::ALL.map(|f| self.intern(f.of(device)));
        self.cells.push(cells);
    }

    /// A device of another list.
    pub fn push_ref(&mut self, device: DeviceRef) {
        let cells = device.fields().map(|v| self.intern(v));
        self.cells.push(cells);
    }

    pub fn build(self) -> DeviceList {
        DeviceList {
            strings: Strings {
                text: String::from_utf8(exact(self.strings.text.into_bytes()))
                    .expect("whole strings were pushed"),
                ends: exact(self.strings.ends),
            },
            cells: exact(self.cells),
        }
    }
}

/// `v` without room to spare, when the spare room is worth a copy (more than an eighth).
/// Copied, not shrunk in place: an allocator may keep a block that shrinks by less than
/// half (mimalloc, the server's, does), so the room would stay taken.
fn exact<T: Copy>(v: Vec<T>) -> Vec<T> {
    if v.capacity() - v.len() > v.len() / 8 {
        v.as_slice().to_vec()
    } else {
        v
    }
}

impl DeviceList {
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Device `i` (panics past the end, as a slice does).
    pub fn get(&self, i: usize) -> DeviceRef<'_> {
        assert!(i < self.cells.len(), "device {i} of {}", self.cells.len());
        DeviceRef { list: self, i }
    }

    /// The value of `field` in device `i`.
    pub fn value(&self, i: usize, field: Field) -> Option<&str> {
        self.strings.get(self.cells[i][field.index()])
    }

    /// The id of device `i`'s value of `field` (0: absent). Equal ids, equal values, and the
    /// other way round: the query index groups devices by these.
    pub fn value_id(&self, i: usize, field: Field) -> u32 {
        self.cells[i][field.index()]
    }

    /// The value with this id (`None` for 0).
    pub fn value_of(&self, id: u32) -> Option<&str> {
        self.strings.get(id)
    }

    /// Per value id: whether one of `fields` holds it in some device.
    pub fn used_ids(&self, fields: &[Field]) -> Vec<bool> {
        let mut used = vec![false; self.value_ids()];
        for cells in &self.cells {
            for f in fields {
                used[cells[f.index()] as usize] = true;
            }
        }
        used
    }

    /// How many distinct values the list holds, plus one (ids are below this).
    pub fn value_ids(&self) -> usize {
        self.strings.ends.len()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = DeviceRef<'_>> + '_ {
        (0..self.cells.len()).map(move |i| DeviceRef { list: self, i })
    }

    pub fn to_vec(&self) -> Vec<Device> {
        self.iter().map(|d| d.to_device()).collect()
    }

    /// Bytes held on the heap (the benchmarks' memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.strings.text.capacity()
            + self.strings.ends.capacity() * std::mem::size_of::<u32>()
            + self.cells.capacity() * std::mem::size_of::<[u32; 16]>()
    }
}

impl From<Vec<Device>> for DeviceList {
    fn from(devices: Vec<Device>) -> Self {
        devices.iter().collect()
    }
}

impl<'a> FromIterator<DeviceRef<'a>> for DeviceList {
    fn from_iter<I: IntoIterator<Item = DeviceRef<'a>>>(devices: I) -> Self {
        let devices = devices.into_iter();
        let mut b = DeviceListBuilder::with_capacity(devices.size_hint().0);
        for d in devices {
            b.push_ref(d);
        }
        b.build()
    }
}

impl<'a> FromIterator<&'a Device> for DeviceList {
    fn from_iter<I: IntoIterator<Item = &'a Device>>(devices: I) -> Self {
        let devices = devices.into_iter();
        let mut b = DeviceListBuilder::with_capacity(devices.size_hint().0);
        for d in devices {
            b.push(d);
        }
        b.build()
    }
}

impl std::fmt::Debug for DeviceList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceList({} devices)", self.len())
    }
}

impl PartialEq for DeviceList {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for DeviceList {}

/// One device of a [`DeviceList`], its fields borrowed from the list.
#[derive(Clone, Copy)]
pub struct DeviceRef<'a> {
    list: &'a DeviceList,
    i: usize,
}

impl<'a> DeviceRef<'a> {
    pub fn get(&self, field: Field) -> Option<&'a str> {
        self.list.value(self.i, field)
    }

    /// Its identity from one reading of the list to the next: its serial, trimmed, unless it
    /// has none (absent or blank). The sync keeps each serial once; the history matches by it.
    pub fn serial(&self) -> Option<&'a str> {
        self.get(Field::DeviceSn)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// All 16 fields in the documentation's order.
    pub fn fields(&self) -> [Option<&'a str>; 16] {
        let cells = &self.list.cells[self.i];
        cells.map(|id| self.list.strings.get(id))
    }

    pub fn to_device(&self) -> Device {
        let v = |f: Field| self.get(f).map(str::to_string);
        Device {
            device_sn: v(Field::DeviceSn),
            camera_sn: v(Field::CameraSn),
            device_category_code: v(Field::DeviceCategoryCode),
            device_category: v(Field::DeviceCategory),
            device_class_code: v(Field::DeviceClassCode),
            device_class: v(Field::DeviceClass),
            device_model: v(Field::DeviceModel),
            app_scene_code: v(Field::AppSceneCode),
            app_scene: v(Field::AppScene),
            operating_system: v(Field::OperatingSystem),
            activation_status: v(Field::ActivationStatus),
            activation_time: v(Field::ActivationTime),
            mchid: v(Field::Mchid),
            merchant_shortname: v(Field::MerchantShortname),
            sub_mchid: v(Field::SubMchid),
            sub_merchant_shortname: v(Field::SubMerchantShortname),
        }
    }
}

impl PartialEq for DeviceRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for DeviceRef<'_> {}

/// By content, as `Device` hashes (devices of different lists compare by their values).
impl std::hash::Hash for DeviceRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fields().hash(state)
    }
}

impl std::fmt::Debug for DeviceRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_device().fmt(f)
    }
}

/// As `Device` serialises: an object of the fields present.
impl Serialize for DeviceRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.fields();
        let mut map = s.serialize_map(Some(fields.iter().flatten().count()))?;
        for (f, v) in Field::ALL.iter().zip(fields) {
            if let Some(v) = v {
                map.serialize_entry(f.name(), v)?;
            }
        }
        map.end()
    }
}

/// As a list of `Device`.
impl Serialize for DeviceList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// From a list of `Device`, interned one device at a time (never the whole list as `Device`s).
impl<'de> Deserialize<'de> for DeviceList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DeviceList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of devices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DeviceList, A::Error> {
                let mut b = DeviceListBuilder::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(device) = seq.next_element::<Device>()? {
                    b.push(&device);
                }
                Ok(b.build())
            }
        }
        d.deserialize_seq(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::dataset::{generate, DatasetSpec};

    #[test]
    fn holds_every_device_as_it_was_absent_and_empty_values_apart() {
        let mut devices = generate(&DatasetSpec {
            devices: 2_000,
            ..Default::default()
        });
        devices.push(Device::default());
        devices.push(Device {
            device_sn: Some(String::new()),
            device_model: Some(" ".into()),
            sub_merchant_shortname: Some("便利店 =1".into()),
            ..Default::default()
        });
        let list = DeviceList::from(devices.clone());
        assert_eq!(list.len(), devices.len());
        assert_eq!(list.to_vec(), devices);
        for (i, d) in devices.iter().enumerate() {
            for f in Field::ALL {
                assert_eq!(list.value(i, f), f.of(d), "device {i} {f}");
            }
        }
        let last = list.get(devices.len() - 1);
        assert_eq!(last.get(Field::DeviceSn), Some(""), "empty is not absent");
        assert_eq!(last.get(Field::CameraSn), None);
        assert_eq!(list.get(devices.len() - 2).to_device(), Device::default());
    }

    #[test]
    fn equal_values_share_one_id_and_are_stored_once() {
        let devices = generate(&DatasetSpec {
            devices: 5_000,
            ..Default::default()
        });
        let list = DeviceList::from(devices.clone());
        for f in Field::ALL {
            for i in 0..200 {
                for j in 0..200 {
                    assert_eq!(
                        list.value_id(i, f) == list.value_id(j, f),
                        f.of(&devices[i]) == f.of(&devices[j]),
                        "{f} {i} {j}"
                    );
                }
            }
        }
        let distinct: std::collections::HashSet<&str> =
            devices.iter().flat_map(|d| d.fields()).flatten().collect();
        assert_eq!(list.value_ids(), distinct.len() + 1);
        let bytes = list.heap_bytes();
        assert!(
            bytes < 200 * devices.len(),
            "{bytes} bytes for {} devices",
            devices.len()
        );
    }

    #[test]
    fn serialises_as_a_list_of_devices() {
        let devices = generate(&DatasetSpec {
            devices: 300,
            ..Default::default()
        });
        let list = DeviceList::from(devices.clone());
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, serde_json::to_string(&devices).unwrap());
        let back: DeviceList = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
        assert!(serde_json::from_str::<DeviceList>("{}").is_err());
        let empty: DeviceList = serde_json::from_str("[]").unwrap();
        assert!(empty.is_empty());
    }
}
