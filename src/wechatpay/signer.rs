//! Request signing, in the style of aws-sigv4: the message is its own type whose `Display` is the
//! exact bytes signed; signing is a pure function of (message, key); the `Authorization` value is
//! built from the result. The URL signed is the URL sent: callers build it once.

use super::keys::MerchantKey;
use base64::{engine::general_purpose::STANDARD, Engine};
use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use rsa::signature::{SignatureEncoding, Signer};
use std::fmt;

/// The authentication scheme of every APIv3 request and response signature.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The five-line message a request signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMessage<'a> {
    pub method: &'a str,
    /// Path and query exactly as sent, e.g. `/v3/iotmanage/devices?limit=100&offset=0`.
    pub path_and_query: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub body: &'a str,
}

impl fmt::Display for RequestMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n{}\n{}\n",
            self.method, self.path_and_query, self.timestamp, self.nonce, self.body
        )
    }
}

/// Signs any message (RSA PKCS#1 v1.5, SHA-256) and returns the base64 signature.
pub fn sign_bytes(message: &[u8], key: &MerchantKey) -> String {
    let signature = key.signing_key().sign(message);
    STANDARD.encode(signature.to_bytes())
}

/// The fields of an `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub timestamp: String,
    pub serial_no: String,
    pub signature: String,
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME} mchid=\"{}\",nonce_str=\"{}\",timestamp=\"{}\",serial_no=\"{}\",signature=\"{}\"",
            self.mchid, self.nonce_str, self.timestamp, self.serial_no, self.signature
        )
    }
}

impl Authorization {
    /// Parses an `Authorization` header value. The keys may come in any order; all five are
    /// required.
    pub fn parse(header: &str) -> Result<Self, String> {
        let rest = header
            .trim()
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("the authorization scheme is not {SCHEME}"))?;
        let (mut mchid, mut nonce, mut ts, mut serial, mut sig) = (None, None, None, None, None);
        for pair in rest.split(',') {
            let (k, v) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("malformed authorization field {pair:?}"))?;
            let v = v.trim().trim_matches('"').to_string();
            match k.trim() {
                "mchid" => mchid = Some(v),
                "nonce_str" => nonce = Some(v),
                "timestamp" => ts = Some(v),
                "serial_no" => serial = Some(v),
                "signature" => sig = Some(v),
                _ => {}
            }
        }
        let need =
            |v: Option<String>, name: &str| v.ok_or_else(|| format!("authorization has no {name}"));
        Ok(Authorization {
            mchid: need(mchid, "mchid")?,
            nonce_str: need(nonce, "nonce_str")?,
            timestamp: need(ts, "timestamp")?,
            serial_no: need(serial, "serial_no")?,
            signature: need(sig, "signature")?,
        })
    }
}

/// Signs a request message and returns the complete `Authorization` header value.
pub fn authorization(
    mchid: &str,
    serial_no: &str,
    message: &RequestMessage<'_>,
    key: &MerchantKey,
) -> Authorization {
    Authorization {
        mchid: mchid.to_string(),
        nonce_str: message.nonce.to_string(),
        timestamp: message.timestamp.to_string(),
        serial_no: serial_no.to_string(),
        signature: sign_bytes(message.to_string().as_bytes(), key),
    }
}

/// A 32-character nonce from the operating system's CSPRNG.
pub fn new_nonce() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect::<String>()
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_now;
    use std::process::Command;

    const PKCS8: &str = include_str!("../../tests/fixtures/merchant_key_pkcs8.pem");
    const PKCS1: &str = include_str!("../../tests/fixtures/merchant_key_pkcs1.pem");
    const MESSAGE: &str = include_str!("../../tests/fixtures/request_message.txt");
    const OPENSSL_SIGNATURE: &str = include_str!("../../tests/fixtures/request_signature.b64");

    fn example() -> RequestMessage<'static> {
        RequestMessage {
            method: "GET",
            path_and_query: "/v3/iotmanage/devices?limit=100&offset=0",
            timestamp: 1554208460,
            nonce: "593BEC0C930BF1AFEB40B4A08C8FB242",
            body: "",
        }
    }

    #[test]
    fn message_bytes_are_five_lines_each_ended_by_newline() {
        assert_eq!(
            example().to_string(),
            "GET\n/v3/iotmanage/devices?limit=100&offset=0\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
        assert_eq!(
            example().to_string(),
            MESSAGE,
            "same bytes as the openssl fixture"
        );
    }

    #[test]
    fn signature_equals_the_one_openssl_made() {
        // PKCS#1 v1.5 is deterministic: our signature must be byte-for-byte openssl's.
        let key = MerchantKey::from_pem(PKCS8).unwrap();
        assert_eq!(
            sign_bytes(example().to_string().as_bytes(), &key),
            OPENSSL_SIGNATURE.trim()
        );
        let key1 = MerchantKey::from_pem(PKCS1).unwrap();
        assert_eq!(
            sign_bytes(MESSAGE.as_bytes(), &key1),
            OPENSSL_SIGNATURE.trim()
        );
    }

    #[test]
    fn openssl_verifies_a_fresh_signature() {
        let dir = std::env::temp_dir().join(format!("wxpay-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = MerchantKey::from_pem(PKCS8).unwrap();
        let msg = RequestMessage {
            nonce: &new_nonce(),
            timestamp: unix_now(),
            ..example()
        };
        let sig = sign_bytes(msg.to_string().as_bytes(), &key);
        std::fs::write(dir.join("msg"), msg.to_string()).unwrap();
        std::fs::write(dir.join("sig"), STANDARD.decode(&sig).unwrap()).unwrap();
        let pub_path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/merchant_pub.pem"
        );
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify", pub_path, "-signature"])
            .arg(dir.join("sig"))
            .arg(dir.join("msg"))
            .output()
            .expect("openssl must be installed to run this test");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    }

    #[test]
    fn authorization_header_has_the_documented_shape_and_parses_back() {
        let key = MerchantKey::from_pem(PKCS8).unwrap();
        let auth = authorization("1900000001", "5E1E4B7F", &example(), &key);
        let header = auth.to_string();
        assert_eq!(
            header,
            format!(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",timestamp=\"1554208460\",serial_no=\"5E1E4B7F\",signature=\"{}\"",
                OPENSSL_SIGNATURE.trim()
            )
        );
        assert_eq!(Authorization::parse(&header).unwrap(), auth);
        // Any order, spaces after commas.
        let reordered = "WECHATPAY2-SHA256-RSA2048 signature=\"s\", timestamp=\"1\", mchid=\"m\", serial_no=\"x\", nonce_str=\"n\"";
        assert_eq!(Authorization::parse(reordered).unwrap().mchid, "m");
        assert!(Authorization::parse("Bearer abc").is_err());
        assert!(
            Authorization::parse("WECHATPAY2-SHA256-RSA2048 mchid=\"1\"")
                .unwrap_err()
                .contains("nonce_str")
        );
    }

    #[test]
    fn nonces_are_32_alphanumerics_and_differ() {
        let a = new_nonce();
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_ne!(a, new_nonce());
    }
}
