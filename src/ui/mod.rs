//! The dashboard's UI components.

pub mod changes_page;
pub mod chart;
pub mod device_grid;
pub mod device_page;
pub mod devices_page;
pub mod display_menu;
pub mod export_menu;
pub mod filters;
pub mod nav;
pub mod pagination;
pub mod prefs;
pub mod search_box;
pub mod status;
pub mod toolbar;

use crate::query::DeviceQuery;
use leptos_router::NavigateOptions;

/// Moves the page to another view of the grid. `replace` for typing (no history entry per
/// keystroke); the scroll position stays.
pub fn go_to(query: &DeviceQuery, replace: bool) {
    let navigate = leptos_router::hooks::use_navigate();
    navigate(
        &format!("/{}", query.href()),
        NavigateOptions {
            replace,
            scroll: false,
            ..Default::default()
        },
    );
}
