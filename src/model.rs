//! The API's data, shared by the server and the browser: a device, a page of the device list,
//! and the error body. Every field is optional, as the API documents; unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// One smart device, exactly as `GET /v3/iotmanage/devices` returns it (16 optional strings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The 16 field names in the documentation's order (also the CSV header and the `sort` values).
pub const FIELD_NAMES: [&str; 16] = [
    "device_sn",
    "camera_sn",
    "device_category_code",
    "device_category",
    "device_class_code",
    "device_class",
    "device_model",
    "app_scene_code",
    "app_scene",
    "operating_system",
    "activation_status",
    "activation_time",
    "mchid",
    "merchant_shortname",
    "sub_mchid",
    "sub_merchant_shortname",
];

impl Device {
    /// The value of a field by its API name (`None` for an absent field or an unknown name).
    pub fn field(&self, name: &str) -> Option<&str> {
        let v = match name {
            "device_sn" => &self.device_sn,
            "camera_sn" => &self.camera_sn,
            "device_category_code" => &self.device_category_code,
            "device_category" => &self.device_category,
            "device_class_code" => &self.device_class_code,
            "device_class" => &self.device_class,
            "device_model" => &self.device_model,
            "app_scene_code" => &self.app_scene_code,
            "app_scene" => &self.app_scene,
            "operating_system" => &self.operating_system,
            "activation_status" => &self.activation_status,
            "activation_time" => &self.activation_time,
            "mchid" => &self.mchid,
            "merchant_shortname" => &self.merchant_shortname,
            "sub_mchid" => &self.sub_mchid,
            "sub_merchant_shortname" => &self.sub_merchant_shortname,
            _ => return None,
        };
        v.as_deref()
    }

    /// All 16 fields in the documentation's order.
    pub fn fields(&self) -> [Option<&str>; 16] {
        FIELD_NAMES.map(|name| self.field(name))
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
    fn field_lookup_matches_the_documented_order() {
        let d = Device {
            mchid: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(d.field("mchid"), Some("1"));
        assert_eq!(d.field("nope"), None);
        assert_eq!(d.fields()[12], Some("1"));
        assert_eq!(FIELD_NAMES[12], "mchid");
    }
}
