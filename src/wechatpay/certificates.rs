//! Platform certificates (`GET /v3/certificates`): each entry's certificate is encrypted with
//! AEAD_AES_256_GCM under the merchant's 32-byte APIv3 key. We decrypt it, read its serial and
//! public key, and add it to the key store. Merchants registered since late 2024 have no
//! certificates (the endpoint answers 404 `RESOURCE_NOT_EXISTS`): they use the public key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::{engine::general_purpose::STANDARD, Engine};
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

/// The body of `GET /v3/certificates`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CertificateList {
    pub data: Vec<CertificateEntry>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CertificateEntry {
    pub serial_no: String,
    pub effective_time: String,
    pub expire_time: String,
    pub encrypt_certificate: EncryptedResource,
}

/// An AEAD_AES_256_GCM-encrypted resource, as WeChat Pay sends it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EncryptedResource {
    pub algorithm: String,
    pub nonce: String,
    pub associated_data: String,
    /// base64 of the ciphertext followed by the 16-byte tag.
    pub ciphertext: String,
}

/// The APIv3 key: exactly 32 bytes. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiV3Key([u8; 32]);

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key(<redacted>)")
    }
}

impl ApiV3Key {
    pub fn new(key: &str) -> Result<Self, String> {
        let bytes: [u8; 32] = key.as_bytes().try_into().map_err(|_| {
            format!(
                "the APIv3 key must be exactly 32 bytes, this one has {}",
                key.len()
            )
        })?;
        Ok(ApiV3Key(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Decrypts an AEAD_AES_256_GCM resource.
pub fn decrypt(key: &ApiV3Key, resource: &EncryptedResource) -> Result<Vec<u8>, String> {
    if resource.algorithm != "AEAD_AES_256_GCM" {
        return Err(format!("unsupported algorithm {:?}", resource.algorithm));
    }
    if resource.nonce.len() != 12 {
        return Err(format!(
            "the nonce must be 12 bytes, got {}",
            resource.nonce.len()
        ));
    }
    let data = STANDARD
        .decode(resource.ciphertext.trim())
        .map_err(|_| "the ciphertext is not base64".to_string())?;
    let cipher = Aes256Gcm::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
    cipher
        .decrypt(
            Nonce::from_slice(resource.nonce.as_bytes()),
            Payload {
                msg: &data,
                aad: resource.associated_data.as_bytes(),
            },
        )
        .map_err(|_| "decryption failed: check WECHATPAY_APIV3_KEY".to_string())
}

/// Encrypts a resource the way WeChat Pay does (for the simulator).
pub fn encrypt(
    key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    plain: &[u8],
) -> EncryptedResource {
    let cipher = Aes256Gcm::new_from_slice(key.as_bytes()).expect("32-byte key");
    let ct = cipher
        .encrypt(
            Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: plain,
                aad: associated_data.as_bytes(),
            },
        )
        .expect("AES-GCM encryption cannot fail for these sizes");
    EncryptedResource {
        algorithm: "AEAD_AES_256_GCM".into(),
        nonce: nonce.into(),
        associated_data: associated_data.into(),
        ciphertext: STANDARD.encode(ct),
    }
}

/// What we keep of a platform certificate.
#[derive(Clone, Debug)]
pub struct PlatformCertificate {
    /// Upper-case hex serial.
    pub serial: String,
    pub public_key: RsaPublicKey,
    /// Unix seconds.
    pub not_after: i64,
}

/// Reads a PEM certificate's serial, RSA public key and expiry.
pub fn parse_certificate(pem: &[u8]) -> Result<PlatformCertificate, String> {
    let cert = Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let serial: String = tbs
        .serial_number
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    let public_key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| format!("the certificate's key is not RSA: {e}"))?;
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
    Ok(PlatformCertificate {
        serial,
        public_key,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechatpay::keys::public_key_from_pem;

    const VECTOR: &str = include_str!("../../tests/fixtures/aead_vector.json");
    const CERT: &str = include_str!("../../tests/fixtures/platform_cert.pem");
    const PLATFORM_PUB: &str = include_str!("../../tests/fixtures/platform_pub.pem");

    fn vector() -> (ApiV3Key, EncryptedResource) {
        let v: serde_json::Value = serde_json::from_str(VECTOR).unwrap();
        let key = ApiV3Key::new(v["apiv3_key"].as_str().unwrap()).unwrap();
        let res = EncryptedResource {
            algorithm: "AEAD_AES_256_GCM".into(),
            nonce: v["nonce"].as_str().unwrap().into(),
            associated_data: v["associated_data"].as_str().unwrap().into(),
            ciphertext: v["ciphertext"].as_str().unwrap().into(),
        };
        (key, res)
    }

    #[test]
    fn decrypts_a_vector_made_by_python_cryptography() {
        let (key, res) = vector();
        assert_eq!(decrypt(&key, &res).unwrap(), CERT.as_bytes());
    }

    #[test]
    fn wrong_key_wrong_aad_and_tampering_fail() {
        let (_, res) = vector();
        let wrong = ApiV3Key::new("XXXXXXXXXXabcdefghijklmnopqrstuv").unwrap();
        assert!(decrypt(&wrong, &res)
            .unwrap_err()
            .contains("WECHATPAY_APIV3_KEY"));
        let (key, mut res2) = vector();
        res2.associated_data = "other".into();
        assert!(decrypt(&key, &res2).is_err());
        let (key, mut res3) = vector();
        res3.nonce = "short".into();
        assert!(decrypt(&key, &res3).unwrap_err().contains("12 bytes"));
    }

    #[test]
    fn encrypt_round_trips_and_matches_python() {
        let (key, res) = vector();
        let ours = encrypt(&key, &res.nonce, &res.associated_data, CERT.as_bytes());
        assert_eq!(
            ours.ciphertext, res.ciphertext,
            "AES-GCM is deterministic for a fixed nonce"
        );
    }

    #[test]
    fn apiv3_key_must_be_32_bytes_and_is_redacted() {
        assert!(ApiV3Key::new("short").unwrap_err().contains("32 bytes"));
        let k = ApiV3Key::new("0123456789abcdefghijklmnopqrstuv").unwrap();
        assert_eq!(format!("{k:?}"), "ApiV3Key(<redacted>)");
    }

    #[test]
    fn reads_serial_key_and_expiry_of_a_certificate() {
        let c = parse_certificate(CERT.as_bytes()).unwrap();
        assert_eq!(c.serial, "0A1B2C3D4E5F60718293A4B5C6D7E8F9");
        assert_eq!(c.public_key, public_key_from_pem(PLATFORM_PUB).unwrap());
        assert!(
            c.not_after > 1_900_000_000,
            "valid ten years: {}",
            c.not_after
        );
        assert!(parse_certificate(b"nope").is_err());
    }
}
