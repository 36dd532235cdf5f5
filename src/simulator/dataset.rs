//! A deterministic, realistic device list generated from a seed: correlated categories, classes,
//! models and operating systems; skewed sub-merchant sizes (a few with thousands of devices, many
//! with a handful); the merchant's own devices without `sub_mchid`; inactive devices without
//! `activation_time`; absent optional fields; unknown codes; and hostile strings (commas, quotes,
//! newlines, formulas, markup, emoji) so that every layer above is tested against them.

use crate::model::Device;
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub devices: usize,
    pub seed: u64,
    /// The merchant (or service provider) that owns the list.
    pub mchid: String,
    pub merchant_shortname: String,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            devices: 3_000,
            seed: 42,
            mchid: "1900000001".into(),
            merchant_shortname: "示例服务商".into(),
        }
    }
}

/// Sub-merchant short names that break naive CSV, HTML and spreadsheet code.
pub const HOSTILE_NAMES: &[&str] = &[
    "=HYPERLINK(\"http://example.invalid\",\"点我\")",
    "<script>alert('xss')</script>便利店",
    "Smith, Jones & Co",
    "\"引号\"餐厅",
    "两行\n名称",
    "🍜 拉面馆 🍜",
    "+86 热线店",
    "@home 家居",
    "-10% 折扣店",
];

const HOSTILE_MODELS: &[&str] = &["=1+1", "T2, \"Lite\"", "Pro\r\nMax", "<b>X1</b>", "📷 Cam"];

const CITIES: &[&str] = &[
    "杭州", "上海", "北京", "深圳", "广州", "成都", "武汉", "南京", "苏州", "西安", "重庆", "长沙",
    "厦门", "青岛", "天津", "昆明",
];
const BRANDS: &[&str] = &[
    "鲜果",
    "好邻居",
    "如家",
    "悦来",
    "百味",
    "金牛",
    "喜乐",
    "花间",
    "云上",
    "小满",
    "老街",
    "大福",
    "森林",
    "星光",
    "海风",
    "知味",
];
const KINDS: &[&str] = &[
    "便利店",
    "超市",
    "餐厅",
    "咖啡",
    "药房",
    "书店",
    "面包房",
    "茶饮",
    "食堂",
    "影城",
    "加油站",
    "停车场",
    "健身房",
    "酒店",
];

/// A device family: category, the classes it comes in, its models and operating systems.
struct Family {
    category: &'static str,
    classes: &'static [&'static str],
    models: &'static [&'static str],
    os: &'static [&'static str],
    face_pay: bool,
    weight: u32,
}

const FAMILIES: &[Family] = &[
    Family {
        category: "2",
        classes: &["114", "116", "118", "120"],
        models: &["5510R", "T2 Lite", "D2s", "K2 Pro"],
        os: &["ANDROID"],
        face_pay: true,
        weight: 30,
    },
    Family {
        category: "1",
        classes: &["1", "2", "3"],
        models: &["青蛙Pro", "青蛙Mini", "青蛙Pro 2"],
        os: &["ANDROID"],
        face_pay: true,
        weight: 20,
    },
    Family {
        category: "3",
        classes: &["101", "106", "111", "124"],
        models: &["X9", "KS-2000", "HB-21"],
        os: &["ANDROID", "WINDOWS"],
        face_pay: true,
        weight: 10,
    },
    Family {
        category: "9",
        classes: &["101", "106"],
        models: &["SC-15", "SC-22 Pro"],
        os: &["ANDROID", "WINDOWS"],
        face_pay: true,
        weight: 8,
    },
    Family {
        category: "8",
        classes: &["107"],
        models: &["TC-8", "Canteen S1"],
        os: &["ANDROID"],
        face_pay: true,
        weight: 6,
    },
    Family {
        category: "4",
        classes: &["102"],
        models: &["CR-100", "CR-200"],
        os: &["LINUX"],
        face_pay: false,
        weight: 6,
    },
    Family {
        category: "5",
        classes: &["0"],
        models: &["播报音箱 S2", "云喇叭 Y1"],
        os: &["LINUX"],
        face_pay: false,
        weight: 6,
    },
    Family {
        category: "6",
        classes: &["110"],
        models: &["QS-7", "HS-8"],
        os: &["LINUX", "ANDROID"],
        face_pay: false,
        weight: 5,
    },
    Family {
        category: "7",
        classes: &["103", "104", "105", "108", "109", "112"],
        models: &["VM-40", "TK-3", "PB-6"],
        os: &["ANDROID", "LINUX"],
        face_pay: false,
        weight: 5,
    },
    Family {
        category: "11",
        classes: &["180", "172"],
        models: &["ZJ-1", "AI-Gate"],
        os: &["LINUX"],
        face_pay: true,
        weight: 2,
    },
    Family {
        category: "10",
        classes: &["134", "132"],
        models: &["EV-60"],
        os: &["LINUX"],
        face_pay: false,
        weight: 1,
    },
    Family {
        category: "200",
        classes: &["200"],
        models: &["TMP"],
        os: &["ANDROID"],
        face_pay: false,
        weight: 1,
    },
    Family {
        category: "0",
        classes: &["0"],
        models: &["?"],
        os: &["LINUX"],
        face_pay: false,
        weight: 1,
    },
];

