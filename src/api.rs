//! The server functions the browser calls, and the types they return. Their bodies run on the
//! server only; the browser gets a typed stub that calls them over HTTP, at a fixed path
//! (`/api/<name>`: the endpoints are named, so their URLs do not change between builds).

pub use crate::changes::{ChangesView, DeviceHistory};
pub use crate::error::AppError;
use crate::query::FacetValue;
pub use crate::status::{ErrorInfo, SyncStatus};
pub use crate::view::DeviceView;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Sets the response's status from the error, and passes it on.
#[cfg(feature = "ssr")]
fn failed(e: AppError) -> AppError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(
            axum::http::StatusCode::from_u16(e.status())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    e
}

#[cfg(feature = "ssr")]
fn state() -> Result<crate::view::AppState, AppError> {
    use_context::<crate::view::AppState>()
        .ok_or_else(|| failed(AppError::Internal("no application state".into())))
}

/// The grid's view for a query string (the page URL's, without `?`).
#[server(input = Json, endpoint = "load_view")]
pub async fn load_view(query: String) -> Result<DeviceView, AppError> {
    state()?.view(&query).await.map_err(failed)
}

/// Sub-merchants matching `text` (id prefix or name), counted within the view's other filters.
#[server(input = Json, endpoint = "find_sub_merchants")]
pub async fn find_sub_merchants(query: String, text: String) -> Result<Vec<FacetValue>, AppError> {
    state()?
        .find_sub_merchants(&query, &text)
        .await
        .map_err(failed)
}

/// The sync engine's state, for the status bar.
#[server(endpoint = "current_sync_status")]
pub async fn current_sync_status() -> Result<SyncStatus, AppError> {
    Ok(state()?.status())
}

/// The Changes page's view for a query string (the page URL's, without `?`).
#[server(input = Json, endpoint = "load_changes")]
pub async fn load_changes(query: String) -> Result<ChangesView, AppError> {
    state()?
        .changes_view(&query, crate::i18n::detect())
        .await
        .map_err(failed)
}

/// A device's page: its fields and its timeline.
#[server(input = Json, endpoint = "load_device")]
pub async fn load_device(device_sn: String) -> Result<DeviceHistory, AppError> {
    state()?
        .device_history(&device_sn, crate::i18n::detect())
        .await
        .map_err(failed)
}

/// Starts a refresh now, if allowed (once a minute, within the quota).
#[server(endpoint = "refresh_now")]
pub async fn refresh_now() -> Result<(), AppError> {
    state()?.sync.refresh_now().await.map_err(|why| {
        failed(AppError::Refused(
            crate::i18n::detect().refresh_blocked(&why),
        ))
    })
}
