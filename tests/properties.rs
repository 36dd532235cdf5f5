//! Property tests: no input makes the URL parser, the API decoders or the query function panic.
#![cfg(feature = "ssr")]

use base64::{engine::general_purpose::STANDARD, Engine};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};
use wxpay_devices::device_list::DeviceList;
use wxpay_devices::history::diff::{apply, diff, ChangeKind};
use wxpay_devices::model::Device;
use wxpay_devices::model::{ApiErrorBody, DevicePage};
use wxpay_devices::query::apply::{compare_values, run, SnapshotIndex};
use wxpay_devices::query::DeviceQuery;
use wxpay_devices::simulator::dataset::{generate, DatasetSpec};
use wxpay_devices::wechatpay::error::VerifyError;
use wxpay_devices::wechatpay::keys::public_key_from_pem;
use wxpay_devices::wechatpay::signer::Authorization;
use wxpay_devices::wechatpay::verifier::{KeyStore, ResponseSignature};

mod common;

const PARAMS: &[&str] = &[
    "sub_mchid",
    "category",
    "class",
    "os",
    "status",
    "scene",
    "q",
    "group",
    "sort",
    "dir",
    "page",
    "per_page",
    "x",
];

/// The values a parameter really takes: drawn from the test list itself (its sub-merchants,
/// codes, systems, statuses, pieces of its searched texts), the group and sort names, the
/// directions, pages; so the query's real paths run (arbitrary strings are almost never a
/// valid filter value).
fn vocabulary(param: &str) -> Vec<String> {
    use wxpay_devices::model::Field;
    use wxpay_devices::query::GroupBy;
    let devices = devices();
    let of = |field: Field| -> Vec<String> {
        let mut v: Vec<String> = devices
            .iter()
            .filter_map(|d| d.get(field).map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v.push("-".into());
        v
    };
    match param {
        "sub_mchid" => of(Field::SubMchid),
        "category" => of(Field::DeviceCategoryCode),
        "class" => of(Field::DeviceClassCode),
        "os" => of(Field::OperatingSystem),
        "status" => of(Field::ActivationStatus),
        "scene" => of(Field::AppSceneCode),
        "q" => {
            let mut v: Vec<String> = devices
                .iter()
                .take(60)
                .flat_map(|d| {
                    [
                        Field::DeviceSn,
                        Field::DeviceModel,
                        Field::SubMerchantShortname,
                    ]
                    .into_iter()
                    .filter_map(|f| d.get(f))
                    .map(|s| s.chars().skip(1).take(3).collect::<String>().to_uppercase())
                    .collect::<Vec<_>>()
                })
                .filter(|s| !s.trim().is_empty())
                .collect();
            v.push(" ".into());
            v
        }
        "group" => GroupBy::ALL.iter().map(|g| g.param().to_string()).collect(),
        "sort" => Field::ALL.iter().map(|f| f.name().to_string()).collect(),
        "dir" => vec!["asc".into(), "desc".into()],
        "page" => (1..=8).map(|p| p.to_string()).collect(),
        "per_page" => ["10", "20", "50", "100"].map(String::from).to_vec(),
        _ => vec!["1".into()],
    }
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = prop::sample::select(PARAMS).prop_flat_map(|param| {
        let value = prop_oneof![
            9 => prop::sample::select(vocabulary(param)),
            1 => any::<String>(),
        ];
        (Just(param.to_string()), value)
    });
    prop::collection::vec(pair, 0..12)
}

/// A list as a sync holds it: serials unique (some devices without one), few distinct values so
/// that two lists overlap.
fn device_list() -> impl Strategy<Value = Vec<Device>> {
    let device = (
        prop::option::of(prop_oneof![
            "[A-F]".prop_map(|s| s),
            Just(String::new()),
            Just(" ".to_string()),
        ]),
        prop::option::of("[xy]"),
        prop::option::of("19000000[01]"),
        prop::option::of(prop_oneof![Just("ACTIVATED"), Just("INACTIVATED")]),
    )
        .prop_map(|(sn, model, sub, status)| Device {
            device_sn: sn,
            device_model: model,
            sub_mchid: sub,
            activation_status: status.map(str::to_string),
            ..Default::default()
        });
    prop::collection::vec(device, 0..12).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|d| {
            match d
                .device_sn
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                Some(sn) => seen.insert(sn.to_string()),
                None => true,
            }
        });
        v
    })
}

fn sorted(mut v: Vec<Device>) -> Vec<String> {
    let mut s: Vec<String> = v.drain(..).map(|d| format!("{d:?}")).collect();
    s.sort();
    s
}

