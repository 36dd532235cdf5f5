//! The configuration contract of SPEC.md: environment variables, each also a command-line flag.
//! `load` checks everything at start-up and fails with one line naming the variable and the fix.
//! No MCHID means demo mode (the built-in simulator).

use super::certificates::ApiV3Key;
use super::keys::{public_key_from_pem, MerchantKey};
use rsa::RsaPublicKey;
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// The raw settings, as given on the command line or in the environment.
#[derive(clap::Args, Clone, Default)]
pub struct WxPayArgs {
    /// Merchant id; unset means demo mode on the built-in simulator.
    #[arg(long = "mchid", env = "WECHATPAY_MCHID")]
    pub mchid: Option<String>,
    /// Serial number of the merchant API certificate.
    #[arg(long = "merchant-serial-no", env = "WECHATPAY_MERCHANT_SERIAL_NO")]
    pub merchant_serial_no: Option<String>,
    /// Path to the merchant API private key PEM (apiclient_key.pem).
    #[arg(long = "merchant-private-key", env = "WECHATPAY_MERCHANT_PRIVATE_KEY")]
    pub merchant_private_key: Option<PathBuf>,
    /// Path to the WeChat Pay public key PEM (public-key mode).
    #[arg(long = "public-key", env = "WECHATPAY_PUBLIC_KEY")]
    pub public_key: Option<PathBuf>,
    /// Id of the WeChat Pay public key, PUB_KEY_ID_...
    #[arg(long = "public-key-id", env = "WECHATPAY_PUBLIC_KEY_ID")]
    pub public_key_id: Option<String>,
    /// APIv3 key (32 bytes), for platform-certificate mode.
    #[arg(
        long = "apiv3-key",
        env = "WECHATPAY_APIV3_KEY",
        hide_env_values = true
    )]
    pub apiv3_key: Option<String>,
    /// API origin.
    #[arg(long = "base-url", env = "WECHATPAY_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
}

/// A checked merchant configuration. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct MerchantConfig {
    pub mchid: String,
    pub serial_no: String,
    pub private_key: MerchantKey,
    /// The WeChat Pay public key and its id (public-key mode).
    pub public_key: Option<(String, RsaPublicKey)>,
    /// The APIv3 key (platform-certificate mode).
    pub apiv3_key: Option<ApiV3Key>,
    pub base_url: String,
}

/// A configuration problem: which variable, what is wrong, what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn read_pem(variable: &'static str, path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        err(
            variable,
            format!(
                "cannot read {what} file {}: {e}; set it to the path of {what}",
                path.display()
            ),
        )
    })
}

