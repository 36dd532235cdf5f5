//! Response verification: every 2xx must carry a valid `Wechatpay-*` signature over
//! `timestamp\nnonce\nbody\n` by a key we know. One key store, by serial, serves both sources:
//! the WeChat Pay public key (`PUB_KEY_ID_...`) and platform certificates (hex serials).

use super::error::VerifyError;
use super::keys::verifying_key;
use base64::{engine::general_purpose::STANDARD, Engine};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::RsaPublicKey;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::RwLock;

/// A response's signature fields, as read from its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseSignature {
    pub timestamp: String,
    pub nonce: String,
    pub serial: String,
    pub signature: String,
    pub signature_type: Option<String>,
}

pub const H_TIMESTAMP: &str = "Wechatpay-Timestamp";
pub const H_NONCE: &str = "Wechatpay-Nonce";
pub const H_SERIAL: &str = "Wechatpay-Serial";
pub const H_SIGNATURE: &str = "Wechatpay-Signature";
pub const H_SIGNATURE_TYPE: &str = "Wechatpay-Signature-Type";

/// Reject responses whose timestamp is this many seconds or more from our clock.
pub const MAX_SKEW_SECONDS: i64 = 300;

impl ResponseSignature {
    /// Reads the four required headers (and the optional type) with any getter. `Ok(None)` when
    /// none of them is present; an error naming the missing ones when only some are.
    pub fn from_headers<'h>(
        get: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Option<Self>, VerifyError> {
        let names = [H_TIMESTAMP, H_NONCE, H_SERIAL, H_SIGNATURE];
        let values: Vec<Option<&str>> = names.iter().map(|n| get(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&'static str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(VerifyError::MissingHeaders(missing));
        }
        let v = |i: usize| values[i].unwrap_or_default().trim().to_string();
        Ok(Some(ResponseSignature {
            timestamp: v(0),
            nonce: v(1),
            serial: v(2),
            signature: v(3),
            signature_type: get(H_SIGNATURE_TYPE).map(|s| s.trim().to_string()),
        }))
    }

    /// The exact bytes signed: `timestamp\nnonce\nbody\n` with the raw body.
    pub fn message(&self, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.timestamp.len() + self.nonce.len() + body.len() + 3);
        m.extend_from_slice(self.timestamp.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(self.nonce.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(body);
        m.push(b'\n');
        m
    }
}

/// A serial in the form used to compare: `PUB_KEY_ID_...` as given; certificate serials (hex)
/// upper-cased without leading zeros.
pub fn normalize_serial(serial: &str) -> String {
    let s = serial.trim();
    if s.starts_with("PUB_KEY_ID_") {
        return s.to_string();
    }
    let hex = s
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .to_ascii_uppercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.to_string()
    }
}

/// A key responses may be signed with, and when it stops being valid (platform certificates
/// expire; the public key does not).
struct StoredKey {
    key: VerifyingKey<Sha256>,
    not_after: Option<i64>,
}

/// The keys WeChat Pay signs responses with, by normalised serial.
#[derive(Default)]
pub struct KeyStore {
    keys: RwLock<HashMap<String, StoredKey>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("serials", &self.serials())
            .finish()
    }
}

impl KeyStore {
    /// A key that does not expire (the WeChat Pay public key).
    pub fn insert(&self, serial: &str, key: RsaPublicKey) {
        self.insert_until(serial, key, None);
    }

