//! The simulator's key material: the merchant's key pair (the client signs with it), the platform
//! key that signs responses (with its `PUB_KEY_ID_...` and a self-signed platform certificate),
//! and the APIv3 key. Generated at start for the demo, or kept in a directory for standalone use.

use crate::wechatpay::certificates::{parse_certificate, ApiV3Key};
use crate::wechatpay::keys::{public_key_from_pem, MerchantKey};
use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

/// File names in a keys directory (the README lists them).
pub const MERCHANT_KEY_FILE: &str = "apiclient_key.pem";
pub const MERCHANT_SERIAL_FILE: &str = "merchant_serial_no.txt";
pub const MCHID_FILE: &str = "mchid.txt";
pub const PLATFORM_PUBLIC_KEY_FILE: &str = "pub_key.pem";
pub const PLATFORM_PUBLIC_KEY_ID_FILE: &str = "pub_key_id.txt";
pub const PLATFORM_PRIVATE_KEY_FILE: &str = "platform_private_key.pem";
pub const APIV3_KEY_FILE: &str = "apiv3_key.txt";

/// Everything both sides need.
#[derive(Clone)]
pub struct SimKeys {
    pub mchid: String,
    pub merchant_serial: String,
    pub merchant_key: MerchantKey,
    pub platform_key: MerchantKey,
    pub platform_key_id: String,
    /// The platform certificate (same key pair as `platform_key`) and its hex serial.
    pub platform_cert_pem: String,
    pub platform_cert_serial: String,
    pub apiv3_key: String,
}

impl std::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKeys")
            .field("mchid", &self.mchid)
            .field("merchant_serial", &self.merchant_serial)
            .field("platform_key_id", &self.platform_key_id)
            .finish_non_exhaustive()
    }
}

fn digits(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + OsRng.gen_range(0..10)))
        .collect()
}

impl SimKeys {
    /// Fresh keys (two RSA-2048 key pairs: about a second in a release build).
    pub fn generate() -> Result<Self, String> {
        let merchant = RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| e.to_string())?;
        let platform = RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| e.to_string())?;
        let apiv3: String = OsRng
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let merchant_serial: String = (0..40)
            .map(|_| char::from(b"0123456789ABCDEF"[OsRng.gen_range(0..16)]))
            .collect();
        Self::assemble(
            "1900000001".into(),
            merchant_serial,
            merchant,
            platform,
            format!("PUB_KEY_ID_01{}", digits(30)),
            apiv3,
        )
    }

    fn assemble(
        mchid: String,
        merchant_serial: String,
        merchant: RsaPrivateKey,
        platform: RsaPrivateKey,
        platform_key_id: String,
        apiv3_key: String,
    ) -> Result<Self, String> {
        ApiV3Key::new(&apiv3_key)?;
        let platform_cert_pem = self_signed_certificate(&platform)?;
        let platform_cert_serial = parse_certificate(platform_cert_pem.as_bytes())?.serial;
        Ok(SimKeys {
            mchid,
            merchant_serial,
            merchant_key: MerchantKey::from_key(merchant),
            platform_key: MerchantKey::from_key(platform),
            platform_key_id,
            platform_cert_pem,
            platform_cert_serial,
            apiv3_key,
        })
    }

    pub fn merchant_public_key(&self) -> &RsaPublicKey {
        self.merchant_key.public_key()
    }

    pub fn platform_public_key(&self) -> &RsaPublicKey {
        self.platform_key.public_key()
    }

    /// Loads the keys in `dir`, creating them there first if absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        let path = |name: &str| dir.join(name);
        let read = |name: &str| {
            std::fs::read_to_string(path(name))
                .map_err(|e| format!("{}: {e}", path(name).display()))
        };
        if !path(MERCHANT_KEY_FILE).exists() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let keys = Self::generate()?;
            keys.write(dir)?;
            return Ok(keys);
        }
        let merchant =
            RsaPrivateKey::from_pkcs8_pem(&read(MERCHANT_KEY_FILE)?).map_err(|e| e.to_string())?;
        let platform = RsaPrivateKey::from_pkcs8_pem(&read(PLATFORM_PRIVATE_KEY_FILE)?)
            .map_err(|e| e.to_string())?;
        let public = public_key_from_pem(&read(PLATFORM_PUBLIC_KEY_FILE)?)?;
        if public != platform.to_public_key() {
            return Err(format!(
                "{PLATFORM_PUBLIC_KEY_FILE} does not match {PLATFORM_PRIVATE_KEY_FILE}"
            ));
        }
        Self::assemble(
            read(MCHID_FILE)?.trim().to_string(),
            read(MERCHANT_SERIAL_FILE)?.trim().to_string(),
            merchant,
            platform,
            read(PLATFORM_PUBLIC_KEY_ID_FILE)?.trim().to_string(),
            read(APIV3_KEY_FILE)?.trim().to_string(),
        )
    }

    fn write(&self, dir: &Path) -> Result<(), String> {
        let merchant_pem = private_pem(&self.merchant_key)?;
        let platform_pem = private_pem(&self.platform_key)?;
        let public_pem = self
            .platform_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let files = [
            (MERCHANT_KEY_FILE, merchant_pem.as_str(), true),
            (PLATFORM_PRIVATE_KEY_FILE, platform_pem.as_str(), true),
            (APIV3_KEY_FILE, self.apiv3_key.as_str(), true),
            (MERCHANT_SERIAL_FILE, self.merchant_serial.as_str(), false),
            (MCHID_FILE, self.mchid.as_str(), false),
            (PLATFORM_PUBLIC_KEY_FILE, public_pem.as_str(), false),
            (
                PLATFORM_PUBLIC_KEY_ID_FILE,
                self.platform_key_id.as_str(),
                false,
            ),
        ];
        for (name, content, secret) in files {
            let p = dir.join(name);
            std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))?;
            #[cfg(unix)]
            if secret {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
            }
            #[cfg(not(unix))]
            let _ = secret;
        }
        Ok(())
    }
}

