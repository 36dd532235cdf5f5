//! Change history (docs/history.md): what changed in the merchant's list from one complete sync
//! to the next. `diff` is the pure engine; keeping the events (a database) comes next.

pub mod diff;
