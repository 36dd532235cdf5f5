//! Export of the current view: `/export.csv` and `/export.xlsx` take the grid's own query string,
//! run it through the same `run_query` as the grid, and return every row of the view (all pages)
//! in its order. The formats are in `csv` (streamed in chunks) and `xlsx`.

pub mod changes;
pub mod csv;
pub mod xlsx;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::query::{DeviceQuery, Filter, Notice};
use crate::view::{AppState, QueryRun};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;

pub use self::csv::{csv_rows, guard_formula, CHUNK_ROWS};
pub use self::xlsx::{heading, write_xlsx, xlsx_bytes};

/// The parameters of the view that were ignored (percent-encoded sentences), when any were.
pub const NOTICES_HEADER: &str = "x-view-notices";

pub use crate::view::XLSX_MAX_ROWS;

/// `Retry-After` of a refused export, in seconds.
pub const SLOT_RETRY_SECS: u64 = 30;

pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One of `slots`, waiting up to `wait` (`AppState::exports`); else 503 with `Retry-After`,
/// in `lang`.
pub async fn slot(
    slots: &Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
    lang: Lang,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            let mut r = AppError::Unavailable {
                message: lang.exports_busy(SLOT_RETRY_SECS),
                advice: lang.texts().try_again_soon.into(),
                request_id: None,
            }
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(SLOT_RETRY_SECS));
            Err(r)
        }
    }
}

/// Runs `write` on a blocking thread into an unlinked temporary file (nothing is left behind,
/// whatever happens) and returns the file, rewound: an XLSX is never whole in memory.
pub async fn to_temp_file<E: std::fmt::Display + Send + 'static>(
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), E> + Send + 'static,
) -> Result<std::fs::File, String> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Seek, Write};
        let file = tempfile::tempfile().map_err(|e| format!("no temporary file: {e}"))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut out).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        let mut file = out.into_inner().map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
        Ok(file)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A download of `file` (from its start), with its length.
pub fn file_response(
    file: std::fs::File,
    content_type: &'static str,
    name: &str,
    notices: Option<HeaderValue>,
) -> Response {
    let length = file.metadata().map(|m| m.len()).ok();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 16);
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, content_disposition(name))
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(n) = length {
        response = response.header(header::CONTENT_LENGTH, n);
    }
    if let Some(n) = notices {
        response = response.header(NOTICES_HEADER, n);
    }
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(failed)
}

pub fn routes(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/export.csv", axum::routing::get(csv_export))
        .route("/export.xlsx", axum::routing::get(xlsx_export))
        .with_state(state.clone())
        .merge(changes::routes(state))
}

/// `devices-<sub_mchid or all>-<YYYYMMDD-HHMM>.<ext>`, the time in China Standard Time.
pub fn file_name(query: &DeviceQuery, now_unix: i64, ext: &str) -> String {
    let subs = query.values(Filter::SubMchid);
    let who = match subs {
        [] => "all".to_string(),
        [one] if one == "-" => "own".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!(
            "{}-and-{}-more",
            if first == "-" { "own" } else { first },
            rest.len()
        ),
    };
    let stamp = crate::format::ChinaTime::from_unix(now_unix).stamp();
    format!("devices-{who}-{stamp}.{ext}")
}

/// `attachment` with an ASCII fallback and the UTF-8 `filename*` (RFC 6266 / 5987).
pub fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The view, or the error saying why not (never a partial file). The same policy as the grid
/// (`view::AppState::run_query`): size limit, first-sync wait, errors.
async fn prepare(state: &AppState, raw: Option<String>, lang: Lang) -> Result<QueryRun, Response> {
    state
        .run_query(&raw.unwrap_or_default(), lang, crate::view::FirstSync::Wait)
        .await
        .map_err(IntoResponse::into_response)
}

