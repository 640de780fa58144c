//! Caching HTTP edge for live HLS and HTTP-FLV: one back-origin fetch per object and one
//! origin connection per FLV stream, however many viewers ask.

pub mod body;
pub mod cache;
pub mod coalesce;
pub mod config;
pub mod flv_fanout;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod upstream;

pub use config::Config;
pub use server::{Running, Server};
