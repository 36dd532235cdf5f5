//! `/changes.csv` and `/changes.xlsx`: the change history's events for the Changes page's query
//! string (docs/history.md), newest first, every page. The CSV has the same form as
//! `/export.csv` (BOM, CRLF, RFC 4180, formula guard) and is streamed from the database in
//! batches, so memory stays flat however long the history is.

use super::csv::guard_formula;
use super::{content_disposition, failed};
use crate::changes::{ChangeEvent, ChangesQuery};
use crate::error::AppError;
use crate::format::ChinaTime;
use crate::i18n::Lang;
use crate::view::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// The CSV's header, exactly.
pub const CSV_HEADER: [&str; 8] = [
    "time",
    "kind",
    "device_sn",
    "field",
    "old_value",
    "new_value",
    "sub_mchid",
    "sub_merchant_shortname",
];

/// Rows an XLSX of changes holds at most (Excel's limit is 1,048,576 rows, the header one).
pub const XLSX_MAX_ROWS: u64 = 1_048_575;

pub fn routes(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/changes.csv", axum::routing::get(csv_changes))
        .route("/changes.xlsx", axum::routing::get(xlsx_changes))
        .with_state(state)
}

/// `changes-<sub_mchid or all>-<YYYYMMDD-HHMM>.<ext>`, the time in China Standard Time.
pub fn file_name(query: &ChangesQuery, now_unix: i64, ext: &str) -> String {
    let who = match query.sub_mchids.as_slice() {
        [] => "all".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first}-and-{}-more", rest.len()),
    };
    let who: String = who
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let stamp = ChinaTime::from_unix(now_unix).stamp();
    format!("changes-{who}-{stamp}.{ext}")
}

/// One event as the CSV's (and the XLSX's) eight cells.
pub fn cells(e: &ChangeEvent) -> [String; 8] {
    [
        ChinaTime::from_unix(e.at_ms.div_euclid(1000)).rfc3339(),
        e.kind.name().to_string(),
        e.device_sn.clone(),
        e.field.map(|f| f.name().to_string()).unwrap_or_default(),
        e.old_value.clone().unwrap_or_default(),
        e.new_value.clone().unwrap_or_default(),
        e.sub_mchid.clone(),
        e.sub_merchant_shortname.clone(),
    ]
}

