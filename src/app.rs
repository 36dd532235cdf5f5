//! The HTML shell and the application's routes.

use crate::ui::changes_page::ChangesPage;
use crate::ui::device_page::DevicePage;
use crate::ui::devices_page::DevicesPage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Html, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    ParamSegment, StaticSegment,
};

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="bg-slate-50 dark:bg-slate-950 text-slate-900 dark:text-slate-100 antialiased">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    let lang = crate::i18n::provide();
    let prefs = crate::ui::prefs::provide();
    let theme = move || match prefs.get().theme {
        crate::ui::prefs::Theme::Dark => "dark",
        crate::ui::prefs::Theme::Light => "light",
        crate::ui::prefs::Theme::System => "",
    };
    view! {
        <Html {..} class=theme lang=lang.code() />
        <Stylesheet id="leptos" href="/pkg/wxpay-devices.css" />
        <Title text=format!("{} · {}", lang.texts().title, lang.texts().subtitle) />
        <Router>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=StaticSegment("") view=DevicesPage />
                <Route path=StaticSegment("changes") view=ChangesPage />
                <Route path=(StaticSegment("devices"), ParamSegment("sn")) view=DevicePage />
            </Routes>
        </Router>
    }
}

/// The page's Content-Security-Policy: scripts only from this origin or carrying this
/// response's nonce (Leptos puts it on its inline hydration scripts), WebAssembly allowed,
/// no framing.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use axum::http::{header::CONTENT_SECURITY_POLICY, HeaderValue};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
fn NotFound() -> impl IntoView {
    let t = crate::i18n::use_lang().texts();
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="mx-auto max-w-xl p-8" data-testid="not-found">
            <h1 class="text-xl font-semibold">{t.not_found}</h1>
            <p class="mt-2">{t.not_found_detail}</p>
            <p class="mt-2">
                <a class="text-emerald-700 dark:text-emerald-400 underline" href="/">
                    {t.back_to_devices}
                </a>
            </p>
        </main>
    }
}
