//! The dashboard's UI components.

pub mod device_table;
pub mod devices_page;
pub mod format;
