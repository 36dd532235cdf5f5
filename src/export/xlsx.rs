//! XLSX: headings in both languages, frozen header row, auto-filter, column widths, and a
//! second sheet saying, in the reader's language, which view this is and when its data was
//! synced. Written in constant-memory mode.

use crate::codes::Table;
use crate::i18n::Lang;
use crate::model::Field;
use crate::query::{Filter, SortDir};
use crate::view::QueryRun;

/// A column's heading: English, then Chinese, whatever the reader's language (a file is shared).
pub fn heading(field: Field) -> String {
    format!(
        "{} {}",
        Lang::En.field_label(field),
        Lang::Zh.field_label(field)
    )
}

/// The whole view as an XLSX workbook, in memory (tests; the server writes to a file).
pub fn xlsx_bytes(
    run: &QueryRun,
    demo: bool,
    now_unix: i64,
    lang: Lang,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut out = Vec::new();
    write_xlsx(run, demo, now_unix, lang, &mut out)?;
    Ok(out)
}

/// The whole view as an XLSX workbook, written to `out` as it is made: the rows go through a
/// temporary file (constant-memory mode), then into the ZIP written to `writer`.
pub fn write_xlsx(
    run: &QueryRun,
    demo: bool,
    now_unix: i64,
    lang: Lang,
    writer: impl std::io::Write + Send,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let t = lang.texts();
    let (devices, out, query, ignored, snapshot) = (
        run.index.devices(),
        &run.output,
        &run.query,
        &run.notices,
        &run.snapshot,
    );
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
        .set_name(t.sheet_devices)?;
    for (col, field) in Field::ALL.into_iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, heading(field), &bold)?;
        sheet.set_column_width(col as u16, field.width())?;
    }
    for (r, i) in out.order.iter().enumerate() {
        let d = devices.get(*i as usize);
        for (c, value) in d.fields().iter().enumerate() {
            if let Some(v) = value {
                // Strings stay strings: nothing in a cell is evaluated.
                sheet.write_string((r + 1) as u32, c as u16, *v)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, out.order.len() as u32, 15)?;

    let about = book.add_worksheet().set_name(t.sheet_view)?;
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
    line(t.view_rows, out.order.len().to_string())?;
    line(t.view_synced_at, cst(snapshot.synced_at))?;
    line(t.view_exported_at, cst(now_unix))?;
    line(
        t.view_source,
        if demo {
            t.view_source_demo
        } else {
            t.view_source_api
        }
        .into(),
    )?;
    for f in Filter::ALL {
        let values = query.values(f);
        let shown = if values.is_empty() {
            t.view_all.to_string()
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
        line(&format!("{}{}", t.view_filter, lang.filter_label(f)), shown)?;
    }
    line(
        t.view_search,
        if query.q.is_empty() {
            t.view_none.into()
        } else {
            query.q.clone()
        },
    )?;
    line(
        t.view_grouped_by,
        query
            .group
            .map(|g| lang.group_label(g).to_string())
            .unwrap_or_else(|| t.view_none.into()),
    )?;
    line(
        t.view_sorted_by,
        match query.sort {
            Some(s) => format!(
                "{} ({s}) {}",
                lang.field_label(s),
                if query.dir == SortDir::Desc {
                    t.view_descending
                } else {
                    t.view_ascending
                }
            ),
            None => t.view_api_order.into(),
        },
    )?;
    line(t.view_address, format!("/?{}", query.to_query_string()))?;
    for notice in ignored {
        line(t.view_ignored, notice.to_string())?;
    }
    book.save_to_writer(writer)
}
