//! The simulator's HTTP service: `GET /v3/iotmanage/devices` and `GET /v3/certificates`, with
//! request-signature checks, the API's limits (20 requests per second per client, a daily quota
//! per merchant), parameter rules, signed responses (errors too), and knobs for tests and demos.

use super::dataset::{evolve, generate, DatasetSpec, Evolution};
use super::keys::SimKeys;
use crate::clock::unix_now;
use crate::model::{ApiErrorBody, Device, DevicePage, Links};
use crate::wechatpay::certificates::{encrypt, ApiV3Key, CertificateEntry, CertificateList};
use crate::wechatpay::config::MerchantConfig;
use crate::wechatpay::signer::{new_nonce, sign_bytes, Authorization, RequestMessage, SCHEME};
use crate::wechatpay::verifier::{normalize_serial, MAX_SKEW_SECONDS};
use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A deliberate fault in the simulator's successful responses, to test clients' verification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// The body is changed after signing.
    TamperBody,
    /// The timestamp is ten minutes old.
    StaleTimestamp,
    /// Signed, but the serial names a key the client does not have.
    UnknownSerial,
    /// WeChat Pay's `WECHATPAY/SIGNTEST/` probe.
    SignTest,
    /// No `Wechatpay-*` headers, as when a proxy strips them.
    StripHeaders,
    /// Signed, but without `Request-ID`.
    NoRequestId,
    /// Signed, but without `Wechatpay-Signature-Type`.
    NoSignatureType,
    /// Device pages answer for another offset than the one asked for (signed).
    WrongOffset,
    /// A 302 to another host, unsigned.
    Redirect,
    /// A signed answer of 5 MiB.
    HugeBody,
}

/// A deliberate fault in `/v3/certificates` answers, to test that forged certificates are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertificateFault {
    #[default]
    None,
    /// The list is changed after signing.
    TamperBody,
    /// The certificates are encrypted under another APIv3 key (signed correctly).
    WrongApiV3Key,
    /// The answer is signed by a key that is not the certificate it carries.
    SignedByStranger,
}

/// A change to the served list, made when a number of device-list requests have been answered.
pub type ListChange = Box<dyn FnOnce(&mut Vec<Device>) + Send + Sync>;

/// The simulator's knobs.
#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    pub devices: usize,
    pub seed: u64,
    /// Share of device-list requests answered with 500 `SYSTEM_ERROR` (0.0..=1.0).
    pub error_rate: f64,
    /// Added to every device-list response.
    pub latency: Duration,
    /// Requests per merchant per rolling 24 h.
    pub daily_limit: usize,
    /// Requests per client in any `rate_window` (the API: 20 in any second).
    pub per_second_limit: usize,
    /// The window of `per_second_limit` (1 s like the API; tests may widen it).
    pub rate_window: Duration,
    /// Whether `/v3/certificates` serves certificates (else 404 `RESOURCE_NOT_EXISTS`, like a
    /// merchant registered since late 2024).
    pub certificates: bool,
    pub fault: Fault,
    pub certificate_fault: CertificateFault,
    /// Device-list requests at these offsets always get `SYSTEM_ERROR`.
    pub failing_offsets: Vec<u64>,
    /// Leave `total_count` out of every page (the documentation only says it "should" be there).
    pub omit_total_count: bool,
    /// Leave `links` out of every page.
    pub omit_links: bool,
    /// The merchant's life: every `every`, `changes` devices are activated, added, moved or
    /// removed (`dataset::evolve`), applied when a client starts reading the list (offset 0),
    /// so the list changes between syncs. `None`: the list stays as it is.
    pub evolve: Option<Evolve>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evolve {
    pub every: Duration,
    pub changes: usize,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            devices: 3_000,
            seed: 42,
            error_rate: 0.0,
            latency: Duration::ZERO,
            daily_limit: 50_000,
            per_second_limit: 20,
            rate_window: Duration::from_secs(1),
            certificates: true,
            fault: Fault::None,
            certificate_fault: CertificateFault::None,
            failing_offsets: Vec::new(),
            omit_total_count: false,
            omit_links: false,
            evolve: None,
        }
    }
}

