//! One error type for every outcome of a WeChat Pay call that a caller acts on. Each renders a
//! message a merchant can act on, naming the request and its `Request-ID`; none holds a secret.

use std::fmt;

/// The API's error codes that callers tell apart; anything else is kept as `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiCode {
    ParamError,
    InvalidRequest,
    FrequencyLimited,
    SystemError,
    SignError,
    ResourceNotExists,
    Other(String),
}

impl ApiCode {
    pub fn parse(code: &str) -> ApiCode {
        match code {
            "PARAM_ERROR" => ApiCode::ParamError,
            "INVALID_REQUEST" => ApiCode::InvalidRequest,
            "FREQUENCY_LIMITED" => ApiCode::FrequencyLimited,
            "SYSTEM_ERROR" => ApiCode::SystemError,
            "SIGN_ERROR" => ApiCode::SignError,
            "RESOURCE_NOT_EXISTS" => ApiCode::ResourceNotExists,
            other => ApiCode::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ApiCode::ParamError => "PARAM_ERROR",
            ApiCode::InvalidRequest => "INVALID_REQUEST",
            ApiCode::FrequencyLimited => "FREQUENCY_LIMITED",
            ApiCode::SystemError => "SYSTEM_ERROR",
            ApiCode::SignError => "SIGN_ERROR",
            ApiCode::ResourceNotExists => "RESOURCE_NOT_EXISTS",
            ApiCode::Other(s) => s,
        }
    }
}

/// Why a response's signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// A 2xx without the `Wechatpay-*` headers.
    MissingHeaders(Vec<&'static str>),
    /// `Wechatpay-Timestamp` is not a number, or is 300 s or more away from our clock.
    StaleTimestamp { timestamp: String, now: i64 },
    /// `Wechatpay-Serial` names a key we do not have.
    UnknownSerial(String),
    /// WeChat Pay's probe of clients that skip verification.
    SignTest,
    /// Not base64, or not a valid RSA-SHA256 signature of this body by that key.
    BadSignature,
    /// A signature type other than `WECHATPAY2-SHA256-RSA2048`.
    UnsupportedType(String),
    /// Signed with a platform certificate that has expired.
    ExpiredCertificate(String),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MissingHeaders(names) => write!(
                f,
                "the response has no {} header: a proxy between this server and WeChat Pay may be \
                 stripping Wechatpay-* headers; let them through",
                names.join(", ")
            ),
            VerifyError::StaleTimestamp { timestamp, now } => write!(
                f,
                "the response timestamp {timestamp:?} is 300 s or more from this server's clock \
                 ({now}); check that the server clock is right (NTP)"
            ),
            VerifyError::UnknownSerial(serial) => write!(
                f,
                "the response is signed with key {serial:?}, which is not configured; check \
                 WECHATPAY_PUBLIC_KEY_ID or the platform certificates"
            ),
            VerifyError::SignTest => write!(
                f,
                "the response carries a WECHATPAY/SIGNTEST/ probe signature and was rejected"
            ),
            VerifyError::BadSignature => write!(
                f,
                "the response signature does not match its body: the response may have been \
                 altered in transit, or the WeChat Pay public key is the wrong one"
            ),
            VerifyError::UnsupportedType(t) => write!(f, "unsupported signature type {t:?}"),
            VerifyError::ExpiredCertificate(serial) => write!(
                f,
                "the response is signed with platform certificate {serial:?}, which has expired"
            ),
        }
    }
}

