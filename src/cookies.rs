//! The cookies the page reads (display preferences, language) and the session cookie: one
//! parser, and one way to read them on the server (the request) and in the browser
//! (`document.cookie`).

/// The value of cookie `name` in a `Cookie` header (names match exactly).
pub fn find(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The value of cookie `name` in a request's headers (any of its `Cookie` headers).
#[cfg(feature = "ssr")]
pub fn in_headers(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| find(h, name))
}

/// The value of cookie `name`: the request's on the server, this page's in the browser.
pub fn get(name: &str) -> Option<String> {
    #[cfg(feature = "ssr")]
    {
        let parts = leptos::prelude::use_context::<axum::http::request::Parts>()?;
        in_headers(&parts.headers, name)
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        find(&document()?.cookie().ok()?, name)
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        let _ = name;
        None
    }
}

/// Stores cookie `name` for a year (browser only; the server renders from it next time).
pub fn set(name: &str, value: &str) {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    if let Some(doc) = document() {
        let _ = doc.set_cookie(&format!(
            "{name}={value}; Path=/; Max-Age=31536000; SameSite=Strict"
        ));
    }
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    let _ = (name, value);
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn document() -> Option<leptos::web_sys::HtmlDocument> {
    use leptos::wasm_bindgen::JsCast;
    leptos::web_sys::window()?.document()?.dyn_into().ok()
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn names_match_exactly_among_others() {
        let h = "a=1; wxd_prefsX=no; wxd_prefs=h=&c=1; b=2";
        assert_eq!(find(h, "wxd_prefs").as_deref(), Some("h=&c=1"));
        assert_eq!(find(h, "b").as_deref(), Some("2"));
        assert_eq!(find(h, "wxd"), None);
        assert_eq!(find("", "a"), None);
    }
}