/// Field values as the API sends them: numbers of any length (leading zeros too), models that
/// mix digits and letters, text, blanks.
fn sort_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}",
        "0{0,2}[0-9]{1,25}",
        "[0-9]{1,4}[A-Z]{0,2}",
        "[A-Za-z]{0,3}[0-9]{0,3}",
        Just(String::new()),
        ".{0,4}",
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("data".to_string()),
                    Just("total_count".to_string()),
                    Just("links".to_string()),
                    Just("device_sn".to_string()),
                    Just("next".to_string()),
                    any::<String>()
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The list the query properties run over (the simulator's realistic data).
fn devices() -> &'static [Device] {
    static DEVICES: OnceLock<Vec<Device>> = OnceLock::new();
    DEVICES.get_or_init(|| {
        generate(&DatasetSpec {
            devices: 400,
            ..Default::default()
        })
    })
}

fn index() -> &'static SnapshotIndex {
    static INDEX: OnceLock<SnapshotIndex> = OnceLock::new();
    INDEX.get_or_init(|| SnapshotIndex::build(Arc::new(DeviceList::from(devices().to_vec()))))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_query_string_parses_and_its_canonical_form_is_stable(s in ".{0,200}") {
        let (q, _) = DeviceQuery::parse(&s);
        let canonical = q.to_query_string();
        let (again, notices) = DeviceQuery::parse(&canonical);
        prop_assert_eq!(&again, &q);
        prop_assert!(notices.is_empty(), "canonical form has no notices: {:?}", notices);
    }

    /// Any parameters parse, and the engine's answer is the naive one (filters, search,
    /// group, sort, direction), its groups and pages consistent with it.
    #[test]
    fn any_parameters_parse_and_the_query_gives_the_naive_answer(pairs in pairs()) {
        let (q, _) = DeviceQuery::from_pairs(pairs);
        prop_assert!(q.q.chars().count() <= 100);
        let out = run(index(), &q);
        prop_assert_eq!(&out.order, &common::oracle::naive_order(devices(), &q), "{:?}", q);
        if q.group.is_some() {
            prop_assert_eq!(out.groups.iter().map(|g| g.count).sum::<usize>(), out.total());
        }
        let (page, range) = out.page_range(q.page, q.per_page);
        prop_assert!(page >= 1 && range.end <= out.total());
    }

    /// The sort order is total: antisymmetric, transitive, equal only for equal texts; so a
    /// sort by it never panics and leaves equal values side by side.
    #[test]
    fn the_sort_order_is_total_over_mixed_values(values in prop::collection::vec(sort_value(), 3..40)) {
        for a in &values {
            prop_assert_eq!(compare_values(a, a), Ordering::Equal);
            for b in &values {
                let ab = compare_values(a, b);
                prop_assert_eq!(ab, compare_values(b, a).reverse(), "{:?} {:?}", a, b);
                prop_assert_eq!(ab == Ordering::Equal, a == b);
                for c in &values {
                    if ab != Ordering::Greater && compare_values(b, c) != Ordering::Greater {
                        prop_assert_ne!(compare_values(a, c), Ordering::Greater, "{:?} {:?} {:?}", a, b, c);
                    }
                }
            }
        }
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| compare_values(a, b));
        for w in sorted.windows(2) {
            prop_assert_ne!(compare_values(&w[0], &w[1]), Ordering::Greater);
        }
        // Equal values sit together.
        for (i, v) in sorted.iter().enumerate() {
            if let Some(j) = sorted[i + 1..].iter().position(|x| x == v) {
                prop_assert!(sorted[i..=i + j + 1].iter().all(|x| x == v));
            }
        }
    }

    /// The diff is exact: applied to the old list it gives the new one; an incomplete new list
    /// removes nothing.
    #[test]
    fn a_diff_applied_to_the_old_list_gives_the_new_one(a in device_list(), b in device_list()) {
        let (a, b) = (DeviceList::from(a), b);
        let list_b = DeviceList::from(b.clone());
        let changes = diff(&a, &list_b, true);
        prop_assert_eq!(sorted(apply(&a, &changes).to_vec()), sorted(b.clone()));
        prop_assert!(diff(&list_b, &list_b, true).is_empty());
        let partial = diff(&a, &list_b, false);
        prop_assert!(partial.iter().all(|c| c.kind != ChangeKind::Removed));
        let kept = apply(&a, &partial).to_vec();
        for d in &b {
            prop_assert!(kept.contains(d), "{:?} missing", d);
        }
    }

    /// The search box finds exactly the devices one of whose searched fields holds the text,
    /// whatever the case, in any script (`İ` lower-cases to two characters), never across two
    /// fields; and the list holds every device as it came.
    #[test]
    fn search_finds_exactly_what_a_plain_scan_finds(
        devices in prop::collection::vec(
            (prop::option::of("[aAbİÄä1 -]{0,5}"), prop::option::of("[aAbİÄä1 -]{0,5}"), prop::option::of("[aAbİÄä1 -]{0,5}")),
            0..30,
        ),
        needle in "[aAbİÄä1 -]{1,3}",
    ) {
        let devices: Vec<Device> = devices
            .into_iter()
            .map(|(sn, model, shop)| Device {
                device_sn: sn,
                device_model: model,
                sub_merchant_shortname: shop,
                activation_time: Some("a".into()),
                ..Default::default()
            })
            .collect();
        let list = DeviceList::from(devices.clone());
        prop_assert_eq!(list.to_vec(), devices.clone());
        let index = SnapshotIndex::build(Arc::new(list));
        let (q, _) = DeviceQuery::from_pairs(vec![("q".to_string(), needle)]);
        let text = q.q.trim().to_lowercase();
        let want: Vec<u32> = (0..devices.len() as u32)
            .filter(|i| {
                let d = &devices[*i as usize];
                text.is_empty()
                    || [&d.device_sn, &d.device_model, &d.sub_merchant_shortname]
                        .iter()
                        .any(|f| f.as_deref().is_some_and(|v| v.to_lowercase().contains(&text)))
            })
            .collect();
        prop_assert_eq!(run(&index, &q).order, want);
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<DevicePage>(&bytes);
        let _ = serde_json::from_slice::<ApiErrorBody>(&bytes);
    }

    #[test]
    fn any_json_decodes_or_fails_cleanly_and_round_trips(v in json_value()) {
        let text = v.to_string();
        if let Ok(page) = serde_json::from_str::<DevicePage>(&text) {
            let back: DevicePage = serde_json::from_str(&serde_json::to_string(&page).unwrap()).unwrap();
            prop_assert_eq!(back, page);
        }
    }

    #[test]
    fn any_authorization_header_parses_or_fails_cleanly(s in ".{0,300}") {
        let _ = Authorization::parse(&s);
        let _ = Authorization::parse(&format!("WECHATPAY2-SHA256-RSA2048 {s}"));
    }

    #[test]
    fn any_response_headers_verify_or_fail_cleanly(ts in ".{0,20}", nonce in ".{0,40}", serial in ".{0,50}", sig in ".{0,400}", body in prop::collection::vec(any::<u8>(), 0..200)) {
        let headers = [ts.as_str(), nonce.as_str(), serial.as_str(), sig.as_str()];
        let sig = ResponseSignature::from_headers(|n| match n {
            "Wechatpay-Timestamp" => Some(headers[0]),
            "Wechatpay-Nonce" => Some(headers[1]),
            "Wechatpay-Serial" => Some(headers[2]),
            "Wechatpay-Signature" => Some(headers[3]),
            _ => None,
        });
        if let Ok(Some(sig)) = sig {
            prop_assert!(store().verify(&sig, &body, NOW).is_err());
        }
    }

    /// Signatures that are not the platform key's never verify, even with a fresh timestamp
    /// and the key's own serial: the check reaches the RSA verification and fails there.
    #[test]
    fn random_signatures_never_verify(
        nonce in "[0-9A-Za-z]{1,32}",
        signature in prop_oneof![
            prop::collection::vec(any::<u8>(), 256).prop_map(|b| STANDARD.encode(b)),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| STANDARD.encode(b)),
            ".{0,400}",
        ],
        body in prop::collection::vec(any::<u8>(), 0..300),
        skew in -299i64..=299,
    ) {
        let sig = ResponseSignature {
            timestamp: (NOW + skew).to_string(),
            nonce,
            serial: SERIAL.into(),
            signature,
            signature_type: Some("WECHATPAY2-SHA256-RSA2048".into()),
        };
        prop_assert_eq!(store().verify(&sig, &body, NOW), Err(VerifyError::BadSignature));
    }

    /// A real signature verifies for its own message only: any other body is refused.
    #[test]
    fn a_real_signature_fails_for_any_other_body(body in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assume!(body != VECTOR_BODY);
        let sig = vector_signature();
        prop_assert_eq!(store().verify(&sig, &body, VECTOR_TIME), Err(VerifyError::BadSignature));
    }
}