/// Every way a WeChat Pay call can fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WxPayError {
    /// WeChat Pay answered with an error body (verified when it was signed).
    Api {
        request: String,
        status: u16,
        code: ApiCode,
        message: String,
        /// The error's `detail`, as JSON text.
        detail: Option<String>,
        request_id: Option<String>,
    },
    /// The request could not be sent or the response not read (DNS, TLS, connection reset...).
    Transport { request: String, reason: String },
    /// No response within the request timeout.
    Timeout { request: String },
    /// The response failed signature verification; its data must not be used.
    Verification {
        request: String,
        request_id: Option<String>,
        reason: VerifyError,
    },
    /// A verified response whose body is not what the API documents.
    MalformedBody {
        request: String,
        request_id: Option<String>,
        reason: String,
    },
    /// The call was refused before sending (e.g. a limit outside 1..100).
    InvalidArgument(String),
    /// Not sent: the merchant's requests in the last 24 h reached the daily quota.
    QuotaExhausted {
        request: String,
        used: u64,
        limit: u64,
    },
    /// A 3xx answer. WeChat Pay's API does not redirect: this is a wrong base URL or a proxy, and
    /// it is not followed (the signed request is for WeChat Pay only).
    Redirected {
        request: String,
        status: u16,
        location: String,
    },
}

impl WxPayError {
    /// The API's code, for API errors.
    pub fn code(&self) -> Option<&ApiCode> {
        match self {
            WxPayError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            WxPayError::Api { request_id, .. }
            | WxPayError::Verification { request_id, .. }
            | WxPayError::MalformedBody { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the same request may succeed if sent again later (after a backoff).
    pub fn is_retryable(&self) -> bool {
        match self {
            WxPayError::Api { code, status, .. } => {
                matches!(code, ApiCode::SystemError | ApiCode::FrequencyLimited) || *status >= 500
            }
            WxPayError::Transport { .. } | WxPayError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// What the merchant should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            WxPayError::Api { code, .. } => match code {
                ApiCode::ParamError => "the request's offset or limit was rejected; this is a bug in the dashboard, please report it",
                ApiCode::InvalidRequest => "WeChat Pay rejected the request's form (Accept or User-Agent headers); check any proxy that rewrites headers",
                ApiCode::FrequencyLimited => "too many requests: the dashboard slows down and retries; if it persists, another client may be using the same merchant's quota",
                ApiCode::SystemError => "a WeChat Pay system error: retried later with the same parameters",
                ApiCode::SignError => "WeChat Pay did not accept the request signature: check WECHATPAY_MCHID, WECHATPAY_MERCHANT_SERIAL_NO, the private key file, and that the server clock is right",
                ApiCode::ResourceNotExists => "the resource does not exist for this merchant",
                ApiCode::Other(_) => "see WeChat Pay's message; retry later or contact WeChat Pay support with the Request-ID",
            },
            WxPayError::Transport { .. } => "could not reach WeChat Pay: check the network, DNS and WECHATPAY_BASE_URL",
            WxPayError::Timeout { .. } => "WeChat Pay did not answer in time: retried later",
            WxPayError::Verification { reason, .. } => match reason {
                VerifyError::StaleTimestamp { .. } => "check that the server clock is right (NTP)",
                VerifyError::MissingHeaders(_) => "a proxy may be stripping Wechatpay-* headers",
                VerifyError::UnknownSerial(_) => "check WECHATPAY_PUBLIC_KEY_ID, or configure WECHATPAY_APIV3_KEY for platform certificates",
                _ => "the response could not be trusted and was discarded; check the WeChat Pay public key",
            },
            WxPayError::MalformedBody { .. } => "WeChat Pay's response was not in the documented form; retry later",
            WxPayError::InvalidArgument(_) => "this is a bug in the dashboard, please report it",
            WxPayError::QuotaExhausted { .. } => "the daily request quota is spent: requests resume as the oldest leave the 24-hour window",
            WxPayError::Redirected { .. } => "check WECHATPAY_BASE_URL (https://api.mch.weixin.qq.com) and any proxy in between",
        }
    }
}

impl WxPayError {
    /// What happened, technically (the request, the status, WeChat Pay's own code and message,
    /// the `Request-ID`), without advice: for a page that puts the advice into its own words.
    pub fn summary(&self) -> String {
        let full = self.to_string();
        let advice = format!(". {}", self.advice());
        match full.strip_suffix(&advice) {
            Some(s) => s.to_string(),
            None => full,
        }
    }
}

impl fmt::Display for WxPayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rid = |id: &Option<String>| match id {
            Some(id) => format!(" (Request-ID {id})"),
            None => String::new(),
        };
        match self {
            WxPayError::Api {
                request,
                status,
                code,
                message,
                detail,
                request_id,
            } => {
                write!(f, "{request}: HTTP {status} {}: {message}", code.as_str())?;
                if let Some(detail) = detail {
                    write!(f, " {detail}")?;
                }
                write!(f, "{}. {}", rid(request_id), self.advice())
            }
            WxPayError::Transport { request, reason } => {
                write!(f, "{request}: transport error: {reason}. {}", self.advice())
            }
            WxPayError::Timeout { request } => write!(f, "{request}: timed out. {}", self.advice()),
            WxPayError::Verification {
                request,
                request_id,
                reason,
            } => {
                write!(
                    f,
                    "{request}: response rejected{}: {reason}",
                    rid(request_id)
                )
            }
            WxPayError::MalformedBody {
                request,
                request_id,
                reason,
            } => write!(
                f,
                "{request}: malformed response{}: {reason}. {}",
                rid(request_id),
                self.advice()
            ),
            WxPayError::InvalidArgument(reason) => write!(f, "not sent: {reason}"),
            WxPayError::QuotaExhausted {
                request,
                used,
                limit,
            } => write!(
                f,
                "{request}: not sent: {used} of the {limit} requests a day are used. {}",
                self.advice()
            ),
            WxPayError::Redirected {
                request,
                status,
                location,
            } => write!(
                f,
                "{request}: HTTP {status}, a redirect to {location:?}, not followed. {}",
                self.advice()
            ),
        }
    }
}