/// Requests the log keeps, the newest (the demo runs the simulator in-process for weeks): a
/// day's quota, a few megabytes.
pub const LOG_CAPACITY: usize = 50_000;

/// One request as the simulator saw it (the tests read this log).
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// When the request arrived (before any simulated latency).
    pub at: Instant,
    pub client: IpAddr,
    pub path_and_query: String,
    pub status: u16,
    pub code: Option<String>,
}

struct PlatformCert {
    serial: String,
    key: crate::wechatpay::keys::MerchantKey,
    pem: String,
}

struct Inner {
    keys: SimKeys,
    devices: RwLock<Arc<Vec<Device>>>,
    options: RwLock<SimulatorOptions>,
    certs: RwLock<Vec<PlatformCert>>,
    windows: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    daily: Mutex<VecDeque<Instant>>,
    /// The last [`LOG_CAPACITY`] requests.
    log: Mutex<VecDeque<RequestRecord>>,
    counter: AtomicU64,
    /// Decides which requests get an injected `SYSTEM_ERROR`: seeded, so a test sees the same
    /// sequence of decisions on every run.
    errors: Mutex<ChaCha8Rng>,
    /// Device-list requests answered from the list so far.
    served: AtomicU64,
    /// Changes to make to the list once `served` reaches their count.
    scheduled: Mutex<Vec<(u64, ListChange)>>,
    spec: DatasetSpec,
    started: Instant,
    /// Evolution steps applied so far.
    steps: AtomicU64,
}

