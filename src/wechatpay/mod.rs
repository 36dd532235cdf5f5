//! The WeChat Pay APIv3 client: configuration, request signing, response verification, platform
//! certificates, typed errors, and the device-list call. Server-side only.

pub mod certificates;
pub mod client;
pub mod config;
pub mod error;
pub mod keys;
pub mod signer;
pub mod verifier;