impl std::error::Error for WxPayError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, status: u16) -> WxPayError {
        WxPayError::Api {
            request: "GET /v3/iotmanage/devices?limit=100&offset=0".into(),
            status,
            code: ApiCode::parse(code),
            message: "msg".into(),
            detail: None,
            request_id: Some("RID-1".into()),
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for c in [
            "PARAM_ERROR",
            "INVALID_REQUEST",
            "FREQUENCY_LIMITED",
            "SYSTEM_ERROR",
            "SIGN_ERROR",
            "RESOURCE_NOT_EXISTS",
            "NO_AUTH",
        ] {
            assert_eq!(ApiCode::parse(c).as_str(), c);
        }
        assert_eq!(ApiCode::parse("NO_AUTH"), ApiCode::Other("NO_AUTH".into()));
    }

    #[test]
    fn retryability_follows_the_documented_advice() {
        assert!(api("SYSTEM_ERROR", 500).is_retryable());
        assert!(api("FREQUENCY_LIMITED", 429).is_retryable());
        assert!(!api("PARAM_ERROR", 400).is_retryable());
        assert!(!api("SIGN_ERROR", 401).is_retryable());
        assert!(WxPayError::Timeout {
            request: "x".into()
        }
        .is_retryable());
        let v = WxPayError::Verification {
            request: "x".into(),
            request_id: None,
            reason: VerifyError::BadSignature,
        };
        assert!(!v.is_retryable());
    }

    #[test]
    fn messages_name_the_request_the_request_id_and_the_fix() {
        let text = api("SIGN_ERROR", 401).to_string();
        assert!(
            text.contains("GET /v3/iotmanage/devices?limit=100&offset=0"),
            "{text}"
        );
        assert!(text.contains("Request-ID RID-1"), "{text}");
        assert!(text.contains("clock"), "{text}");
        let stale = WxPayError::Verification {
            request: "GET /x".into(),
            request_id: None,
            reason: VerifyError::StaleTimestamp {
                timestamp: "1".into(),
                now: 1000,
            },
        };
        assert!(stale.to_string().contains("server clock"));
        let missing = VerifyError::MissingHeaders(vec!["Wechatpay-Signature"]).to_string();
        assert!(missing.contains("proxy"), "{missing}");
    }
}
