//! Number formatting for the UI.

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

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12345), "12,345");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}

/// `125` → `"2 min ago"`.
pub fn ago(secs: i64) -> String {
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h {} min ago", s / 3600, s % 3600 / 60),
        s => format!("{} days ago", s / 86_400),
    }
}

/// Unix seconds as `HH:MM:SS` in China Standard Time (UTC+8), the merchants' time zone. The
/// same on the server and in the browser, so hydration sees the same text.
pub fn china_time(unix: i64) -> String {
    let t = unix + 8 * 3600;
    format!(
        "{:02}:{:02}:{:02} (UTC+8)",
        t.rem_euclid(86_400) / 3600,
        t.rem_euclid(3600) / 60,
        t.rem_euclid(60)
    )
}

#[cfg(test)]
mod ago_tests {
    use super::{ago, china_time};

    #[test]
    fn china_time_is_utc_plus_8() {
        assert_eq!(china_time(1_795_867_200), "20:00:00 (UTC+8)");
        assert_eq!(china_time(61), "08:01:01 (UTC+8)");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(125), "2 min ago");
        assert_eq!(ago(3_900), "1 h 5 min ago");
        assert_eq!(ago(200_000), "2 days ago");
    }
}
