//! The export over HTTP: the files hold exactly the rows of the view, in its order.
#![cfg(feature = "ssr")]

mod common;

use common::{always_failing, fast_retries, serve, setup};
use wxpay_devices::export::{guard_formula, heading, routes};
use wxpay_devices::model::Device;
use wxpay_devices::model::Field;
use wxpay_devices::query::DeviceQuery;
use wxpay_devices::simulator::service::SimulatorOptions;
use wxpay_devices::view::AppState;

/// What the view holds, as cell strings: the naive answer (`common::oracle`), not the engine
/// the export itself runs.
fn expected(devices: &[Device], query: &str) -> Vec<Vec<String>> {
    common::oracle::naive_order(devices, &DeviceQuery::parse(query).0)
        .iter()
        .map(|i| {
            devices[*i as usize]
                .fields()
                .iter()
                .map(|f| f.unwrap_or_default().to_string())
                .collect()
        })
        .collect()
}

async fn start(devices: usize) -> (String, Vec<Device>) {
    let (sim, service) = setup(
        SimulatorOptions {
            devices,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let url = serve(|_| routes(AppState::new(service))).await;
    (url, sim.devices().to_vec())
}

#[tokio::test]
async fn csv_holds_exactly_the_views_rows_in_order() {
    let (url, devices) = start(2_500).await;
    let sub = devices
        .iter()
        .filter_map(|d| d.sub_mchid.clone())
        .next()
        .unwrap();
    for view in [
        format!("sub_mchid={sub}"),
        "category=2&category=1&os=ANDROID&status=ACTIVATED&q=pro".into(),
        "group=sub_merchant&sort=activation_time&dir=desc&page=3&per_page=10".into(),
        "q=%3Cscript%3E".into(),
        String::new(),
    ] {
        let response = reqwest::get(format!("{url}/export.csv?{view}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            disposition.starts_with("attachment; filename=\"devices-"),
            "{disposition}"
        );
        assert!(
            disposition.contains("filename*=UTF-8''devices-"),
            "{disposition}"
        );
        if view.starts_with("sub_mchid=") {
            assert!(
                disposition.contains(&format!("devices-{sub}-")),
                "{disposition}"
            );
        }
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 BOM");
        assert!(
            bytes.windows(2).filter(|w| w == b"\r\n").count() > 0,
            "CRLF"
        );
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(&bytes[3..]);
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            Field::ALL.map(|f| f.name())
        );
        let got: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        let want: Vec<Vec<String>> = expected(&devices, &view)
            .into_iter()
            .map(|row| row.iter().map(|c| guard_formula(c).into_owned()).collect())
            .collect();
        assert_eq!(got.len(), want.len(), "{view}: every page, not just one");
        assert_eq!(got, want, "{view}");
        assert!(!want.is_empty(), "{view} has rows");
    }
}

#[tokio::test]
async fn hostile_values_round_trip_apart_from_the_formula_guard() {
    let (url, devices) = start(3_000).await;
    let bytes = reqwest::get(format!("{url}/export.csv"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let names: Vec<&str> = rows.iter().map(|r| &r[15]).collect();
    for hostile in [
        "Smith, Jones & Co",
        "\"引号\"餐厅",
        "两行\n名称",
        "🍜 拉面馆 🍜",
        "<script>alert('xss')</script>便利店",
    ] {
        assert!(names.contains(&hostile), "{hostile:?} exactly");
    }
    assert!(names.contains(&"'=HYPERLINK(\"http://example.invalid\",\"点我\")"));
    assert!(
        names.contains(&"'+86 热线店")
            && names.contains(&"'-10% 折扣店")
            && names.contains(&"'@home 家居")
    );
    assert!(rows.iter().any(|r| &r[6] == "'=1+1"));
    assert_eq!(rows.len(), devices.len());
}

/// A sheet's rows as `cell=cell=…` lines.
fn sheet_lines<R: std::io::Read + std::io::Seek>(
    book: &mut calamine::Xlsx<R>,
    sheet: &str,
) -> Vec<String> {
    use calamine::Reader;
    book.worksheet_range(sheet)
        .unwrap()
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect()
}

#[tokio::test]
async fn xlsx_reads_back_with_the_same_rows() {
    use calamine::{Reader, Xlsx};
    let (url, devices) = start(1_500).await;
    let view = "os=LINUX&group=category&sort=device_sn";
    let response = reqwest::Client::new()
        .get(format!("{url}/export.xlsx?{view}&bogus=1"))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-view-notices"],
        "Ignored+bogus%3D%221%22%3A+unknown+parameter",
        "the ignored parameter is reported"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = response.bytes().await.unwrap();
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    assert_eq!(book.sheet_names(), ["Devices", "View"]);
    let sheet = book.worksheet_range("Devices").unwrap();
    let mut rows = sheet.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(header, Field::ALL.map(heading));
    assert_eq!(header[0], "Device SN 设备序列号");
    let got: Vec<Vec<String>> = rows
        .map(|r| {
            let mut cells: Vec<String> = r.iter().map(|c| c.to_string()).collect();
            cells.resize(16, String::new());
            cells
        })
        .collect();
    let want = expected(&devices, view);
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got, want,
        "values exact: strings are never evaluated, so no guard is needed"
    );
    let text = sheet_lines(&mut book, "View");
    assert!(
        text.iter()
            .any(|l| l.starts_with("Filter: Operating system=LINUX")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|l| l.starts_with("Data synced at=") && l.ends_with("+08:00")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|l| l == &format!("Rows={}", want.len())),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|l| l == "Ignored parameter=Ignored bogus=\"1\": unknown parameter"),
        "{text:?}"
    );
    // A Chinese reader gets the sheets and the view described in Chinese.
    let zh = reqwest::Client::new()
        .get(format!("{url}/export.xlsx?{view}"))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(zh.to_vec())).unwrap();
    assert_eq!(book.sheet_names(), ["设备", "视图"]);
    let text = sheet_lines(&mut book, "视图");
    assert!(text.iter().any(|l| l == "筛选：操作系统=LINUX"), "{text:?}");
    assert!(
        text.iter().any(|l| l == &format!("行数={}", want.len())),
        "{text:?}"
    );
}

