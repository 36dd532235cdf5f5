//! The built-in WeChat Pay simulator: the demo mode's data source and the protocol tests' peer.

pub mod dataset;
