//! wxpay-devices: a dashboard over WeChat Pay APIv3's smart-device list.
//!
//! Shared by the server (`ssr`) and the browser (`hydrate`): the data model, the code tables,
//! the server functions' signatures and the UI. Server-only modules sit behind `ssr`.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
#[cfg(feature = "ssr")]
pub mod auth;
pub mod changes;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod clock;
pub mod codes;
pub mod cookies;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod device_list;
pub mod error;
#[cfg(feature = "ssr")]
pub mod export;
pub mod format;
#[cfg(feature = "ssr")]
pub mod guard;
#[cfg(feature = "ssr")]
pub mod history;
pub mod i18n;
#[cfg(feature = "ssr")]
pub mod metrics;
pub mod model;
#[cfg(feature = "ssr")]
pub mod ops;
pub mod query;
#[cfg(feature = "ssr")]
pub mod replicas;
pub mod status;
pub mod ui;
pub mod view;

#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod simulator;
#[cfg(feature = "ssr")]
pub mod sync;
#[cfg(feature = "ssr")]
pub mod wechatpay;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