const NOW: i64 = 1_800_000_000;
const SERIAL: &str = "PUB_KEY_ID_0114232134912410000000000000000001";
/// The openssl-made vector of the verifier's unit tests (tests/fixtures).
const VECTOR_BODY: &[u8] = br#"{"data":[],"offset":0,"limit":100,"total_count":0}"#;
const VECTOR_TIME: i64 = 1_554_209_980;

/// A key store holding the platform public key of the fixtures.
fn store() -> &'static KeyStore {
    static STORE: OnceLock<KeyStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = KeyStore::default();
        let pem = include_str!("fixtures/platform_pub.pem");
        store.insert(SERIAL, public_key_from_pem(pem).unwrap());
        store
    })
}

fn vector_signature() -> ResponseSignature {
    ResponseSignature {
        timestamp: VECTOR_TIME.to_string(),
        nonce: "c5ac7061fccab6bf3e254dcf98995b8c".into(),
        serial: SERIAL.into(),
        signature: include_str!("fixtures/response_signature.b64")
            .trim()
            .into(),
        signature_type: Some("WECHATPAY2-SHA256-RSA2048".into()),
    }
}

#[test]
fn the_property_store_verifies_the_real_vector() {
    // Without this, "never verifies" could pass with a store that verifies nothing.
    store()
        .verify(&vector_signature(), VECTOR_BODY, VECTOR_TIME)
        .unwrap();
}
