//! Why a sync did not produce a snapshot.

use crate::status::{Failure, Untrusted};
use crate::wechatpay::error::WxPayError;
use std::fmt;

/// What a replica that finds the lease held says.
const LEASE_HELD: &str =
    "another replica holds the sync lease: its snapshot is served here when its sync ends";

#[derive(Clone, Debug)]
pub enum SyncError {
    /// WeChat Pay (or the way to it) failed, after retries where retrying made sense.
    Upstream(WxPayError),
    /// The sync would push the last 24 h of requests past what is allowed.
    Quota {
        needed: u64,
        used: u64,
        ceiling: u64,
        retry_in_secs: Option<i64>,
    },
    /// A refresh asked for too soon, or while another runs.
    NotNow(String),
    /// Another replica holds the sync lease: its snapshot is served here when its sync ends.
    LeaseHeld,
    /// A bug or a crashed task.
    Internal(String),
}

impl SyncError {
    pub fn advice(&self) -> String {
        match self {
            SyncError::Upstream(e) => e.advice().to_string(),
            SyncError::Quota {
                retry_in_secs: Some(s),
                ..
            } => {
                format!(
                    "the daily request quota frees up in about {} minutes",
                    (s + 59) / 60
                )
            }
            SyncError::Quota { .. } => {
                "the daily request quota is used up for now; the last snapshot stays on screen"
                    .into()
            }
            SyncError::NotNow(_) | SyncError::LeaseHeld => "try again in a minute".into(),
            SyncError::Internal(_) => {
                "reload the page; if it persists, check the server log".into()
            }
        }
    }

    /// The kind of failure, for the page to put into words.
    pub fn failure(&self) -> Failure {
        use crate::wechatpay::error::VerifyError as V;
        match self {
            SyncError::Upstream(e) => match e {
                WxPayError::Api { code, .. } => Failure::Api {
                    code: code.as_str().to_string(),
                },
                WxPayError::Transport { .. } => Failure::Unreachable,
                WxPayError::Timeout { .. } => Failure::Timeout,
                WxPayError::Verification { reason, .. } => Failure::Untrusted(match reason {
                    V::StaleTimestamp { .. } => Untrusted::Clock,
                    V::MissingHeaders(_) => Untrusted::HeadersMissing,
                    V::UnknownSerial(_) | V::ExpiredCertificate(_) => Untrusted::UnknownKey,
                    V::SignTest | V::BadSignature | V::UnsupportedType(_) => {
                        Untrusted::BadSignature
                    }
                }),
                WxPayError::MalformedBody { .. } => Failure::Malformed,
                WxPayError::Redirected { .. } => Failure::Redirected,
                WxPayError::QuotaExhausted { used, limit, .. } => Failure::Quota {
                    needed: 1,
                    used: *used,
                    ceiling: *limit,
                    retry_in_secs: None,
                },
                WxPayError::InvalidArgument(_) => Failure::Internal,
            },
            SyncError::Quota {
                needed,
                used,
                ceiling,
                retry_in_secs,
            } => Failure::Quota {
                needed: *needed,
                used: *used,
                ceiling: *ceiling,
                retry_in_secs: *retry_in_secs,
            },
            SyncError::NotNow(_) | SyncError::LeaseHeld | SyncError::Internal(_) => {
                Failure::Internal
            }
        }
    }

    /// The technical detail, without advice (the page words that).
    pub fn detail(&self) -> String {
        match self {
            SyncError::Upstream(e) => e.summary(),
            SyncError::Quota {
                needed,
                used,
                ceiling,
                ..
            } => format!("{used} + {needed} > {ceiling}"),
            SyncError::NotNow(why) | SyncError::Internal(why) => why.clone(),
            SyncError::LeaseHeld => LEASE_HELD.into(),
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            SyncError::Upstream(e) => e.request_id(),
            _ => None,
        }
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Upstream(e) => write!(f, "sync failed: {e}"),
            SyncError::Quota { needed, used, ceiling, .. } => write!(
                f,
                "sync refused: it needs {needed} requests and {used} of the {ceiling} allowed in 24 h are used"
            ),
            SyncError::NotNow(why) => write!(f, "{why}"),
            SyncError::LeaseHeld => f.write_str(LEASE_HELD),
            SyncError::Internal(why) => write!(f, "sync failed: {why}"),
        }
    }
}

impl std::error::Error for SyncError {}

impl From<WxPayError> for SyncError {
    fn from(e: WxPayError) -> Self {
        SyncError::Upstream(e)
    }
}
