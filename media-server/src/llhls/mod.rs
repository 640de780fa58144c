//! Low-latency HLS output: one packager task per stream fed by the hub, the in-memory parts
//! and segments with the event that wakes held requests, the per-address cap on held
//! requests, and the HTTP handlers (`ll.m3u8`, `ll-{msn}.{part}.m4s`, `ll-{msn}.m4s`,
//! `ll-init{n}.mp4`, `ll-master.m3u8`).

mod held;
mod output;
mod routes;
mod store;

pub use held::{HeldLimiter, HeldPermit};
pub use output::run;
pub use routes::{master_playlist, media, playlist, PART_COMPLETED_HEADER};
pub use store::{LlHls, LlHlsStats, LlState, LlStore, LlStream};