/// CSV bytes for `events` (and the header first, if asked).
pub fn csv_rows(events: &[ChangeEvent], header: bool) -> std::io::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(160 * events.len() + 128));
    if header {
        w.write_record(CSV_HEADER)?;
    }
    for e in events {
        w.write_record(
            cells(e)
                .iter()
                .map(|c| guard_formula(c))
                .map(|c| c.into_owned()),
        )?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The query and the history, or the error saying why not (never a partial file).
fn prepare(
    state: &AppState,
    raw: Option<String>,
    lang: Lang,
) -> Result<
    (
        ChangesQuery,
        std::sync::Arc<crate::history::store::HistoryStore>,
    ),
    AppError,
> {
    let query = state.changes_query(&raw.unwrap_or_default(), lang)?;
    let history = state.history(lang)?;
    Ok((query.filters_only(), history))
}

async fn csv_changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = crate::i18n::from_headers(&headers);
    let (query, history) = match prepare(&state, raw, lang) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let now = crate::clock::unix_now();
    let batches = match history.export(&query, now * 1000) {
        Ok(b) => b,
        Err(e) => return AppError::BadRequest(e).into_response(),
    };
    let head = futures::stream::once(async {
        let mut buf = vec![0xEF, 0xBB, 0xBF];
        buf.extend(csv_rows(&[], true)?);
        Ok::<Bytes, std::io::Error>(Bytes::from(buf))
    });
    let rows = batches.map(|batch| {
        let batch = batch.map_err(|e| {
            // The status is sent already: the download ends short, and the log says why.
            tracing::error!(error = %e, "the change history export stopped");
            std::io::Error::other(e)
        })?;
        Ok(Bytes::from(csv_rows(&batch, false)?))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            content_disposition(&file_name(&query, now, "csv")),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(head.chain(rows)))
        .unwrap_or_else(failed)
}

async fn xlsx_changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = crate::i18n::from_headers(&headers);
    let (query, history) = match prepare(&state, raw, lang) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let now = crate::clock::unix_now();
    let (_, total) = match history.events(&query.with_page(1), now * 1000).await {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    if total > XLSX_MAX_ROWS {
        return AppError::BadRequest(lang.xlsx_too_many(total)).into_response();
    }
    let mut events = Vec::with_capacity(total as usize);
    let mut batches = match history.export(&query, now * 1000) {
        Ok(b) => Box::pin(b),
        Err(e) => return AppError::BadRequest(e).into_response(),
    };
    while let Some(batch) = batches.next().await {
        match batch {
            Ok(b) => events.extend(b),
            Err(e) => return failed(e),
        }
    }
    let built = tokio::task::spawn_blocking(move || xlsx_bytes(&events, lang)).await;
    match built {
        Ok(Ok(bytes)) => Response::builder()
            .header(
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
            .header(
                header::CONTENT_DISPOSITION,
                content_disposition(&file_name(&query, now, "xlsx")),
            )
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::from(bytes))
            .unwrap_or_else(failed),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// The events as a workbook: the CSV's columns with headings in both languages, the kind and
/// the field in words too.
pub fn xlsx_bytes(
    events: &[ChangeEvent],
    lang: Lang,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, FormatBorder, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new()
        .set_bold()
        .set_background_color("#E2E8F0")
        .set_border_bottom(FormatBorder::Thin);
    let sheet = book
        .add_worksheet_with_constant_memory()?
        .set_name(lang.texts().sheet_changes)?;
    let (en, zh) = (Lang::En.texts(), Lang::Zh.texts());
    let headings = [
        (CSV_HEADER[0], en.col_time, zh.col_time, 26.0),
        (CSV_HEADER[1], en.col_kind, zh.col_kind, 10.0),
        (CSV_HEADER[2], en.col_device, zh.col_device, 26.0),
        (CSV_HEADER[3], en.col_field, zh.col_field, 22.0),
        (CSV_HEADER[4], "Old value", "原值", 28.0),
        (CSV_HEADER[5], "New value", "新值", 28.0),
        (CSV_HEADER[6], "Sub-merchant id", "子商户号", 16.0),
        (CSV_HEADER[7], "Sub-merchant name", "子商户简称", 26.0),
    ];
    for (c, (_, e, z, width)) in headings.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, format!("{e} {z}"), &bold)?;
        sheet.set_column_width(c as u16, *width)?;
    }
    for (r, e) in events.iter().enumerate() {
        let mut row = cells(e);
        row[1] = format!("{} {}", e.kind.name(), Lang::Zh.kind_label(e.kind));
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                // Strings stay strings: nothing in a cell is evaluated.
                sheet.write_string((r + 1) as u32, c as u16, v)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, events.len() as u32, 7)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::ChangeKind;
    use crate::model::Field;

    fn event(kind: ChangeKind) -> ChangeEvent {
        ChangeEvent {
            id: 1,
            at_ms: 1_795_867_200_000,
            kind,
            device_sn: "SN1".into(),
            field: (kind == ChangeKind::Changed).then_some(Field::SubMchid),
            old_value: (kind == ChangeKind::Changed).then(|| "1600000001".into()),
            new_value: (kind == ChangeKind::Changed).then(|| "=HYPERLINK(1)".into()),
            sub_mchid: "1600000002".into(),
            sub_merchant_shortname: "Smith, Jones & Co".into(),
        }
    }

    #[test]
    fn csv_rows_have_the_header_china_times_and_guarded_cells() {
        let bytes = csv_rows(
            &[event(ChangeKind::Changed), event(ChangeKind::Added)],
            true,
        )
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "time,kind,device_sn,field,old_value,new_value,sub_mchid,sub_merchant_shortname"
        );
        assert_eq!(
            lines[1],
            "2026-11-28T20:00:00+08:00,changed,SN1,sub_mchid,1600000001,'=HYPERLINK(1),1600000002,\"Smith, Jones & Co\""
        );
        assert_eq!(
            lines[2],
            "2026-11-28T20:00:00+08:00,added,SN1,,,,1600000002,\"Smith, Jones & Co\""
        );
    }

    #[test]
    fn file_names_are_safe() {
        let q = ChangesQuery::parse("sub_mchid=../x").unwrap();
        assert_eq!(
            file_name(&q, 1_795_867_200, "csv"),
            "changes-___x-20261128-2000.csv"
        );
        assert_eq!(
            file_name(&ChangesQuery::new(), 1_795_867_200, "xlsx"),
            "changes-all-20261128-2000.xlsx"
        );
    }
}
