//! The API's data, shared by the server and the browser: a device, a page of the device list,
//! and the error body. Every field is optional, as the API documents; unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// One smart device, exactly as `GET /v3/iotmanage/devices` returns it (16 optional strings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_sn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_sn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_category_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_scene_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_scene: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mchid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_shortname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_mchid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_merchant_shortname: Option<String>,
}

/// The 16 fields of a device, in the documentation's order. Everything that names a field (the
/// URL's `sort`, the CSV header, the grid's columns, the XLSX headings and widths, hidden-column
/// preferences) goes through this enum, so they cannot drift apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    DeviceSn,
    CameraSn,
    DeviceCategoryCode,
    DeviceCategory,
    DeviceClassCode,
    DeviceClass,
    DeviceModel,
    AppSceneCode,
    AppScene,
    OperatingSystem,
    ActivationStatus,
    ActivationTime,
    Mchid,
    MerchantShortname,
    SubMchid,
    SubMerchantShortname,
}

impl Field {
    /// In the documentation's order (also the CSV's column order).
    pub const ALL: [Field; 16] = [
        Field::DeviceSn,
        Field::CameraSn,
        Field::DeviceCategoryCode,
        Field::DeviceCategory,
        Field::DeviceClassCode,
        Field::DeviceClass,
        Field::DeviceModel,
        Field::AppSceneCode,
        Field::AppScene,
        Field::OperatingSystem,
        Field::ActivationStatus,
        Field::ActivationTime,
        Field::Mchid,
        Field::MerchantShortname,
        Field::SubMchid,
        Field::SubMerchantShortname,
    ];

