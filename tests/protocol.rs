//! The WeChat Pay protocol over real HTTP: our client against our simulator.
#![cfg(feature = "ssr")]

mod common;

use common::keys;

use std::collections::HashSet;
use std::time::Duration;
use wxpay_devices::clock::unix_now;
use wxpay_devices::simulator::keys::SimKeys;
use wxpay_devices::simulator::service::{CertificateFault, Fault, Simulator, SimulatorOptions};
use wxpay_devices::wechatpay::client::{CertificateRefresh, WxPayClient};
use wxpay_devices::wechatpay::error::{ApiCode, VerifyError, WxPayError};
use wxpay_devices::wechatpay::signer::{authorization, new_nonce, RequestMessage};

async fn start(options: SimulatorOptions) -> (Simulator, String) {
    let sim = Simulator::new(keys(), options);
    let url = sim.spawn_local().await.unwrap();
    (sim, url)
}

fn small() -> SimulatorOptions {
    SimulatorOptions {
        devices: 950,
        ..Default::default()
    }
}

fn client(sim: &Simulator, url: &str) -> WxPayClient {
    WxPayClient::new(&sim.client_config(url, true, false)).unwrap()
}

fn api_code(e: &WxPayError) -> (&ApiCode, u16) {
    match e {
        WxPayError::Api { code, status, .. } => (code, *status),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rejected(e: WxPayError) -> VerifyError {
    match e {
        WxPayError::Verification { reason, .. } => reason,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

#[tokio::test]
async fn pages_verify_and_return_every_device_exactly_once() {
    let (sim, url) = start(small()).await;
    let c = client(&sim, &url);
    let first = c.list_devices(0, 100).await.unwrap();
    assert_eq!(first.total_count, Some(950));
    assert_eq!(first.data.len(), 100);
    let links = first.links.clone().unwrap();
    assert_eq!(
        links.next.as_deref(),
        Some("/v3/iotmanage/devices?offset=100&limit=100")
    );
    assert_eq!(links.prev.as_deref(), Some(""));

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = c.list_devices(offset, 100).await.unwrap();
        seen.extend(page.data.iter().map(|d| d.device_sn.clone().unwrap()));
        if !page.links.unwrap().has_next() {
            assert_eq!(page.data.len(), 50, "last partial page");
            break;
        }
        offset += 100;
    }
    let expected: Vec<String> = sim
        .devices()
        .iter()
        .map(|d| d.device_sn.clone().unwrap())
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 950);
    // Past the end: an empty page with the total.
    let past = c.list_devices(5_000, 100).await.unwrap();
    assert!(past.data.is_empty());
    assert_eq!(past.total_count, Some(950));
}

#[tokio::test]
async fn forged_or_damaged_responses_are_rejected() {
    let (sim, url) = start(small()).await;
    let c = client(&sim, &url);
    for (fault, check) in [
        (
            Fault::TamperBody,
            (|r: &VerifyError| *r == VerifyError::BadSignature) as fn(&VerifyError) -> bool,
        ),
        (Fault::UnknownSerial, |r| {
            matches!(r, VerifyError::UnknownSerial(_))
        }),
        (Fault::StaleTimestamp, |r| {
            matches!(r, VerifyError::StaleTimestamp { .. })
        }),
        (Fault::SignTest, |r| *r == VerifyError::SignTest),
        (
            Fault::StripHeaders,
            |r| matches!(r, VerifyError::MissingHeaders(h) if h.len() == 4),
        ),
    ] {
        sim.update_options(|o| o.fault = fault);
        let reason = rejected(c.list_devices(0, 10).await.unwrap_err());
        assert!(check(&reason), "{fault:?} gave {reason:?}");
    }
    sim.update_options(|o| o.fault = Fault::None);
    assert_eq!(c.list_devices(0, 10).await.unwrap().data.len(), 10);
    let e = {
        sim.update_options(|o| o.fault = Fault::StripHeaders);
        c.list_devices(0, 10).await.unwrap_err()
    };
    assert!(e.to_string().contains("proxy"), "{e}");
}

#[tokio::test]
async fn parameter_rules_give_param_error() {
    let (sim, url) = start(small()).await;
    let c = client(&sim, &url);
    for path in [
        "/v3/iotmanage/devices?limit=101&offset=0",
        "/v3/iotmanage/devices?limit=0&offset=0",
        "/v3/iotmanage/devices?limit=10",
        "/v3/iotmanage/devices?offset=0",
    ] {
        let e = c.get(path).await.unwrap_err();
        assert_eq!(api_code(&e), (&ApiCode::ParamError, 400), "{path}");
        assert!(
            e.request_id().is_some_and(|id| id.starts_with("SIM")),
            "{e}"
        );
    }
    // Our client refuses a bad limit before sending anything.
    sim.clear_log();
    assert!(matches!(
        c.list_devices(0, 101).await,
        Err(WxPayError::InvalidArgument(_))
    ));
    assert!(matches!(
        c.list_devices(0, 0).await,
        Err(WxPayError::InvalidArgument(_))
    ));
    assert!(sim.log().is_empty());
}

#[tokio::test]
async fn the_21st_request_in_a_window_is_refused() {
    // The API's window is 1 s; a wide one here, so a slow machine sends all 21 inside it.
    let (sim, url) = start(SimulatorOptions {
        rate_window: Duration::from_secs(120),
        ..small()
    })
    .await;
    let c = client(&sim, &url);
    let mut outcomes = Vec::new();
    for _ in 0..21 {
        outcomes.push(c.list_devices(0, 1).await);
    }
    assert!(outcomes[..20].iter().all(Result::is_ok));
    let e = outcomes.pop().unwrap().unwrap_err();
    assert_eq!(api_code(&e), (&ApiCode::FrequencyLimited, 429));
    assert!(e.is_retryable());
}

#[tokio::test]
async fn the_daily_quota_is_enforced_per_merchant() {
    let (_sim, url) = start(SimulatorOptions {
        daily_limit: 3,
        ..small()
    })
    .await;
    let c = client(&_sim, &url);
    for _ in 0..3 {
        c.list_devices(0, 1).await.unwrap();
    }
    let e = c.list_devices(0, 1).await.unwrap_err();
    assert_eq!(api_code(&e), (&ApiCode::FrequencyLimited, 429));
    assert!(e.to_string().contains("daily"), "{e}");
}

#[tokio::test]
async fn system_errors_are_injected_and_retryable() {
    let (_sim, url) = start(SimulatorOptions {
        error_rate: 1.0,
        ..small()
    })
    .await;
    let e = client(&_sim, &url).list_devices(0, 10).await.unwrap_err();
    assert_eq!(api_code(&e), (&ApiCode::SystemError, 500));
    assert!(e.is_retryable());
}

#[tokio::test]
async fn bad_request_signatures_get_sign_error() {
    let (sim, url) = start(small()).await;
    // A client whose private key is not the merchant's.
    let mut config = sim.client_config(&url, true, false);
    config.private_key = SimKeys::generate().unwrap().merchant_key;
    let e = WxPayClient::new(&config)
        .unwrap()
        .list_devices(0, 10)
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), (&ApiCode::SignError, 401));
    assert!(
        e.to_string().contains("clock"),
        "advice names the usual causes: {e}"
    );

    // A signature over another URL than the one sent (tampered request).
    let k = sim.keys();
    let nonce = new_nonce();
    let message = RequestMessage {
        method: "GET",
        path_and_query: "/v3/iotmanage/devices?limit=10&offset=0",
        timestamp: unix_now(),
        nonce: &nonce,
        body: "",
    };
    let auth = authorization(&k.mchid, &k.merchant_serial, &message, &k.merchant_key);
    let http = reqwest::Client::new();
    let send = |path: &str, auth: String, ua: bool| {
        let mut r = http
            .get(format!("{url}{path}"))
            .header("Accept", "application/json")
            .header("Authorization", auth);
        if ua {
            r = r.header("User-Agent", "test");
        }
        r.send()
    };
    let r = send(
        "/v3/iotmanage/devices?limit=10&offset=10",
        auth.to_string(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("SIGN_ERROR"));
    // The right URL passes; without User-Agent it is INVALID_REQUEST.
    let ok = send(
        "/v3/iotmanage/devices?limit=10&offset=0",
        auth.to_string(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let no_ua = send(
        "/v3/iotmanage/devices?limit=10&offset=0",
        auth.to_string(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(no_ua.status(), 400);
    assert!(no_ua.text().await.unwrap().contains("INVALID_REQUEST"));
    // A stale timestamp.
    let old = RequestMessage {
        timestamp: unix_now() - 600,
        ..message
    };
    let stale = authorization(&k.mchid, &k.merchant_serial, &old, &k.merchant_key);
    let r = send(
        "/v3/iotmanage/devices?limit=10&offset=0",
        stale.to_string(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    // Unknown mchid.
    let other = authorization("1900009999", &k.merchant_serial, &message, &k.merchant_key);
    let r = send(
        "/v3/iotmanage/devices?limit=10&offset=0",
        other.to_string(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn certificate_mode_downloads_decrypts_and_follows_rotation() {
    let (sim, url) = start(small()).await;
    let c = WxPayClient::new(&sim.client_config(&url, false, true))
        .unwrap()
        .with_certificate_refresh_interval(Duration::ZERO);
    assert!(c.known_serials().is_empty());
    // No key yet: the first response names an unknown certificate, which triggers a download.
    let page = c.list_devices(0, 5).await.unwrap();
    assert_eq!(page.data.len(), 5);
    assert_eq!(
        c.known_serials(),
        vec![sim.keys().platform_cert_serial.clone()]
    );

    let new_serial = sim.rotate_certificate().unwrap();
    let page = c.list_devices(5, 5).await.unwrap();
    assert_eq!(page.data.len(), 5);
    assert!(
        c.known_serials().contains(&new_serial),
        "rotated certificate loaded"
    );
    let downloads = sim
        .log()
        .iter()
        .filter(|r| r.path_and_query == "/v3/certificates")
        .count();
    assert_eq!(downloads, 2);
}

#[tokio::test]
async fn unknown_serials_refresh_certificates_at_most_once_a_minute() {
    let (sim, url) = start(small()).await;
    let c = WxPayClient::new(&sim.client_config(&url, false, true)).unwrap();
    c.list_devices(0, 5).await.unwrap();
    sim.rotate_certificate().unwrap();
    let reason = rejected(c.list_devices(0, 5).await.unwrap_err());
    assert!(
        matches!(reason, VerifyError::UnknownSerial(_)),
        "{reason:?}"
    );
    let downloads = sim
        .log()
        .iter()
        .filter(|r| r.path_and_query == "/v3/certificates")
        .count();
    assert_eq!(
        downloads, 1,
        "the second unknown serial within a minute does not download again"
    );
}

#[tokio::test]
async fn public_key_merchants_get_resource_not_exists_for_certificates() {
    let (sim, url) = start(SimulatorOptions {
        certificates: false,
        ..small()
    })
    .await;
    let c = WxPayClient::new(&sim.client_config(&url, true, true)).unwrap();
    assert_eq!(
        c.refresh_certificates().await.unwrap(),
        CertificateRefresh::PublicKeyOnly
    );
    // Both configured (migration): the public key still verifies pages.
    assert_eq!(c.list_devices(0, 3).await.unwrap().data.len(), 3);
}

#[tokio::test]
async fn transport_failures_are_reported_as_such() {
    let (sim, _) = start(small()).await;
    // A port bound but not listening: connections are refused, and no other process can take
    // the port while the test runs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = format!("http://{}", socket.local_addr().unwrap());
    let e = WxPayClient::new(&sim.client_config(&closed, true, false))
        .unwrap()
        .list_devices(0, 1)
        .await
        .unwrap_err();
    assert!(matches!(e, WxPayError::Transport { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("WECHATPAY_BASE_URL"), "{e}");
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_and_retryable() {
    let (sim, url) = start(SimulatorOptions {
        latency: Duration::from_secs(3),
        ..small()
    })
    .await;
    let c = client(&sim, &url).with_request_timeout(Duration::from_millis(300));
    // A timeout error, not the answer (which comes after 3 s): it gave up at its limit.
    let e = c.list_devices(0, 10).await.unwrap_err();
    assert!(matches!(e, WxPayError::Timeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(
        e.to_string().contains("/v3/iotmanage/devices"),
        "names the request: {e}"
    );
}

#[tokio::test]
async fn forged_certificate_downloads_are_refused() {
    for fault in [
        CertificateFault::TamperBody,
        CertificateFault::WrongApiV3Key,
        CertificateFault::SignedByStranger,
    ] {
        let (sim, url) = start(SimulatorOptions {
            certificate_fault: fault,
            ..small()
        })
        .await;
        let c = WxPayClient::new(&sim.client_config(&url, false, true)).unwrap();
        let e = c.refresh_certificates().await.unwrap_err();
        assert!(
            matches!(
                e,
                WxPayError::Verification { .. } | WxPayError::MalformedBody { .. }
            ),
            "{fault:?}: {e:?}"
        );
        assert!(
            c.known_serials().is_empty(),
            "{fault:?}: no certificate trusted"
        );
        // And a page signed by the real certificate still cannot be verified.
        assert!(c.list_devices(0, 5).await.is_err(), "{fault:?}");
    }
}

#[tokio::test]
async fn a_success_without_request_id_or_signature_type_is_forged() {
    let (sim, url) = start(small()).await;
    let c = client(&sim, &url);
    for (fault, header) in [
        (Fault::NoRequestId, "Request-ID"),
        (Fault::NoSignatureType, "Wechatpay-Signature-Type"),
    ] {
        sim.update_options(|o| o.fault = fault);
        let reason = rejected(c.list_devices(0, 10).await.unwrap_err());
        assert_eq!(
            reason,
            VerifyError::MissingHeaders(vec![header]),
            "{fault:?}"
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_name_their_target() {
    let (sim, url) = start(SimulatorOptions {
        fault: Fault::Redirect,
        ..small()
    })
    .await;
    let e = client(&sim, &url).list_devices(0, 10).await.unwrap_err();
    match &e {
        WxPayError::Redirected {
            status, location, ..
        } => {
            assert_eq!(*status, 302);
            assert!(location.contains("evil.example"), "{location}");
        }
        other => panic!("expected a redirect error, got {other:?}"),
    }
    assert!(e.to_string().contains("WECHATPAY_BASE_URL"), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(sim.log().len(), 1, "nothing sent to the redirect's target");
}

#[tokio::test]
async fn an_answer_larger_than_4_mib_is_not_read() {
    let (sim, url) = start(SimulatorOptions {
        fault: Fault::HugeBody,
        ..small()
    })
    .await;
    let e = client(&sim, &url).list_devices(0, 10).await.unwrap_err();
    assert!(
        matches!(&e, WxPayError::MalformedBody { reason, .. } if reason.contains("4 MiB")),
        "{e:?}"
    );
}

#[tokio::test]
async fn concurrent_certificate_refreshes_share_one_download() {
    let (sim, url) = start(small()).await;
    let c = WxPayClient::new(&sim.client_config(&url, false, true)).unwrap();
    let outcomes = futures::future::join_all((0..10).map(|_| c.refresh_certificates())).await;
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, Ok(CertificateRefresh::Loaded(_)))));
    let downloads = sim
        .log()
        .iter()
        .filter(|r| r.path_and_query == "/v3/certificates")
        .count();
    assert_eq!(downloads, 1, "ten callers, one request");
}

#[tokio::test]
async fn expired_platform_certificates_are_dropped() {
    let (sim, url) = start(small()).await;
    let c = WxPayClient::new(&sim.client_config(&url, false, true))
        .unwrap()
        .with_certificate_refresh_interval(Duration::ZERO);
    c.list_devices(0, 5).await.unwrap();
    let good = sim.keys().platform_cert_serial.clone();
    let expired = sim.rotate_to_expired_certificate().unwrap();
    // The answer is signed with the expired certificate: downloaded, then refused.
    let reason = rejected(c.list_devices(0, 5).await.unwrap_err());
    assert!(
        matches!(reason, VerifyError::UnknownSerial(_)),
        "{reason:?}"
    );
    let known = c.known_serials();
    assert!(known.contains(&good), "{known:?}");
    assert!(
        !known.iter().any(|s| s.eq_ignore_ascii_case(&expired)),
        "the expired certificate is not trusted: {known:?}"
    );
}

#[tokio::test]
async fn extreme_timestamps_are_refused_without_overflow() {
    use wxpay_devices::wechatpay::verifier::{KeyStore, ResponseSignature};
    let store = KeyStore::default();
    store.insert("PUB_KEY_ID_1", sim_platform_key());
    for (ts, now) in [
        (i64::MIN, i64::MAX),
        (i64::MAX, i64::MIN),
        (i64::MIN, 0),
        (i64::MAX, 1_800_000_000),
    ] {
        let sig = ResponseSignature {
            timestamp: ts.to_string(),
            nonce: "n".into(),
            serial: "PUB_KEY_ID_1".into(),
            signature: "AAAA".into(),
            signature_type: None,
        };
        assert!(matches!(
            store.verify(&sig, b"{}", now),
            Err(VerifyError::StaleTimestamp { .. })
        ));
    }
}

fn sim_platform_key() -> rsa::RsaPublicKey {
    keys().platform_public_key().clone()
}
