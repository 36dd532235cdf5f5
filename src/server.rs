//! The server's shared state and its axum router. `router()` is what `main` serves and what the
//! HTTP tests drive.

use crate::api::{DeviceTable, DEFAULT_PER_PAGE, PAGE_SIZES};
use crate::model::Device;
use std::sync::Arc;

/// State shared by every request: the device snapshot the views are answered from.
#[derive(Clone)]
pub struct AppState {
    snapshot: Arc<Vec<Device>>,
    demo: bool,
}

impl AppState {
    pub fn new(devices: Vec<Device>, demo: bool) -> Self {
        AppState {
            snapshot: Arc::new(devices),
            demo,
        }
    }

    /// A page of the snapshot. Out-of-range input is corrected, never an error: an unknown page
    /// size falls back to the default, a page past the end shows the last page.
    pub fn device_table(&self, page: u32, per_page: u32) -> DeviceTable {
        let per_page = if PAGE_SIZES.contains(&per_page) {
            per_page
        } else {
            DEFAULT_PER_PAGE
        };
        let total = self.snapshot.len();
        let pages = total.div_ceil(per_page as usize).max(1) as u32;
        let page = page.clamp(1, pages);
        let start = (page as usize - 1) * per_page as usize;
        let rows = self
            .snapshot
            .iter()
            .skip(start)
            .take(per_page as usize)
            .cloned()
            .collect();
        DeviceTable {
            rows,
            total,
            page,
            per_page,
            demo: self.demo,
        }
    }
}

/// The dashboard's router: the Leptos pages and server functions, with `state` in their context.
pub fn router(leptos_options: leptos::config::LeptosOptions, state: AppState) -> axum::Router {
    use crate::app::{shell, App};
    use leptos::prelude::provide_context;
    use leptos_axum::{generate_route_list, LeptosRoutes};

    let routes = generate_route_list(App);
    axum::Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: usize) -> AppState {
        let devices = (0..n)
            .map(|i| Device {
                device_sn: Some(format!("SN{i:05}")),
                ..Default::default()
            })
            .collect();
        AppState::new(devices, true)
    }

    #[test]
    fn pages_are_clamped_and_sizes_checked() {
        let s = state(120);
        let t = s.device_table(1, 50);
        assert_eq!((t.rows.len(), t.total, t.page), (50, 120, 1));
        assert_eq!(t.rows[0].device_sn.as_deref(), Some("SN00000"));
        let last = s.device_table(3, 50);
        assert_eq!((last.rows.len(), last.page), (20, 3));
        assert_eq!(last.rows[0].device_sn.as_deref(), Some("SN00100"));
        assert_eq!(
            s.device_table(99, 50).page,
            3,
            "past the end shows the last page"
        );
        assert_eq!(s.device_table(0, 50).page, 1);
        assert_eq!(
            s.device_table(1, 7).per_page,
            DEFAULT_PER_PAGE,
            "unknown size"
        );
        let empty = state(0).device_table(5, 50);
        assert_eq!((empty.rows.len(), empty.page, empty.total), (0, 1, 0));
    }
}