    /// The API's name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Field::DeviceSn => "device_sn",
            Field::CameraSn => "camera_sn",
            Field::DeviceCategoryCode => "device_category_code",
            Field::DeviceCategory => "device_category",
            Field::DeviceClassCode => "device_class_code",
            Field::DeviceClass => "device_class",
            Field::DeviceModel => "device_model",
            Field::AppSceneCode => "app_scene_code",
            Field::AppScene => "app_scene",
            Field::OperatingSystem => "operating_system",
            Field::ActivationStatus => "activation_status",
            Field::ActivationTime => "activation_time",
            Field::Mchid => "mchid",
            Field::MerchantShortname => "merchant_shortname",
            Field::SubMchid => "sub_mchid",
            Field::SubMerchantShortname => "sub_merchant_shortname",
        }
    }

    /// The field with this API name.
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Its position in [`Field::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The field's value in a device.
    pub fn of(self, d: &Device) -> Option<&str> {
        let v = match self {
            Field::DeviceSn => &d.device_sn,
            Field::CameraSn => &d.camera_sn,
            Field::DeviceCategoryCode => &d.device_category_code,
            Field::DeviceCategory => &d.device_category,
            Field::DeviceClassCode => &d.device_class_code,
            Field::DeviceClass => &d.device_class,
            Field::DeviceModel => &d.device_model,
            Field::AppSceneCode => &d.app_scene_code,
            Field::AppScene => &d.app_scene,
            Field::OperatingSystem => &d.operating_system,
            Field::ActivationStatus => &d.activation_status,
            Field::ActivationTime => &d.activation_time,
            Field::Mchid => &d.mchid,
            Field::MerchantShortname => &d.merchant_shortname,
            Field::SubMchid => &d.sub_mchid,
            Field::SubMerchantShortname => &d.sub_merchant_shortname,
        };
        v.as_deref()
    }

    /// Column width in a spreadsheet, in characters.
    pub fn width(self) -> f64 {
        match self {
            Field::DeviceSn | Field::CameraSn | Field::SubMerchantShortname => 26.0,
            Field::ActivationTime => 30.0,
            Field::DeviceClass => 20.0,
            Field::MerchantShortname => 18.0,
            Field::DeviceCategory | Field::DeviceModel => 16.0,
            Field::AppScene | Field::SubMchid => 14.0,
            Field::ActivationStatus | Field::Mchid => 13.0,
            Field::OperatingSystem => 11.0,
            Field::DeviceCategoryCode | Field::DeviceClassCode | Field::AppSceneCode => 10.0,
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Device {
    /// The value of a field.
    pub fn get(&self, field: Field) -> Option<&str> {
        field.of(self)
    }

    /// All 16 fields in the documentation's order.
    pub fn fields(&self) -> [Option<&str>; 16] {
        Field::ALL.map(|f| f.of(self))
    }
}

/// The paging links of a list response. Empty strings mean "no such page", as the API sends them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Links {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_: Option<String>,
}

impl Links {
    /// Whether a next page exists (`next` present and not empty).
    pub fn has_next(&self) -> bool {
        self.next.as_deref().is_some_and(|n| !n.trim().is_empty())
    }
}

/// One page of `GET /v3/iotmanage/devices`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DevicePage {
    pub data: Vec<Device>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

/// The error body every APIv3 error carries: `{"code", "message", "detail"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documentation's own response sample, plus a device with most fields missing, an
    /// unknown category code and a field the API may add later.
    const SAMPLE: &str = r#"{
      "data": [
        {
          "device_sn": "HSA1RF5A0700165YuJCL8n7",
          "camera_sn": "IMIH-A100SPMV4C6001646",
          "device_category_code": "2",
          "device_category": "行业刷脸硬件",
          "device_class_code": "101",
          "device_class": "自助收银机",
          "device_model": "5510R",
          "app_scene_code": "1",
          "app_scene": "SDK模式",
          "operating_system": "ANDROID",
          "activation_status": "ACTIVATED",
          "activation_time": "2020-03-31 19:38:00.120+08:00",
          "mchid": "1900000001",
          "merchant_shortname": "某公司",
          "sub_mchid": "1900000002",
          "sub_merchant_shortname": "某公司"
        },
        { "device_sn": "X1", "device_category_code": "77", "firmware": "9.1" }
      ],
      "offset": 10,
      "limit": 5,
      "total_count": 1234,
      "links": {
        "next": "/v3/iotmanage/devices?offset=15&limit=5",
        "prev": "/v3/iotmanage/devices?offset=5&limit=5",
        "self": "/v3/iotmanage/devices?offset=10&limit=5"
      }
    }"#;

    #[test]
    fn parses_the_documented_sample() {
        let page: DevicePage = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.total_count, Some(1234));
        assert_eq!(page.offset, Some(10));
        let d = &page.data[0];
        assert_eq!(d.device_sn.as_deref(), Some("HSA1RF5A0700165YuJCL8n7"));
        assert_eq!(d.device_category.as_deref(), Some("行业刷脸硬件"));
        assert_eq!(
            d.activation_time.as_deref(),
            Some("2020-03-31 19:38:00.120+08:00")
        );
        assert_eq!(d.sub_merchant_shortname.as_deref(), Some("某公司"));
        assert!(d.fields().iter().all(Option::is_some));
        let links = page.links.unwrap();
        assert!(links.has_next());
        assert_eq!(
            links.self_.as_deref(),
            Some("/v3/iotmanage/devices?offset=10&limit=5")
        );
    }

    #[test]
    fn missing_fields_and_unknown_codes_are_fine() {
        let page: DevicePage = serde_json::from_str(SAMPLE).unwrap();
        let d = &page.data[1];
        assert_eq!(d.device_sn.as_deref(), Some("X1"));
        assert_eq!(d.device_category_code.as_deref(), Some("77"));
        assert_eq!(d.device_category, None);
        assert_eq!(d.fields().iter().filter(|f| f.is_some()).count(), 2);
        // Round trip keeps exactly the known fields.
        let back: Device = serde_json::from_str(&serde_json::to_string(d).unwrap()).unwrap();
        assert_eq!(&back, d);
    }

    #[test]
    fn an_empty_last_page_parses() {
        let page: DevicePage =
            serde_json::from_str(r#"{"data":[],"offset":100,"limit":100,"total_count":100,"links":{"next":"","prev":"/v3/iotmanage/devices?offset=0&limit=100","self":"x"}}"#)
                .unwrap();
        assert!(page.data.is_empty());
        assert!(!page.links.unwrap().has_next());
        let bare: DevicePage = serde_json::from_str("{}").unwrap();
        assert!(bare.data.is_empty() && bare.total_count.is_none() && bare.links.is_none());
    }

    #[test]
    fn error_body_parses_with_and_without_detail() {
        let e: ApiErrorBody = serde_json::from_str(
            r#"{"code":"PARAM_ERROR","message":"参数不合法","detail":{"field":"limit"}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "PARAM_ERROR");
        assert_eq!(e.detail.unwrap()["field"], "limit");
        let e: ApiErrorBody =
            serde_json::from_str(r#"{"code":"SYSTEM_ERROR","message":"系统错误"}"#).unwrap();
        assert!(e.detail.is_none());
    }

    #[test]
    fn fields_match_the_documented_order_and_the_json_names() {
        let d = Device {
            mchid: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(d.get(Field::Mchid), Some("1"));
        assert_eq!(d.fields()[12], Some("1"));
        assert_eq!(Field::ALL[12].name(), "mchid");
        assert_eq!(Field::parse("nope"), None);
        // Each field's name is the key serde writes for it, in the same order.
        let full = Device {
            device_sn: Some("x".into()),
            camera_sn: Some("x".into()),
            device_category_code: Some("x".into()),
            device_category: Some("x".into()),
            device_class_code: Some("x".into()),
            device_class: Some("x".into()),
            device_model: Some("x".into()),
            app_scene_code: Some("x".into()),
            app_scene: Some("x".into()),
            operating_system: Some("x".into()),
            activation_status: Some("x".into()),
            activation_time: Some("x".into()),
            mchid: Some("x".into()),
            merchant_shortname: Some("x".into()),
            sub_mchid: Some("x".into()),
            sub_merchant_shortname: Some("x".into()),
        };
        let json = serde_json::to_value(&full).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        names.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, names);
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
            assert_eq!(Field::parse(f.name()), Some(*f));
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
        }
    }
}
