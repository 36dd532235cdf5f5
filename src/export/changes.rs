//! `/changes.csv` and `/changes.xlsx`: the change history's events for the Changes page's query
//! string (docs/history.md), newest first, every page. The CSV has the same form as
//! `/export.csv` (BOM, CRLF, RFC 4180, formula guard) and is streamed from the database in
//! batches, so memory stays flat however long the history is.

use super::csv::guard_formula;
use super::{content_disposition, failed, file_response, slot, to_temp_file, XLSX_TYPE};
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

pub use super::XLSX_MAX_ROWS;

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
    let permit = match slot(&state.exports.streams, state.exports.wait, lang).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let head = futures::stream::once(async {
        let mut buf = vec![0xEF, 0xBB, 0xBF];
        buf.extend(csv_rows(&[], true)?);
        Ok::<Bytes, std::io::Error>(Bytes::from(buf))
    });
    let rows = batches.map(move |batch| {
        // The slot is held until the last batch is sent, or the download is dropped.
        let _held = &permit;
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
    if total > state.exports.xlsx_rows {
        return AppError::BadRequest(lang.xlsx_too_many(total)).into_response();
    }
    let mut batches = match history.export(&query, now * 1000) {
        Ok(b) => Box::pin(b),
        Err(e) => return AppError::BadRequest(e).into_response(),
    };
    // Held while the file is built; the finished file is sent without one.
    let permit = match slot(&state.exports.files, state.exports.wait, lang).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // The events go from the database to the workbook a batch at a time (two batches in
    // flight at most): the export holds a batch, never the selection.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ChangeEvent>>(2);
    let built = to_temp_file(move |out| {
        let mut book = ChangesWorkbook::new(lang)?;
        while let Some(batch) = rx.blocking_recv() {
            book.push(&batch)?;
        }
        book.finish(out)
    });
    let read = async move {
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if tx.send(batch).await.is_err() {
                break; // the writer stopped: its error is the one to report
            }
        }
        Ok::<(), String>(())
    };
    let (built, read) = tokio::join!(built, read);
    drop(permit);
    match (built, read) {
        (_, Err(e)) | (Err(e), _) => failed(e),
        (Ok(file), Ok(())) => file_response(file, XLSX_TYPE, &file_name(&query, now, "xlsx"), None),
    }
}

/// The events as a workbook, in memory (tests; the server writes to a file).
pub fn xlsx_bytes(
    events: &[ChangeEvent],
    lang: Lang,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = ChangesWorkbook::new(lang)?;
    book.push(events)?;
    let mut out = Vec::new();
    book.finish(&mut out)?;
    Ok(out)
}

/// A workbook of events, filled a batch at a time: the CSV's columns with headings in both
/// languages, the kind and the field in words too. Its rows go through a temporary file
/// (constant-memory mode).
pub struct ChangesWorkbook {
    book: rust_xlsxwriter::Workbook,
    /// Rows written, the header not counted.
    rows: u32,
}

impl ChangesWorkbook {
    pub fn new(lang: Lang) -> Result<Self, rust_xlsxwriter::XlsxError> {
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
            (en.col_time, zh.col_time, 26.0),
            (en.col_kind, zh.col_kind, 10.0),
            (en.col_device, zh.col_device, 26.0),
            (en.col_field, zh.col_field, 22.0),
            ("Old value", "原值", 28.0),
            ("New value", "新值", 28.0),
            ("Sub-merchant id", "子商户号", 16.0),
            ("Sub-merchant name", "子商户简称", 26.0),
        ];
        for (c, (e, z, width)) in headings.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, format!("{e} {z}"), &bold)?;
            sheet.set_column_width(c as u16, *width)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(ChangesWorkbook { book, rows: 0 })
    }

    /// Appends `events` as rows.
    pub fn push(&mut self, events: &[ChangeEvent]) -> Result<(), rust_xlsxwriter::XlsxError> {
        let sheet = self.book.worksheet_from_index(0)?;
        for e in events {
            self.rows += 1;
            let mut row = cells(e);
            row[1] = format!("{} {}", e.kind.name(), Lang::Zh.kind_label(e.kind));
            for (c, v) in row.iter().enumerate() {
                if !v.is_empty() {
                    // Strings stay strings: nothing in a cell is evaluated.
                    sheet.write_string(self.rows, c as u16, v)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the finished workbook to `out`.
    pub fn finish(
        mut self,
        out: impl std::io::Write + Send,
    ) -> Result<(), rust_xlsxwriter::XlsxError> {
        let rows = self.rows;
        self.book
            .worksheet_from_index(0)?
            .autofilter(0, 0, rows, 7)?;
        self.book.save_to_writer(out)
    }
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