/// A running or ready simulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    pub fn new(keys: SimKeys, options: SimulatorOptions) -> Self {
        let seed = options.seed;
        let spec = DatasetSpec {
            devices: options.devices,
            seed: options.seed,
            mchid: keys.mchid.clone(),
            ..DatasetSpec::default()
        };
        let devices = generate(&spec);
        let cert = PlatformCert {
            serial: keys.platform_cert_serial.clone(),
            key: keys.platform_key.clone(),
            pem: keys.platform_cert_pem.clone(),
        };
        Simulator {
            inner: Arc::new(Inner {
                keys,
                devices: RwLock::new(Arc::new(devices)),
                options: RwLock::new(options),
                certs: RwLock::new(vec![cert]),
                windows: Mutex::new(HashMap::new()),
                daily: Mutex::new(VecDeque::new()),
                log: Mutex::new(VecDeque::new()),
                counter: AtomicU64::new(1),
                errors: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
                served: AtomicU64::new(0),
                scheduled: Mutex::new(Vec::new()),
                spec,
                started: Instant::now(),
                steps: AtomicU64::new(0),
            }),
        }
    }

    pub fn keys(&self) -> &SimKeys {
        &self.inner.keys
    }

    /// The whole list the simulator serves.
    pub fn devices(&self) -> Arc<Vec<Device>> {
        self.inner
            .devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the latency added to each device-list response from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.inner
            .options
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .latency = latency;
    }

    /// Replaces the list (e.g. to change it in the middle of a client's sync).
    pub fn set_devices(&self, devices: Vec<Device>) {
        *self
            .inner
            .devices
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(devices);
    }

    /// Changes the list once `after` device-list requests have been answered from it: the next
    /// request sees the change. Deterministic, whatever the timing (e.g. "remove 50 devices
    /// after the 20th page").
    pub fn change_list_after(
        &self,
        after: u64,
        change: impl FnOnce(&mut Vec<Device>) + Send + Sync + 'static,
    ) {
        self.inner
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((after, Box::new(change)));
    }

    /// Applies `steps` more steps of the merchant's life now (`dataset::evolve`, with the
    /// configured number of changes, 5 without), and returns what was done.
    pub fn evolve_now(&self, steps: u64) -> Vec<Evolution> {
        let first = self.inner.steps.fetch_add(steps, Ordering::SeqCst);
        self.apply_steps(first..first + steps)
    }

    fn apply_steps(&self, steps: std::ops::Range<u64>) -> Vec<Evolution> {
        let changes = self.options().evolve.map_or(5, |e| e.changes);
        let mut list = self.devices().to_vec();
        let mut done = Vec::new();
        for step in steps {
            done.extend(evolve(
                &mut list,
                &self.inner.spec,
                step,
                changes,
                unix_now(),
            ));
        }
        self.set_devices(list);
        done
    }

    /// The steps of the merchant's life that are due by now (at most 100 at once).
    fn evolve_due(&self) {
        let Some(e) = self
            .options()
            .evolve
            .filter(|e| !e.every.is_zero() && e.changes > 0)
        else {
            return;
        };
        let due = (self.inner.started.elapsed().as_millis() / e.every.as_millis()) as u64;
        let done = self.inner.steps.load(Ordering::SeqCst);
        // One caller claims the due steps; the others find nothing left to do.
        if due > done
            && self
                .inner
                .steps
                .compare_exchange(done, due, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.apply_steps(due.saturating_sub(100).max(done)..due);
        }
    }

    /// Device-list requests answered from the list so far.
    pub fn pages_served(&self) -> u64 {
        self.inner.served.load(Ordering::SeqCst)
    }

    /// Counts one device-list answer and returns the list it is served from, after making the
    /// changes that are due.
    fn list_for_next_page(&self) -> Arc<Vec<Device>> {
        let mut scheduled = self
            .inner
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let served = self.inner.served.fetch_add(1, Ordering::SeqCst);
        if scheduled.iter().any(|(after, _)| *after <= served) {
            let (due, later): (Vec<_>, Vec<_>) =
                scheduled.drain(..).partition(|(after, _)| *after <= served);
            *scheduled = later;
            let mut list = self.devices().to_vec();
            for (_, change) in due {
                change(&mut list);
            }
            self.set_devices(list);
        }
        self.devices()
    }

    /// Whether to answer this request with an injected `SYSTEM_ERROR`.
    fn inject_error(&self, rate: f64) -> bool {
        rate > 0.0
            && self
                .inner
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .gen_bool(rate.clamp(0.0, 1.0))
    }

    pub fn options(&self) -> SimulatorOptions {
        self.inner
            .options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the knobs at run time (not the device count: use `set_devices`).
    pub fn update_options(&self, f: impl FnOnce(&mut SimulatorOptions)) {
        f(&mut self
            .inner
            .options
            .write()
            .unwrap_or_else(|e| e.into_inner()));
    }

    /// The requests seen so far (the last [`LOG_CAPACITY`]), oldest first.
    pub fn log(&self) -> Vec<RequestRecord> {
        self.inner
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The most requests (device pages and certificate downloads alike) that arrived in any
    /// 1-second window (rule 20000730's measure), from the log.
    pub fn busiest_second(&self) -> usize {
        let log = self.log();
        let mut times: Vec<Instant> = log.iter().map(|r| r.at).collect();
        times.sort();
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    pub fn clear_log(&self) {
        self.inner
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Issues a new platform certificate with a new key; responses are signed with it from now on.
    pub fn rotate_certificate(&self) -> Result<String, String> {
        let fresh = SimKeys::generate()?;
        Ok(self.add_certificate(
            fresh.platform_cert_serial,
            fresh.platform_key,
            fresh.platform_cert_pem,
        ))
    }

    /// Adds a platform certificate; the newest signs the answers. Returns its serial.
    fn add_certificate(
        &self,
        serial: String,
        key: crate::wechatpay::keys::MerchantKey,
        pem: String,
    ) -> String {
        self.inner
            .certs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(PlatformCert {
                serial: serial.clone(),
                key,
                pem,
            });
        serial
    }

    /// Issues a platform certificate that has already expired, with a new key; responses are
    /// signed with it from now on (a clock gone wrong at WeChat Pay, or a stale download).
    pub fn rotate_to_expired_certificate(&self) -> Result<String, String> {
        let key =
            rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| e.to_string())?;
        let pem = super::keys::expired_certificate(&key)?;
        let serial = crate::wechatpay::certificates::parse_certificate(pem.as_bytes())?.serial;
        Ok(self.add_certificate(
            serial,
            crate::wechatpay::keys::MerchantKey::from_key(key),
            pem,
        ))
    }

    /// The configuration our client needs to talk to this simulator at `base_url`.
    pub fn client_config(
        &self,
        base_url: &str,
        public_key_mode: bool,
        certificate_mode: bool,
    ) -> MerchantConfig {
        let k = &self.inner.keys;
        MerchantConfig {
            mchid: k.mchid.clone(),
            serial_no: k.merchant_serial.clone(),
            private_key: k.merchant_key.clone(),
            public_key: public_key_mode
                .then(|| (k.platform_key_id.clone(), k.platform_public_key().clone())),
            apiv3_key: certificate_mode.then(|| ApiV3Key::new(&k.apiv3_key).expect("32-byte key")),
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/v3/iotmanage/devices", axum::routing::get(list_devices))
            .route("/v3/certificates", axum::routing::get(certificates))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await
    }

    /// Binds a free loopback port, serves there in a background task, returns the base URL.
    pub async fn spawn_local(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.serve(listener).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(format!("http://{addr}"))
    }

    fn record(&self, at: Instant, client: IpAddr, path: &str, status: u16, code: Option<&str>) {
        let mut log = self.inner.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(RequestRecord {
            at,
            client,
            path_and_query: path.to_string(),
            status,
            code: code.map(str::to_string),
        });
    }

    /// Counts the request in the client's window; false when it is over the limit.
    fn within_rate(&self, client: IpAddr, limit: usize, window: Duration) -> bool {
        let now = Instant::now();
        let mut windows = self.inner.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.entry(client).or_default();
        while w.front().is_some_and(|t| now.duration_since(*t) >= window) {
            w.pop_front();
        }
        w.push_back(now);
        w.len() <= limit
    }

    /// Counts the request against the merchant's rolling 24 h; false when over the quota.
    fn within_daily(&self, limit: usize) -> bool {
        let now = Instant::now();
        let mut daily = self.inner.daily.lock().unwrap_or_else(|e| e.into_inner());
        while daily
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(86_400))
        {
            daily.pop_front();
        }
        if daily.len() >= limit {
            return false;
        }
        daily.push_back(now);
        true
    }

    fn request_id(&self) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        format!("SIM{:08X}{:016X}", n, rand::rngs::OsRng.gen::<u64>())
    }

    /// Checks the request's headers and `Authorization` signature.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        path_and_query: &str,
    ) -> Result<(), (StatusCode, &'static str, String)> {
        let has = |name: &str| headers.get(name).is_some_and(|v| !v.as_bytes().is_empty());
        if !has("accept") || !has("user-agent") {
            return Err((
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "Http头缺少Accept或User-Agent".into(),
            ));
        }
        let sign_error = |why: &str| {
            (
                StatusCode::UNAUTHORIZED,
                "SIGN_ERROR",
                format!("签名错误: {why}"),
            )
        };
        let header = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| sign_error("no Authorization header"))?;
        let auth = Authorization::parse(header).map_err(|e| sign_error(&e))?;
        let keys = &self.inner.keys;
        if auth.mchid != keys.mchid {
            return Err(sign_error("unknown mchid"));
        }
        if normalize_serial(&auth.serial_no) != normalize_serial(&keys.merchant_serial) {
            return Err(sign_error("unknown merchant certificate serial_no"));
        }
        let ts: i64 = auth
            .timestamp
            .parse()
            .map_err(|_| sign_error("bad timestamp"))?;
        if unix_now().abs_diff(ts) >= MAX_SKEW_SECONDS as u64 {
            return Err(sign_error("timestamp expired; check the client clock"));
        }
        let message = RequestMessage {
            method: "GET",
            path_and_query,
            timestamp: ts,
            nonce: &auth.nonce_str,
            body: "",
        };
        let raw =
            base64_decode(&auth.signature).ok_or_else(|| sign_error("signature is not base64"))?;
        let sig =
            Signature::try_from(raw.as_slice()).map_err(|_| sign_error("malformed signature"))?;
        VerifyingKey::<Sha256>::new(keys.merchant_public_key().clone())
            .verify(message.to_string().as_bytes(), &sig)
            .map_err(|_| sign_error("signature does not verify"))
    }

    /// Builds a signed JSON response. `requested_serial` is the request's `Wechatpay-Serial`.
    fn signed(
        &self,
        status: StatusCode,
        body: Vec<u8>,
        requested_serial: Option<&str>,
        fault: Fault,
    ) -> Response {
        let certs = self.inner.certs.read().unwrap_or_else(|e| e.into_inner());
        let options_certs = self.options().certificates;
        let keys = &self.inner.keys;
        let newest = certs.last().expect("one certificate at least");
        // Which key signs: the public key unless the client asks for a certificate (or names
        // none, in certificate mode); after a rotation, the newest certificate.
        let use_cert =
            options_certs && !requested_serial.is_some_and(|s| s.starts_with("PUB_KEY_ID_"));
        let (serial, key) = if use_cert {
            (newest.serial.clone(), &newest.key)
        } else {
            (keys.platform_key_id.clone(), &keys.platform_key)
        };
        self.signed_by(status, body, serial, key, fault)
    }

    /// A response signed by `key`, naming `serial` as the signer.
    fn signed_by(
        &self,
        status: StatusCode,
        body: Vec<u8>,
        serial: String,
        key: &crate::wechatpay::keys::MerchantKey,
        fault: Fault,
    ) -> Response {
        let mut timestamp = unix_now();
        if fault == Fault::StaleTimestamp {
            timestamp -= 600;
        }
        let nonce = new_nonce();
        let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(&body);
        message.push(b'\n');
        let mut signature = sign_bytes(&message, key);
        let mut serial = serial;
        let mut body = body;
        match fault {
            Fault::TamperBody => body.splice(0..0, b" ".iter().copied()).for_each(drop),
            Fault::UnknownSerial => serial = "PUB_KEY_ID_0000000000000000000000000000000099".into(),
            Fault::SignTest => signature = format!("WECHATPAY/SIGNTEST/{signature}"),
            _ => {}
        }
        if fault == Fault::Redirect {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(
                "location",
                HeaderValue::from_static("https://api.mch.weixin.qq.com.evil.example/v3/"),
            );
            return r;
        }
        let mut response = (status, body).into_response();
        let h = response.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if fault != Fault::NoRequestId {
            h.insert("request-id", header_value(&self.request_id()));
        }
        if fault != Fault::StripHeaders {
            h.insert("wechatpay-timestamp", header_value(&timestamp.to_string()));
            h.insert("wechatpay-nonce", header_value(&nonce));
            h.insert("wechatpay-serial", header_value(&serial));
            h.insert("wechatpay-signature", header_value(&signature));
            if fault != Fault::NoSignatureType {
                h.insert("wechatpay-signature-type", HeaderValue::from_static(SCHEME));
            }
        }
        response
    }

    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: String,
        requested_serial: Option<&str>,
    ) -> Response {
        let body = serde_json::to_vec(&ApiErrorBody {
            code: code.into(),
            message,
            detail: None,
        })
        .expect("serialisable");
        self.signed(status, body, requested_serial, Fault::None)
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::{engine::general_purpose::STANDARD, Engine};
    STANDARD.decode(s).ok()
}

