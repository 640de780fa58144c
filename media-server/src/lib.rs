//! Origin media server: RTMP ingest, stream hub with GOP cache, HLS, HTTP-FLV, RTMP play and stats.

pub mod api;
pub mod auth;
pub mod config;
pub mod flv;
pub mod hls;
pub mod hook;
pub mod http;
pub mod hub;
pub mod llhls;
pub mod metrics;
mod poll_rate;
pub mod rtmp;
mod server;
#[cfg(feature = "transcode")]
pub mod transcode;

pub use config::Config;
pub use server::{Running, Server};
