//! Property tests: no input makes the URL parser, the API decoders or the query function panic.
#![cfg(feature = "ssr")]

use proptest::prelude::*;
use std::sync::{Arc, OnceLock};
use wxpay_devices::model::{ApiErrorBody, DevicePage};
use wxpay_devices::query::apply::{run, SnapshotIndex};
use wxpay_devices::query::DeviceQuery;
use wxpay_devices::simulator::dataset::{generate, DatasetSpec};
use wxpay_devices::wechatpay::signer::Authorization;
use wxpay_devices::wechatpay::verifier::{KeyStore, ResponseSignature};

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

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(PARAMS).prop_map(str::to_string),
            any::<String>(),
        ),
        0..12,
    )
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

fn index() -> &'static SnapshotIndex {
    static INDEX: OnceLock<SnapshotIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        SnapshotIndex::build(Arc::new(generate(&DatasetSpec {
            devices: 400,
            ..Default::default()
        })))
    })
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

    #[test]
    fn any_parameters_parse_and_the_query_runs(pairs in pairs()) {
        let (q, _) = DeviceQuery::from_pairs(pairs);
        prop_assert!(q.q.chars().count() <= 100);
        let out = run(index(), &q);
        prop_assert!(out.total() <= 400);
        if q.group.is_some() {
            prop_assert_eq!(out.groups.iter().map(|g| g.count).sum::<usize>(), out.total());
        }
        let (page, range) = out.page_range(q.page, q.per_page);
        prop_assert!(page >= 1 && range.end <= out.total());
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
        let store = KeyStore::default();
        let headers = [ts.as_str(), nonce.as_str(), serial.as_str(), sig.as_str()];
        let sig = ResponseSignature::from_headers(|n| match n {
            "Wechatpay-Timestamp" => Some(headers[0]),
            "Wechatpay-Nonce" => Some(headers[1]),
            "Wechatpay-Serial" => Some(headers[2]),
            "Wechatpay-Signature" => Some(headers[3]),
            _ => None,
        });
        if let Ok(Some(sig)) = sig {
            prop_assert!(store.verify(&sig, &body, 1_800_000_000).is_err());
        }
    }
}