impl WxPayArgs {
    /// Checks the settings. `Ok(None)`: no MCHID, so demo mode.
    pub fn load(&self) -> Result<Option<MerchantConfig>, ConfigError> {
        let Some(mchid) = non_empty(&self.mchid) else {
            let given = [
                (
                    "WECHATPAY_MERCHANT_SERIAL_NO",
                    self.merchant_serial_no.is_some(),
                ),
                (
                    "WECHATPAY_MERCHANT_PRIVATE_KEY",
                    self.merchant_private_key.is_some(),
                ),
                ("WECHATPAY_PUBLIC_KEY", self.public_key.is_some()),
                ("WECHATPAY_APIV3_KEY", self.apiv3_key.is_some()),
            ];
            if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
                return Err(err(
                    "WECHATPAY_MCHID",
                    format!("{name} is set but WECHATPAY_MCHID is not; set the merchant id, or unset {name} for demo mode"),
                ));
            }
            return Ok(None);
        };
        if mchid.len() > 32 || !mchid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "WECHATPAY_MCHID",
                format!("{mchid:?} is not a merchant id (digits only, e.g. 1900000001)"),
            ));
        }
        let serial_no = non_empty(&self.merchant_serial_no).ok_or_else(|| {
            err("WECHATPAY_MERCHANT_SERIAL_NO", "required with WECHATPAY_MCHID: the serial of the merchant API certificate (openssl x509 -in apiclient_cert.pem -noout -serial)")
        })?;
        let key_path = self.merchant_private_key.as_ref().ok_or_else(|| {
            err("WECHATPAY_MERCHANT_PRIVATE_KEY", "required with WECHATPAY_MCHID: the path of the merchant private key (apiclient_key.pem)")
        })?;
        let pem = read_pem(
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            key_path,
            "apiclient_key.pem",
        )?;
        warn_if_readable_by_others(key_path);
        let private_key = MerchantKey::from_pem(&pem).map_err(|e| {
            err(
                "WECHATPAY_MERCHANT_PRIVATE_KEY",
                format!("{}: {e}", key_path.display()),
            )
        })?;

        let public_key = match (&self.public_key, non_empty(&self.public_key_id)) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(err("WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_PUBLIC_KEY is set without its id; set WECHATPAY_PUBLIC_KEY_ID to the PUB_KEY_ID_... shown beside the key in the merchant platform"))
            }
            (None, Some(_)) => {
                return Err(err("WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID is set without the key; set WECHATPAY_PUBLIC_KEY to the path of pub_key.pem"))
            }
            (Some(path), Some(id)) => {
                if !id.starts_with("PUB_KEY_ID_") {
                    return Err(err("WECHATPAY_PUBLIC_KEY_ID", format!("{id:?} is not a WeChat Pay public key id (it starts with PUB_KEY_ID_)")));
                }
                let pem = read_pem("WECHATPAY_PUBLIC_KEY", path, "pub_key.pem")?;
                let key = public_key_from_pem(&pem)
                    .map_err(|e| err("WECHATPAY_PUBLIC_KEY", format!("{}: {e}", path.display())))?;
                Some((id.to_string(), key))
            }
        };
        let apiv3_key = match self.apiv3_key.as_deref() {
            None => None,
            Some(k) => Some(ApiV3Key::new(k).map_err(|e| {
                err(
                    "WECHATPAY_APIV3_KEY",
                    format!("{e}; copy the APIv3 key set in the merchant platform"),
                )
            })?),
        };
        if public_key.is_none() && apiv3_key.is_none() {
            return Err(err(
                "WECHATPAY_PUBLIC_KEY",
                "no way to verify WeChat Pay's responses: set WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID (public-key mode), or WECHATPAY_APIV3_KEY (platform-certificate mode)",
            ));
        }
        let base_url = check_base_url(&self.base_url)?;
        Ok(Some(MerchantConfig {
            mchid: mchid.to_string(),
            serial_no: serial_no.to_string(),
            private_key,
            public_key,
            apiv3_key,
            base_url,
        }))
    }
}