/// The request's `Wechatpay-Serial`: which key the client wants responses signed with.
fn requested_serial(headers: &HeaderMap) -> Option<String> {
    headers
        .get("wechatpay-serial")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// Parses `limit` and `offset` (both required; limit 1..=100).
fn paging(query: Option<&str>) -> Result<(u64, u64), String> {
    let (mut limit, mut offset) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => {
                limit = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("limit {v:?} is not a number"))?,
                )
            }
            "offset" => {
                offset = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("offset {v:?} is not a number"))?,
                )
            }
            _ => {}
        }
    }
    let limit = limit.ok_or("请在query里携带offset、limit参数: limit is missing")?;
    let offset = offset.ok_or("请在query里携带offset、limit参数: offset is missing")?;
    if !(1..=100).contains(&limit) {
        return Err(format!("limit {limit} must be between 1 and 100"));
    }
    Ok((limit, offset))
}

/// A request to one of the API's endpoints, as the simulator takes it in: who sent it, when it
/// arrived, what it asked for, and the simulator's knobs at that moment.
struct Incoming {
    sim: Simulator,
    arrived: Instant,
    client: IpAddr,
    path_and_query: String,
    query: Option<String>,
    /// The request's `Wechatpay-Serial`: which key it wants answers signed with.
    requested_serial: Option<String>,
    headers: HeaderMap,
    options: SimulatorOptions,
}

