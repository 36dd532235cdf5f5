//! The HTTP client: signs each request, sends exactly the URL it signed, verifies each response,
//! keeps platform certificates fresh, and maps every outcome to a `WxPayError`.

use super::certificates::{decrypt, parse_certificate, ApiV3Key, CertificateList};
use super::config::MerchantConfig;
use super::error::{ApiCode, VerifyError, WxPayError};
use super::keys::MerchantKey;
use super::signer::{authorization, new_nonce, RequestMessage};
use super::verifier::{KeyStore, ResponseSignature, H_SERIAL};
use crate::clock::unix_now;
use crate::model::{ApiErrorBody, DevicePage};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const USER_AGENT: &str = concat!(
    "wxpay-devices/",
    env!("CARGO_PKG_VERSION"),
    " (Rust; reqwest)"
);
/// WeChat Pay closes idle connections after 8 s: drop ours before that.
pub const POOL_IDLE: Duration = Duration::from_secs(7);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// An unknown serial triggers a certificate download at most this often.
pub const CERT_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(60);
/// The largest answer read. A page of 100 devices is about 60 KB; anything near this is not a
/// device page, and is not read into memory.
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// What every request passes before it is sent: the rate limiter and the quota ledger
/// (`sync::budget`). Without one (a client used on its own), requests go out at once.
pub trait RequestGate: Send + Sync {
    /// Waits until `request` may be sent and counts it, or refuses it. What it returns is held
    /// until the answer has come back (the limiter dates the request by it).
    fn admit<'a>(&'a self, request: &'a str) -> BoxFuture<'a, Result<Admitted, WxPayError>>;
}

/// A request let through by a [`RequestGate`], held until its answer is in.
pub type Admitted = Box<dyn std::any::Any + Send>;

/// A verified response.
#[derive(Clone, Debug)]
pub struct Verified {
    pub status: u16,
    pub body: bytes::Bytes,
    pub request_id: Option<String>,
}

/// What a certificate download found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRefresh {
    /// These certificate serials are now known.
    Loaded(Vec<String>),
    /// 404 `RESOURCE_NOT_EXISTS`: this merchant has no platform certificates; it uses the
    /// WeChat Pay public key (WECHATPAY_PUBLIC_KEY).
    PublicKeyOnly,
}

#[derive(Default)]
struct CertState {
    last_attempt: Option<Instant>,
    /// Serial of the newest certificate (sent as `Wechatpay-Serial` when no public key is set).
    newest: Option<(String, i64)>,
}

/// A WeChat Pay APIv3 client for one merchant.
pub struct WxPayClient {
    http: reqwest::Client,
    base_url: String,
    mchid: String,
    serial_no: String,
    key: MerchantKey,
    keys: Arc<KeyStore>,
    public_key_id: Option<String>,
    apiv3_key: Option<ApiV3Key>,
    certs: Mutex<CertState>,
    cert_refresh_min_interval: Duration,
    request_timeout: Duration,
    gate: OnceLock<Arc<dyn RequestGate>>,
    /// Held while certificates download: callers that arrive meanwhile wait, then share the
    /// outcome (`last_refresh`, from download number `refreshes`).
    refreshing: tokio::sync::Mutex<()>,
    refreshes: std::sync::atomic::AtomicU64,
    last_refresh: Mutex<Option<Result<CertificateRefresh, WxPayError>>>,
}

