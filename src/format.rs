//! Numbers and times as people read them, the same on the server and in the browser (so
//! hydration sees the same text). Times are China Standard Time (UTC+8), the merchants' zone.

/// `12345` → `"12,345"`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A moment in China Standard Time (UTC+8), broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChinaTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl ChinaTime {
    /// Unix seconds in UTC+8 (the proleptic Gregorian calendar; any `i64` is accepted).
    pub fn from_unix(unix: i64) -> Self {
        let t = unix.saturating_add(8 * 3600);
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        ChinaTime {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    /// `20:00:00 (UTC+8)`: the status bar's "data as of".
    pub fn clock(&self) -> String {
        format!(
            "{:02}:{:02}:{:02} (UTC+8)",
            self.hour, self.minute, self.second
        )
    }

    /// `2026-11-28 20:00:00 +08:00`: a full timestamp, as in exports.
    pub fn full(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +08:00",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2026-11-28T20:00:00+08:00`: RFC 3339, as in the change history's CSV.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2026-11-28`: a day.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `20261128-2000`: for file names.
    pub fn stamp(&self) -> String {
        format!(
            "{:04}{:02}{:02}-{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12345), "12,345");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn china_time_is_utc_plus_8() {
        // 2026-11-28 12:00:00 UTC.
        let t = ChinaTime::from_unix(1_795_867_200);
        assert_eq!(t.clock(), "20:00:00 (UTC+8)");
        assert_eq!(t.full(), "2026-11-28 20:00:00 +08:00");
        assert_eq!(t.rfc3339(), "2026-11-28T20:00:00+08:00");
        assert_eq!(t.date(), "2026-11-28");
        assert_eq!(t.stamp(), "20261128-2000");
        assert_eq!(ChinaTime::from_unix(61).clock(), "08:01:01 (UTC+8)");
        // New year in China, still the old year in UTC; a leap day; before 1970.
        assert_eq!(
            ChinaTime::from_unix(1_767_196_800).full(),
            "2026-01-01 00:00:00 +08:00"
        );
        assert_eq!(
            ChinaTime::from_unix(1_709_164_800).full(),
            "2024-02-29 08:00:00 +08:00"
        );
        assert_eq!(
            ChinaTime::from_unix(-86_400).full(),
            "1969-12-31 08:00:00 +08:00"
        );
        let _ = ChinaTime::from_unix(i64::MAX);
        let _ = ChinaTime::from_unix(i64::MIN);
    }

    #[test]
    fn agrees_with_the_time_crate_every_few_days_for_two_centuries() {
        #[cfg(feature = "ssr")]
        for unix in (-2_208_988_800i64..4_102_444_800).step_by(86_400 * 7 + 3_607) {
            let t = time::OffsetDateTime::from_unix_timestamp(unix)
                .unwrap()
                .to_offset(time::macros::offset!(+8));
            let ours = ChinaTime::from_unix(unix);
            assert_eq!(
                (
                    ours.year,
                    ours.month,
                    ours.day,
                    ours.hour,
                    ours.minute,
                    ours.second
                ),
                (
                    t.year() as i64,
                    t.month() as u32,
                    t.day() as u32,
                    t.hour() as u32,
                    t.minute() as u32,
                    t.second() as u32
                ),
                "{unix}"
            );
        }
    }
}