/// The parameters the view ignored, for a response header (the XLSX also lists them).
fn notices_header(notices: &[Notice]) -> Option<HeaderValue> {
    if notices.is_empty() {
        return None;
    }
    let text: Vec<String> = notices.iter().map(ToString::to_string).collect();
    let encoded: String = form_urlencoded::byte_serialize(text.join("; ").as_bytes()).collect();
    HeaderValue::from_str(&encoded).ok()
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "export failed");
    AppError::Internal("the export could not be written; see the server log".into()).into_response()
}

async fn csv_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = crate::i18n::from_headers(&headers);
    let QueryRun {
        index,
        query,
        output: out,
        notices,
        ..
    } = match prepare(&state, raw, lang).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = file_name(&query, crate::clock::unix_now(), "csv");
    let permit = match slot(&state.exports.streams, state.exports.wait, lang).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let rows = Arc::new(out.order);
    let chunks = rows.len().div_ceil(CHUNK_ROWS);
    // Chunk 0 is the BOM and the header; chunk k > 0 holds rows of the view.
    let stream = futures::stream::iter(0..=chunks).map(move |k| -> Result<Bytes, std::io::Error> {
        // The slot is held until the last chunk is sent, or the download is dropped.
        let _held = &permit;
        if k == 0 {
            let mut buf = vec![0xEF, 0xBB, 0xBF];
            buf.extend(csv_rows(std::iter::empty(), true)?);
            return Ok(Bytes::from(buf));
        }
        let range = (k - 1) * CHUNK_ROWS..(k * CHUNK_ROWS).min(rows.len());
        let devices = index.devices();
        Ok(Bytes::from(csv_rows(
            rows[range]
                .iter()
                .map(|i| devices.get(*i as usize).fields()),
            false,
        )?))
    });
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, content_disposition(&name))
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(n) = notices_header(&notices) {
        response = response.header(NOTICES_HEADER, n);
    }
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(failed)
}

async fn xlsx_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = crate::i18n::from_headers(&headers);
    let run = match prepare(&state, raw, lang).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let rows = run.output.order.len();
    if rows as u64 > state.exports.xlsx_rows {
        return AppError::BadRequest(lang.xlsx_too_many_devices(rows)).into_response();
    }
    let now = crate::clock::unix_now();
    let name = file_name(&run.query, now, "xlsx");
    let notices = notices_header(&run.notices);
    let demo = state.sync.is_demo();
    // Held while the file is built; the finished file is sent without one.
    let permit = match slot(&state.exports.files, state.exports.wait, lang).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let built = to_temp_file(move |out| write_xlsx(&run, demo, now, lang, out)).await;
    drop(permit);
    match built {
        Ok(file) => file_response(file, XLSX_TYPE, &name, notices),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_what_they_hold() {
        let t = 1_795_867_200; // 2026-11-28 12:00 UTC is 20:00 in China
        let q = |s: &str| DeviceQuery::parse(s).0;
        assert_eq!(file_name(&q(""), t, "csv"), "devices-all-20261128-2000.csv");
        assert_eq!(
            file_name(&q("sub_mchid=1900000002&os=LINUX"), t, "xlsx"),
            "devices-1900000002-20261128-2000.xlsx"
        );
        assert_eq!(
            file_name(&q("sub_mchid=1&sub_mchid=2&sub_mchid=3"), t, "csv"),
            "devices-1-and-2-more-20261128-2000.csv"
        );
        assert_eq!(
            file_name(&q("sub_mchid=-"), t, "csv"),
            "devices-own-20261128-2000.csv"
        );
    }

    #[test]
    fn content_disposition_has_ascii_and_utf8_names() {
        let v = content_disposition("devices-all-20261128-2000.csv");
        assert_eq!(v.to_str().unwrap(), "attachment; filename=\"devices-all-20261128-2000.csv\"; filename*=UTF-8''devices-all-20261128-2000.csv");
        let v = content_disposition("设备 \"x\".csv");
        let s = v.to_str().unwrap();
        assert!(s.starts_with("attachment; filename=\"____x_.csv\""), "{s}");
        assert!(
            s.ends_with("filename*=UTF-8''%E8%AE%BE%E5%A4%87%20%22x%22.csv"),
            "{s}"
        );
    }
}