/// The private key file should be readable by its owner only.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the merchant private key file is readable by other users: chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// An `http(s)://host[:port]` origin without a path, query or credentials.
fn check_base_url(url: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        err(
            "WECHATPAY_BASE_URL",
            format!("{url:?} {why}; use an origin like {DEFAULT_BASE_URL}"),
        )
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| bad("is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if parsed.host_str().is_none() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("has no host, or carries credentials"));
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(bad("has a path or query"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn good() -> WxPayArgs {
        WxPayArgs {
            mchid: Some("1900000001".into()),
            merchant_serial_no: Some("5E1E4B7F".into()),
            merchant_private_key: Some(fixture("merchant_key_pkcs8.pem")),
            public_key: Some(fixture("platform_pub.pem")),
            public_key_id: Some("PUB_KEY_ID_0114232134912410000000000000000001".into()),
            apiv3_key: None,
            base_url: DEFAULT_BASE_URL.into(),
        }
    }

    fn fails(args: WxPayArgs, variable: &str, needle: &str) {
        let e = args.load().expect_err("must fail");
        assert_eq!(e.variable, variable, "{e}");
        let line = e.to_string();
        assert!(line.contains(needle), "{line:?} lacks {needle:?}");
        assert!(!line.contains('\n'), "one line: {line:?}");
    }

    #[test]
    fn demo_mode_without_mchid() {
        assert!(WxPayArgs {
            base_url: DEFAULT_BASE_URL.into(),
            ..Default::default()
        }
        .load()
        .unwrap()
        .is_none());
    }

    #[test]
    fn a_good_configuration_loads_in_both_key_forms_and_both_modes() {
        let c = good().load().unwrap().unwrap();
        assert_eq!(c.mchid, "1900000001");
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        let pkcs1 = WxPayArgs {
            merchant_private_key: Some(fixture("merchant_key_pkcs1.pem")),
            ..good()
        };
        assert!(pkcs1.load().is_ok());
        let cert_mode = WxPayArgs {
            public_key: None,
            public_key_id: None,
            apiv3_key: Some("0123456789abcdefghijklmnopqrstuv".into()),
            ..good()
        };
        assert!(cert_mode.load().unwrap().unwrap().apiv3_key.is_some());
        let both = WxPayArgs {
            apiv3_key: Some("0123456789abcdefghijklmnopqrstuv".into()),
            ..good()
        };
        let both = both.load().unwrap().unwrap();
        assert!(both.public_key.is_some() && both.apiv3_key.is_some());
    }

    #[test]
    fn each_bad_setting_names_its_variable_and_fix() {
        fails(
            WxPayArgs {
                mchid: Some("19000x".into()),
                ..good()
            },
            "WECHATPAY_MCHID",
            "digits only",
        );
        fails(
            WxPayArgs {
                merchant_serial_no: None,
                ..good()
            },
            "WECHATPAY_MERCHANT_SERIAL_NO",
            "required",
        );
        fails(
            WxPayArgs {
                merchant_private_key: None,
                ..good()
            },
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            "required",
        );
        fails(
            WxPayArgs {
                merchant_private_key: Some(fixture("missing.pem")),
                ..good()
            },
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            "cannot read",
        );
        fails(
            WxPayArgs {
                merchant_private_key: Some(fixture("README.md")),
                ..good()
            },
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            "not a PEM",
        );
        fails(
            WxPayArgs {
                merchant_private_key: Some(fixture("ec_key.pem")),
                ..good()
            },
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            "not an RSA",
        );
        fails(
            WxPayArgs {
                public_key_id: None,
                ..good()
            },
            "WECHATPAY_PUBLIC_KEY_ID",
            "without its id",
        );
        fails(
            WxPayArgs {
                public_key: None,
                ..good()
            },
            "WECHATPAY_PUBLIC_KEY",
            "without the key",
        );
        fails(
            WxPayArgs {
                public_key_id: Some("123".into()),
                ..good()
            },
            "WECHATPAY_PUBLIC_KEY_ID",
            "PUB_KEY_ID_",
        );
        fails(
            WxPayArgs {
                public_key: Some(fixture("merchant_key_pkcs8.pem")),
                ..good()
            },
            "WECHATPAY_PUBLIC_KEY",
            "not a public key",
        );
        fails(
            WxPayArgs {
                apiv3_key: Some("tooshort".into()),
                ..good()
            },
            "WECHATPAY_APIV3_KEY",
            "32 bytes",
        );
        fails(
            WxPayArgs {
                public_key: None,
                public_key_id: None,
                ..good()
            },
            "WECHATPAY_PUBLIC_KEY",
            "WECHATPAY_APIV3_KEY",
        );
        fails(
            WxPayArgs {
                base_url: "ftp://x".into(),
                ..good()
            },
            "WECHATPAY_BASE_URL",
            "http",
        );
        fails(
            WxPayArgs {
                base_url: "https://x/v3".into(),
                ..good()
            },
            "WECHATPAY_BASE_URL",
            "path",
        );
        fails(
            WxPayArgs {
                mchid: None,
                base_url: DEFAULT_BASE_URL.into(),
                ..good()
            },
            "WECHATPAY_MCHID",
            "WECHATPAY_MERCHANT_SERIAL_NO is set",
        );
    }

    #[test]
    fn errors_and_debug_show_no_secret() {
        let secret = "0123456789abcdefghijklmnopqrstuv";
        let c = WxPayArgs {
            apiv3_key: Some(secret.into()),
            ..good()
        }
        .load()
        .unwrap()
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(secret), "{dbg}");
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
        let bad = WxPayArgs {
            apiv3_key: Some("0123456789abcdefghijklmnopqrstuvXYZ".into()),
            ..good()
        };
        assert!(!bad.load().unwrap_err().to_string().contains("0123456789"));
    }
}
