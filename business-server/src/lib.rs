//! WebSocket business server: rooms, bullet screens, likes, gifts and flash sales.
//!
//! Start it with [`Server::bind`]; one process works on its own with the in-memory
//! store, many processes share rooms, stock and leaderboards through Redis.
//! The wire protocol is documented in `docs/PROTOCOL.md`.

pub mod api;
pub mod auth;
pub mod config;
pub mod gift;
pub mod limit;
pub mod liveness;
pub mod metrics;
pub mod pending;
pub mod protocol;
pub mod room;
pub mod sale;
pub mod server;
pub mod session;
pub mod store;
pub mod web;

pub use config::Config;
pub use server::{Running, Server};