impl axum::extract::FromRequestParts<Simulator> for Incoming {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        sim: &Simulator,
    ) -> Result<Self, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        Ok(Incoming {
            sim: sim.clone(),
            arrived: Instant::now(),
            client: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            path_and_query: path_and_query(&uri),
            query: uri.query().map(str::to_string),
            requested_serial: requested_serial(&parts.headers),
            headers: parts.headers.clone(),
            options: sim.options(),
        })
    }
}

impl Incoming {
    /// A signed error answer, logged.
    fn reply(&self, status: StatusCode, code: &str, message: String) -> Response {
        self.sim.record(
            self.arrived,
            self.client,
            &self.path_and_query,
            status.as_u16(),
            Some(code),
        );
        self.sim
            .error(status, code, message, self.requested_serial.as_deref())
    }

    /// The API's checks, in its order: the rate per client (rule 20000730) before
    /// authentication, the merchant's daily quota (rule 20000731) after it. `Some`: the
    /// answer refusing the request.
    fn refusal(&self) -> Option<Response> {
        let (sim, o) = (&self.sim, &self.options);
        if !sim.within_rate(self.client, o.per_second_limit, o.rate_window) {
            return Some(self.reply(
                StatusCode::TOO_MANY_REQUESTS,
                "FREQUENCY_LIMITED",
                "接口有频率限制: more than 20 requests in 1 s".into(),
            ));
        }
        if let Err((status, code, message)) = sim.authenticate(&self.headers, &self.path_and_query)
        {
            return Some(self.reply(status, code, message));
        }
        if !sim.within_daily(o.daily_limit) {
            return Some(self.reply(
                StatusCode::TOO_MANY_REQUESTS,
                "FREQUENCY_LIMITED",
                "接口有频率限制: daily quota used up".into(),
            ));
        }
        None
    }