struct SubMerchant {
    sub_mchid: String,
    shortname: Option<String>,
}

/// Generates the whole list for `spec`. The same spec always gives the same list.
pub fn generate(spec: &DatasetSpec) -> Vec<Device> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let subs = sub_merchants(spec.devices, &mut rng);
    // Zipf-like weights: sub-merchant i gets a share proportional to 1/(i+1)^1.2.
    let weights: Vec<f64> = (0..subs.len())
        .map(|i| 1.0 / ((i + 1) as f64).powf(1.2))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let family_weight: u32 = FAMILIES.iter().map(|f| f.weight).sum();

    (0..spec.devices)
        .map(|i| {
            // About 6 % of the devices belong to the merchant itself (no sub-merchant).
            let sub = if rng.gen_bool(0.06) || subs.is_empty() {
                None
            } else {
                let mut x = rng.gen::<f64>() * total_weight;
                let mut pick = subs.len() - 1;
                for (j, w) in weights.iter().enumerate() {
                    if x < *w {
                        pick = j;
                        break;
                    }
                    x -= w;
                }
                Some(&subs[pick])
            };
            let mut x = rng.gen_range(0..family_weight);
            let family = FAMILIES
                .iter()
                .find(|f| {
                    if x < f.weight {
                        true
                    } else {
                        x -= f.weight;
                        false
                    }
                })
                .unwrap_or(&FAMILIES[0]);
            device(i, family, sub, spec, &mut rng)
        })
        .collect()
}

fn sub_merchants(devices: usize, rng: &mut ChaCha8Rng) -> Vec<SubMerchant> {
    let count = (devices / 25).clamp(1, 4_000);
    let mut used = std::collections::HashSet::new();
    (0..count)
        .map(|i| {
            let sub_mchid = loop {
                let id = format!("16{:08}", rng.gen_range(0..100_000_000u32));
                if used.insert(id.clone()) {
                    break id;
                }
            };
            let shortname = if i % 7 == 3 && i / 7 < HOSTILE_NAMES.len() {
                Some(HOSTILE_NAMES[i / 7].to_string())
            } else if rng.gen_bool(0.03) {
                None
            } else {
                Some(format!(
                    "{}{}{}",
                    CITIES.choose(rng).unwrap(),
                    BRANDS.choose(rng).unwrap(),
                    KINDS.choose(rng).unwrap()
                ))
            };
            SubMerchant {
                sub_mchid,
                shortname,
            }
        })
        .collect()
}

