//! The code tables of the device list (category, class, app scene) with the API's Chinese names
//! and English labels. A code the tables do not know still displays ("unknown (77)"); it never fails.

/// One row of a code table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub code: u32,
    /// The name as the API documents it.
    pub zh: &'static str,
    /// An English label.
    pub en: &'static str,
}

const fn c(code: u32, zh: &'static str, en: &'static str) -> Code {
    Code { code, zh, en }
}

/// `device_category_code` → `device_category`.
pub const CATEGORIES: &[Code] = &[
    c(0, "未知设备", "Unknown device"),
    c(1, "青蛙设备", "Frog"),
    c(2, "桌面收银设备", "Desktop checkout"),
    c(3, "行业收银硬件", "Industry checkout hardware"),
    c(4, "刷卡机", "Card reader"),
    c(5, "智能音响", "Smart speaker"),
    c(6, "智能扫码枪", "Smart scanner"),
    c(7, "无人自助设备", "Unattended self-service"),
    c(8, "团餐设备", "Group catering"),
    c(9, "自助收银设备", "Self-checkout"),
    c(10, "孵化类设备", "Incubation"),
    c(11, "闸机", "Gate"),
    c(200, "临时类", "Temporary"),
];

/// `device_class_code` → `device_class`.
pub const CLASSES: &[Code] = &[
    c(0, "未知", "Unknown"),
    c(1, "基础版", "Basic"),
    c(2, "Mini版", "Mini"),
    c(3, "Pro版", "Pro"),
    c(101, "大屏自助收银机", "Large-screen self-checkout"),
    c(102, "校园刷卡机", "Campus card reader"),
    c(103, "自助售货机", "Vending machine"),
    c(104, "取票机", "Ticket machine"),
    c(105, "充电宝设备", "Power bank"),
    c(106, "自助一体机", "Self-service kiosk"),
    c(107, "团餐机", "Catering terminal"),
    c(108, "游艺机", "Arcade machine"),
    c(109, "自助存取柜", "Locker"),
    c(110, "手持设备", "Handheld"),
    c(111, "加油加气设备", "Fuel station"),
    c(112, "智能购物车", "Smart cart"),
    c(114, "桌面单屏刷脸设备", "Desktop single-screen face pay"),
    c(116, "桌面双屏刷脸设备", "Desktop dual-screen face pay"),
    c(118, "桌面双屏POS设备", "Desktop dual-screen POS"),
    c(120, "桌面称重设备", "Desktop scale"),
    c(124, "医保设备", "Medical insurance"),
    c(132, "彩票机", "Lottery"),
    c(134, "充电桩设备", "EV charger"),
    c(172, "视觉识别设备", "Vision recognition"),
    c(180, "门禁设备", "Access control"),
    c(200, "临时类别", "Temporary"),
];

/// `app_scene_code` → `app_scene`.
pub const SCENES: &[Code] = &[
    c(1, "SDK模式", "SDK"),
    c(2, "APP模式", "APP"),
    c(3, "离线模式", "Offline"),
    c(4, "境外APP模式", "Overseas APP"),
];

/// Which table a code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Category,
    Class,
    Scene,
}

impl Table {
    pub fn rows(self) -> &'static [Code] {
        match self {
            Table::Category => CATEGORIES,
            Table::Class => CLASSES,
            Table::Scene => SCENES,
        }
    }

    /// The row for a code as the API sends it (a decimal string, spaces tolerated).
    pub fn lookup(self, code: &str) -> Option<&'static Code> {
        let n: u32 = code.trim().parse().ok()?;
        self.rows().iter().find(|row| row.code == n)
    }

    /// A readable English label for a code: the table's label, or "Unknown (code)".
    pub fn label_en(self, code: &str) -> String {
        match self.lookup(code) {
            Some(row) => row.en.to_string(),
            None => format!("Unknown ({})", code.trim()),
        }
    }

    /// The name to show for a device: the API's own name when it sent one, else the table's
    /// Chinese name for the code, else "未知 (code)". `None` only when both are absent.
    pub fn display_name(self, code: Option<&str>, api_name: Option<&str>) -> Option<String> {
        if let Some(name) = api_name.filter(|n| !n.trim().is_empty()) {
            return Some(name.to_string());
        }
        let code = code.filter(|c| !c.trim().is_empty())?;
        Some(match self.lookup(code) {
            Some(row) => row.zh.to_string(),
            None => format!("未知 ({})", code.trim()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_the_documentation() {
        assert_eq!(CATEGORIES.len(), 13);
        assert_eq!(CLASSES.len(), 26);
        assert_eq!(SCENES.len(), 4);
        assert_eq!(Table::Category.lookup("2").unwrap().zh, "桌面收银设备");
        assert_eq!(Table::Class.lookup("101").unwrap().zh, "大屏自助收银机");
        assert_eq!(Table::Class.lookup("180").unwrap().en, "Access control");
        assert_eq!(Table::Scene.lookup("4").unwrap().zh, "境外APP模式");
        for table in [Table::Category, Table::Class, Table::Scene] {
            let rows = table.rows();
            // Strictly increasing: sorted, and no code twice.
            for pair in rows.windows(2) {
                assert!(pair[0].code < pair[1].code, "{table:?}: {pair:?}");
            }
            for row in rows {
                assert_eq!(table.lookup(&row.code.to_string()), Some(row));
                assert!(!row.zh.is_empty() && !row.en.is_empty(), "{row:?}");
                assert!(row.en.is_ascii(), "{row:?}");
            }
            // Names are unique within a table (a filter shows them side by side).
            let mut names: Vec<&str> = rows.iter().map(|r| r.zh).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), rows.len(), "{table:?}: a Chinese name twice");
        }
    }

    #[test]
    fn unknown_codes_display_with_their_number() {
        assert_eq!(Table::Category.lookup("77"), None);
        assert_eq!(Table::Category.label_en("77"), "Unknown (77)");
        assert_eq!(Table::Class.label_en("abc"), "Unknown (abc)");
        assert_eq!(
            Table::Scene.display_name(Some("9"), None).unwrap(),
            "未知 (9)"
        );
    }

    #[test]
    fn the_api_name_wins_over_the_table() {
        // The documentation's own example: code 2 named 行业刷脸硬件.
        assert_eq!(
            Table::Category
                .display_name(Some("2"), Some("行业刷脸硬件"))
                .unwrap(),
            "行业刷脸硬件"
        );
        assert_eq!(
            Table::Category.display_name(Some("2"), None).unwrap(),
            "桌面收银设备"
        );
        assert_eq!(Table::Category.display_name(None, None), None);
        assert_eq!(Table::Category.display_name(Some(" "), Some("")), None);
    }
}