#[tokio::test]
async fn before_any_data_an_export_answers_503_never_a_partial_file() {
    let (_sim, service) = always_failing(1).await;
    let url = serve(|_| routes(AppState::new(service))).await;
    let http = reqwest::Client::new();
    for path in ["/export.csv", "/export.xlsx?os=LINUX"] {
        for (lang, start) in [("en", "No device data yet."), ("zh-CN", "暂无设备数据。")] {
            let r = http
                .get(format!("{url}{path}"))
                .header("accept-language", lang)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 503, "{path}");
            let text = r.text().await.unwrap();
            assert!(text.starts_with(start), "{text}");
            assert!(text.contains("SYSTEM_ERROR"), "{text}");
            assert_eq!(text.matches("Request-ID").count(), 1, "said once: {text}");
            assert_eq!(text.trim().lines().count(), 1, "{text}");
        }
    }
}

/// A device XLSX with more rows than the limit (Excel's 1,048,575; lowered here) is refused
/// with a sentence saying to export CSV, before anything is built; the CSV of the same view
/// is not limited.
#[tokio::test]
async fn an_xlsx_past_the_row_limit_is_refused_saying_to_export_csv() {
    use wxpay_devices::view::ExportLimits;
    let (sim, service) = setup(
        SimulatorOptions {
            devices: 150,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let state = AppState::new(service).with_export_limits(ExportLimits {
        xlsx_rows: 100,
        ..Default::default()
    });
    let url = serve(move |_| routes(state)).await;
    let devices = sim.devices().to_vec();
    let http = reqwest::Client::new();
    for (lang, says) in [("en", "export CSV"), ("zh-CN", "导出 CSV")] {
        let r = http
            .get(format!("{url}/export.xlsx"))
            .header("accept-language", lang)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains(says) && text.contains("150"), "{text}");
    }
    // A view within the limit is written.
    let sub = devices.iter().find_map(|d| d.sub_mchid.clone()).unwrap();
    let view = format!("sub_mchid={sub}");
    let rows = common::oracle::naive_order(&devices, &DeviceQuery::parse(&view).0).len();
    assert!(rows <= 100, "{rows}");
    let r = http
        .get(format!("{url}/export.xlsx?{view}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let length: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().len(),
        length,
        "sent with its length"
    );
    let csv = http.get(format!("{url}/export.csv")).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    assert_eq!(
        csv::Reader::from_reader(text.as_bytes()).records().count(),
        150
    );
}

/// Exports written at once are limited per process: past the slots, an export waits, then is
/// refused with 503 and `Retry-After`, saying when to try again; a slot freed, it is served.
#[tokio::test]
async fn past_the_export_slots_an_export_waits_then_gets_503_with_retry_after() {
    use wxpay_devices::view::ExportLimits;
    let (_sim, service) = setup(
        SimulatorOptions {
            devices: 120,
            ..Default::default()
        },
        fast_retries(),
        None,
    )
    .await;
    let limits = ExportLimits {
        files: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        streams: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        wait: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let state = AppState::new(service).with_export_limits(limits.clone());
    let url = serve(move |_| routes(state)).await;
    let http = reqwest::Client::new();
    for (path, slots) in [
        ("/export.xlsx", &limits.files),
        ("/export.csv", &limits.streams),
    ] {
        // Another export holds the only slot.
        let held = slots.clone().acquire_owned().await.unwrap();
        for (lang, says) in [
            ("en", "try again in about 30 seconds"),
            ("zh-CN", "30 秒后再试"),
        ] {
            let r = http
                .get(format!("{url}{path}"))
                .header("accept-language", lang)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 503, "{path}");
            assert_eq!(r.headers()["retry-after"], "30");
            let text = r.text().await.unwrap();
            assert!(text.contains(says), "{text}");
        }
        drop(held);
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.unwrap();
    }
    // The slots are given back when the files are done.
    assert_eq!(limits.files.available_permits(), 1);
    let t = std::time::Instant::now();
    while limits.streams.available_permits() != 1 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "the CSV's slot is held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