fn device(
    index: usize,
    family: &Family,
    sub: Option<&SubMerchant>,
    spec: &DatasetSpec,
    rng: &mut ChaCha8Rng,
) -> Device {
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789abcdefghjkmnpqrstuvwxyz";
    let tail: String = (0..8)
        .map(|_| *ALNUM.choose(rng).unwrap() as char)
        .collect();
    let prefix = ["HSA1", "QF2B", "WXP3", "SN7K"][index % 4];
    let device_sn = format!("{prefix}{:07X}{tail}", index);

    let class_code = *family.classes.choose(rng).unwrap();
    let category_code = if rng.gen_bool(0.002) {
        "15"
    } else {
        family.category
    };
    let activated = rng.gen_bool(0.85);
    let scene_code = family.face_pay.then(|| match rng.gen_range(0..100) {
        0..=69 => "1",
        70..=89 => "2",
        90..=97 => "3",
        _ => "4",
    });
    // The API sometimes sends a code without its name: the dashboard must fall back to the table.
    let name_of = |table: crate::codes::Table, code: &str, rng: &mut ChaCha8Rng| {
        if rng.gen_bool(0.02) {
            None
        } else {
            table.lookup(code).map(|row| row.zh.to_string())
        }
    };
    let model = if index % 997 == 11 {
        HOSTILE_MODELS[(index / 997) % HOSTILE_MODELS.len()].to_string()
    } else {
        family.models.choose(rng).unwrap().to_string()
    };

    Device {
        device_sn: Some(device_sn),
        camera_sn: (family.face_pay && rng.gen_bool(0.95))
            .then(|| format!("IMIH-A100SPMV4C{:07}", rng.gen_range(0..10_000_000u32))),
        device_category: name_of(crate::codes::Table::Category, category_code, rng),
        device_category_code: Some(category_code.to_string()),
        device_class: name_of(crate::codes::Table::Class, class_code, rng),
        device_class_code: Some(class_code.to_string()),
        device_model: (!rng.gen_bool(0.01)).then_some(model),
        app_scene: scene_code
            .and_then(|code| crate::codes::Table::Scene.lookup(code))
            .map(|row| row.zh.to_string()),
        app_scene_code: scene_code.map(str::to_string),
        operating_system: Some(family.os.choose(rng).unwrap().to_string()),
        activation_status: Some(
            if activated {
                "ACTIVATED"
            } else {
                "INACTIVATED"
            }
            .to_string(),
        ),
        activation_time: activated.then(|| activation_time(rng)),
        mchid: Some(spec.mchid.clone()),
        merchant_shortname: Some(spec.merchant_shortname.clone()),
        sub_mchid: sub.map(|s| s.sub_mchid.clone()),
        sub_merchant_shortname: sub.and_then(|s| s.shortname.clone()),
    }
}

/// What [`evolve`] did to one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evolution {
    Activated,
    Added,
    Moved,
    Removed,
}

/// One step in the life of the merchant of `spec`: `changes` devices activated, added, moved to
/// another sub-merchant or removed, at `now_unix`. The same list, spec, step and time always
/// give the same result. Returns what was done, in order.
pub fn evolve(
    list: &mut Vec<Device>,
    spec: &DatasetSpec,
    step: u64,
    changes: usize,
    now_unix: i64,
) -> Vec<Evolution> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        spec.seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut done = Vec::with_capacity(changes);
    for j in 0..changes {
        let roll = if list.is_empty() {
            40
        } else {
            rng.gen_range(0..100)
        };
        let i = rng.gen_range(0..list.len().max(1));
        match roll {
            0..=34 if list[i].activation_status.as_deref() == Some("INACTIVATED") => {
                list[i].activation_status = Some("ACTIVATED".into());
                list[i].activation_time = Some(api_time(now_unix, rng.gen_range(0..1000)));
                done.push(Evolution::Activated);
            }
            0..=59 => {
                // A new device, at one of the existing sub-merchants (or the merchant's own).
                let sub = list.get(i).and_then(|d| {
                    d.sub_mchid.clone().map(|sub_mchid| SubMerchant {
                        sub_mchid,
                        shortname: d.sub_merchant_shortname.clone(),
                    })
                });
                let family = &FAMILIES[rng.gen_range(0..FAMILIES.len())];
                let index = spec.devices + (step as usize) * 1_000 + j;
                let mut d = device(index, family, sub.as_ref(), spec, &mut rng);
                if d.activation_status.as_deref() == Some("ACTIVATED") {
                    d.activation_time = Some(api_time(now_unix, rng.gen_range(0..1000)));
                }
                list.push(d);
                done.push(Evolution::Added);
            }
            60..=84 => {
                let from = list[rng.gen_range(0..list.len())].clone();
                let d = &mut list[i];
                if from.sub_mchid != d.sub_mchid && from.sub_mchid.is_some() {
                    d.sub_mchid = from.sub_mchid;
                    d.sub_merchant_shortname = from.sub_merchant_shortname;
                    done.push(Evolution::Moved);
                }
            }
            _ => {
                list.remove(i);
                done.push(Evolution::Removed);
            }
        }
    }
    done
}

/// A time between 2019-01-01 and 2026-10-31 in the API's format, `2020-03-31 19:38:00.120+08:00`.
fn activation_time(rng: &mut ChaCha8Rng) -> String {
    let start = 1_546_272_000i64; // 2019-01-01T00:00:00+08:00
    let end = 1_761_926_400i64; // 2025-11-01
    let t = rng.gen_range(start..end);
    let millis = rng.gen_range(0..1000);
    api_time(t, millis)
}