impl std::fmt::Debug for WxPayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPayClient")
            .field("base_url", &self.base_url)
            .field("mchid", &self.mchid)
            .field("serial_no", &self.serial_no)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl WxPayClient {
    pub fn new(config: &MerchantConfig) -> Result<Self, WxPayError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE)
            // The API does not redirect; a signed request is never sent anywhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WxPayError::Transport {
                request: "client setup".into(),
                reason: e.to_string(),
            })?;
        let keys = Arc::new(KeyStore::default());
        if let Some((id, key)) = &config.public_key {
            keys.insert(id, key.clone());
        }
        Ok(WxPayClient {
            http,
            base_url: config.base_url.clone(),
            mchid: config.mchid.clone(),
            serial_no: config.serial_no.clone(),
            key: config.private_key.clone(),
            keys,
            public_key_id: config.public_key.as_ref().map(|(id, _)| id.clone()),
            apiv3_key: config.apiv3_key.clone(),
            certs: Mutex::new(CertState::default()),
            cert_refresh_min_interval: CERT_REFRESH_MIN_INTERVAL,
            request_timeout: REQUEST_TIMEOUT,
            gate: OnceLock::new(),
            refreshing: tokio::sync::Mutex::new(()),
            refreshes: std::sync::atomic::AtomicU64::new(0),
            last_refresh: Mutex::new(None),
        })
    }

    /// How often an unknown serial may trigger a certificate download (default one minute).
    pub fn with_certificate_refresh_interval(mut self, interval: Duration) -> Self {
        self.cert_refresh_min_interval = interval;
        self
    }

    /// How long one request may take, answer included (default 20 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Routes every request from now on through `gate` (set once; later calls are ignored).
    pub fn set_gate(&self, gate: Arc<dyn RequestGate>) {
        let _ = self.gate.set(gate);
    }

    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serials of the keys responses may be signed with.
    pub fn known_serials(&self) -> Vec<String> {
        self.keys.serials()
    }

    /// One page of the device list. `limit` must be 1..=100 (checked before sending).
    pub async fn list_devices(&self, offset: u64, limit: u64) -> Result<DevicePage, WxPayError> {
        if !(1..=100).contains(&limit) {
            return Err(WxPayError::InvalidArgument(format!(
                "limit {limit} is outside 1..100"
            )));
        }
        let path = format!("/v3/iotmanage/devices?limit={limit}&offset={offset}");
        let response = self.get(&path).await?;
        let malformed = |reason: String| WxPayError::MalformedBody {
            request: format!("GET {path}"),
            request_id: response.request_id.clone(),
            reason,
        };
        let page: DevicePage =
            serde_json::from_slice(&response.body).map_err(|e| malformed(e.to_string()))?;
        // An answer for another page than the one asked for must not be taken for it.
        if let Some(o) = page.offset.filter(|o| *o != offset) {
            return Err(malformed(format!(
                "the answer is for offset {o}, not the offset {offset} asked for"
            )));
        }
        if let Some(l) = page.limit.filter(|l| *l != limit) {
            return Err(malformed(format!(
                "the answer is for limit {l}, not the limit {limit} asked for"
            )));
        }
        if page.data.len() as u64 > limit {
            return Err(malformed(format!(
                "{} devices in a page of at most {limit}",
                page.data.len()
            )));
        }
        Ok(page)
    }

    /// A signed GET whose response is verified. Non-2xx answers become `WxPayError::Api`.
    /// Each call is counted in the metrics and logged once, with its outcome and `Request-ID`.
    pub async fn get(&self, path_and_query: &str) -> Result<Verified, WxPayError> {
        let result = self.get_inner(path_and_query).await;
        let outcome = match &result {
            Ok(_) => "OK",
            Err(WxPayError::Api { code, .. }) => code.as_str(),
            Err(WxPayError::Transport { .. }) => "transport",
            Err(WxPayError::Timeout { .. }) => "timeout",
            Err(WxPayError::Verification { .. }) => "verification",
            Err(WxPayError::MalformedBody { .. }) => "malformed",
            Err(WxPayError::Redirected { .. }) => "redirected",
            Err(WxPayError::InvalidArgument(_)) | Err(WxPayError::QuotaExhausted { .. }) => {
                "not_sent"
            }
        };
        crate::metrics::get().upstream(outcome);
        let request_id = match &result {
            Ok(v) => v.request_id.as_deref(),
            Err(e) => e.request_id(),
        };
        match &result {
            Ok(_) => {
                tracing::info!(request = %path_and_query, outcome, request_id = request_id.unwrap_or("-"), "wechatpay request")
            }
            Err(e) => {
                tracing::warn!(request = %path_and_query, outcome, request_id = request_id.unwrap_or("-"), error = %e, "wechatpay request")
            }
        }
        result
    }

    async fn get_inner(&self, path_and_query: &str) -> Result<Verified, WxPayError> {
        let raw = self.send(path_and_query).await?;
        let label = raw.label.clone();
        let rid = raw.request_id.clone();
        let verification = match self.verify(&raw) {
            Err(VerifyError::UnknownSerial(serial)) if self.may_refresh_certificates() => {
                tracing::info!(
                    serial,
                    "response signed by an unknown certificate; downloading certificates"
                );
                // A failed refresh leaves the original verdict standing.
                if let Err(e) = self.refresh_certificates().await {
                    tracing::warn!(error = %e, "certificate refresh failed");
                }
                self.verify(&raw)
            }
            other => other,
        };
        if let Err(reason) = verification {
            return Err(WxPayError::Verification {
                request: label,
                request_id: rid,
                reason,
            });
        }
        if (200..300).contains(&raw.status) {
            Ok(Verified {
                status: raw.status,
                body: raw.body,
                request_id: rid,
            })
        } else {
            let e = api_error(&label, raw.status, &raw.body, rid);
            Err(e)
        }
    }

    /// Downloads the platform certificates, decrypts them with the APIv3 key, checks the
    /// response's signature with them, and adds them to the key store (dropping expired ones).
    /// Callers that ask while a download runs share its outcome: one request, not several.
    pub async fn refresh_certificates(&self) -> Result<CertificateRefresh, WxPayError> {
        let asked_at = self.refreshes.load(std::sync::atomic::Ordering::SeqCst);
        let _one_at_a_time = self.refreshing.lock().await;
        if self.refreshes.load(std::sync::atomic::Ordering::SeqCst) != asked_at {
            // A download finished while this caller waited: its outcome is this caller's too.
            if let Some(last) = self
                .last_refresh
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return last;
            }
        }
        let outcome = self.download_certificates().await;
        *self.last_refresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.clone());
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        outcome
    }

    async fn download_certificates(&self) -> Result<CertificateRefresh, WxPayError> {
        let apiv3 = self.apiv3_key.as_ref().ok_or_else(|| {
            WxPayError::InvalidArgument(
                "no WECHATPAY_APIV3_KEY: platform certificates cannot be decrypted".into(),
            )
        })?;
        self.certs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_attempt = Some(Instant::now());
        let raw = self.send("/v3/certificates").await?;
        let (label, rid) = (raw.label.clone(), raw.request_id.clone());
        if !(200..300).contains(&raw.status) {
            let e = api_error(&label, raw.status, &raw.body, rid);
            if raw.status == 404 && e.code() == Some(&ApiCode::ResourceNotExists) {
                return Ok(CertificateRefresh::PublicKeyOnly);
            }
            return Err(e);
        }
        let malformed = |reason: String| WxPayError::MalformedBody {
            request: label.clone(),
            request_id: rid.clone(),
            reason,
        };
        let list: CertificateList =
            serde_json::from_slice(&raw.body).map_err(|e| malformed(e.to_string()))?;
        let mut found = Vec::new();
        for entry in &list.data {
            let pem = decrypt(apiv3, &entry.encrypt_certificate).map_err(&malformed)?;
            found.push(parse_certificate(&pem).map_err(&malformed)?);
        }
        // The response is signed by one of the certificates it carries (or one we know).
        let candidates = KeyStore::default();
        for c in &found {
            candidates.insert(&c.serial, c.public_key.clone());
        }
        let sig = self
            .signature_of(&raw)
            .map_err(|reason| WxPayError::Verification {
                request: label.clone(),
                request_id: rid.clone(),
                reason,
            })?;
        let now = unix_now();
        let verdict = match candidates.verify(&sig, &raw.body, now) {
            Err(VerifyError::UnknownSerial(_)) => self.keys.verify(&sig, &raw.body, now),
            other => other,
        };
        verdict.map_err(|reason| WxPayError::Verification {
            request: label.clone(),
            request_id: rid.clone(),
            reason,
        })?;

        let mut state = self.certs.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = self.keys.remove_expired(now);
        if !dropped.is_empty() {
            tracing::info!(?dropped, "dropped expired platform certificates");
        }
        let found: Vec<_> = found.into_iter().filter(|c| c.not_after >= now).collect();
        for c in &found {
            self.keys
                .insert_until(&c.serial, c.public_key.clone(), Some(c.not_after));
            if state
                .newest
                .as_ref()
                .is_none_or(|(_, exp)| c.not_after > *exp)
            {
                state.newest = Some((c.serial.clone(), c.not_after));
            }
        }
        Ok(CertificateRefresh::Loaded(
            found.into_iter().map(|c| c.serial).collect(),
        ))
    }

    fn may_refresh_certificates(&self) -> bool {
        if self.apiv3_key.is_none() {
            return false;
        }
        let state = self.certs.lock().unwrap_or_else(|e| e.into_inner());
        state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.cert_refresh_min_interval)
    }

    /// The serial sent as `Wechatpay-Serial`: which key WeChat Pay should sign the response with.
    fn verify_serial(&self) -> Option<String> {
        self.public_key_id.clone().or_else(|| {
            let state = self.certs.lock().unwrap_or_else(|e| e.into_inner());
            state.newest.as_ref().map(|(s, _)| s.clone())
        })
    }

    fn signature_of(&self, raw: &RawResponse) -> Result<ResponseSignature, VerifyError> {
        let sig =
            ResponseSignature::from_headers(|n| raw.headers.get(n).and_then(|v| v.to_str().ok()))?;
        sig.ok_or_else(|| {
            VerifyError::MissingHeaders(vec![
                super::verifier::H_TIMESTAMP,
                super::verifier::H_NONCE,
                super::verifier::H_SERIAL,
                super::verifier::H_SIGNATURE,
            ])
        })
    }

    /// 2xx responses must be signed; error responses are verified when they carry a signature.
    fn verify(&self, raw: &RawResponse) -> Result<(), VerifyError> {
        let success = (200..300).contains(&raw.status);
        match ResponseSignature::from_headers(|n| raw.headers.get(n).and_then(|v| v.to_str().ok()))
        {
            Ok(Some(sig)) => {
                // A genuine success names its signature type and carries a Request-ID: one
                // without them is forged, however it is signed.
                if success {
                    let mut missing = Vec::new();
                    if sig.signature_type.is_none() {
                        missing.push(super::verifier::H_SIGNATURE_TYPE);
                    }
                    if raw.request_id.is_none() {
                        missing.push("Request-ID");
                    }
                    if !missing.is_empty() {
                        return Err(VerifyError::MissingHeaders(missing));
                    }
                }
                self.keys.verify(&sig, &raw.body, unix_now())
            }
            Ok(None) if success => Err(self.signature_of(raw).unwrap_err()),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Signs and sends a GET. The URL is built once; what is signed is its path and query as
    /// the URL type will send them.
    async fn send(&self, path_and_query: &str) -> Result<RawResponse, WxPayError> {
        let url = reqwest::Url::parse(&format!("{}{}", self.base_url, path_and_query))
            .map_err(|e| WxPayError::InvalidArgument(format!("bad URL {path_and_query:?}: {e}")))?;
        let signed = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_string(),
        };
        let label = format!("GET {signed}");
        let _admitted = match self.gate.get() {
            Some(gate) => Some(gate.admit(&label).await?),
            None => None,
        };
        let nonce = new_nonce();
        let message = RequestMessage {
            method: "GET",
            path_and_query: &signed,
            timestamp: unix_now(),
            nonce: &nonce,
            body: "",
        };
        let auth = authorization(&self.mchid, &self.serial_no, &message, &self.key);
        let mut request = self
            .http
            .get(url)
            .timeout(self.request_timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::AUTHORIZATION, auth.to_string());
        if let Some(serial) = self.verify_serial() {
            request = request.header(H_SERIAL, serial);
        }
        let mut response = request.send().await.map_err(|e| transport(&label, e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let request_id = headers
            .get("Request-ID")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if response.status().is_redirection() {
            let location = headers
                .get(reqwest::header::LOCATION)
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(300)
                        .collect()
                })
                .unwrap_or_default();
            return Err(WxPayError::Redirected {
                request: label,
                status,
                location,
            });
        }
        let too_large = |request_id: Option<String>| WxPayError::MalformedBody {
            request: label.clone(),
            request_id,
            reason: format!(
                "the answer is larger than {} MiB, far more than a page of devices",
                MAX_RESPONSE_BYTES >> 20
            ),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large(request_id));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&label, e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large(request_id));
            }
            body.extend_from_slice(&chunk);
        }
        let body = bytes::Bytes::from(body);
        Ok(RawResponse {
            label,
            status,
            headers,
            body,
            request_id,
        })
    }
}

