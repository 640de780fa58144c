//! Caching HTTP edge for live HLS: one back-origin fetch per object however many viewers ask.

pub mod cache;
pub mod coalesce;
pub mod config;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod upstream;

pub use config::Config;
pub use server::{Running, Server};