    /// A key valid until `not_after` (Unix seconds), like a platform certificate's.
    pub fn insert_until(&self, serial: &str, key: RsaPublicKey, not_after: Option<i64>) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.insert(
            normalize_serial(serial),
            StoredKey {
                key: verifying_key(key),
                not_after,
            },
        );
    }

    /// Drops the keys that expired before `now`; returns their serials.
    pub fn remove_expired(&self, now: i64) -> Vec<String> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<String> = keys
            .iter()
            .filter(|(_, k)| k.not_after.is_some_and(|t| t < now))
            .map(|(s, _)| s.clone())
            .collect();
        for s in &expired {
            keys.remove(s);
        }
        expired
    }

    pub fn contains(&self, serial: &str) -> bool {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.contains_key(&normalize_serial(serial))
    }

    pub fn serials(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = keys.keys().cloned().collect();
        v.sort();
        v
    }

    /// Verifies a response signature over `body` at time `now` (Unix seconds).
    pub fn verify(
        &self,
        sig: &ResponseSignature,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        if let Some(t) = &sig.signature_type {
            if t != super::signer::SCHEME {
                return Err(VerifyError::UnsupportedType(t.clone()));
            }
        }
        if sig.signature.starts_with("WECHATPAY/SIGNTEST/") {
            return Err(VerifyError::SignTest);
        }
        let stale = || VerifyError::StaleTimestamp {
            timestamp: sig.timestamp.clone(),
            now,
        };
        let ts: i64 = sig.timestamp.parse().map_err(|_| stale())?;
        // `abs_diff`: no overflow, whatever number the header holds.
        if now.abs_diff(ts) >= MAX_SKEW_SECONDS as u64 {
            return Err(stale());
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let stored = keys
            .get(&normalize_serial(&sig.serial))
            .ok_or_else(|| VerifyError::UnknownSerial(sig.serial.clone()))?;
        if stored.not_after.is_some_and(|t| t < now) {
            return Err(VerifyError::ExpiredCertificate(sig.serial.clone()));
        }
        let key = &stored.key;
        let raw = STANDARD
            .decode(sig.signature.as_bytes())
            .map_err(|_| VerifyError::BadSignature)?;
        let signature =
            Signature::try_from(raw.as_slice()).map_err(|_| VerifyError::BadSignature)?;
        key.verify(&sig.message(body), &signature)
            .map_err(|_| VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechatpay::keys::public_key_from_pem;

    const PLATFORM_PUB: &str = include_str!("../../tests/fixtures/platform_pub.pem");
    const MERCHANT_PUB: &str = include_str!("../../tests/fixtures/merchant_pub.pem");
    const OPENSSL_SIGNATURE: &str = include_str!("../../tests/fixtures/response_signature.b64");
    const BODY: &[u8] = br#"{"data":[],"offset":0,"limit":100,"total_count":0}"#;
    const SERIAL: &str = "PUB_KEY_ID_0114232134912410000000000000000001";

    fn store() -> KeyStore {
        let s = KeyStore::default();
        s.insert(SERIAL, public_key_from_pem(PLATFORM_PUB).unwrap());
        s
    }

    fn sig() -> ResponseSignature {
        ResponseSignature {
            timestamp: "1554209980".into(),
            nonce: "c5ac7061fccab6bf3e254dcf98995b8c".into(),
            serial: SERIAL.into(),
            signature: OPENSSL_SIGNATURE.trim().into(),
            signature_type: Some("WECHATPAY2-SHA256-RSA2048".into()),
        }
    }

    #[test]
    fn accepts_a_signature_made_by_openssl() {
        assert_eq!(
            sig().message(BODY),
            include_bytes!("../../tests/fixtures/response_message.txt").to_vec()
        );
        store().verify(&sig(), BODY, 1554209980 + 299).unwrap();
    }

    #[test]
    fn rejects_tampering_stale_times_unknown_keys_and_probes() {
        let s = store();
        let now = 1554209980;
        assert_eq!(
            s.verify(&sig(), b"{\"data\":[1]}", now),
            Err(VerifyError::BadSignature)
        );
        assert!(matches!(
            s.verify(&sig(), BODY, now + 300),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            s.verify(&sig(), BODY, now - 300),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        let bad_ts = ResponseSignature {
            timestamp: "soon".into(),
            ..sig()
        };
        assert!(matches!(
            s.verify(&bad_ts, BODY, now),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        let other = ResponseSignature {
            serial: "PUB_KEY_ID_0000000000000000000000000000000002".into(),
            ..sig()
        };
        assert_eq!(
            s.verify(&other, BODY, now),
            Err(VerifyError::UnknownSerial(other.serial.clone()))
        );
        let probe = ResponseSignature {
            signature: "WECHATPAY/SIGNTEST/abc".into(),
            ..sig()
        };
        assert_eq!(s.verify(&probe, BODY, now), Err(VerifyError::SignTest));
        let garbage = ResponseSignature {
            signature: "!!!".into(),
            ..sig()
        };
        assert_eq!(
            s.verify(&garbage, BODY, now),
            Err(VerifyError::BadSignature)
        );
        let typ = ResponseSignature {
            signature_type: Some("HMAC".into()),
            ..sig()
        };
        assert!(matches!(
            s.verify(&typ, BODY, now),
            Err(VerifyError::UnsupportedType(_))
        ));
    }

    #[test]
    fn the_wrong_key_under_the_right_serial_fails() {
        let s = KeyStore::default();
        s.insert(SERIAL, public_key_from_pem(MERCHANT_PUB).unwrap());
        assert_eq!(
            s.verify(&sig(), BODY, 1554209980),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn serials_compare_normalised() {
        assert_eq!(normalize_serial("0a1b2C"), "A1B2C");
        assert_eq!(normalize_serial(" 000A1B2C "), "A1B2C");
        assert_eq!(normalize_serial(SERIAL), SERIAL);
        let s = KeyStore::default();
        s.insert("0A1B2C3D", public_key_from_pem(PLATFORM_PUB).unwrap());
        assert!(s.contains("a1b2c3d"));
        assert!(!s.contains("A1B2C3E"));
    }

    #[test]
    fn headers_all_none_or_all_present() {
        let none = ResponseSignature::from_headers(|_| None).unwrap();
        assert!(none.is_none());
        let partial = ResponseSignature::from_headers(|n| (n == H_TIMESTAMP).then_some("1"));
        match partial {
            Err(VerifyError::MissingHeaders(m)) => {
                assert_eq!(m, vec![H_NONCE, H_SERIAL, H_SIGNATURE])
            }
            other => panic!("{other:?}"),
        }
        let full =
            ResponseSignature::from_headers(|n| Some(if n == H_SERIAL { SERIAL } else { "x" }))
                .unwrap()
                .unwrap();
        assert_eq!(full.serial, SERIAL);
    }
}