struct RawResponse {
    label: String,
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
    request_id: Option<String>,
}

fn transport(label: &str, e: reqwest::Error) -> WxPayError {
    if e.is_timeout() {
        WxPayError::Timeout {
            request: label.to_string(),
        }
    } else {
        // Walk the source chain for the root cause (connection refused, DNS...).
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        WxPayError::Transport {
            request: label.to_string(),
            reason,
        }
    }
}

fn api_error(label: &str, status: u16, body: &[u8], request_id: Option<String>) -> WxPayError {
    let parsed: Option<ApiErrorBody> = serde_json::from_slice(body).ok();
    let (code, message, detail) = match parsed {
        Some(b) if !b.code.is_empty() => (
            ApiCode::parse(&b.code),
            b.message,
            b.detail.map(|d| d.to_string()),
        ),
        _ => {
            let code = match status {
                429 => "FREQUENCY_LIMITED",
                401 => "SIGN_ERROR",
                500..=599 => "SYSTEM_ERROR",
                _ => "UNKNOWN",
            };
            let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
            (
                ApiCode::parse(code),
                format!("no error body ({snippet:?})"),
                None,
            )
        }
    };
    WxPayError::Api {
        request: label.to_string(),
        status,
        code,
        message,
        detail,
        request_id,
    }
}