/// Unix time `t` in the API's format, in China Standard Time.
fn api_time(t: i64, millis: u32) -> String {
    let t = t + 8 * 3600;
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let date = time::Date::from_julian_day(days as i32 + 2_440_588).expect("date in range");
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{millis:03}+08:00",
        date.year(),
        date.month() as u8,
        date.day(),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn spec(devices: usize) -> DatasetSpec {
        DatasetSpec {
            devices,
            ..Default::default()
        }
    }

    #[test]
    fn same_seed_same_list_other_seed_other_list() {
        let a = generate(&spec(500));
        assert_eq!(a, generate(&spec(500)));
        let b = generate(&DatasetSpec {
            seed: 7,
            ..spec(500)
        });
        assert_ne!(a, b);
    }

    #[test]
    fn the_merchant_evolves_deterministically_in_every_way() {
        let spec = spec(2_000);
        let start = generate(&spec);
        let run = || {
            let mut list = start.clone();
            let mut kinds = Vec::new();
            for step in 0..40 {
                kinds.extend(evolve(
                    &mut list,
                    &spec,
                    step,
                    5,
                    1_795_867_200 + step as i64 * 60,
                ));
            }
            (list, kinds)
        };
        let (a, kinds) = run();
        assert_eq!(a, run().0, "same steps, same list");
        for k in [
            Evolution::Activated,
            Evolution::Added,
            Evolution::Moved,
            Evolution::Removed,
        ] {
            assert!(kinds.contains(&k), "{k:?} never happened: {kinds:?}");
        }
        let added = kinds.iter().filter(|k| **k == Evolution::Added).count();
        let removed = kinds.iter().filter(|k| **k == Evolution::Removed).count();
        assert_eq!(a.len(), start.len() + added - removed);
        let sns: HashSet<_> = a.iter().map(|d| d.device_sn.clone().unwrap()).collect();
        assert_eq!(sns.len(), a.len(), "serials stay unique");
        // A device activated now says so, in the API's format and China time.
        assert!(a.iter().any(|d| d
            .activation_time
            .as_deref()
            .is_some_and(|t| t.starts_with("2026-11-2") && t.ends_with("+08:00"))));
    }

    #[test]
    fn device_serials_are_unique() {
        let list = generate(&spec(20_000));
        let sns: HashSet<_> = list.iter().map(|d| d.device_sn.clone().unwrap()).collect();
        assert_eq!(sns.len(), 20_000);
    }

    #[test]
    fn sizes_are_skewed_and_the_merchant_owns_some() {
        let list = generate(&spec(20_000));
        let mut per_sub: HashMap<&str, usize> = HashMap::new();
        let mut own = 0;
        for d in &list {
            match d.sub_mchid.as_deref() {
                Some(s) => *per_sub.entry(s).or_default() += 1,
                None => own += 1,
            }
        }
        let mut sizes: Vec<usize> = per_sub.values().copied().collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        assert!(
            sizes[0] > 2_000,
            "largest sub-merchant has thousands: {}",
            sizes[0]
        );
        assert!(
            sizes.iter().filter(|&&s| s <= 10).count() > 300,
            "many with a handful"
        );
        assert!(own > 500, "merchant's own devices: {own}");
    }

    #[test]
    fn realistic_gaps_and_hostile_values_are_present() {
        let list = generate(&spec(5_000));
        assert!(list
            .iter()
            .all(|d| (d.activation_status.as_deref() == Some("ACTIVATED"))
                == d.activation_time.is_some()));
        assert!(list
            .iter()
            .any(|d| d.activation_status.as_deref() == Some("INACTIVATED")));
        assert!(list.iter().any(|d| d.camera_sn.is_none()));
        assert!(list.iter().any(|d| d.device_category.is_none()));
        assert!(list
            .iter()
            .any(|d| d.device_category_code.as_deref() == Some("15")));
        let names: HashSet<_> = list
            .iter()
            .filter_map(|d| d.sub_merchant_shortname.as_deref())
            .collect();
        for hostile in &HOSTILE_NAMES[..5] {
            assert!(names.contains(hostile), "missing hostile name {hostile:?}");
        }
        assert!(list
            .iter()
            .any(|d| d.device_model.as_deref() == Some("=1+1")));
        assert!(names
            .iter()
            .any(|n| n.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))));
    }

    #[test]
    fn activation_times_use_the_api_format() {
        let list = generate(&spec(200));
        for t in list.iter().filter_map(|d| d.activation_time.as_deref()) {
            assert_eq!(t.len(), "2020-03-31 19:38:00.120+08:00".len(), "{t}");
            assert!(t.ends_with("+08:00") && t.as_bytes()[10] == b' ', "{t}");
            let year: u32 = t[..4].parse().unwrap();
            assert!((2019..=2025).contains(&year), "{t}");
        }
    }
}