    /// A successful answer, logged.
    fn record_ok(&self) {
        self.sim
            .record(self.arrived, self.client, &self.path_and_query, 200, None);
    }
}

async fn list_devices(req: Incoming) -> Response {
    if let Some(refused) = req.refusal() {
        return refused;
    }
    let (sim, options) = (&req.sim, &req.options);
    let (limit, offset) = match paging(req.query.as_deref()) {
        Ok(p) => p,
        Err(message) => {
            return req.reply(
                StatusCode::BAD_REQUEST,
                "PARAM_ERROR",
                format!("参数不合法: {message}"),
            )
        }
    };
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    if options.failing_offsets.contains(&offset) || sim.inject_error(options.error_rate) {
        return req.reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            "系统错误".into(),
        );
    }
    if offset == 0 {
        sim.evolve_due();
    }
    let devices = sim.list_for_next_page();
    let mut page = page_of(&devices, offset, limit, options);
    if options.fault == Fault::WrongOffset {
        page = page_of(&devices, offset + 1, limit, options);
    }
    let mut body = serde_json::to_vec(&page).expect("serialisable");
    if options.fault == Fault::HugeBody {
        body = format!("{{\"data\":[],\"pad\":\"{}\"}}", "x".repeat(5 << 20)).into_bytes();
    }
    req.record_ok();
    sim.signed(
        StatusCode::OK,
        body,
        req.requested_serial.as_deref(),
        options.fault,
    )
}

/// The page at `offset` of `devices`, as the API answers it.
fn page_of(devices: &[Device], offset: u64, limit: u64, options: &SimulatorOptions) -> DevicePage {
    let total = devices.len() as u64;
    let start = offset.min(total) as usize;
    let end = (offset.saturating_add(limit)).min(total) as usize;
    let data = devices[start..end].to_vec();
    let link = |o: u64| format!("/v3/iotmanage/devices?offset={o}&limit={limit}");
    DevicePage {
        // "Should be returned when offset=0 or the page is empty."
        total_count: (!options.omit_total_count && (offset == 0 || data.is_empty()))
            .then_some(total),
        offset: Some(offset),
        limit: Some(limit),
        links: (!options.omit_links).then(|| Links {
            next: Some(if (end as u64) < total {
                link(end as u64)
            } else {
                String::new()
            }),
            prev: Some(if offset > 0 {
                link(offset.saturating_sub(limit))
            } else {
                String::new()
            }),
            self_: Some(link(offset)),
        }),
        data,
    }
}