fn private_pem(key: &MerchantKey) -> Result<String, String> {
    key.private_key()
        .to_pkcs8_pem(LineEnding::LF)
        .map(|z| z.to_string())
        .map_err(|e| e.to_string())
}

/// A self-signed certificate over `key`, valid five years, like a platform certificate.
fn self_signed_certificate(key: &RsaPrivateKey) -> Result<String, String> {
    let validity =
        Validity::from_now(Duration::from_secs(5 * 365 * 86_400)).map_err(|e| e.to_string())?;
    certificate_with(key, validity)
}

/// A platform certificate over `key` that expired yesterday (valid for a year before that).
pub fn expired_certificate(key: &RsaPrivateKey) -> Result<String, String> {
    use x509_cert::time::Time;
    let now = std::time::SystemTime::now();
    let time = |t: std::time::SystemTime| Time::try_from(t).map_err(|e| e.to_string());
    let validity = Validity {
        not_before: time(now - Duration::from_secs(366 * 86_400))?,
        not_after: time(now - Duration::from_secs(86_400))?,
    };
    certificate_with(key, validity)
}

fn certificate_with(key: &RsaPrivateKey, validity: Validity) -> Result<String, String> {
    let mut serial_bytes = [0u8; 20];
    OsRng.fill(&mut serial_bytes[..]);
    serial_bytes[0] = (serial_bytes[0] & 0x3f) | 0x10; // positive, no leading zero
    let serial = SerialNumber::new(&serial_bytes).map_err(|e| e.to_string())?;
    let subject = Name::from_str("CN=Tenpay.com sign,O=wxpay-devices simulator")
        .map_err(|e| e.to_string())?;
    let spki =
        SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|e| e.to_string())?;
    let signer = SigningKey::<Sha256>::new(key.clone());
    let builder = CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)
        .map_err(|e| e.to_string())?;
    let cert = builder
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|e| e.to_string())?;
    cert.to_pem(LineEnding::LF).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_in_a_directory_and_load_back() {
        let dir = std::env::temp_dir().join(format!("wxpay-simkeys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = SimKeys::load_or_create(&dir).unwrap();
        let b = SimKeys::load_or_create(&dir).unwrap();
        assert_eq!(a.merchant_public_key(), b.merchant_public_key());
        assert_eq!(a.platform_key_id, b.platform_key_id);
        assert_eq!(a.apiv3_key.len(), 32);
        assert!(a.platform_key_id.starts_with("PUB_KEY_ID_") && a.platform_key_id.len() == 43);
        let cert = parse_certificate(a.platform_cert_pem.as_bytes()).unwrap();
        assert_eq!(&cert.public_key, a.platform_public_key());
        // Our own client loads the files the README tells other clients to use.
        let pem = std::fs::read_to_string(dir.join(MERCHANT_KEY_FILE)).unwrap();
        assert!(MerchantKey::from_pem(&pem).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
