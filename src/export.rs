//! Export of the current view: `/export.csv` and `/export.xlsx` take the grid's own query string,
//! run the same query function, and return every row of the view (all pages) in its order.
//!
//! CSV: the 16 API field names as header, UTF-8 with BOM, CRLF, RFC 4180 quoting (the `csv`
//! crate), and cells a spreadsheet would run as a formula prefixed with `'`. Streamed in chunks.
//! XLSX: readable headers, frozen header row, auto-filter, column widths, and a second sheet
//! saying which view this is and when its data was synced.

use crate::codes::Table;
use crate::error::AppError;
use crate::model::{Device, FIELD_NAMES};
use crate::query::apply::QueryOutput;
use crate::query::{DeviceQuery, Filter, Notice, SortDir};
use crate::sync::snapshot::Snapshot;
use crate::view::{AppState, QueryRun};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;

/// The parameters of the view that were ignored (percent-encoded sentences), when any were.
pub const NOTICES_HEADER: &str = "x-view-notices";
/// Rows per streamed CSV chunk.
const CHUNK_ROWS: usize = 2_000;

/// Readable column titles, in the order of `FIELD_NAMES`.
pub const TITLES: [&str; 16] = [
    "Device SN 设备序列号",
    "Camera SN 摄像头序列号",
    "Category code 品类代码",
    "Category 设备品类",
    "Class code 类型代码",
    "Class 设备类型",
    "Model 设备型号",
    "App scene code 模式代码",
    "App scene 刷脸应用软件模式",
    "OS 操作系统",
    "Activation 激活状态",
    "Activated at 激活时间",
    "Merchant id 商户号",
    "Merchant 商户简称",
    "Sub-merchant id 子商户号",
    "Sub-merchant 子商户简称",
];

pub fn routes(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/export.csv", axum::routing::get(csv_export))
        .route("/export.xlsx", axum::routing::get(xlsx_export))
        .with_state(state)
}

