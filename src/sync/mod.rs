//! The sync engine: the merchant's whole device list, fetched at the rate limit and never over
//! it, kept as a snapshot that every view is answered from.

pub mod budget;
pub mod error;
pub mod fetch;
pub mod lease;
pub mod limiter;
pub mod quota;
pub mod service;
pub mod snapshot;
