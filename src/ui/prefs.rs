//! Per-browser display preferences: hidden columns, density, theme. Kept in a cookie (not
//! local storage) so the server renders the page the way the browser will show it: no flash.

use leptos::prelude::*;

pub const COOKIE: &str = "wxd_prefs";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Theme {
    /// Follow the operating system's light or dark setting.
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn key(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn parse(s: &str) -> Theme {
        match s {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            _ => Theme::System,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefs {
    /// Column keys (the field each column sorts by) that are hidden.
    pub hidden: Vec<String>,
    pub compact: bool,
    pub theme: Theme,
}

impl Prefs {
    /// From the cookie's value; anything unknown is ignored.
    pub fn parse(value: &str) -> Prefs {
        let mut p = Prefs::default();
        for (k, v) in form_urlencoded::parse(value.as_bytes()) {
            match k.as_ref() {
                "h" => {
                    p.hidden = v
                        .split('.')
                        .filter(|f| crate::model::Field::parse(f).is_some())
                        .map(str::to_string)
                        .collect()
                }
                "c" => p.compact = v == "1",
                "t" => p.theme = Theme::parse(&v),
                _ => {}
            }
        }
        p
    }

    pub fn to_cookie_value(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("h", &self.hidden.join("."))
            .append_pair("c", if self.compact { "1" } else { "0" })
            .append_pair("t", self.theme.key())
            .finish()
    }

    pub fn is_hidden(&self, column: &str) -> bool {
        self.hidden.iter().any(|h| h == column)
    }
}

/// The preferences of this request (server) or this browser (client).
pub fn read() -> Prefs {
    crate::cookies::get(COOKIE)
        .map(|v| Prefs::parse(&v))
        .unwrap_or_default()
}

/// Stores the preferences for a year (browser only).
pub fn write(p: &Prefs) {
    crate::cookies::set(COOKIE, &p.to_cookie_value());
}

/// Provides the preferences as a signal for the page; changes are written to the cookie.
pub fn provide() -> RwSignal<Prefs> {
    let prefs = RwSignal::new(read());
    provide_context(prefs);
    Effect::new(move |first: Option<()>| {
        let p = prefs.get();
        if first.is_some() {
            write(&p);
        }
    });
    prefs
}

pub fn use_prefs() -> RwSignal<Prefs> {
    use_context::<RwSignal<Prefs>>().unwrap_or_else(|| RwSignal::new(Prefs::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_junk() {
        let p = Prefs {
            hidden: vec!["camera_sn".into(), "app_scene_code".into()],
            compact: true,
            theme: Theme::Dark,
        };
        assert_eq!(Prefs::parse(&p.to_cookie_value()), p);
        assert_eq!(
            Prefs::parse("h=password.camera_sn&c=yes&t=neon&x=1"),
            Prefs {
                hidden: vec!["camera_sn".into()],
                ..Default::default()
            }
        );
        assert_eq!(Prefs::parse(""), Prefs::default());
    }
}