async fn certificates(req: Incoming) -> Response {
    // The same limits as the list: downloads count against the rate and the quota too.
    if let Some(refused) = req.refusal() {
        return refused;
    }
    let (sim, options) = (&req.sim, &req.options);
    if !options.certificates {
        return req.reply(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_EXISTS",
            "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥".into(),
        );
    }
    let fault = options.certificate_fault;
    let key = if fault == CertificateFault::WrongApiV3Key {
        ApiV3Key::new("ThisIsNotTheMerchantsApiV3Key!!!").expect("32-byte key")
    } else {
        ApiV3Key::new(&sim.inner.keys.apiv3_key).expect("32-byte key")
    };
    let list = {
        let certs = sim.inner.certs.read().unwrap_or_else(|e| e.into_inner());
        CertificateList {
            data: certs
                .iter()
                .map(|c| {
                    let nonce: String = new_nonce()[..12].to_string();
                    let parsed =
                        crate::wechatpay::certificates::parse_certificate(c.pem.as_bytes());
                    let expire = parsed.map(|p| p.not_after).unwrap_or_default();
                    CertificateEntry {
                        serial_no: c.serial.clone(),
                        effective_time: String::new(),
                        expire_time: expire.to_string(),
                        encrypt_certificate: encrypt(&key, &nonce, "certificate", c.pem.as_bytes()),
                    }
                })
                .collect(),
        }
    };
    req.record_ok();
    let body = serde_json::to_vec(&list).expect("serialisable");
    match fault {
        CertificateFault::TamperBody => {
            let mut response = sim.signed(StatusCode::OK, body, Some("CERT"), Fault::None);
            let tampered = axum::body::Body::from(
                serde_json::to_vec(&CertificateList { data: Vec::new() }).expect("serialisable"),
            );
            *response.body_mut() = tampered;
            response
        }
        // Names the newest certificate as its signer, but is signed by another key.
        CertificateFault::SignedByStranger => {
            let serial = {
                let certs = sim.inner.certs.read().unwrap_or_else(|e| e.into_inner());
                certs
                    .last()
                    .expect("one certificate at least")
                    .serial
                    .clone()
            };
            let stranger = sim.inner.keys.merchant_key.clone();
            sim.signed_by(StatusCode::OK, body, serial, &stranger, Fault::None)
        }
        // Certificates are signed by a certificate, never the public key.
        _ => sim.signed(StatusCode::OK, body, Some("CERT"), Fault::None),
    }
}

async fn not_found(State(sim): State<Simulator>, headers: HeaderMap) -> Response {
    let requested = requested_serial(&headers);
    sim.error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "this simulator serves /v3/iotmanage/devices and /v3/certificates".into(),
        requested.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::paging;

    #[test]
    fn the_request_log_keeps_the_newest_only() {
        use super::*;
        let sim = Simulator::new(
            crate::simulator::keys::SimKeys::generate().unwrap(),
            SimulatorOptions {
                devices: 1,
                ..Default::default()
            },
        );
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for i in 0..LOG_CAPACITY + 10 {
            sim.record(Instant::now(), ip, &format!("/{i}"), 200, None);
        }
        let log = sim.log();
        assert_eq!(log.len(), LOG_CAPACITY);
        assert_eq!(log[0].path_and_query, "/10", "the oldest went first");
        assert_eq!(
            log.last().unwrap().path_and_query,
            format!("/{}", LOG_CAPACITY + 9)
        );
    }

    #[test]
    fn paging_rules() {
        assert_eq!(paging(Some("limit=100&offset=0")), Ok((100, 0)));
        assert_eq!(paging(Some("offset=7&limit=1")), Ok((1, 7)));
        assert!(paging(Some("limit=101&offset=0"))
            .unwrap_err()
            .contains("between 1 and 100"));
        assert!(paging(Some("limit=0&offset=0")).is_err());
        assert!(paging(Some("limit=10"))
            .unwrap_err()
            .contains("offset is missing"));
        assert!(paging(None).is_err());
        assert!(paging(Some("limit=x&offset=0")).is_err());
        assert!(paging(Some("limit=-1&offset=0")).is_err());
    }
}
