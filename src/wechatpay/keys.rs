//! RSA keys from PEM: the merchant's private key (PKCS#8 or PKCS#1) and the WeChat Pay public key
//! (SPKI). Loading says plainly what is wrong with a file; `Debug` never shows key material.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::{SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use std::fmt;

/// The merchant's API private key, ready to sign (RSA PKCS#1 v1.5 over SHA-256).
#[derive(Clone)]
pub struct MerchantKey {
    private: RsaPrivateKey,
    signing: SigningKey<Sha256>,
    public: RsaPublicKey,
}

impl fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MerchantKey(<redacted>)")
    }
}

impl MerchantKey {
    /// Loads `apiclient_key.pem`: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let label = pem_label(pem)?;
        let key = match label.as_str() {
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| {
                format!("not an RSA private key ({e}); WeChat Pay merchant keys are RSA-2048")
            })?,
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| format!("not a valid PKCS#1 RSA private key ({e})"))?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(
                    "the private key is encrypted; export it without a passphrase \
                            (openssl pkey -in key.pem -out apiclient_key.pem)"
                        .into(),
                )
            }
            "CERTIFICATE" => {
                return Err(
                    "this is a certificate (apiclient_cert.pem), not the private key \
                            (apiclient_key.pem)"
                        .into(),
                )
            }
            other => return Err(format!("a PEM of type {other:?} is not an RSA private key")),
        };
        Ok(Self::from_key(key))
    }

    pub fn from_key(key: RsaPrivateKey) -> Self {
        let public = key.to_public_key();
        MerchantKey {
            signing: SigningKey::new(key.clone()),
            private: key,
            public,
        }
    }

    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// The key itself (the simulator writes its keys to files).
    pub fn private_key(&self) -> &RsaPrivateKey {
        &self.private
    }

    pub(crate) fn signing_key(&self) -> &SigningKey<Sha256> {
        &self.signing
    }
}

/// Loads a WeChat Pay public key (`BEGIN PUBLIC KEY`, SPKI).
pub fn public_key_from_pem(pem: &str) -> Result<RsaPublicKey, String> {
    match pem_label(pem)?.as_str() {
        "PUBLIC KEY" => RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| format!("not an RSA public key ({e})")),
        "CERTIFICATE" => Err(
            "this is a certificate; give the WeChat Pay public key file \
                              (pub_key.pem, BEGIN PUBLIC KEY)"
                .into(),
        ),
        other => Err(format!("a PEM of type {other:?} is not a public key")),
    }
}

/// A verifying key for RSA-SHA256 PKCS#1 v1.5 signatures.
pub fn verifying_key(key: RsaPublicKey) -> VerifyingKey<Sha256> {
    VerifyingKey::new(key)
}

/// The label of the first PEM block (`-----BEGIN <label>-----`).
fn pem_label(text: &str) -> Result<String, String> {
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| "not a PEM file (no -----BEGIN line)".to_string())?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let end = rest
        .find("-----")
        .ok_or_else(|| "not a PEM file (broken BEGIN line)".to_string())?;
    Ok(rest[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS8: &str = include_str!("../../tests/fixtures/merchant_key_pkcs8.pem");
    const PKCS1: &str = include_str!("../../tests/fixtures/merchant_key_pkcs1.pem");
    const PUB: &str = include_str!("../../tests/fixtures/merchant_pub.pem");
    const EC: &str = include_str!("../../tests/fixtures/ec_key.pem");
    const CERT: &str = include_str!("../../tests/fixtures/platform_cert.pem");

    #[test]
    fn pkcs8_and_pkcs1_load_to_the_same_key() {
        let a = MerchantKey::from_pem(PKCS8).unwrap();
        let b = MerchantKey::from_pem(PKCS1).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.public_key(), &public_key_from_pem(PUB).unwrap());
    }

    #[test]
    fn wrong_files_are_named_plainly() {
        assert!(MerchantKey::from_pem("hello")
            .unwrap_err()
            .contains("not a PEM"));
        assert!(MerchantKey::from_pem(EC)
            .unwrap_err()
            .contains("not an RSA private key"));
        assert!(MerchantKey::from_pem(CERT)
            .unwrap_err()
            .contains("certificate"));
        assert!(MerchantKey::from_pem(PUB)
            .unwrap_err()
            .contains("PUBLIC KEY"));
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(MerchantKey::from_pem(enc)
            .unwrap_err()
            .contains("encrypted"));
        assert!(public_key_from_pem(PKCS8)
            .unwrap_err()
            .contains("not a public key"));
        assert!(public_key_from_pem(CERT)
            .unwrap_err()
            .contains("certificate"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = MerchantKey::from_pem(PKCS8).unwrap();
        assert_eq!(format!("{k:?}"), "MerchantKey(<redacted>)");
    }
}
