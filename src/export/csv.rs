//! CSV: the 16 API field names as header, UTF-8 with BOM, CRLF, RFC 4180 quoting (the `csv`
//! crate), and cells a spreadsheet would run as a formula prefixed with `'`.

use crate::model::Field;

/// Rows per streamed chunk.
pub const CHUNK_ROWS: usize = 2_000;

/// A cell that Excel, WPS or LibreOffice would evaluate gets a leading `'`.
pub fn guard_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// CSV bytes for `devices`, each its 16 fields (and the header first, if asked).
pub fn csv_rows<'a>(
    devices: impl Iterator<Item = [Option<&'a str>; 16]>,
    header: bool,
) -> std::io::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256 * CHUNK_ROWS));
    if header {
        w.write_record(Field::ALL.map(|f| f.name()))?;
    }
    for d in devices {
        w.write_record(
            d.map(|f| guard_formula(f.unwrap_or_default()))
                .iter()
                .map(|c| c.as_ref()),
        )?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Device;

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
    fn csv_quotes_per_rfc4180_with_crlf() {
        let d = Device {
            device_sn: Some("A,1".into()),
            device_model: Some("say \"hi\"\nthere".into()),
            ..Default::default()
        };
        let bytes = csv_rows(std::iter::once(d.fields()), true).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            Field::ALL.map(|f| f.name()).join(",")
        );
        assert!(text.contains("\"A,1\""), "{text}");
        assert!(text.contains("\"say \"\"hi\"\"\nthere\""), "{text}");
        assert!(text.ends_with("\r\n"));
    }
}
