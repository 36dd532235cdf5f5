//! The built-in WeChat Pay simulator: the demo mode's data source and the protocol tests' peer.
//! It speaks the real protocol: signed requests in, signed responses out, the real limits.

pub mod dataset;
pub mod keys;
pub mod service;
