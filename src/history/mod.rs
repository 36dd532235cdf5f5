//! Change history (docs/history.md): what changed in the merchant's list from one sync to the
//! next. `diff` is the pure engine; `store` keeps the events, the syncs and the snapshot in the
//! database.

pub mod diff;
pub mod store;