/// A cell that Excel, WPS or LibreOffice would evaluate gets a leading `'`.
pub fn guard_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
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
async fn prepare(state: &AppState, raw: Option<String>) -> Result<QueryRun, Response> {
    state
        .run_query(&raw.unwrap_or_default())
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

async fn csv_export(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let QueryRun {
        index,
        query,
        output: out,
        notices,
        ..
    } = match prepare(&state, raw).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = file_name(&query, crate::clock::unix_now(), "csv");
    let rows = Arc::new(out.order);
    let chunks = rows.len().div_ceil(CHUNK_ROWS);
    // Chunk 0 is the BOM and the header; chunk k > 0 holds rows of the view.
    let stream = futures::stream::iter(0..=chunks).map(move |k| -> Result<Bytes, std::io::Error> {
        if k == 0 {
            let mut buf = vec![0xEF, 0xBB, 0xBF];
            buf.extend(csv_rows(std::iter::empty(), true)?);
            return Ok(Bytes::from(buf));
        }
        let range = (k - 1) * CHUNK_ROWS..(k * CHUNK_ROWS).min(rows.len());
        let devices = index.devices();
        Ok(Bytes::from(csv_rows(
            rows[range].iter().map(|i| &devices[*i as usize]),
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

/// CSV bytes for `devices` (and the header first, if asked).
pub fn csv_rows<'a>(
    devices: impl Iterator<Item = &'a Device>,
    header: bool,
) -> std::io::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256 * CHUNK_ROWS));
    if header {
        w.write_record(FIELD_NAMES)?;
    }
    for d in devices {
        w.write_record(
            d.fields()
                .map(|f| guard_formula(f.unwrap_or_default()))
                .iter()
                .map(|c| c.as_ref()),
        )?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The whole view as an XLSX workbook.
pub fn xlsx_bytes(
    devices: &[Device],
    out: &QueryOutput,
    query: &DeviceQuery,
    ignored: &[String],
    snapshot: &Snapshot,
    demo: bool,
    now_unix: i64,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, FormatBorder, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new()
        .set_bold()
        .set_background_color("#E2E8F0")
        .set_border_bottom(FormatBorder::Thin);
    // Constant memory: rows go to a temporary file as they are written (100,000 rows would
    // otherwise hold some 350 MB).
    let sheet = book
        .add_worksheet_with_constant_memory()?
        .set_name("Devices")?;
    for (col, title) in TITLES.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *title, &bold)?;
    }
    let widths = [
        26, 26, 10, 16, 10, 20, 16, 10, 14, 11, 13, 30, 13, 18, 14, 26,
    ];
    for (col, w) in widths.iter().enumerate() {
        sheet.set_column_width(col as u16, *w as f64)?;
    }
    for (r, i) in out.order.iter().enumerate() {
        let d = &devices[*i as usize];
        for (c, value) in d.fields().iter().enumerate() {
            if let Some(v) = value {
                // Strings stay strings: nothing in a cell is evaluated.
                sheet.write_string((r + 1) as u32, c as u16, *v)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, out.order.len() as u32, 15)?;

    let about = book.add_worksheet().set_name("View")?;
    about.set_column_width(0, 22)?;
    about.set_column_width(1, 80)?;
    let mut row = 0u32;
    let mut line = |k: &str, v: String| -> Result<(), rust_xlsxwriter::XlsxError> {
        about.write_string_with_format(row, 0, k, &bold)?;
        about.write_string(row, 1, v)?;
        row += 1;
        Ok(())
    };
    let cst = |t: i64| crate::format::ChinaTime::from_unix(t).full();
    line("Rows", out.order.len().to_string())?;
    line("Data synced at", cst(snapshot.synced_at))?;
    line("Exported at", cst(now_unix))?;
    line(
        "Source",
        if demo {
            "Demo: built-in WeChat Pay simulator".into()
        } else {
            "WeChat Pay APIv3 GET /v3/iotmanage/devices".into()
        },
    )?;
    for f in Filter::ALL {
        let values = query.values(f);
        let shown = if values.is_empty() {
            "all".to_string()
        } else {
            values
                .iter()
                .map(|v| {
                    let table = match f {
                        Filter::Category => Some(Table::Category),
                        Filter::Class => Some(Table::Class),
                        Filter::Scene => Some(Table::Scene),
                        _ => None,
                    };
                    match table.and_then(|t| t.lookup(v)) {
                        Some(row) => format!("{v} ({})", row.zh),
                        None => v.clone(),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        line(&format!("Filter: {}", f.label()), shown)?;
    }
    line(
        "Search",
        if query.q.is_empty() {
            "(none)".into()
        } else {
            query.q.clone()
        },
    )?;
    line(
        "Grouped by",
        query
            .group
            .map(|g| g.label().to_string())
            .unwrap_or_else(|| "(none)".into()),
    )?;
    line(
        "Sorted by",
        match &query.sort {
            Some(s) => format!(
                "{s} {}",
                if query.dir == SortDir::Desc {
                    "descending"
                } else {
                    "ascending"
                }
            ),
            None => "the API's order".into(),
        },
    )?;
    line("View address", format!("/?{}", query.to_query_string()))?;
    for notice in ignored {
        line("Ignored", notice.clone())?;
    }
    book.save_to_buffer()
}

async fn xlsx_export(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let run = match prepare(&state, raw).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = crate::clock::unix_now();
    let name = file_name(&run.query, now, "xlsx");
    let notices = notices_header(&run.notices);
    let demo = state.sync.is_demo();
    let built = tokio::task::spawn_blocking(move || {
        let ignored: Vec<String> = run.notices.iter().map(ToString::to_string).collect();
        xlsx_bytes(
            run.index.devices(),
            &run.output,
            &run.query,
            &ignored,
            &run.snapshot,
            demo,
            now,
        )
    })
    .await;
    match built {
        Ok(Ok(bytes)) => {
            let mut response = Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                )
                .header(header::CONTENT_DISPOSITION, content_disposition(&name))
                .header(header::CACHE_CONTROL, "no-store");
            if let Some(n) = notices {
                response = response.header(NOTICES_HEADER, n);
            }
            response.body(Body::from(bytes)).unwrap_or_else(failed)
        }
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_nothing_else_is_touched() {
        for (cell, want) in [
            ("=1+1", "'=1+1"),
            ("+86 热线店", "'+86 热线店"),
            ("-10% 折扣店", "'-10% 折扣店"),
            ("@home", "'@home"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("a=b", "a=b"),
            ("", ""),
            ("某公司", "某公司"),
        ] {
            assert_eq!(guard_formula(cell), want);
        }
    }

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

    #[test]
    fn csv_quotes_per_rfc4180_with_crlf() {
        let d = Device {
            device_sn: Some("A,1".into()),
            device_model: Some("say \"hi\"\nthere".into()),
            ..Default::default()
        };
        let bytes = csv_rows(std::iter::once(&d), true).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.split("\r\n");
        assert_eq!(lines.next().unwrap(), FIELD_NAMES.join(","));
        assert!(text.contains("\"A,1\""), "{text}");
        assert!(text.contains("\"say \"\"hi\"\"\nthere\""), "{text}");
        assert!(text.ends_with("\r\n"));
    }
}
